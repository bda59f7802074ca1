"""One holder at a time: a lock file naming its holder's process, taken over when that process is gone.

The lock file holds ``"<pid> <start>"``: the holder's process id and its start time (field 22 of
``/proc/<pid>/stat``, clock ticks since boot; left out where there is no ``/proc``). A lock is
*stale*, and is taken over, when its process no longer runs, or when a process with that id runs
but started at another time (the id was reused after the holder died). A file of a bare PID (the
format before the start time was recorded) is stale only when that process no longer runs.

Taking and releasing the lock happen under an exclusive ``flock`` of the lock's directory (where
the platform has one), so two processes that find the same stale lock cannot both take it over;
the file appears complete (written first, then linked in place), so no reader sees it empty.

Standard library only: any module may import it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Tuple, Type, Union

try:
    import fcntl
except ImportError:  # not POSIX: no directory mutex
    fcntl = None

__all__ = ["DirectoryLock", "Locked", "holder", "process_start_time", "process_alive"]


class Locked(RuntimeError):
    """Another live process holds the lock at ``path``; ``pid`` is its process id.

    The message is the one given to :class:`DirectoryLock` by its caller.
    """

    def __init__(self, message: str, path: Path, pid: int):
        super().__init__(message)
        self.path = Path(path)
        self.pid = pid


def process_start_time(pid: int) -> Optional[int]:
    """The start time of process ``pid`` in clock ticks since boot, or None where unknown.

    Parameters
    ----------
    pid : int
        A process id.

    Returns
    -------
    int or None
        Field 22 of ``/proc/<pid>/stat``; None without ``/proc`` or when no such process runs.

    Examples
    --------
    >>> start = process_start_time(os.getpid())
    >>> start is None or start == process_start_time(os.getpid())
    True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 2, the command name, is in parentheses and may hold spaces: count from its end
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[22 - 3])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not).

    Parameters
    ----------
    pid : int
        A process id (> 0).

    Returns
    -------
    bool
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _read_holder(path: Path) -> Tuple[int, Optional[int]]:
    """``(pid, start)`` written in the lock file; ``(0, None)`` when unreadable."""
    try:
        words = path.read_text().split()
        return int(words[0]), (int(words[1]) if len(words) > 1 else None)
    except (OSError, ValueError, IndexError):
        return 0, None


def _holder_runs(pid: int, start: Optional[int]) -> bool:
    """Whether the process that wrote ``(pid, start)`` still runs."""
    if pid <= 0 or not process_alive(pid):
        return False
    if start is None:  # a lock without a start time: the PID alone decides
        return True
    now = process_start_time(pid)
    return now is None or now == start


def holder(path: Union[str, Path]) -> Optional[int]:
    """The PID of the live process that holds the lock file ``path``; ``None`` when there is no
    lock or its holder is gone (a stale lock). Reads only: it neither takes nor removes the lock.

    Examples
    --------
    >>> lock_path = Path(tempfile.mkdtemp()) / "run.lock"
    >>> holder(lock_path) is None
    True
    >>> with DirectoryLock(lock_path):
    ...     holder(lock_path) == os.getpid()
    True
    """
    pid, start = _read_holder(Path(path))
    return pid if _holder_runs(pid, start) else None


@contextlib.contextmanager
def _directory_mutex(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` of ``directory`` for a few file operations (none without fcntl)."""
    if fcntl is None:  # not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock: go on unguarded
            pass
        yield
    finally:
        os.close(fd)  # releases the flock


class DirectoryLock:
    """A lock file at ``path`` that holds this process's PID and start time while held.

    Use it as a context manager, or call :meth:`acquire` and :meth:`release`. A lock left by a
    process that no longer runs (killed), or by an earlier process whose PID was reused, is taken
    over; a lock this process holds itself is taken again.

    Parameters
    ----------
    path : path-like
        The lock file; its directory must exist.
    message : str
        The message of the error when a live process holds the lock; ``{path}``, ``{directory}``
        (the lock file's directory) and ``{pid}`` (the holder's) are filled in.
    error : type
        The exception raised then: :class:`Locked` or a subclass of it.

    Examples
    --------
    >>> lock_path = Path(tempfile.mkdtemp()) / "tune.lock"
    >>> with DirectoryLock(lock_path):
    ...     int(lock_path.read_text().split()[0]) == os.getpid()
    True
    >>> lock_path.exists()
    False
    """

    def __init__(self, path: Union[str, Path], message: str = "{path} is held by process {pid}",
                 error: Type[Locked] = Locked):
        self.path = Path(path)
        self.message = message
        self.error = error

    def _record(self) -> str:
        start = process_start_time(os.getpid())
        return f"{os.getpid()}\n" if start is None else f"{os.getpid()} {start}\n"

    def acquire(self) -> "DirectoryLock":
        """Take the lock.

        Returns
        -------
        DirectoryLock
            This lock.

        Raises
        ------
        Locked
            (``error``) Another live process holds it.
        """
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self._record())
            with _directory_mutex(directory):
                while True:
                    try:
                        os.link(tmp, self.path)  # fails if a lock is there: the exclusive create
                        return self
                    except FileExistsError:
                        pid, start = _read_holder(self.path)
                        if pid != os.getpid() and _holder_runs(pid, start):
                            raise self.error(self.message.format(path=self.path, directory=directory, pid=pid),
                                             self.path, pid) from None
                        self.path.unlink(missing_ok=True)  # stale: its holder is gone
        finally:
            os.unlink(tmp)

    def release(self) -> None:
        """Remove the lock file if this process holds it (otherwise leave it alone)."""
        try:
            with _directory_mutex(self.path.parent):
                if _read_holder(self.path)[0] == os.getpid():
                    self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
