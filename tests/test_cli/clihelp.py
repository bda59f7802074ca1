"""Helpers of the CLI and pipeline tests."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from click.testing import CliRunner

from dgl_emu.cli import main

#: ``../shared/datasets`` next to the repository (offline copies of the benchmarks)
SHARED_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"

#: tiny overrides: the generated KG (384 entities) trains and evaluates in about a second
TINY = ["--steps", "40", "--dim", "8", "--negatives", "8", "--batch-size", "64", "--eval-every", "20",
        "--no-progress"]


@contextlib.contextmanager
def one_thread():
    """One intra-op thread (tiny tensors: OpenMP hand-offs on a busy machine cost far more than the maths)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def invoke(*args, catch_exceptions: bool = False):
    """``dgl-emu ARGS`` through click's test runner on one thread."""
    with one_thread():
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=catch_exceptions)


def check_error(result, code: int, *needles: str) -> str:
    """Exit status, a single ``Error:`` line holding every needle, and no traceback; the output."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out, out
    if code:
        errors = [line for line in out.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, out
        for needle in needles:
            assert needle in errors[0], (needle, errors[0])
    return out
