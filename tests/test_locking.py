"""dgl_emu.locking: a lock names its holder by PID and start time; a dead or reused PID is stale."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dgl_emu.locking import DirectoryLock, Locked, process_alive, process_start_time

needs_proc = pytest.mark.skipif(process_start_time(os.getpid()) is None, reason="no /proc/<pid>/stat")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the PID runs nothing
    return proc.pid


def _holder(tmp_path, text):
    path = tmp_path / "x.lock"
    path.write_text(text)
    return path


def test_the_lock_file_names_this_process_and_goes_on_release(tmp_path):
    path = tmp_path / "x.lock"
    with DirectoryLock(path) as lock:
        words = path.read_text().split()
        assert int(words[0]) == os.getpid()
        if process_start_time(os.getpid()) is not None:
            assert int(words[1]) == process_start_time(os.getpid())
        assert lock.path == path
    assert not path.exists()
    assert sorted(tmp_path.iterdir()) == []   # no temporary file left beside it


def test_a_live_holder_is_refused_with_the_callers_message(tmp_path):
    holder = os.getppid()  # a live process, not this one
    start = process_start_time(holder)
    path = _holder(tmp_path, f"{holder} {start}\n" if start is not None else f"{holder}\n")

    class Mine(Locked):
        pass

    lock = DirectoryLock(path, "{directory} is busy (PID {pid}); {path}", Mine)
    with pytest.raises(Mine) as err:
        lock.acquire()
    assert str(err.value) == f"{tmp_path} is busy (PID {holder}); {path}"
    assert (err.value.path, err.value.pid) == (path, holder)
    assert isinstance(err.value, RuntimeError)
    lock.release()  # not ours: left alone
    assert path.read_text().split()[0] == str(holder)


def test_a_live_holder_of_the_old_format_is_refused(tmp_path):
    path = _holder(tmp_path, f"{os.getppid()}\n")  # a bare PID: the format before start times
    with pytest.raises(Locked, match=f"held by process {os.getppid()}"):
        DirectoryLock(path).acquire()


def test_stale_by_dead_pid(tmp_path):
    dead = _dead_pid()
    assert not process_alive(dead)
    for text in (f"{dead}\n", f"{dead} 12345\n"):
        path = _holder(tmp_path, text)
        with DirectoryLock(path):
            assert int(path.read_text().split()[0]) == os.getpid()
        assert not path.exists()


@needs_proc
def test_stale_by_another_start_time(tmp_path):
    """A live PID whose process started at another time than the one recorded: the holder died
    and its PID was reused, so the lock is taken over."""
    holder = os.getppid()
    path = _holder(tmp_path, f"{holder} {process_start_time(holder) + 1}\n")
    with DirectoryLock(path):
        assert path.read_text() == f"{os.getpid()} {process_start_time(os.getpid())}\n"
    assert not path.exists()


def test_unreadable_lock_is_stale(tmp_path):
    path = _holder(tmp_path, "")
    with DirectoryLock(path):
        assert int(path.read_text().split()[0]) == os.getpid()


def test_a_lock_held_in_another_process_is_refused_until_it_ends(tmp_path):
    path = tmp_path / "x.lock"
    code = ("import sys, time; from dgl_emu.locking import DirectoryLock\n"
            f"lock = DirectoryLock({str(path)!r}).acquire()\n"
            "print('held', flush=True); sys.stdin.readline()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(Locked) as err:
            DirectoryLock(path).acquire()
        assert err.value.pid == child.pid
    finally:
        child.kill()  # killed while holding: the file stays, its holder is gone
        child.wait()
    assert path.exists()
    with DirectoryLock(path):
        assert int(path.read_text().split()[0]) == os.getpid()


def test_start_time_of_a_missing_process_is_none():
    assert process_start_time(_dead_pid()) is None
