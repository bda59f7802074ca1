#!/usr/bin/env python
"""Tuned cells: EMU and its plain baseline each tuned with the same budget, then retrained with
several seeds beside the label-smoothing-only control.

For every cell of a spec file:

1. ``dgl-emu tune --compare-emu`` (:func:`dgl_emu.tuning.compare.compare_emu`): two Optuna
   studies, EMU and the baseline (``emu: none``), the same number of trials of the same steps;
   the baseline searches the same ranges except EMU's own;
2. each arm's best configuration (``best.yaml``) trained again with every seed of the spec, and
   the **smoothing-only control**: EMU's best configuration with ``mutation: smoothing`` (its
   tuned soft labels on un-mutated negatives);
3. ``--summary``: per cell, each arm's tuning budget, best validation MRR and searched values,
   the retrained test MRR (mean ± sd over seeds) and the seed-paired differences EMU − baseline,
   EMU − smoothing and smoothing − baseline with 95 % t-intervals (``summary.md``,
   ``summary.json``, ``tuned.png``).

    python benchmarks/tuned.py benchmarks/grids/tuned.yaml --threads 1     # tune + retrain
    python benchmarks/tuned.py benchmarks/grids/tuned.yaml --summary       # tables and plot

Re-run the same command to resume: finished trials and runs are kept, an interrupted trial or
run resumes from its checkpoint (a tuned cell's study is re-read and its report rewritten, no
trial is repeated). Several runners (one per core) can share a spec: a cell's
studies and each retraining run are locked, and a runner skips what another holds.

Spec file (YAML)::

    name: tuned                 # work in benchmarks/work/<name>/, results in benchmarks/results/<name>/
    trials: 8                   # finished trials per arm
    prune_after: 4              # complete trials before the median rule prunes
    prune_warmup: 0.25          # fraction of a trial's steps before which it is never pruned
    seeds: [0, 1, 2]            # seeds of the retraining runs
    base: {data_dir: ../shared/datasets, progress: false}
    search: {regularizer.weight: null}       # optional: ranges changed for every cell
    templates: {short: &short {steps: 500}}   # optional: YAML anchors for the cells
    cells:
      codex-s-distmult: {<<: *short, dataset: codex-s, model: distmult}
      umls-rgcn: {encoder: rgcn, search: {optimizer.lr: {low: 0.001, high: 0.1}}}

``search`` (top level, and per cell on top of it) changes the declared ranges as
``dgl-emu tune --search`` does: ``{low, high[, log]}``, a list of choices, or ``null`` to fix the
option at the cell's value.

Results: ``<cell>-<arm>-s<seed>.json`` (arm: ``baseline``, ``emu``, ``smoothing``) and
``<cell>-tuning.md`` (the comparison's report) per cell.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gridlib.spec import BENCHMARKS, Grid, GridError, Run, resolve_paths, read_mapping  # noqa: E402
from gridlib.state import finished_metrics  # noqa: E402

from dgl_emu.config import ConfigError, RunConfig, load_config  # noqa: E402
from dgl_emu.tuning.compare import arm_configs, arm_spaces  # noqa: E402
from dgl_emu.tuning.pruning import MedianRule  # noqa: E402

__all__ = ["Spec", "load_spec", "retrain_runs", "smoothing_config", "ARMS", "main"]

SPEC_KEYS = {"name", "trials", "prune_after", "prune_warmup", "seeds", "base", "search", "templates", "cells"}
#: retrained arms: the two tuned studies, and the control built from EMU's best configuration
ARMS = ("baseline", "emu", "smoothing")


@dataclass
class Spec:
    """A parsed spec file: the cells' configurations (EMU on) and the budget."""

    path: Path
    name: str
    trials: int
    pruning: MedianRule
    seeds: List[int]
    cells: Dict[str, RunConfig]
    search: Dict[str, Dict[str, Any]]  # per cell: search-range overrides (``dgl-emu tune --search``)
    work_dir: Path
    results_dir: Path

    def study_dir(self, cell: str) -> Path:
        return self.work_dir / cell / "study"


