#!/usr/bin/env python
"""Run a benchmark grid: expand a grid YAML into runs, train the unfinished ones, collect results.

    python benchmarks/run_grid.py benchmarks/grids/p1-shallow.yaml [--dry-run] [--only SUBSTRING]
                                  [--max-runs N] [--results-dir DIR] [--work-dir DIR]
                                  [--set FIELD=VALUE ...] [--threads N]

A grid file is a YAML mapping::

    name: p1-shallow                  # results go to benchmarks/results/<name>/
    base: {steps: 2000, ...}          # RunConfig fields of every run
    axes: {model: [transe, distmult], emu: [false, true], seed: [0, 1, 2]}   # Cartesian product
    per_value: {model: {transe: {lr: 0.05}}}   # overrides for runs whose FIELD has VALUE
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
import enum
import itertools
import sys
import time
import traceback
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.utils import atomic_write_bytes, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
FIELDS = {f.name for f in fields(RunConfig)}
#: fields the runner sets itself
RESERVED = {"output"}
#: path-valued fields, resolved against the repository root when relative
PATH_FIELDS = ("data_dir", "train", "valid", "test")
#: fields that do not change what a finished run measured (compared when deciding to skip)
NON_IDENTITY = {"output", "progress", "data_dir", "device", "eval_batch_size"}
GRID_KEYS = {"name", "description", "base", "axes", "per_value", "exclude"}

__all__ = ["GridError", "Grid", "Run", "load_grid", "expand", "run_id", "main"]


class GridError(ValueError):
    """The grid file is invalid; the message names the file and the field."""


@dataclass
class Grid:
    """A parsed grid file."""

    path: Path
    name: str
    base: Dict[str, Any]
    axes: Dict[str, List[Any]]
    per_value: Dict[str, Dict[Any, Dict[str, Any]]]
    exclude: List[Dict[str, Any]]


@dataclass
class Run:
    """One expanded run of a grid."""

    run_id: str
    config: RunConfig
    values: Dict[str, Any]  # the axis values of this run
    run_dir: Path
    result_path: Path

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.json"


# ---------------------------------------------------------------------------- grid files
def _norm(value: Any) -> str:
    """A comparable form of a value: YAML ``true``, an enum and the string ``"True"`` agree."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_norm(v) for v in value)
    return str(value).strip().lower()


def _check_fields(path: Path, where: str, mapping: Any, *, allow_reserved: bool = False) -> Dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise GridError(f"{path}: {where}: expected a mapping of RunConfig field: value, got {mapping!r}")
    for key in mapping:
        if key not in FIELDS:
            raise GridError(f"{path}: {where}.{key}: unknown RunConfig field")
        if key in RESERVED and not allow_reserved:
            raise GridError(f"{path}: {where}.{key}: set by the runner (one directory per run); remove it")
    return dict(mapping)


