"""Training a grid's runs one after the other: per-run locks, skip and resume, ``error.txt``, an ETA.

The loop of ``python -m benchmarks grid``, also used by ``python -m benchmarks tuned`` for the
retraining runs of its cells.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import List, Optional, Sequence

from dgl_emu.locking import DirectoryLock, Locked
from dgl_emu.pipeline import RunInterrupted
from dgl_emu.utils import atomic_write_text

from .spec import Grid, Run
from .state import copy_result, finished_metrics, fmt_duration, headline, resume_step

__all__ = ["train_runs", "lock_run", "RunBusy", "LOCK_NAME"]

#: the lock file in a run directory while a runner trains the run
LOCK_NAME = ".grid.lock"


class RunBusy(Locked):
    """Another live runner holds a run's lock; ``pid`` is its process id."""


def lock_run(run_dir: Path) -> DirectoryLock:
    """Hold the lock of ``run_dir`` so no two runners train the same run at once.

    Several runners can therefore work through one grid side by side, each taking the next run
    that nobody holds (e.g. one per core with ``--threads 1``). A runner that was killed leaves
    its lock file behind; the next runner takes it over (:class:`dgl_emu.locking.DirectoryLock`).

    Parameters
    ----------
    run_dir : Path
        The run directory (created if missing).

    Returns
    -------
    DirectoryLock
        The held lock: ``release()`` it when the run is done.

    Raises
    ------
    RunBusy
        Another live process holds it.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    return DirectoryLock(run_dir / LOCK_NAME, "{directory} is being trained by another runner (PID {pid})",
                         RunBusy).acquire()


def train_runs(grid: Grid, runs: Sequence[Run], finished: set, *, threads: Optional[int] = None,
               max_runs: Optional[int] = None, hint: Optional[str] = None) -> int:
    """Train the unfinished ``runs`` one after the other and print one line per run.

    Parameters
    ----------
    grid : Grid
        The grid the runs come from (its name and path are printed and go to ``error.txt``).
    runs : sequence of Run
        The runs, in order.
    finished : set of str
        Ids of the runs already finished (skipped; their results JSON is copied if missing).
    threads : int, optional
        Torch CPU threads.
    max_runs : int, optional
        Train (or resume) at most this many runs; finished ones do not count.
    hint : str, optional
        The closing line (default: the ``aggregate`` command of the results folder).

    Returns
    -------
    int
        The exit status: 0 all done, 1 some run failed, 130 interrupted.
    """
    n = len(runs)
    width = len(str(n))
    results_dir = runs[0].result_path.parent
    if threads:
        import torch
        torch.set_num_threads(threads)
    from dgl_emu.pipeline import run as run_pipeline

    pending = [r.run_id for r in runs if r.run_id not in finished]
    budget = len(pending) if max_runs is None else min(max_runs, len(pending))
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
            held = lock_run(run.run_dir)
        except RunBusy as e:
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
            held.release()
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
    print(hint or f"aggregate with: python -m benchmarks aggregate {results_dir}")
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
