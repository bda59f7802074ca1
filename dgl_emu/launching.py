"""Processes that a launcher owns, and the one line it prints for them.

A launcher (``dgl-emu run --nproc N``, :mod:`dgl_emu.sharded.launch`) starts its workers and
servers in a :class:`Launch`. Each process gets a session and process group of its own, so the
launcher ends the whole group (the process and anything it started), and dies with the launcher
(Linux's parent-death signal) even when the launcher is killed outright. The launch ends when:

* every worker has exited with status 0: servers get :data:`SERVER_GRACE` seconds to finish, then
  are ended; the launcher exits 0;
* a worker fails, or a server dies early: every other process is ended, and the launcher prints
  ONE ``Error:`` line and exits with the worker's status (``128 + N`` for signal ``N``). The
  line is the failing worker's own message; or, when a process was killed from outside (``kill
  -9``, the kernel's out-of-memory killer) or exited without a message, which process (its
  label, PID and signal or status) and the command that resumes the run from its last
  checkpoint: the errors the other workers then report (a closed connection) follow from it;
* the launcher gets SIGINT (Ctrl-C) or SIGTERM: it passes the signal to every worker, which
  finish their step, agree to stop, checkpoint and exit; after ``grace`` seconds (or a second
  signal) every process still there is killed. The launcher prints one line that says where the
  run stopped and the command that resumes it, and exits 130 (SIGINT) or 143 (SIGTERM).

A worker tells its launcher its last word through its report file (the path in
:data:`REPORT_ENV`, see :func:`report`), not on stderr, so that N workers failing alike print one
line, not N.

Standard library only: any module may import it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

__all__ = ["Terminated", "Launch", "REPORT_ENV", "report", "reporting", "stop_line", "exit_status",
           "SERVER_GRACE"]

#: the file a launched process writes its last word into (set by :class:`Launch`)
REPORT_ENV = "DGL_EMU_REPORT_FILE"
#: seconds the servers get to shut down after the last worker exits
SERVER_GRACE = 30.0
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises :class:`KeyboardInterrupt` (so that everything that
    stops cleanly on Ctrl-C stops cleanly on SIGTERM too); the process then exits 143."""


def raise_terminated(signum, frame) -> None:
    """A SIGTERM handler that raises :class:`Terminated`."""
    raise Terminated()


def exit_status(signum: int) -> int:
    """The exit status of a process stopped by ``signum``: ``128 + signum`` (130 for SIGINT, 143
    for SIGTERM), as shells report it.

    Examples
    --------
    >>> exit_status(signal.SIGINT), exit_status(signal.SIGTERM)
    (130, 143)
    """
    return 128 + int(signum)


def _verb(signum: int) -> str:
    return "Terminated" if signum == signal.SIGTERM else "Interrupted"


def stop_line(signum: int, step: Optional[int], checkpoint: Optional[str], command: str,
              restored: Optional[str] = None) -> str:
    """The one line that says where a run stopped on ``signum`` and how to resume it.

    Examples
    --------
    >>> stop_line(signal.SIGTERM, 13, "run/last.pt", "dgl-emu run --output run")
    'Terminated at step 13: run/last.pt holds the run; to resume it, run: dgl-emu run --output run'
    >>> stop_line(signal.SIGINT, 4, None, "dgl-emu run")
    'Interrupted at step 4, before the first checkpoint: nothing to resume'
    """
    where = f"{_verb(signum)} at step {step}" if step is not None else _verb(signum)
    if checkpoint is None:
        line = f"{where}, before the first checkpoint: nothing to resume"
        return line + (f"; the previous run in {restored} was put back" if restored else "")
    return f"{where}: {checkpoint} holds the run; to resume it, run: {command}"


def reporting() -> bool:
    """Whether this process was started by a :class:`Launch` (and reports to it)."""
    return bool(os.environ.get(REPORT_ENV))


