"""The state of a grid's runs on disk: finished, resumable, consistent with the grid."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from dgl_emu.config import ConfigError, RunConfig, same_setting
from dgl_emu.training.checkpoint import CheckpointError, load_checkpoint
from dgl_emu.utils import atomic_write_bytes

from .spec import GridError, Run, norm

#: options that do not change what a finished run measured (ignored when deciding to skip)
NON_IDENTITY = {"output", "progress", "data.data_dir", "device", "training.eval_batch_size",
                "training.checkpoint_every_seconds"}

__all__ = ["finished_metrics", "resume_step", "check_existing", "check_data", "copy_result", "fmt_duration",
           "headline", "NON_IDENTITY"]


def _identity(config: Dict[str, Any]) -> Dict[str, Any]:
    """The resolved options of a saved configuration (nested, or flat from dgl-emu 0.1)."""
    try:
        flat = RunConfig.from_dict(config).flat()
    except ConfigError as e:
        return {"(unreadable configuration)": str(e)}
    return {k: norm(v) for k, v in flat.items() if k not in NON_IDENTITY}


def _differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    a, b = _identity(a), _identity(b)  # an option left to the data ("none") matches the choice a run recorded
    return sorted(k for k in set(a) | set(b)
                  if not same_setting(k, *(None if v == norm(None) else v for v in (a.get(k), b.get(k)))))


def _read_json(path: Path) -> Optional[dict]:
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
    try:
        return int(load_checkpoint(last)["step"])
    except CheckpointError:  # unreadable checkpoint: let the pipeline report it
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
            try:
                old = yaml.safe_load(saved.read_text()) or {}
            except yaml.YAMLError:
                old = {}
            diff = _differences(old, run.config.to_dict())
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
        data = run.config.data
        if data.train is not None:
            for f in (data.train, data.valid, data.test):
                if f is not None and not Path(f).exists() and f not in seen:
                    seen.add(f)
                    missing.append(f"{run.run_id}: {f} does not exist")
            continue
        key = (data.dataset, data.data_dir)
        if data.dataset.lower() == SYNTHETIC or key in seen:
            continue
        seen.add(key)
        try:
            dataset_dir(data.dataset, data.data_dir)
        except Exception as e:  # DatasetNotFoundError
            missing.append(f"dataset {data.dataset}: {e}")
    if missing:
        raise GridError(f"{grid_path}: data missing:\n  " + "\n  ".join(missing))


def copy_result(run: Run) -> None:
    """Copy the run's ``metrics.json`` to its results JSON (atomically)."""
    atomic_write_bytes(run.result_path, run.metrics_path.read_bytes())


def fmt_duration(seconds: float) -> str:
    """``42.0s``, ``3m07s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(round(seconds)) // 60
    if minutes < 60:
        return f"{minutes}m{int(round(seconds)) % 60:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def headline(metrics: dict) -> str:
    """``test MRR 0.1234, Hits@1 0.0567`` of a finished run's metrics."""
    try:
        m = metrics["test"]["both"]["realistic"]
        return f"test MRR {m['mrr']:.4f}, Hits@1 {m['hits@1']:.4f}"
    except (KeyError, TypeError):
        return "no test split"