def load_grid(path) -> Grid:
    """Read and structurally check a grid file (values are checked by :func:`expand`).

    Raises
    ------
    GridError
        Naming ``path`` and the offending key.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise GridError(f"{path}: cannot read the grid file ({e})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a mapping with name, base, axes")
    unknown = sorted(set(data) - GRID_KEYS)
    if unknown:
        raise GridError(f"{path}: unknown top-level key(s): {', '.join(map(str, unknown))} "
                        f"(allowed: {', '.join(sorted(GRID_KEYS))})")
    name = str(data.get("name") or path.stem)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise GridError(f"{path}: name: {name!r} must be letters, digits, '-', '_' or '.'")
    base = _check_fields(path, "base", data.get("base"))
    axes = _check_fields(path, "axes", data.get("axes"))
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{path}: axes.{key}: expected a non-empty list of values, got {values!r}")
        normed = [_norm(v) for v in values]
        if len(set(normed)) != len(normed):
            raise GridError(f"{path}: axes.{key}: repeated value in {values!r}")
        if key in base:
            raise GridError(f"{path}: axes.{key}: also set in base; keep it in one place")
    per_value_raw = data.get("per_value") or {}
    if not isinstance(per_value_raw, dict):
        raise GridError(f"{path}: per_value: expected a mapping FIELD: {{VALUE: {{field: value}}}}")
    per_value: Dict[str, Dict[Any, Dict[str, Any]]] = {}
    for key, by_value in per_value_raw.items():
        if key not in FIELDS:
            raise GridError(f"{path}: per_value.{key}: unknown RunConfig field")
        if not isinstance(by_value, dict):
            raise GridError(f"{path}: per_value.{key}: expected a mapping VALUE: {{field: value}}")
        per_value[key] = {}
        for value, overrides in by_value.items():
            where = f"per_value.{key}.{value}"
            overrides = _check_fields(path, where, overrides)
            if key in axes and _norm(value) not in {_norm(v) for v in axes[key]}:
                raise GridError(f"{path}: {where}: {value!r} is not a value of axes.{key} "
                                f"({', '.join(map(str, axes[key]))})")
            for field in overrides:
                if field in axes:
                    raise GridError(f"{path}: {where}.{field}: is an axis; per_value cannot override it")
            per_value[key][value] = overrides
    exclude_raw = data.get("exclude") or []
    if not isinstance(exclude_raw, list):
        raise GridError(f"{path}: exclude: expected a list of partial mappings")
    exclude = [_check_fields(path, f"exclude[{i}]", e, allow_reserved=False) for i, e in enumerate(exclude_raw)]
    for i, e in enumerate(exclude):
        if not e:
            raise GridError(f"{path}: exclude[{i}]: empty mapping would exclude every run")
    return Grid(path, name, base, axes, per_value, exclude)


def _resolve_paths(values: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(values)
    for key in PATH_FIELDS:
        if out.get(key) is not None:
            p = Path(str(out[key])).expanduser()
            out[key] = str(p if p.is_absolute() else (REPO / p).resolve())
    return out


def _canonical(registry_name: str, name: str) -> str:
    try:
        if registry_name == "model":
            from dgl_emu.nn.interactions import INTERACTIONS
            return INTERACTIONS.canonical(name)
        if registry_name == "encoder":
            from dgl_emu.nn.encoders import ENCODERS
            return ENCODERS.canonical(name)
        from dgl_emu.data.datasets import DATASETS, SYNTHETIC
        return SYNTHETIC if name.lower() == SYNTHETIC else DATASETS.get(name).name
    except (KeyError, ValueError):
        return name


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def run_id(cfg: RunConfig, axes: Sequence[str] = ()) -> str:
    """``<dataset>[-<encoder>]-<model>-<sampler>-<emu|plain>-d<dim>-s<seed>[-<field><value>...]``.

    The encoder is left out for lookup tables; axes other than dataset, encoder, model, sampler,
    emu, dim and seed add ``<field><value>`` parts (e.g. ``lr0.05``).
    """
    dataset = Path(cfg.train).parent.name if cfg.train else _canonical("dataset", cfg.dataset)
    parts = [dataset]
    encoder = _canonical("encoder", cfg.encoder)
    if encoder != "lookup":
        parts.append(encoder)
    parts += [_canonical("model", cfg.model), cfg.sampler.value, "emu" if cfg.emu else "plain",
              f"d{cfg.dim}", f"s{cfg.seed}"]
    covered = {"dataset", "train", "encoder", "model", "sampler", "emu", "dim", "seed"}
    for key in axes:
        if key not in covered:
            parts.append(f"{key}{_norm(getattr(cfg, key))}")
    return _safe("-".join(parts))


def _matches(partial: Dict[str, Any], values: Dict[str, Any]) -> bool:
    return all(key in values and _norm(values[key]) == _norm(v) for key, v in partial.items())


def expand(grid: Grid, *, work_dir: Optional[Path] = None, results_dir: Optional[Path] = None,
           overrides: Optional[Dict[str, Any]] = None) -> List[Run]:
    """The validated runs of ``grid``, in order (the last axis varies fastest).

    Parameters
    ----------
    work_dir, results_dir : Path, optional
        Folders of the run directories and result JSONs (default ``benchmarks/work/<name>``
        and ``benchmarks/results/<name>``).
    overrides : dict, optional
        RunConfig fields applied on top of ``base`` (the ``--set`` option).

    Raises
    ------
    GridError
        For an invalid field or value (naming the grid file, the run and the field), an exclude
        entry that matches no run, or two runs with the same id.
    """
    work_dir = Path(work_dir or BENCHMARKS / "work" / grid.name).resolve()
    results_dir = Path(results_dir or BENCHMARKS / "results" / grid.name).resolve()
    base = dict(grid.base)
    for key, value in (overrides or {}).items():
        if key not in FIELDS or key in RESERVED:
            raise GridError(f"--set {key}: unknown RunConfig field" if key not in FIELDS
                            else f"--set {key}: set by the runner")
        if key in grid.axes:
            raise GridError(f"--set {key}: is an axis of {grid.path}; use --only to select runs")
        base[key] = value
    keys = list(grid.axes)
    defaults = RunConfig().to_dict()
    runs: List[Run] = []
    used_excludes = set()
    seen: Dict[str, Dict[str, Any]] = {}
    for combo in itertools.product(*(grid.axes[k] for k in keys)):
        values = dict(zip(keys, combo))
        merged = {**base, **values}
        current = {**defaults, **merged}  # what per_value and exclude match against
        hit = [i for i, e in enumerate(grid.exclude) if _matches(e, current)]
        if hit:
            used_excludes.update(hit)
            continue
        label = ", ".join(f"{k}={v}" for k, v in values.items()) or "the only run"
        extra: Dict[str, Any] = {}
        origin: Dict[str, str] = {}
        for key, by_value in grid.per_value.items():
            for value, over in by_value.items():
                if _norm(current[key]) == _norm(value):
                    for field, v in over.items():
                        if field in extra and _norm(extra[field]) != _norm(v):
                            raise GridError(f"{grid.path}: per_value.{key}.{value}.{field}: conflicts with "
                                            f"{origin[field]} ({extra[field]!r}) for run {label}")
                        extra[field], origin[field] = v, f"per_value.{key}.{value}.{field}"
        merged.update(extra)
        try:
            cfg = RunConfig(**_resolve_paths(merged)).validate()
            if cfg.train is None:
                from dgl_emu.data.datasets import DATASETS, SYNTHETIC
                if cfg.dataset.lower() != SYNTHETIC and cfg.dataset not in DATASETS:
                    raise ConfigError(f"dataset: {cfg.dataset!r} is not one of: "
                                      f"{', '.join([SYNTHETIC] + DATASETS.names())}")
        except ConfigError as e:
            raise GridError(f"{grid.path}: run {label}: {e}") from None
        except (TypeError, ValueError) as e:  # e.g. dim: "abc"
            raise GridError(f"{grid.path}: run {label}: invalid value ({e})") from None
        rid = run_id(cfg, keys)
        if rid in seen:
            raise GridError(f"{grid.path}: runs {seen[rid]} and {values} get the same run id {rid!r}")
        seen[rid] = values
        cfg.output = str(work_dir / rid)
        runs.append(Run(rid, cfg, values, work_dir / rid, results_dir / f"{rid}.json"))
    unused = [i for i in range(len(grid.exclude)) if i not in used_excludes]
    if unused:
        raise GridError(f"{grid.path}: exclude[{unused[0]}] ({grid.exclude[unused[0]]}) matches no run")
    return runs


# ---------------------------------------------------------------------------- run state
def _identity(config: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _norm(v) for k, v in config.items() if k not in NON_IDENTITY}


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    a, b = _identity(a), _identity(b)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _read_json(path: Path) -> Optional[dict]:
    import json
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def finished_metrics(run: Run) -> Optional[dict]:
    """The metrics of a finished run (run directory first, then the results JSON), else None."""
    for path in (run.metrics_path, run.result_path):
        if path.exists():
            data = _read_json(path)
            if data is not None and "test" in data:
                return data
    return None


def resume_step(run: Run) -> Optional[int]:
    """The step of the run's ``last.pt``, or None if there is none."""
    last = run.run_dir / "last.pt"
    if not last.exists():
        return None
    import torch
    try:
        return int(torch.load(last, map_location="cpu", weights_only=False, mmap=True)["step"])
    except Exception:  # unreadable checkpoint: let the pipeline report it
        return 0