def load_spec(path, work_dir: Optional[Path] = None, results_dir: Optional[Path] = None) -> Spec:
    """Read and check a spec file; errors name the file and the key (:class:`GridError`).

    ``work_dir`` and ``results_dir`` default to ``benchmarks/work/<name>`` and
    ``benchmarks/results/<name>``.
    """
    path = Path(path)
    data = read_mapping(path, SPEC_KEYS, "spec", "name, trials, seeds, base, cells")
    trials = data.get("trials", 1)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise GridError(f"{path}: trials: expected an integer >= 1, got {trials!r}")
    try:
        pruning = MedianRule(data.get("prune_after", 5), data.get("prune_warmup", 0.25))
    except ConfigError as e:
        raise GridError(f"{path}: {e}") from None
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise GridError(f"{path}: seeds: expected a non-empty list of integers, got {seeds!r}")
    cells = data.get("cells")
    if not isinstance(cells, dict) or not cells:
        raise GridError(f"{path}: cells: expected a mapping CELL: {{option: value}}")
    base = data.get("base") or {}
    shared_search = data.get("search") or {}
    if not isinstance(shared_search, dict):
        raise GridError(f"{path}: search: expected a mapping of option: range")
    configs, searches = {}, {}
    for cell, options in cells.items():
        if not str(cell).replace("-", "").replace("_", "").isalnum():
            raise GridError(f"{path}: cells.{cell}: a cell name is letters, digits, '-' and '_'")
        if not isinstance(options or {}, dict):
            raise GridError(f"{path}: cells.{cell}: expected a mapping of option: value")
        if "seed" in (options or {}) or "seed" in base:
            raise GridError(f"{path}: cells.{cell}: seed: the tuning runs from seed 0 and the "
                            f"retraining from `seeds`; remove it")
        options = dict(options or {})
        search = options.pop("search", None) or {}
        if not isinstance(search, dict):
            raise GridError(f"{path}: cells.{cell}.search: expected a mapping of option: range")
        try:
            cfg = RunConfig.from_dict(resolve_paths(base), resolve_paths(options), {"emu": True})
            search = {**shared_search, **search}
            arm_spaces(arm_configs(cfg), search, "")  # every range checked against the cell
        except ConfigError as e:
            raise GridError(f"{path}: cells.{cell}: {e}") from None
        configs[str(cell)], searches[str(cell)] = cfg, search
    name = str(data.get("name") or path.stem)
    return Spec(path, name, trials, pruning, [int(s) for s in seeds],
                configs, searches, Path(work_dir or BENCHMARKS / "work" / name).resolve(),
                Path(results_dir or BENCHMARKS / "results" / name).resolve())


def smoothing_config(emu_cfg: RunConfig) -> RunConfig:
    """EMU's configuration with the label-smoothing-only control in place of the mutation: the
    same soft labels (``negative_label``, ``plain_weight``) on un-mutated negatives."""
    data = emu_cfg.to_dict()
    allowed = set(RunConfig.from_dict({"emu": True, "mutation": "smoothing"}).to_dict()["emu"])
    data["emu"] = {k: v for k, v in {**data["emu"], "name": "smoothing"}.items() if k in allowed}
    return RunConfig.from_dict(data)


def _tuned(spec: Spec, cell: str) -> bool:
    """Whether both studies of ``cell`` hold ``spec.trials`` finished trials (``report.json``)."""
    import json
    path = spec.study_dir(cell) / "report.json"
    if not path.exists():
        return False
    report = json.loads(path.read_text())
    return bool(report["equal_budgets"]) and report["trials"] == spec.trials and all(
        report["arms"][a]["best_config"] for a in ("emu", "baseline"))