def report(kind: str, line: str, **extra) -> bool:
    """Write this process's last word for its launcher: ``kind`` (``"error"`` or ``"stopped"``),
    the ``line`` to print and ``extra`` values; returns whether there is a launcher to tell (else
    nothing is written and the caller prints the line itself)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return False
    data = json.dumps({"kind": kind, "line": line, "time": time.time(), "pid": os.getpid(), **extra})
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
    os.replace(tmp, path)
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """In a child before ``exec``: be killed when the launcher dies (Linux), whatever kills it."""
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


@dataclass
class _Member:
    label: str
    proc: subprocess.Popen
    report: Path
    server: bool

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_report(self) -> Optional[dict]:
        try:
            return json.loads(self.report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _describe(code: int) -> str:
    """How a process with exit code ``code`` (``Popen.returncode``) ended.

    Examples
    --------
    >>> _describe(-9), _describe(3)
    ('was killed by signal 9 (SIGKILL)', 'exited with status 3')
    """
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-code}{name}"


class Launch:
    """The processes of one launch; leaving the ``with`` block ends every one still running.

    Parameters
    ----------
    resume : str
        The command that resumes the run (printed when a signal stopped it).
    grace : float
        Seconds the workers get to checkpoint and exit after a signal.
    """

    def __init__(self, resume: str, grace: float = 120.0):
        self.resume, self.grace = resume, grace
        self.members: List[_Member] = []
        self.signals: List[int] = []
        self._dir = Path(tempfile.mkdtemp(prefix="dgl-emu-launch-"))
        self._previous: Dict[int, object] = {}

    # ------------------------------------------------------------------ starting and ending
    def start(self, label: str, argv: Sequence[str], env: Dict[str, str], *, server: bool = False) -> subprocess.Popen:
        """Start ``argv`` in a session of its own, as a worker (or a ``server``) named ``label``."""
        path = self._dir / f"{len(self.members)}.json"
        proc = subprocess.Popen(list(argv), env={**env, REPORT_ENV: str(path)}, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.members.append(_Member(label, proc, path, server))
        return proc

    @property
    def workers(self) -> List[_Member]:
        return [m for m in self.members if not m.server]

    @property
    def servers(self) -> List[_Member]:
        return [m for m in self.members if m.server]

    @staticmethod
    def _send(members: Sequence[_Member], sig: int) -> None:
        for m in members:
            if m.alive():
                try:
                    os.killpg(m.proc.pid, sig)  # the process and everything in its group
                except (ProcessLookupError, PermissionError):
                    pass

    def end(self, members: Optional[Sequence[_Member]] = None, sig: int = signal.SIGKILL,
            timeout: float = 10.0) -> None:
        """Send ``sig`` to the groups of ``members`` (default: all), wait at most ``timeout``
        seconds for them, then kill what is left; their groups are killed in any case."""
        members = list(self.members if members is None else members)
        self._send(members, sig)
        deadline = time.monotonic() + timeout
        for m in members:
            try:
                m.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._send(members, signal.SIGKILL)
        for m in members:
            try:
                os.killpg(m.proc.pid, signal.SIGKILL)  # leftovers of an exited leader's group
            except (ProcessLookupError, PermissionError):
                pass
            try:
                m.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
                pass

    def __enter__(self) -> "Launch":
        def caught(signum, frame):
            self.signals.append(signum)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, caught)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.end(self.workers)
            self.end(self.servers, signal.SIGTERM, timeout=SERVER_GRACE)
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(self._dir, ignore_errors=True)

    # ------------------------------------------------------------------ waiting
    def wait(self, poll: float = 0.1) -> int:
        """Wait for the launch to end (see the module docstring); print its one line (on
        stderr) when it did not succeed; returns the launcher's exit status."""
        deadline = None
        while True:
            if self.signals:
                if deadline is None:  # the first signal: pass it on, give the workers time to stop
                    self._send(self.workers, self.signals[0])
                    deadline = time.monotonic() + self.grace
                if len(self.signals) > 1 or time.monotonic() > deadline or not any(m.alive() for m in self.workers):
                    return self._stopped(self.signals[0])
            else:
                codes = [(m, m.proc.poll()) for m in self.workers]
                failed = [(m, c) for m, c in codes if c not in (None, 0)]
                if failed:
                    return self._failed(failed)
                if all(c == 0 for _, c in codes):
                    end = time.monotonic() + SERVER_GRACE  # servers exit once every worker has left
                    while any(m.alive() for m in self.servers) and time.monotonic() < end:
                        time.sleep(poll)
                    return 0
                dead = [(m, m.proc.poll()) for m in self.servers if m.proc.poll() not in (None, 0)]
                if dead:
                    return self._failed(dead)
            time.sleep(poll)

    def _failed(self, failed) -> int:
        """End the launch after the ``(member, exit code)`` of ``failed``; print its one line."""
        self.end(self.workers)
        self.end(self.servers, signal.SIGTERM)
        reports = {id(m): m.read_report() for m in self.members}
        errors = sorted((r for r in reports.values() if r and r.get("kind") == "error"), key=lambda r: r.get("time", 0))
        # a process killed from outside says nothing; the others' errors (a closed connection) follow from it
        killed = [(m, c) for m, c in failed
                  if c is not None and c < 0 and (reports[id(m)] or {}).get("kind") != "error"]
        member, code = (killed or failed)[0]
        if errors and not killed:  # the first error, and its process's exit status when it has one
            line = errors[0]["line"]
            member, code = next(((m, c) for m, c in failed if m.proc.pid == errors[0].get("pid")), (member, code))
        else:
            line = (f"{member.label} (pid {member.proc.pid}) {_describe(code)}; the other processes were "
                    f"stopped; to resume from the last checkpoint, run: {self.resume}")
        print(f"Error: {line}", file=sys.stderr, flush=True)
        if code is None or code == 0:
            return 1
        return exit_status(-code) if code < 0 else code

    def _stopped(self, signum: int) -> int:
        self.end(self.workers, signal.SIGKILL, timeout=10.0)
        self.end(self.servers, signal.SIGTERM, timeout=SERVER_GRACE)
        stops = [r for r in (m.read_report() for m in self.workers)
                 if r and r.get("kind") == "stopped" and r.get("step") is not None]  # stopped in training
        stops.sort(key=lambda r: r.get("checkpoint") is None)  # the writer's, with its checkpoint, first
        if stops:
            r = stops[0]
            line = stop_line(signum, r.get("step"), r.get("checkpoint"), self.resume, r.get("restored"))
        else:
            line = (f"{_verb(signum)}: the processes were stopped; to resume from the last checkpoint, run: "
                    f"{self.resume}")
        print(line, file=sys.stderr, flush=True)
        return exit_status(signum)
