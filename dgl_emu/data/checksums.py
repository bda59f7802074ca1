"""sha256 digests of dataset files: a cache that only saves re-reading unchanged files, and checksums
recorded on first use.

The cache is a shortcut, never the check: a digest is reused only for the same file (device and
inode) with the same size, modification time *and* change time (``st_ctime``). Any write to a
file sets its change time to the present, and no user can set it back (``touch``/``utime`` set it
to the present too), so an edited file whose size and modification time were restored is hashed
again and fails the check.

Registered datasets carry the sha256 of their files. For the large ones whose files could not be
hashed when they were registered (no download was possible), the registry lists none: the
digest of the first download (or the first load) is *recorded* in the user cache and every later
load is verified against it (trust on first use; ``dgl-emu datasets`` says which kind each
dataset has). Such a record is marked ``unverified``: nothing vouched for the first copy, so a
fabricated or partial first copy would be recorded as well. ``dgl-emu datasets checksums`` lists
the records (with the file and time they were taken from), ``dgl-emu datasets forget NAME``
removes them so that the next download or load records the files anew.

Where they are kept (both JSON, written atomically):

* ``$XDG_CACHE_HOME/dgl-emu/recorded-sha256.json``: the records, ``"NAME/FILE": {"sha256",
  "status": "unverified", "how", "path", "recorded"}`` (:func:`records`);
* ``$XDG_CACHE_HOME/dgl-emu/sha256.json``: the digest cache by file identity (a shortcut only).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

from ..utils import atomic_write_bytes

__all__ = ["sha256_of", "verified_digest", "recorded", "record", "accepted_digests", "cache_dir",
           "atomic_write", "records", "forget", "RECORDS", "DIGESTS", "UNVERIFIED"]

#: file names of the records and of the digest cache in :func:`cache_dir`
RECORDS, DIGESTS = "recorded-sha256.json", "sha256.json"
#: the status of every record: no registered checksum vouched for the first copy
UNVERIFIED = "unverified"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dgl-emu`` (``~/.cache/dgl-emu``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dgl-emu"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``
    (:func:`dgl_emu.utils.atomic_write_bytes`)."""
    atomic_write_bytes(path, data)


def _read(path: Path) -> Dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: Dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data, indent=0, sort_keys=True).encode("utf-8"))
    except OSError:  # an unwritable cache is simply not used
        pass


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity(path: Path) -> str:
    """What the cache keys a digest by: path, device, inode, size, modification and change time."""
    st = path.stat()
    return f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def verified_digest(path: Path) -> str:
    """The sha256 of ``path``, from ``cache_dir()/sha256.json`` when the file is the one hashed
    before (same device, inode, size, modification and change time: see the module docstring),
    else hashed now and cached.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "f.txt"
    >>> _ = p.write_text("a")
    >>> verified_digest(p) == sha256_of(p) == hashlib.sha256(b"a").hexdigest()
    True
    """
    path = Path(path).resolve()
    key = _identity(path)
    cache_file = cache_dir() / DIGESTS
    cache = _read(cache_file)
    if key in cache:
        return cache[key]
    digest = sha256_of(path)
    if _identity(path) != key:  # written while it was read: do not cache what may be a mix
        return digest
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{path}|")}
    cache[key] = digest
    _write(cache_file, cache)
    return digest


def records() -> Dict[str, dict]:
    """Every recorded checksum, ``{"NAME/FILE": {"sha256", "status", "how", "path", "recorded"}}``
    (a record of an older dgl-emu, a bare digest, reads as ``{"sha256": digest, "status": "unverified"}``)."""
    out = {}
    for key, value in _read(cache_dir() / RECORDS).items():
        entry = value if isinstance(value, dict) else {"sha256": value}
        if isinstance(entry.get("sha256"), str):
            out[key] = {"status": UNVERIFIED, **entry}
    return out


def recorded(dataset: str, fname: str) -> Optional[str]:
    """The digest recorded at the first download (or load) of ``dataset/fname``, if any."""
    entry = records().get(f"{dataset}/{fname}")
    return entry["sha256"] if entry else None


def record(dataset: str, fname: str, digest: str, *, how: str = "first load", path: Optional[Path] = None) -> None:
    """Record ``digest`` as the checksum of ``dataset/fname`` from now on, marked :data:`UNVERIFIED`
    (``how``: ``"first download"`` or ``"first load"``; ``path``: the copy it was taken from)."""
    file = cache_dir() / RECORDS
    data = _read(file)
    data[f"{dataset}/{fname}"] = {"sha256": digest, "status": UNVERIFIED, "how": how,
                                  "path": str(path) if path is not None else None,
                                  "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write(file, data)


def forget(dataset: str) -> List[str]:
    """Remove the recorded checksums of ``dataset``; returns the ``NAME/FILE`` keys removed."""
    file = cache_dir() / RECORDS
    data = _read(file)
    gone = sorted(k for k in data if k.split("/", 1)[0] == dataset)
    if gone:
        _write(file, {k: v for k, v in data.items() if k not in gone})
    return gone


def accepted_digests(dataset: str, fname: str, registered: List[str]) -> List[str]:
    """The registered checksums, or else the recorded one (empty before the first use)."""
    if registered:
        return list(registered)
    first = recorded(dataset, fname)
    return [first] if first else []