def check_existing(runs: Sequence[Run], grid_path: Path) -> None:
    """Refuse to go on when finished or partial runs hold another configuration than the grid's."""
    problems = []
    for run in runs:
        metrics = finished_metrics(run)
        if metrics is not None and "config" in metrics:
            diff = _differences(metrics["config"], run.config.to_dict())
            if diff:
                where = run.metrics_path if run.metrics_path.exists() else run.result_path
                problems.append(f"  {run.run_id}: finished with different {', '.join(diff)} ({where})")
            continue
        saved = run.run_dir / "config.yaml"
        if metrics is None and saved.exists():
            old = yaml.safe_load(saved.read_text()) or {}
            new = run.config.to_dict()
            old.pop("progress", None), new.pop("progress", None)
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if diff:
                problems.append(f"  {run.run_id}: unfinished run with different {', '.join(diff)} ({run.run_dir})")
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise GridError(f"{grid_path}: the grid changed since these runs were made; delete their run "
                        f"directory and results JSON to redo them, or restore the grid:\n"
                        + "\n".join(problems[:10]) + more)


def check_data(runs: Sequence[Run], grid_path: Path) -> None:
    """Every dataset the pending runs need is present (before anything trains)."""
    from dgl_emu.data.datasets import SYNTHETIC, dataset_dir
    missing, seen = [], set()
    for run in runs:
        cfg = run.config
        if cfg.train is not None:
            for f in (cfg.train, cfg.valid, cfg.test):
                if f is not None and not Path(f).exists() and f not in seen:
                    seen.add(f)
                    missing.append(f"{run.run_id}: {f} does not exist")
            continue
        key = (cfg.dataset, cfg.data_dir)
        if cfg.dataset.lower() == SYNTHETIC or key in seen:
            continue
        seen.add(key)
        try:
            dataset_dir(cfg.dataset, cfg.data_dir)
        except Exception as e:  # DatasetNotFoundError
            missing.append(f"dataset {cfg.dataset}: {e}")
    if missing:
        raise GridError(f"{grid_path}: data missing:\n  " + "\n  ".join(missing))


