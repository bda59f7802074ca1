"""A tuned-cells spec file: its cells' configurations, budget and seeds, and the retraining runs of a cell.

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
      umls-compgcn: {encoder: compgcn, seconds: 414}   # equal time: 414 s of trials per arm

``search`` (top level, and per cell on top of it) changes the declared ranges as
``dgl-emu tune --search`` does: ``{low, high[, log]}``, a list of choices, or ``null`` to fix the
option at the cell's value. ``seconds`` gives both arms of the cell that much trial wall time
(:class:`~dgl_emu.tuning.budget.EqualTime`, ``dgl-emu tune --equal-time``) instead of ``trials``
trials each.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from dgl_emu.config import ConfigError, RunConfig, load_config
from dgl_emu.tuning.budget import Budget, EqualTime, EqualTrials
from dgl_emu.tuning.compare import arm_configs, arm_spaces
from dgl_emu.tuning.pruning import MedianRule

from ..gridlib.spec import BENCHMARKS, GridError, Run, read_mapping, resolve_paths

__all__ = ["Spec", "load_spec", "smoothing_config", "is_tuned", "retrain_runs", "ARMS", "SPEC_KEYS"]

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
    budgets: Dict[str, Budget]  # per cell: equal trials, or equal time (``seconds``)

    def study_dir(self, cell: str) -> Path:
        """The directory of ``cell``'s two studies."""
        return self.work_dir / cell / "study"


def load_spec(path, work_dir: Optional[Path] = None, results_dir: Optional[Path] = None) -> Spec:
    """Read and check a spec file.

    Parameters
    ----------
    path : path-like
        The spec YAML.
    work_dir, results_dir : Path, optional
        Studies and run directories, result JSONs and summaries (default
        ``benchmarks/work/<name>`` and ``benchmarks/results/<name>``).

    Returns
    -------
    Spec

    Raises
    ------
    GridError
        A bad key or value; the message names the file and the key.
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
    configs, searches, budgets = {}, {}, {}
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
        seconds = options.pop("seconds", None)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or seconds <= 0):
            raise GridError(f"{path}: cells.{cell}.seconds: expected a positive number of seconds, got {seconds!r}")
        budgets[str(cell)] = EqualTime(float(seconds)) if seconds is not None else EqualTrials(trials)
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
                Path(results_dir or BENCHMARKS / "results" / name).resolve(), budgets)


def smoothing_config(emu_cfg: RunConfig) -> RunConfig:
    """EMU's configuration with the label-smoothing-only control in place of the mutation: the
    same soft labels (``negative_label``, ``plain_weight``) on un-mutated negatives."""
    data = emu_cfg.to_dict()
    allowed = set(RunConfig.from_dict({"emu": True, "mutation": "smoothing"}).to_dict()["emu"])
    data["emu"] = {k: v for k, v in {**data["emu"], "name": "smoothing"}.items() if k in allowed}
    return RunConfig.from_dict(data)


def is_tuned(spec: Spec, cell: str) -> bool:
    """Whether both studies of ``cell`` used the cell's budget (``report.json``; reports of
    equal-trial comparisons written before budgets were recorded count by their trials)."""
    path = spec.study_dir(cell) / "report.json"
    if not path.exists():
        return False
    report = json.loads(path.read_text())
    budget = spec.budgets[cell]
    given = report.get("budget_given") or {"kind": "equal-trials", "trials": report["trials"]}
    return bool(report["equal_budgets"]) and given == budget.to_dict() and all(
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
