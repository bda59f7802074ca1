"""``python -m benchmarks grid``: expand a grid YAML into runs, train the unfinished ones, collect results.

A grid file is a YAML mapping::

    name: p1-shallow                  # results go to benchmarks/results/<name>/
    base: {steps: 2000, ...}          # options of every run: flat names or dotted paths
    axes: {model: [transe, distmult], emu: [false, true], seed: [0, 1, 2]}   # Cartesian product
    per_value: {model: {transe: {lr: 0.05}}}   # overrides for runs whose KEY has VALUE
    exclude: [{model: transe, emu: true}]       # partial mappings; matching runs are dropped

The product is taken in the order of ``axes`` (the last axis varies fastest). Every run is
validated before anything trains; a bad grid stops with a message naming the file and the field.
Each run gets a deterministic directory ``benchmarks/work/<name>/<run id>`` (git-ignored; the
run id is :func:`dgl_emu.naming.run_name` of the run, e.g. ``umls-distmult-uniform-emu-d100-s0``).
Finished runs (a ``metrics.json`` in the run directory, or a results JSON) are skipped,
interrupted runs resume from their ``last.pt``, the rest train one after the other in this
process. After each finished run its ``metrics.json`` is copied (atomically) to
``benchmarks/results/<name>/<run id>.json``. A failing run leaves ``error.txt`` in its directory;
the others go on and the exit status is 1. Each run is locked while it trains, so several runners
can share one grid: start the same command once per core with ``--threads 1`` and each takes the
next run that nobody holds.

Relative paths in a grid (``data_dir``, ``train``, ``valid``, ``test``) are relative to the
repository root, so the command works from any directory. Exit status: 0 all runs finished,
1 some run failed, 2 invalid grid (nothing trained), 130 interrupted (re-run to resume).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import click
import yaml

from ..gridlib.runner import train_runs
from ..gridlib.spec import GridError, Run, expand, load_grid
from ..gridlib.state import check_data, check_existing, finished_metrics, resume_step

__all__ = ["grid"]


def _parse_set(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise GridError(f"--set {item}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _list(runs: Sequence[Run], finished: set, grid_path: Path) -> None:
    """The ``--dry-run`` listing: each run's state."""
    try:
        check_data([r for r in runs if r.run_id not in finished], grid_path)
    except GridError as e:
        print(f"warning: {e}", file=sys.stderr)
    n = len(runs)
    width = len(str(n))
    for i, run in enumerate(runs, 1):
        prefix = f"[{i:>{width}}/{n}] {run.run_id}:"
        if run.run_id in finished:
            print(f"{prefix} finished")
        else:
            step = resume_step(run)
            state = f"would resume at step {step}" if step is not None else "would train"
            cfg = run.config
            print(f"{prefix} {state} ({cfg.training.steps} steps, optimizer {cfg.optimizer.name} "
                  f"lr {cfg.get('optimizer.lr')})")


def run_grid(grid_file: Path, *, dry_run: bool = False, only: Sequence[str] = (), max_runs: Optional[int] = None,
             results_dir: Optional[Path] = None, work_dir: Optional[Path] = None, overrides: Sequence[str] = (),
             threads: Optional[int] = None) -> int:
    """Check, list or train a grid (the options of ``grid``); returns the exit status."""
    try:
        grid = load_grid(grid_file)
        runs = expand(grid, work_dir=work_dir, results_dir=results_dir, overrides=_parse_set(overrides))
        if only:
            runs = [r for r in runs if any(s in r.run_id for s in only)]
        check_existing(runs, grid.path)
        finished = {r.run_id for r in runs if finished_metrics(r) is not None}
        if not dry_run:
            check_data([r for r in runs if r.run_id not in finished], grid.path)
    except GridError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(runs)
    print(f"grid {grid.name} ({grid.path}): {n} runs, {len(finished)} finished, "
          f"{n - len(finished)} to train" + (f" (at most {max_runs} now)" if max_runs is not None else ""),
          flush=True)
    if dry_run:
        _list(runs, finished, grid.path)
        return 0
    if not runs:
        print("no run matches (check --only)", file=sys.stderr)
        return 0
    return train_runs(grid, runs, finished, threads=threads, max_runs=max_runs)


@click.command("grid", short_help="Train a grid of runs; re-run to resume.", epilog="Re-run the same command to resume: finished runs are skipped, interrupted ones "
               "resume from last.pt. In the background: nohup python -m benchmarks grid GRID > LOG 2>&1 &")
@click.argument("grid_file", metavar="GRID", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the runs and their state; train nothing.")
@click.option("--only", multiple=True, metavar="SUBSTRING",
              help="Only runs whose id contains SUBSTRING (repeat: any of them).")
@click.option("--max-runs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Train (or resume) at most N runs in this invocation; finished ones do not count.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where the per-run JSONs go (default benchmarks/results/<grid name>).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where the run directories go (default benchmarks/work/<grid name>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override an option of every run, e.g. --set device=cuda (YAML value).")
@click.option("--threads", type=int, default=None, metavar="N", help="Torch CPU threads.")
def grid(grid_file, dry_run, only, max_runs, results_dir, work_dir, overrides, threads):
    """Run a benchmark grid: expand GRID (e.g. benchmarks/grids/p1-shallow.yaml) into runs, train the
    unfinished ones, collect their results in benchmarks/results/<grid name>/.

    Finished runs are skipped and interrupted ones resume; each run is locked while it trains,
    so one runner per core (--threads 1) can share a grid. Exit status: 0 all runs finished,
    1 some run failed, 2 invalid grid (nothing trained), 130 interrupted (re-run to resume).
    """
    click.get_current_context().exit(run_grid(grid_file, dry_run=dry_run, only=only, max_runs=max_runs,
                                              results_dir=results_dir, work_dir=work_dir, overrides=overrides,
                                              threads=threads))
