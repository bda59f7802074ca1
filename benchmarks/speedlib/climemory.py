"""``python -m benchmarks speed cli-memory``: the peak memory of a whole ``dgl-emu run`` on a
generated graph (data, set-up, training with shared negatives, checkpoints, final evaluation)
against the peak of ``speed scale``'s training step on the same graph, each in its own process.

The child form, ``python -m benchmarks.speedlib.climemory -- ARGS``, runs ``ARGS`` (a Python
command line) as its only child and prints ``{"peak_rss_gb": ...}``: the child's peak resident
memory (``ru_maxrss`` of the waited-for children).
"""
from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

import click

from ..children import run_owned
from .command import REPO, _subprocess_json
from .report import emit

__all__ = ["cli_memory"]

#: the issue's target: the CLI run's peak over the training step's
TARGET_RATIO = 1.3


def _peak_of(args) -> dict:
    """Run ``python ARGS`` and return its peak RSS (GB) and the last line of its output."""
    proc = run_owned([sys.executable, *args], timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20  # KiB -> GB (GiB)
    lines = proc.stdout.strip().splitlines()
    return {"peak_rss_gb": round(peak, 3), "last_line": lines[-1] if lines else ""}


@click.command("cli-memory")
@click.option("--entities", type=click.IntRange(min=1000), default=5_000_000, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=6, show_default=True,
              help="Training steps of the CLI run (validated at its last).")
@click.option("--save/--no-save", default=True)
def cli_memory(entities, steps, save):
    """Peak RSS of 'dgl-emu run --dataset generated --set data.entities=N' (DistMult d=100, B=1000,
    K=256 shared by chunks of 256, Adagrad, no EMU, sampled evaluation with 100 negatives) and of
    'speed scale's training step on the same graph (sparse, shared, 3 steps); their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        run = ["-m", "dgl_emu", "run", "--dataset", "generated", "--set", f"data.entities={entities}",
               "--model", "distmult", "--dim", "100", "--chunk-size", "256", "--batch-size", "1000",
               "--num-negatives", "256", "--no-emu", "--optimizer", "adagrad", "--lr", "0.1",
               "--steps", str(steps), "--eval-every", str(steps), "--evaluator", "sampled",
               "--set", "evaluator.num_negatives=100", "--no-data-cache", "--no-progress",
               "--output", str(Path(tmp) / "run")]
        cli = _subprocess_json(["-m", "benchmarks.speedlib.climemory", "--", *run], cwd=REPO)
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    step = _subprocess_json(["-m", "benchmarks.speedlib.climemory", "--", "-m", "benchmarks.speedlib.scale",
                             "step", str(entities), "shared", "plain", "3"], cwd=REPO)
    ratio = cli["peak_rss_gb"] / step["peak_rss_gb"]
    out = {"entities": entities, "cli_steps": steps, "cli_command": "dgl-emu " + " ".join(run[2:-2]),
           "cli_peak_rss_gb": cli["peak_rss_gb"], "cli_test_mrr": metrics["test"]["both"]["realistic"]["mrr"],
           "scale_step_peak_rss_gb": step["peak_rss_gb"], "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO}
    click.echo(f"dgl-emu run peak {cli['peak_rss_gb']:.2f} GB, speed scale step peak {step['peak_rss_gb']:.2f} GB: "
               f"{ratio:.2f}x (target <= {TARGET_RATIO})", err=True)
    emit("cli-memory" if entities == 5_000_000 else f"cli-memory-{entities}", out, save)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "--":
        raise SystemExit("usage: python -m benchmarks.speedlib.climemory -- ARGS")
    print(json.dumps(_peak_of(sys.argv[2:])))
