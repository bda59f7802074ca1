"""Grid files: reading, checking and expanding a grid YAML into validated runs."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from dgl_emu.config import ALIASES, COMPONENTS, PLAIN, ConfigError, RunConfig
from dgl_emu.naming import norm, run_name
from dgl_emu.registry import did_you_mean

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
#: keys the runner sets itself
RESERVED = {"output"}
#: path-valued keys (aliases and dotted paths), resolved against the repository root when relative
PATH_FIELDS = ("data_dir", "train", "valid", "test", "data.data_dir", "data.train", "data.valid", "data.test")
GRID_KEYS = {"name", "description", "base", "axes", "per_value", "exclude"}

__all__ = ["GridError", "Grid", "Run", "load_grid", "read_mapping", "resolve_paths", "expand", "run_id", "REPO", "BENCHMARKS", "norm"]


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
#: a run configuration file (path relative to the repository root) under a run's other fields
CONFIG_KEY = "config"


def _known(key: str) -> bool:
    """A flat alias (``num_negatives``), a dotted path (``sampler.k``), a section
    (``encoder: {name: rgcn, ...}``) or :data:`CONFIG_KEY`; values are checked when the grid is
    expanded."""
    return key in ALIASES or "." in str(key) or key in COMPONENTS or key in PLAIN or key == CONFIG_KEY


def _check_fields(path: Path, where: str, mapping: Any, *, allow_reserved: bool = False) -> Dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise GridError(f"{path}: {where}: expected a mapping of option: value, got {mapping!r}")
    for key in mapping:
        if not _known(key):
            raise GridError(f"{path}: {where}.{key}: unknown option{did_you_mean(key, list(ALIASES))}")
        if key in RESERVED and not allow_reserved:
            raise GridError(f"{path}: {where}.{key}: set by the runner (one directory per run); remove it")
    return dict(mapping)


def read_mapping(path: Path, allowed: Sequence[str], what: str, expected: str) -> Dict[str, Any]:
    """The YAML mapping in ``path``, with only ``allowed`` top-level keys (:class:`GridError`
    naming the file otherwise; ``what`` and ``expected`` word the messages)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise GridError(f"{path}: cannot read the {what} ({e})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a mapping with {expected}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise GridError(f"{path}: unknown top-level key(s): {', '.join(map(str, unknown))} "
                        f"(allowed: {', '.join(sorted(allowed))})")
    return data


def load_grid(path) -> Grid:
    """Read and structurally check a grid file (values are checked by :func:`expand`).

    Raises
    ------
    GridError
        Naming ``path`` and the offending key.
    """
    path = Path(path)
    data = read_mapping(path, GRID_KEYS, "grid file", "name, base, axes")
    name = str(data.get("name") or path.stem)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise GridError(f"{path}: name: {name!r} must be letters, digits, '-', '_' or '.'")
    base = _check_fields(path, "base", data.get("base"))
    axes = _check_fields(path, "axes", data.get("axes"))
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{path}: axes.{key}: expected a non-empty list of values, got {values!r}")
        normed = [norm(v) for v in values]
        if len(set(normed)) != len(normed):
            raise GridError(f"{path}: axes.{key}: repeated value in {values!r}")
        if key in base:
            raise GridError(f"{path}: axes.{key}: also set in base; keep it in one place")
    per_value_raw = data.get("per_value") or {}
    if not isinstance(per_value_raw, dict):
        raise GridError(f"{path}: per_value: expected a mapping FIELD: {{VALUE: {{field: value}}}}")
    per_value: Dict[str, Dict[Any, Dict[str, Any]]] = {}
    for key, by_value in per_value_raw.items():
        if not _known(key):
            raise GridError(f"{path}: per_value.{key}: unknown option{did_you_mean(key, list(ALIASES))}")
        if not isinstance(by_value, dict):
            raise GridError(f"{path}: per_value.{key}: expected a mapping VALUE: {{field: value}}")
        per_value[key] = {}
        for value, overrides in by_value.items():
            where = f"per_value.{key}.{value}"
            overrides = _check_fields(path, where, overrides)
            if key in axes and norm(value) not in {norm(v) for v in axes[key]}:
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


def resolve_paths(values: Dict[str, Any]) -> Dict[str, Any]:
    """``values`` with its path fields (``PATH_FIELDS``) made absolute, relative paths
    read from the repository root."""
    out = dict(values)
    for key in PATH_FIELDS:
        if out.get(key) is not None:
            p = Path(str(out[key])).expanduser()
            out[key] = str(p if p.is_absolute() else (REPO / p).resolve())
    return out


def _view(cfg: RunConfig) -> Dict[str, Any]:
    """Aliases and dotted paths of a resolved configuration, for matching grid keys."""
    return {**cfg.flat(), **cfg.aliased()}


def _layers(path: Path, merged: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A run's configuration layers: its ``config`` file (if any), then the grid's fields."""
    fields = dict(merged)
    file = fields.pop(CONFIG_KEY, None)
    if file is None:
        return [resolve_paths(fields)]
    where = REPO / file
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise GridError(f"{path}: config: cannot read {file} ({e})") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: config: {file} is not a mapping of options")
    return [resolve_paths(data), resolve_paths(fields)]


def run_id(cfg: RunConfig, axes: Sequence[str] = ()) -> str:
    """A grid run's id: :func:`dgl_emu.naming.run_name` of its configuration and the grid's axes
    (the scheme of ``dgl-emu run``'s run directories, with the mutation named ``emu``), e.g.
    ``umls-distmult-uniform-emu-d100-s0`` or ``umls-distmult-uniform-emu-d100-s0-chunk_size256``."""
    return run_name(cfg, axes)


def _matches(partial: Dict[str, Any], values: Dict[str, Any]) -> bool:
    return all(key in values and norm(values[key]) == norm(v) for key, v in partial.items())


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
        if not _known(key) or key in RESERVED:
            raise GridError(f"--set {key}: unknown option" if not _known(key)
                            else f"--set {key}: set by the runner")
        if key in grid.axes:
            raise GridError(f"--set {key}: is an axis of {grid.path}; use --only to select runs")
        base[key] = value
    keys = list(grid.axes)
    defaults = _view(RunConfig().validate())
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
                if norm(current[key]) == norm(value):
                    for field, v in over.items():
                        if field in extra and norm(extra[field]) != norm(v):
                            raise GridError(f"{grid.path}: per_value.{key}.{value}.{field}: conflicts with "
                                            f"{origin[field]} ({extra[field]!r}) for run {label}")
                        extra[field], origin[field] = v, f"per_value.{key}.{value}.{field}"
        merged.update(extra)
        layers = _layers(grid.path, merged)
        try:
            cfg = RunConfig.from_dict(*layers)
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
