"""Small process-level helpers: atomic writes, CPU allocator tuning and the software/hardware record."""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Union

if TYPE_CHECKING:
    import torch

__all__ = ["atomic_write_bytes", "atomic_write_stream", "atomic_write_text", "atomic_write_json", "open_append",
           "tune_cpu_allocator", "environment"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TUNED = False


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    Readers never see a half-written file, and a crash (or a full disk) leaves the previous file
    intact. Nothing is written through a symbolic link: the temporary file is created exclusively
    (``O_EXCL | O_NOFOLLOW``) and then replaces ``path``, so a link at ``path`` is replaced, never
    followed.

    Raises
    ------
    OSError
        With ``path`` as its file name (also when writing the temporary file failed, e.g. disk
        full); the temporary file is removed.
    """
    atomic_write_stream(path, lambda f: f.write(data))


def atomic_write_stream(path: Union[str, Path], write: Callable[[BinaryIO], Any]) -> None:
    """:func:`atomic_write_bytes` of what ``write(file)`` writes into the binary file it is given
    (in pieces: a large array need not be copied into one ``bytes`` first)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def open_append(path: Union[str, Path]):
    """``path`` opened to append UTF-8 text, created if missing, never through a symbolic link.

    Raises
    ------
    OSError
        ``ELOOP`` when ``path`` is a symbolic link (with ``path`` as its file name).
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    return os.fdopen(fd, "a", encoding="utf-8")


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: Union[str, Path], obj: Any) -> None:
    """Atomically write ``obj`` as indented, strict JSON (a non-finite float is written as null)."""
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def tune_cpu_allocator(threshold: int = 1 << 34) -> bool:
    """Stop glibc from returning large blocks to the OS after every tensor (Linux only).

    PyTorch's CPU allocator uses ``malloc``; glibc serves blocks above ``M_MMAP_THRESHOLD``
    with fresh ``mmap`` pages, so each large temporary pays page faults on first touch
    (about half the time of an element-wise op over a ``(1000, 256, 100)`` tensor). Raising
    the mmap and trim thresholds lets freed blocks be reused. It changes no result, only
    speed and the process's resident memory. Set ``DGL_EMU_NO_MALLOC_TUNING=1`` to skip.

    Returns
    -------
    bool
        Whether the setting was applied.
    """
    global _TUNED
    if _TUNED:
        return True
    if os.environ.get("DGL_EMU_NO_MALLOC_TUNING") == "1":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(min(threshold, 2 ** 31 - 1)))
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(min(threshold, 2 ** 31 - 1)))
    except (OSError, AttributeError):
        return False
    _TUNED = bool(ok)
    return _TUNED


def environment(device: "torch.device") -> dict:
    """What a run's numbers depend on besides its configuration: versions, CPU kernels, device.

    The same seed gives bit-identical metrics on the same machine with the same packages; another
    CPU may pick other PyTorch kernels (``cpu_capability``: ``"AVX2"``, ``"AVX512"``, ...) that
    round differently, so every ``metrics.json`` records this next to the results.

    Parameters
    ----------
    device : torch.device
        The training device.

    Returns
    -------
    dict
        ``python``, ``torch``, ``dgl`` (versions), ``cpu_capability``, ``threads`` (torch intra-op
        threads), ``device`` (its type) and, on CUDA, ``device_name``.

    Examples
    --------
    >>> import torch
    >>> env = environment(torch.device("cpu"))
    >>> env["torch"] == torch.__version__, env["device"], env["threads"] == torch.get_num_threads()
    (True, 'cpu', True)
    """
    import dgl  # start-up cost: this ground-floor module imports neither torch nor DGL itself
    import torch  # start-up cost, as above

    record = {"python": platform.python_version(), "torch": str(torch.__version__), "dgl": str(dgl.__version__),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "threads": torch.get_num_threads(), "device": device.type}
    if device.type == "cuda":
        record["device_name"] = torch.cuda.get_device_name(device)
    return record
