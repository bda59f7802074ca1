"""Child processes of the benchmarks: each in its own process group, ended by its PID.

A benchmark that starts a Python process (a ``dgl-emu run``, one setting of ``speed scale``)
waits for it with a time limit and then kills the group it started, so neither a hung child nor
its own children (a launcher's workers) outlive the benchmark, whether it passed, failed or timed
out.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

__all__ = ["run_owned"]


def run_owned(cmd: Sequence[str], *, timeout: float, env: Optional[Mapping[str, str]] = None,
              cwd: Optional[Union[str, Path]] = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in a new session, capture its output, and kill its process group at the end.

    Parameters
    ----------
    cmd : sequence of str
        The command line.
    timeout : float
        Seconds to wait; past them the group is killed and ``stderr`` says so.
    env, cwd : optional
        As for :class:`subprocess.Popen`.

    Returns
    -------
    subprocess.CompletedProcess
        With text ``stdout`` and ``stderr``; the return code is negative when a signal ended it.

    Examples
    --------
    >>> import sys
    >>> run_owned([sys.executable, "-c", "print(6 * 7)"], timeout=60).stdout
    '42\\n'
    >>> run_owned([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5).stderr
    'timed out after 0.5 s'
    """
    proc = subprocess.Popen(list(cmd), env=None if env is None else dict(env), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = "", f"timed out after {timeout} s"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