def retrain_runs(spec: Spec, cell: str) -> List[Run]:
    """The retraining runs of a tuned ``cell``: every arm of :data:`ARMS` with every seed."""
    best = {arm: load_config(spec.study_dir(cell) / arm / "best.yaml") for arm in ("emu", "baseline")}
    best["smoothing"] = smoothing_config(best["emu"])
    runs = []
    for arm in ARMS:
        for seed in spec.seeds:
            rid = f"{cell}-{arm}-s{seed}"
            run_dir = spec.work_dir / cell / f"{arm}-s{seed}"
            cfg = best[arm].updated(seed=seed, output=str(run_dir), progress=False)
            runs.append(Run(rid, cfg, {"cell": cell, "arm": arm, "seed": seed}, run_dir,
                            spec.results_dir / f"{rid}.json"))
    return runs


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM while a cell was being tuned: its trial is queued again."""


def _tune(spec: Spec, cell: str) -> bool:
    """Run (or resume) the comparison of ``cell``; False when another runner holds it."""
    import optuna
    from dgl_emu.pipeline import RunInterrupted
    from dgl_emu.tuning.compare import compare_emu
    from dgl_emu.tuning.lock import StudyLocked
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    done = "tuned: rewriting its report" if _tuned(spec, cell) else f"tuning, {spec.trials} trials per arm"
    print(f"{cell}: {done} ({spec.study_dir(cell)})", flush=True)
    try:
        compare_emu(spec.cells[cell], spec.study_dir(cell), trials=spec.trials, pruning=spec.pruning,
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


def run(spec: Spec, only: Sequence[str] = (), threads: Optional[int] = None) -> int:
    """Tune and retrain every cell (or those named in ``only``); returns the exit status."""
    from run_grid import _train  # the grid runner's loop: locks, resume, error.txt, ETA
    if threads:
        import torch
        torch.set_num_threads(threads)
    spec.results_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for cell in spec.cells:
        if only and cell not in only:
            continue
        try:
            if not _tune(spec, cell):  # a tuned cell's study is only re-read: its report is rewritten
                continue
        except ConfigError as e:
            print(f"Error: {spec.path}: cells.{cell}: {e}", file=sys.stderr)
            return 2
        except Interrupted as e:
            print(str(e), flush=True)
            return 130
        if not _tuned(spec, cell):
            print(f"{cell}: tuning incomplete (see {spec.study_dir(cell)}/report.md); not retrained", flush=True)
            status = 1
            continue
        shutil.copyfile(spec.study_dir(cell) / "report.md", spec.results_dir / f"{cell}-tuning.md")
        runs = retrain_runs(spec, cell)
        finished = {r.run_id for r in runs if finished_metrics(r) is not None}
        grid = Grid(spec.path, f"{spec.name}/{cell}", {}, {}, {}, [])
        args = argparse.Namespace(threads=None, max_runs=None)
        hint = f"summary with: python benchmarks/tuned.py {spec.path} --summary"
        status = _train(grid, runs, finished, args, hint) or status
        if status == 130:
            return status
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="tuned.py", description=__doc__.split("\n\n")[0])
    p.add_argument("spec", type=Path, help="spec YAML, e.g. benchmarks/grids/tuned.yaml")
    p.add_argument("--only", action="append", default=[], metavar="CELL", help="only this cell (repeatable)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    p.add_argument("--summary", action="store_true", help="write summary.md/json and tuned.png; train nothing")
    p.add_argument("--work-dir", type=Path, default=None, metavar="DIR",
                   help="studies and run directories (default benchmarks/work/<name>)")
    p.add_argument("--results-dir", type=Path, default=None, metavar="DIR",
                   help="result JSONs and summaries (default benchmarks/results/<name>)")
    args = p.parse_args(argv)
    try:
        spec = load_spec(args.spec, args.work_dir, args.results_dir)
        missing = sorted(set(args.only) - set(spec.cells))
        if missing:
            raise GridError(f"--only {missing[0]}: not a cell of {spec.path} ({', '.join(spec.cells)})")
    except GridError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    if args.summary:
        from agglib.tuned import write_summary
        print(write_summary(spec))
        return 0
    return run(spec, args.only, args.threads)


if __name__ == "__main__":
    sys.exit(main())
