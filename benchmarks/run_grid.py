#!/usr/bin/env python
"""Run a benchmark grid: expand a grid YAML into runs, train the unfinished ones, collect results.

    python benchmarks/run_grid.py benchmarks/grids/p1-shallow.yaml [--dry-run] [--only SUBSTRING]
                                  [--max-runs N] [--results-dir DIR] [--work-dir DIR]
                                  [--set KEY=VALUE ...] [--threads N]

A grid file is a YAML mapping::

    name: p1-shallow                  # results go to benchmarks/results/<name>/
    base: {steps: 2000, ...}          # options of every run: flat names or dotted paths
    axes: {model: [transe, distmult], emu: [false, true], seed: [0, 1, 2]}   # Cartesian product
    per_value: {model: {transe: {lr: 0.05}}}   # overrides for runs whose KEY has VALUE
    exclude: [{model: transe, emu: true}]       # partial mappings; matching runs are dropped

The product is taken in the order of ``axes`` (the last axis varies fastest). Every run is
validated before anything trains; a bad grid stops with a message naming the file and the field.
Each run gets a deterministic directory ``benchmarks/work/<name>/<run id>`` (git-ignored; the
run id is built from the run's values, e.g. ``umls-distmult-uniform-emu-d100-s0``). Finished runs
(a ``metrics.json`` in the run directory, or a results JSON) are skipped, interrupted runs resume
from their ``last.pt``, the rest train one after the other in this process. After each finished
run its ``metrics.json`` is copied (atomically) to ``benchmarks/results/<name>/<run id>.json``.
A failing run leaves ``error.txt`` in its directory; the others go on and the exit status is 1.
Each run is locked while it trains, so several runners can share one grid: start the same
command once per core with ``--threads 1`` and each takes the next run that nobody holds.

Relative paths in a grid (``data_dir``, ``train``, ``valid``, ``test``) are relative to the
repository root, so the command works from any directory. Exit status: 0 all runs finished,
1 some run failed, 2 invalid grid (nothing trained), 130 interrupted (re-run to resume).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the gridlib package beside this script

from gridlib.spec import Grid, GridError, Run, expand, load_grid, run_id  # noqa: E402
from gridlib.state import (Busy, check_data, check_existing, copy_result, finished_metrics,  # noqa: E402
                           fmt_duration, headline, lock, resume_step)
from dgl_emu.pipeline import RunInterrupted  # noqa: E402
from dgl_emu.utils import atomic_write_text  # noqa: E402

__all__ = ["GridError", "Grid", "Run", "load_grid", "expand", "run_id", "main", "lock", "Busy"]


def _parse_set(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise GridError(f"--set {item}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_grid.py", description=__doc__.split("\n\n")[0],
        epilog="Re-run the same command to resume: finished runs are skipped, interrupted ones resume "
               "from last.pt. In the background: nohup python benchmarks/run_grid.py GRID > LOG 2>&1 &")
    p.add_argument("grid", type=Path, help="grid YAML, e.g. benchmarks/grids/p1-shallow.yaml")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state; train nothing")
    p.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                   help="only runs whose id contains SUBSTRING (repeat: any of them)")
    p.add_argument("--max-runs", type=int, default=None, metavar="N",
                   help="train (or resume) at most N runs in this invocation; finished ones do not count")
    p.add_argument("--results-dir", type=Path, default=None, metavar="DIR",
                   help="where the per-run JSONs go (default benchmarks/results/<grid name>)")
    p.add_argument("--work-dir", type=Path, default=None, metavar="DIR",
                   help="where the run directories go (default benchmarks/work/<grid name>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override an option of every run, e.g. --set device=cuda (YAML value)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.max_runs is not None and args.max_runs < 0:
        print("run_grid.py: --max-runs must be >= 0", file=sys.stderr)
        return 2
    try:
        grid = load_grid(args.grid)
        runs = expand(grid, work_dir=args.work_dir, results_dir=args.results_dir,
                      overrides=_parse_set(args.overrides))
        if args.only:
            runs = [r for r in runs if any(s in r.run_id for s in args.only)]
        check_existing(runs, grid.path)
        finished = {r.run_id for r in runs if finished_metrics(r) is not None}
        if not args.dry_run:
            check_data([r for r in runs if r.run_id not in finished], grid.path)
    except GridError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(runs)
    width = len(str(n))
    print(f"grid {grid.name} ({grid.path}): {n} runs, {len(finished)} finished, "
          f"{n - len(finished)} to train" + (f" (at most {args.max_runs} now)" if args.max_runs is not None else ""),
          flush=True)
    if args.dry_run:
        try:
            check_data([r for r in runs if r.run_id not in finished], grid.path)
        except GridError as e:
            print(f"warning: {e}", file=sys.stderr)
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
        return 0
    if not runs:
        print("no run matches (check --only)", file=sys.stderr)
        return 0
    return _train(grid, runs, finished, args)


def _train(grid: Grid, runs: Sequence[Run], finished: set, args, hint: Optional[str] = None) -> int:
    """Train the unfinished runs one after the other; returns the exit status (``hint``: the
    closing line, default the aggregate command)."""
    n = len(runs)
    width = len(str(n))
    results_dir = runs[0].result_path.parent
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from dgl_emu.pipeline import run as run_pipeline

    pending = [r.run_id for r in runs if r.run_id not in finished]
    budget = len(pending) if args.max_runs is None else min(args.max_runs, len(pending))
    durations: List[float] = []
    failed: List[str] = []
    skipped = finished_elsewhere = 0
    busy: List[str] = []
    started = time.perf_counter()
    for i, run in enumerate(runs, 1):
        prefix = f"[{i:>{width}}/{n}] {run.run_id}: "
        if run.run_id in finished:
            if run.metrics_path.exists() and not run.result_path.exists():
                copy_result(run)
            print(prefix + "skipped (finished)", flush=True)
            skipped += 1
            continue
        if len(durations) + len(failed) >= budget:
            continue
        try:
            handle = lock(run.run_dir)
        except Busy as e:
            print(prefix + f"skipped (another runner, pid {e.pid}, is training it)", flush=True)
            busy.append(run.run_id)
            continue
        try:
            if finished_metrics(run) is not None:  # finished by another runner since the scan
                if not run.result_path.exists():
                    copy_result(run)
                print(prefix + "skipped (finished by another runner)", flush=True)
                skipped += 1
                finished_elsewhere += 1
                continue
            status = _train_one(run, prefix, grid, run_pipeline, durations, failed, budget)
        finally:
            handle.close()
        if status is not None:
            return status
    total = time.perf_counter() - started
    done = len(durations)
    not_started = len(pending) - done - len(failed) - len(busy) - finished_elsewhere
    print(f"grid {grid.name}: {done} done, {skipped} skipped, {len(failed)} failed"
          + (f", {len(busy)} being trained by another runner" if busy else "")
          + (f", {not_started} not started (--max-runs)" if not_started > 0 else "")
          + f" in {fmt_duration(total)}; results in {results_dir}", flush=True)
    if failed:
        print("failed runs: " + ", ".join(failed), file=sys.stderr)
        return 1
    print(hint or f"aggregate with: python benchmarks/aggregate.py {results_dir}")
    return 0


def _train_one(run: Run, prefix: str, grid: Grid, run_pipeline, durations: List[float],
               failed: List[str], budget: int) -> Optional[int]:
    """Train (or resume) one run and print its line; returns an exit status only to stop the grid.

    A finished run's duration goes to ``durations``; a failing run is recorded in ``failed``
    (with ``error.txt`` in its directory) and the grid goes on.
    """
    step = resume_step(run)
    print(prefix + (f"resumed at step {step}, " if step is not None else ""), end="", flush=True)
    t0 = time.perf_counter()
    try:
        result = run_pipeline(run.config, resume=True)
    except (KeyboardInterrupt, RunInterrupted):
        print(f"interrupted after {fmt_duration(time.perf_counter() - t0)}", flush=True)
        print(f"interrupted: re-run the same command to resume ({run.run_dir}/last.pt is kept)",
              file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # record it, go on with the others
        elapsed = time.perf_counter() - t0
        run.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.run_dir / "error.txt",
                          f"run {run.run_id} of {grid.path} failed after {elapsed:.1f}s\n\n"
                          + traceback.format_exc())
        failed.append(run.run_id)
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"FAILED after {fmt_duration(elapsed)} ({type(e).__name__}: {msg}); "
              f"see {run.run_dir / 'error.txt'}", flush=True)
        return None
    elapsed = time.perf_counter() - t0
    durations.append(elapsed)
    (run.run_dir / "error.txt").unlink(missing_ok=True)
    copy_result(run)
    left = budget - len(durations) - len(failed)
    eta = ""
    if left > 0:
        eta = f" | ETA {fmt_duration(sum(durations) / len(durations) * left)} for {left} more"
    print(f"done in {fmt_duration(elapsed)}, {headline(result.metrics)}{eta}", flush=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
