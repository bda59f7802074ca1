"""Data-parallel training on torch.distributed with local processes (127.0.0.1, gloo over lo).

Every process a test starts is ended by its PID, with a timeout, even when the test fails.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dgl_emu.data_parallel import DataParallelReplicas

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--model", "distmult", "--dim", "16", "--num-negatives", "8", "--batch-size", "64", "--steps", "30",
        "--eval-every", "10", "--no-progress"]


def _run(args, *, signal_at=None, timeout=240):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME="lo", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1")
    env.pop("DGL_EMU_TEST_SIGNAL", None)
    if signal_at:
        env["DGL_EMU_TEST_SIGNAL"] = signal_at
    proc = subprocess.Popen([sys.executable, "-m", "dgl_emu", "run", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: torchrun and its workers
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        else:
            try:  # leftovers of the group (workers of a failed launcher), if any
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return proc.returncode, out


def _weights(run_dir):
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["model"]


def _losses(run_dir):
    return [json.loads(x)["loss"] for x in (run_dir / "log.jsonl").read_text().splitlines() if '"loss"' in x]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    code, text = _run([*ARGS, "--output", out])
    assert code == 0, text
    return out


@pytest.mark.parametrize("sparse", [False, True])
def test_two_processes_equal_one_process(tmp_path, single, sparse):
    """Each rank takes half of every batch of 64; the run's numbers are those of one process."""
    extra = ["--set", "encoder.sparse=true"] if sparse else []
    out = tmp_path / "two"
    code, text = _run([*ARGS, *extra, "--nproc", "2", "--output", out])
    assert code == 0, text
    assert text.count("run directory:") == 1   # rank 0 reports, rank 1 stays quiet
    ref = single
    if sparse:  # the one-process reference with sparse tables
        ref = tmp_path / "one-sparse"
        code, text = _run([*ARGS, *extra, "--output", ref])
        assert code == 0, text
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert a["test"]["both"]["realistic"]["mrr"] == pytest.approx(b["test"]["both"]["realistic"]["mrr"], abs=1e-4)
    assert _losses(ref) == pytest.approx(_losses(out), rel=1e-5)
    wa, wb = _weights(ref), _weights(out)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("regime", ["1vsall", "kvsall"])
def test_all_entity_regimes_two_processes_equal_one(tmp_path, regime):
    """1vsAll and KvsAll (reciprocal relations) split each batch of queries between the ranks too."""
    args = [a for a in ARGS if a not in ("--num-negatives", "8")] + ["--regime", regime, "--reciprocal", "--no-emu"]
    runs = {}
    for nproc in (1, 2):
        runs[nproc] = tmp_path / str(nproc)
        code, text = _run([*args, "--nproc", nproc, "--output", runs[nproc]])
        assert code == 0, text
    a, b = (json.loads((d / "metrics.json").read_text()) for d in runs.values())
    assert a["test"]["both"]["realistic"]["mrr"] == pytest.approx(b["test"]["both"]["realistic"]["mrr"], abs=1e-4)
    assert _losses(runs[1]) == pytest.approx(_losses(runs[2]), rel=1e-5)
    wa, wb = _weights(runs[1]), _weights(runs[2])
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5, msg=name)


def test_killed_two_process_run_resumes_to_the_uninterrupted_one(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    code, text = _run([*ARGS, "--nproc", "2", "--output", whole])
    assert code == 0, text
    code, text = _run([*ARGS, "--nproc", "2", "--output", split], signal_at="SIGKILL@13")  # rank 0, the writer
    assert code == 128 + signal.SIGKILL and not (split / "metrics.json").exists(), text
    errors = [x for x in text.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in text, text
    assert errors[0].startswith("Error: rank 0 of 2 (pid ") and "was killed by signal 9 (SIGKILL)" in errors[0], text
    assert errors[0].endswith(f"to resume from the last checkpoint, run: dgl-emu run {' '.join(ARGS)} --nproc 2 "
                              f"--output {split}"), text
    assert torch.load(split / "last.pt", weights_only=False)["step"] == 10
    code, text = _run([*ARGS, "--nproc", "2", "--output", split])
    assert code == 0, text
    assert f"resumed {split} at step 10 of 30" in text
    assert _losses(whole) == _losses(split)
    for name, value in _weights(whole).items():
        assert torch.equal(value, _weights(split)[name]), name


def test_shards_cover_every_row_once():
    for world in (1, 2, 3, 7):
        for n in (0, 1, 5, 64, 1001):
            parts = [DataParallelReplicas(r, world).rows(n) for r in range(world)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))
