"""Tuning and retraining the cells of a spec: resumable, locked per cell study and per run."""
from __future__ import annotations

import shutil
import sys
from typing import Optional, Sequence

from dgl_emu.config import ConfigError

from ..gridlib.runner import train_runs
from ..gridlib.spec import Grid
from ..gridlib.state import finished_metrics
from .spec import Spec, is_tuned, retrain_runs

__all__ = ["Interrupted", "tune_cell", "run_spec"]


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM while a cell was being tuned: its trial is queued again."""


def tune_cell(spec: Spec, cell: str) -> bool:
    """Run (or resume) the equal-budget comparison of ``cell``.

    Parameters
    ----------
    spec : Spec
        The spec.
    cell : str
        One of its cells.

    Returns
    -------
    bool
        False when another runner holds the cell's study (nothing done).

    Raises
    ------
    Interrupted
        Ctrl-C or a signal stopped a trial (re-run to resume).
    ConfigError
        A bad option of the cell.
    """
    import optuna
    from dgl_emu.pipeline import RunInterrupted
    from dgl_emu.tuning.compare import compare_emu
    from dgl_emu.tuning.study import StudyLocked
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    budget = spec.budgets[cell]
    done = "tuned: rewriting its report" if is_tuned(spec, cell) else f"tuning, {budget.describe()}"
    print(f"{cell}: {done} ({spec.study_dir(cell)})", flush=True)
    try:
        compare_emu(spec.cells[cell], spec.study_dir(cell), budget=budget, pruning=spec.pruning,
                    overrides=spec.search[cell], where=f"{spec.path}: cells.{cell}: ", progress=False,
                    notify=lambda m: print(f"  {cell} {m}", flush=True))
    except StudyLocked:
        print(f"{cell}: another runner is tuning it; skipped", flush=True)
        return False
    except RunInterrupted as e:
        raise Interrupted(f"{cell}: interrupted at step {e.step} of {e.run_dir}; re-run the same command "
                          f"to resume the study") from None
    except KeyboardInterrupt:
        raise Interrupted(f"{cell}: interrupted; re-run the same command to resume the study") from None
    return True


def run_spec(spec: Spec, only: Sequence[str] = (), threads: Optional[int] = None) -> int:
    """Tune and retrain every cell of ``spec`` (or those named in ``only``).

    Parameters
    ----------
    spec : Spec
        The spec.
    only : sequence of str
        Cells to work on (default: all).
    threads : int, optional
        Torch CPU threads.

    Returns
    -------
    int
        The exit status: 0 done, 1 a cell's tuning is incomplete or a run failed, 2 a bad cell,
        130 interrupted.
    """
    if threads:
        import torch
        torch.set_num_threads(threads)
    spec.results_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for cell in spec.cells:
        if only and cell not in only:
            continue
        try:
            if not tune_cell(spec, cell):  # a tuned cell's study is only re-read: its report is rewritten
                continue
        except ConfigError as e:
            print(f"Error: {spec.path}: cells.{cell}: {e}", file=sys.stderr)
            return 2
        except Interrupted as e:
            print(str(e), flush=True)
            return 130
        if not is_tuned(spec, cell):
            print(f"{cell}: tuning incomplete (see {spec.study_dir(cell)}/report.md); not retrained", flush=True)
            status = 1
            continue
        shutil.copyfile(spec.study_dir(cell) / "report.md", spec.results_dir / f"{cell}-tuning.md")
        runs = retrain_runs(spec, cell)
        finished = {r.run_id for r in runs if finished_metrics(r) is not None}
        grid = Grid(spec.path, f"{spec.name}/{cell}", {}, {}, {}, [])
        hint = f"summary with: python -m benchmarks tuned {spec.path} --summary"
        status = train_runs(grid, runs, finished, hint=hint) or status
        if status == 130:
            return status
    return status
