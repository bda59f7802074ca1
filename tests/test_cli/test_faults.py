"""Faults at scale, with real processes (slow; local processes on 127.0.0.1 only): ``log.jsonl`` is
on disk while a run goes on, and a ``--nproc 2`` rank killed with SIGKILL gives one ``Error:`` line
naming it and the resume command, which resumes to the uninterrupted run's result, having lost at
most the configured checkpoint interval.

Every process a test starts runs in its own session and is ended by its PID with a timeout in a
``finally`` (its group, and every descendant that was seen), even when the test fails.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import psutil
import torch

from .test_trust_processes import DATA, ROOT, Launched, _resume, _same_run, _until

ARGS = ["--model", "distmult", "--dim", "16", "--num-negatives", "8", "--batch-size", "64", "--no-progress"]


def _logged_steps(path: Path):
    if not path.exists():
        return []
    return [json.loads(x)["step"] for x in path.read_text().splitlines() if x.endswith("}") and '"loss"' in x]


def test_log_lines_are_on_disk_while_the_run_goes_on(tmp_path):
    """``--no-progress``, no validation and no checkpoint before step 100,000: ``log.jsonl`` holds
    the finished steps, in order, while the process still trains."""
    out = tmp_path / "run"
    launch = Launched(["run", *DATA, *ARGS, "--steps", "100000", "--eval-every", "100000",
                       "--checkpoint-every-seconds", "100000", "--output", out], tmp_path / "log")
    try:
        steps = _until(lambda: len(_logged_steps(out / "log.jsonl")) >= 20 and _logged_steps(out / "log.jsonl"),
                       300, "20 lines in log.jsonl")
        assert launch.proc.poll() is None, launch.log.read_text()   # still training
    finally:
        launch.close()
    assert steps == list(range(1, len(steps) + 1))
    assert not (out / "last.pt").exists()                         # no checkpoint flushed them


def _rank(launch: Launched, rank: int) -> psutil.Process:
    """The worker of ``rank`` among the launcher's children."""
    for child in launch.processes():
        try:
            if child.pid != launch.pid and child.environ().get("RANK") == str(rank):
                return child
        except psutil.Error:
            pass
    raise AssertionError(f"no rank {rank} among {launch.processes()}")


DP = [*DATA, *ARGS, "--steps", "200", "--eval-every", "50", "--nproc", "2"]


def test_a_killed_rank_is_one_error_line_and_resumes_to_the_uninterrupted_run(tmp_path):
    """SIGKILL to rank 1 (not the writer) after a few wall-time checkpoints (one due after every
    step): exit 137, one ``Error:`` line naming the rank, its signal and the resume command, no
    traceback; the checkpoint left is at most one step behind the last step rank 0 logged; the
    printed command resumes there and ends with the uninterrupted run's losses and test metrics."""
    whole = tmp_path / "whole"
    launch = Launched(["run", *DP, "--output", whole], tmp_path / "log0")
    try:
        code, text = launch.wait()
    finally:
        launch.close()
    assert code == 0, text

    out = tmp_path / "run"
    launch = Launched(["run", *DP, "--checkpoint-every-seconds", "1e-9", "--output", out], tmp_path / "log1")
    try:
        _until(lambda: len(_logged_steps(out / "log.jsonl")) >= 5 and (out / "last.pt").exists(), 300,
               "five steps and a checkpoint")
        victim = _rank(launch, 1)
        victim.send_signal(signal.SIGKILL)
        code, text = launch.wait(120)
    finally:
        launch.close()
    assert code == 128 + signal.SIGKILL and "Traceback" not in text, text
    errors = [x for x in text.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1, text
    line = errors[0]
    assert line.startswith(f"Error: rank 1 of 2 (pid {victim.pid}) was killed by signal 9 (SIGKILL); "), line
    command = line.split("to resume from the last checkpoint, run: ", 1)[1]
    assert command.startswith("dgl-emu run ") and "--nproc 2" in command and str(out) in command, line

    step = torch.load(out / "last.pt", weights_only=True)["step"]
    logged = _logged_steps(out / "log.jsonl")
    assert 5 <= step < 200 and step >= logged[-1] - 1, (step, logged[-5:])   # lost at most the step in flight
    _resume(shlex.split(command)[1:], tmp_path / "log2", out, step, 200)   # "run ARGS" of "dgl-emu run ARGS"
    metrics = _same_run(out, whole)
    assert metrics["out"]["validations"] == metrics["whole"]["validations"]


# a worker that waits for its peer to go (the file ``sys.argv[1]`` to disappear), then reports
# what a gloo rank reports when its peer is gone, and exits 1
PEER = ("import os, sys, time\n"
        "from dgl_emu.launching import report\n"
        "while os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
        "time.sleep(0.5)\n"
        "report('error', 'RuntimeError: Connection reset by peer')\n"
        "sys.exit(1)\n")


def _launch_two(tmp_path, capsys, kill_second: bool):
    """Two workers: the first reports an error once the file ``alive`` is gone; the second is
    killed (and removes the file first), or reports an error of its own and exits 3."""
    from dgl_emu.launching import Launch

    alive = tmp_path / "alive"
    alive.write_text("")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    second = ("import sys, time\n" "time.sleep(600)\n" if kill_second else
              "import os, sys\nfrom dgl_emu.launching import report\n"
              "report('error', 'train.txt:3: expected 3 fields')\nos.remove(sys.argv[1])\nsys.exit(3)\n")
    with Launch("dgl-emu run --nproc 2 --output r") as launch:
        launch.start("rank 0 of 2", [sys.executable, "-c", PEER, str(alive)], env)
        victim = launch.start("rank 1 of 2", [sys.executable, "-c", second, str(alive)], env)
        if kill_second:
            time.sleep(0.5)
            alive.unlink()
            os.kill(victim.pid, signal.SIGKILL)
        code = launch.wait()
    return code, capsys.readouterr().err, victim.pid


def test_the_launcher_blames_a_killed_worker_not_the_errors_that_follow(tmp_path, capsys):
    code, err, pid = _launch_two(tmp_path, capsys, kill_second=True)
    assert code == 137, err
    assert err.splitlines() == [f"Error: rank 1 of 2 (pid {pid}) was killed by signal 9 (SIGKILL); the other "
                                f"processes were stopped; to resume from the last checkpoint, run: dgl-emu run "
                                f"--nproc 2 --output r"], err
    code, err, _ = _launch_two(tmp_path, capsys, kill_second=False)   # a worker's own error: its line
    assert (code, err.splitlines()) == (3, ["Error: train.txt:3: expected 3 fields"]), err
