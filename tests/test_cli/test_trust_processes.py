"""Trust boundaries of launches and concurrent runs: the rows of issue 31 that start processes
(slow, distributed; local processes on 127.0.0.1 only).

* every listening socket of a ``--nproc`` and of a sharded launch is bound to 127.0.0.1;
* SIGTERM and SIGINT to a launcher end every process it started, with a checkpoint and one line
  that says how to resume, and exit 143 / 130; the run resumes to the uninterrupted result;
* a worker that fails gives one ``Error:`` line and no traceback;
* a second run on a directory in use fails at once, naming the holder, and the first is unharmed.

Every process a test starts runs in its own session and is ended by its PID with a timeout in a
``finally`` (its group, and every descendant that was seen), even when the test fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ["--dataset", "synthetic"]
ARGS = ["--model", "distmult", "--dim", "16", "--num-negatives", "8", "--batch-size", "64", "--no-progress"]
LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Launched:
    """``python -m dgl_emu ARGS`` in a session of its own, its output in ``log``."""

    def __init__(self, args, log: Path, **env):
        environment = dict(os.environ, MASTER_ADDR=LOOPBACK, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1",
                           PYTHONWARNINGS="ignore", MASTER_PORT=str(_free_port()))
        environment.pop("DGL_EMU_TEST_SIGNAL", None)
        environment.update(env)
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "dgl_emu", *map(str, args)], cwd=ROOT,
                                         env=environment, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.seen = {}  # pid -> process of the launch seen alive

    @property
    def pid(self) -> int:
        return self.proc.pid

    def processes(self):
        """The launcher and its descendants alive now (remembered for :meth:`close`)."""
        try:
            me = psutil.Process(self.pid)
            found = [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for p in found:
            self.seen.setdefault(p.pid, p)
        return found

    def listening(self) -> set:
        """``(pid, ip, port)`` of every listening TCP socket, and every unconnected UDP socket,
        of the launch's processes alive now."""
        out = set()
        for p in self.processes():
            try:
                for c in p.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr):
                        out.add((p.pid, c.laddr.ip, c.laddr.port))
            except psutil.Error:
                pass
        return out

    def wait(self, timeout: float = 300):
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.log.read_text()

    def close(self) -> None:
        """End the session's group and every process of the launch that was seen, by PID."""
        for pid in [self.pid, *self.seen]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in self.seen.values():
            try:
                if p.is_running():  # the same process (psutil compares its start time)
                    p.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def _until(condition, timeout: float, what: str, poll: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def _sockets_of(launch: Launched, timeout: float = 300) -> set:
    """Every listening socket the launch opened while it ran (sampled until it ended)."""
    seen = set()
    end = time.monotonic() + timeout
    while launch.proc.poll() is None and time.monotonic() < end:
        seen |= launch.listening()
        time.sleep(0.1)
    return seen


def _losses(run_dir: Path):
    return [json.loads(x)["loss"] for x in (run_dir / "log.jsonl").read_text().splitlines() if '"loss"' in x]


def _resume(args, log: Path, out: Path, step: int, steps: int) -> None:
    """Run ``dgl-emu ARGS`` to its end: it exits 0 having resumed ``out`` at ``step`` of ``steps``."""
    resume = Launched(args, log)
    try:
        code, text = resume.wait()
    finally:
        resume.close()
    assert code == 0 and f"resumed {out} at step {step} of {steps}" in text, text


def _same_run(out: Path, whole: Path) -> dict:
    """``out`` ended as the uninterrupted ``whole``: the same losses and test metrics; both metrics."""
    assert _losses(out) == _losses(whole)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (out, whole))
    assert a["test"] == b["test"]
    return {"out": a, "whole": b}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """One partition of the generated KG."""
    out = tmp_path_factory.mktemp("parts")
    launch = Launched(["partition", *DATA, "--num-parts", "1", "--method", "random", "--output", out / "p1"],
                      out / "partition.log")
    try:
        code, text = launch.wait()
    finally:
        launch.close()
    assert code == 0, text
    return out / "p1" / "synthetic.json"


def _ip_config(directory: Path) -> Path:
    ip = directory / "ip_config.txt"
    ip.write_text(f"{LOOPBACK} {_free_port()}\n")
    return ip


DP = [*DATA, *ARGS, "--steps", "200", "--eval-every", "50", "--nproc", "2"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted ``--nproc 2`` run of :data:`DP`."""
    out = tmp_path_factory.mktemp("whole") / "run"
    launch = Launched(["run", *DP, "--output", out], out.parent / "log")
    try:
        code, text = launch.wait()
    finally:
        launch.close()
    assert code == 0, text
    return out


# --------------------------------------------------------------------------- sockets
def test_every_socket_of_a_data_parallel_launch_is_bound_to_loopback(tmp_path):
    launch = Launched(["run", *DATA, *ARGS, "--steps", "300", "--eval-every", "100", "--nproc", "2",
                       "--output", tmp_path / "run"], tmp_path / "log")
    try:
        sockets = _sockets_of(launch)
        code, text = launch.wait()
    finally:
        launch.close()
    assert code == 0, text
    owners = {pid for pid, _, _ in sockets}
    assert launch.pid in owners, sockets            # the rendezvous store, in the launcher
    assert len(owners) >= 3, sockets                # and both workers' gloo pairs
    assert {ip for _, ip, _ in sockets} == {LOOPBACK}, sockets


def test_every_socket_of_a_sharded_launch_is_bound_to_loopback(parts, tmp_path):
    ip = _ip_config(tmp_path)
    server_port = int(ip.read_text().split()[1])
    master_port = _free_port()
    launch = Launched(["run", *DATA, *ARGS, "--steps", "60", "--eval-every", "30", "--part-config", parts,
                       "--ip-config", ip, "--num-trainers", "2", "--output", tmp_path / "run"], tmp_path / "log",
                      MASTER_PORT=str(master_port))
    try:
        sockets = _sockets_of(launch)
        code, text = launch.wait()
    finally:
        launch.close()
    assert code == 0, text
    assert (launch.pid, LOOPBACK, master_port) in sockets, sockets           # the store, in the launcher
    assert any(port == server_port for _, _, port in sockets), sockets        # DGL's server
    assert len({pid for pid, _, _ in sockets}) >= 4, sockets                  # launcher, server, 2 trainers
    assert {ip for _, ip, _ in sockets} == {LOOPBACK}, sockets


# --------------------------------------------------------------------------- signals to launchers
def _stopped_line(text: str, signum: int) -> str:
    assert "Traceback" not in text and "Error:" not in text, text
    verb = "Terminated" if signum == signal.SIGTERM else "Interrupted"
    lines = [x for x in text.splitlines() if x.startswith(verb)]
    assert len(lines) == 1, text
    return lines[0]


def _signal_after_first_checkpoint(launch: Launched, out: Path, signum: int):
    """Send ``signum`` to the launcher alone once the run has a checkpoint; returns the processes
    of the launch that were alive then."""
    _until(lambda: (out / "last.pt").exists() and launch.proc.poll() is None, 300, "the first checkpoint")
    alive = launch.processes()
    assert len(alive) >= 3, alive                  # the launcher and its processes
    os.kill(launch.pid, signum)
    return alive


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_data_parallel_launcher_stops_every_worker_resumably(tmp_path, whole, name):
    signum = getattr(signal, name)
    out = tmp_path / "run"
    launch = Launched(["run", *DP, "--output", out], tmp_path / "log1")
    try:
        alive = _signal_after_first_checkpoint(launch, out, signum)
        code, text = launch.wait(180)
        gone = _until(lambda: not any(p.is_running() for p in alive), 30, "every process to end")
    finally:
        launch.close()
    assert code == 128 + signum and gone, text
    line = _stopped_line(text, signum)
    step = int(re.search(r"at step (\d+):", line).group(1))
    command = line.split("to resume it, run: ", 1)[1]
    assert command.startswith("dgl-emu run ") and "--nproc 2" in command and str(out) in command, line
    assert torch.load(out / "last.pt", weights_only=True)["step"] == step
    _resume(["run", *DP, "--output", out], tmp_path / "log2", out, step, 200)
    _same_run(out, whole)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_sharded_launcher_ends_its_servers_and_trainers(parts, tmp_path, name):
    signum = getattr(signal, name)
    out = tmp_path / "run"
    args = ["run", *DATA, *ARGS, "--steps", "400", "--eval-every", "50", "--part-config", parts,
            "--ip-config", _ip_config(tmp_path), "--num-trainers", "2", "--output", out]
    launch = Launched(args, tmp_path / "log1")
    try:
        alive = _signal_after_first_checkpoint(launch, out, signum)
        assert any("dgl_emu.sharded.server" in " ".join(p.cmdline()) for p in alive)
        code, text = launch.wait(180)
        gone = _until(lambda: not any(p.is_running() for p in alive), 60, "every process to end")
    finally:
        launch.close()
    assert code == 128 + signum and gone, text
    line = _stopped_line(text, signum)
    step = int(re.search(r"at step (\d+):", line).group(1))
    assert "--part-config" in line and torch.load(out / "last.pt", weights_only=True)["step"] == step
    _resume(args, tmp_path / "log2", out, step, 400)


# --------------------------------------------------------------------------- failing workers
def test_a_bad_data_file_under_two_workers_is_one_error_line(tmp_path):
    (tmp_path / "train.txt").write_text("a\tr\tb\nb\tr\tc\nc\tr\n")
    (tmp_path / "test.txt").write_text("a\tr\tc\n")
    launch = Launched(["run", "--train", tmp_path / "train.txt", "--test", tmp_path / "test.txt", *ARGS,
                       "--steps", "10", "--nproc", "2", "--output", tmp_path / "run"], tmp_path / "log")
    try:
        code, text = launch.wait(180)
    finally:
        launch.close()
    errors = [x for x in text.splitlines() if x.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "train.txt:3" in errors[0], text
    assert "Traceback" not in text and "torch.distributed" not in text and "ChildFailedError" not in text, text
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- one run at a time
def test_a_second_run_on_the_same_directory_fails_at_once_and_the_first_is_unharmed(tmp_path):
    out = tmp_path / "run"
    first = Launched(["run", *DATA, *ARGS, "--steps", "3000", "--eval-every", "1000", "--output", out],
                     tmp_path / "log1")
    try:
        _until(lambda: (out / ".dgl-emu.lock").exists(), 120, "the first run's lock")
        # paused, not finished, while the second one tries: on a quiet machine 3000 small steps end
        # sooner than a second interpreter imports torch and DGL
        os.kill(first.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            second = Launched(["run", *DATA, *ARGS, "--steps", "50", "--seed", "7", "--dim", "8", "--output", out],
                              tmp_path / "log2")
            try:
                code, text = second.wait(120)
            finally:
                second.close()
            took = time.monotonic() - started
            assert first.proc.poll() is None, "the first run should still be training"
        finally:
            with contextlib.suppress(ProcessLookupError):   # a run already gone keeps the first error
                os.kill(first.pid, signal.SIGCONT)
        errors = [x for x in text.splitlines() if x.startswith("Error:")]
        assert code == 2 and len(errors) == 1 and "Traceback" not in text, text
        assert str(out) in errors[0] and f"in use by process {first.pid}" in errors[0], errors
        assert took < 60, took
        code, text = first.wait()
    finally:
        first.close()
    assert code == 0, text
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps == list(range(1, 3001))
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 0
    assert not (out / ".dgl-emu.lock").exists()