def copy_result(run: Run) -> None:
    """Copy the run's ``metrics.json`` to its results JSON (atomically)."""
    atomic_write_bytes(run.result_path, run.metrics_path.read_bytes())


class Busy(Exception):
    """Another runner holds the lock of a run; ``pid`` is the process id it wrote there."""

    def __init__(self, pid: str):
        super().__init__(pid)
        self.pid = pid


def _lock(run_dir: Path):
    """Hold an exclusive lock on ``run_dir`` so no two runners train the same run at once.

    Returns the open lock file (closing it releases the lock); raises :class:`Busy` when another
    process holds it. Several runners can therefore work through one grid side by side, each
    taking the next run that nobody holds (e.g. one per core with ``--threads 1``).
    """
    import os
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".run_grid.lock", "a+")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise Busy(owner) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


# ---------------------------------------------------------------------------- formatting
def fmt_duration(seconds: float) -> str:
    """``42.0s``, ``3m07s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(round(seconds)) // 60
    if minutes < 60:
        return f"{minutes}m{int(round(seconds)) % 60:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _headline(metrics: dict) -> str:
    try:
        m = metrics["test"]["both"]["realistic"]
        return f"test MRR {m['mrr']:.4f}, Hits@1 {m['hits@1']:.4f}"
    except (KeyError, TypeError):
        return "no test split"


def _parse_set(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise GridError(f"--set {item}: expected FIELD=VALUE")
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
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="overrides",
                   help="override a base field of every run, e.g. --set device=cuda (YAML value)")
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
                print(f"{prefix} {state} ({run.config.steps} steps, optimizer {run.config.optimizer} "
                      f"lr {run.config.lr})")
        return 0
    if not runs:
        print("no run matches (check --only)", file=sys.stderr)
        return 0
    return _train(grid, runs, finished, args)


def _train(grid: Grid, runs: Sequence[Run], finished: set, args) -> int:
    """Train the unfinished runs one after the other; returns the exit status."""
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
            lock = _lock(run.run_dir)
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
            lock.close()
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
    print(f"aggregate with: python benchmarks/aggregate.py {results_dir}")
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
    except KeyboardInterrupt:
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
    print(f"done in {fmt_duration(elapsed)}, {_headline(result.metrics)}{eta}", flush=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
