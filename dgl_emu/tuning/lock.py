"""One tuner per study directory: a lock file that holds the tuner's PID."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DirectoryLock", "StudyLocked"]


class StudyLocked(RuntimeError):
    """Another live process is tuning in the same directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that its parent has not reaped yet is a zombie: dead
        status = Path(f"/proc/{pid}/status").read_text()
        return "\nState:\tZ" not in status
    except OSError:
        return True


class DirectoryLock:
    """``path`` created exclusively and holding this process's PID, while the ``with`` block runs.

    A lock left by a process that no longer runs (killed) is taken over.

    Examples
    --------
    >>> import tempfile
    >>> lock_path = Path(tempfile.mkdtemp()) / "tune.lock"
    >>> with DirectoryLock(lock_path):
    ...     int(lock_path.read_text()) == os.getpid()
    True
    >>> lock_path.exists()
    False
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> "DirectoryLock":
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise StudyLocked(f"{self.path.parent} is in use by another dgl-emu tune (PID {pid}); "
                                      f"wait for it, or stop it and re-run to resume") from None
                self.path.unlink(missing_ok=True)  # a killed tuner's lock
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            return self

    def __exit__(self, *exc) -> None:
        try:
            if int(self.path.read_text().strip() or 0) == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass
