"""Reading a grid's result JSONs into records, one per run (configurations of any version)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from dgl_emu.config import ALIASES, ConfigError, RunConfig

__all__ = ["AggregateError", "load_results", "KEY", "METRICS", "METRIC_LABELS", "IGNORED", "sort_key",
           "hashable"]

KEY = ("dataset", "encoder", "model", "sampler", "dim")
METRICS = ("mrr", "hits@1")
METRIC_LABELS = {"mrr": "MRR", "hits@1": "Hits@1"}
#: config fields that never split rows (run identity, or no effect on what is measured)
IGNORED = {"seed", "emu", "output", "progress", "data_dir", "device", "eval_batch_size", "regime"}
DATASET_ORDER = ["umls", "kinships", "nations", "codex-s", "codex-m", "fb15k-237", "wn18rr", "synthetic"]
MODEL_ORDER = ["transe", "distmult", "complex", "rotate"]
ENCODER_ORDER = ["lookup", "rgcn", "compgcn"]
SAMPLER_ORDER = ["uniform", "bernoulli", "sans", "1vsall", "kvsall"]
SKIP_FILES = {"summary.json"}


class AggregateError(ValueError):
    """The results cannot be aggregated (none found, or duplicates)."""


def hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value


def load_results(directory) -> List[Dict[str, Any]]:
    """One record per result JSON in ``directory`` (sorted by file name).

    Each record has ``path``, ``config``, the :data:`KEY` fields, ``seed``, ``emu`` and the
    test metrics ``mrr`` and ``hits@1`` (realistic ties, both sides). Files that are not run
    results (e.g. ``summary.json``, speed benchmarks) are skipped.
    """
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        if path.name in SKIP_FILES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"warning: skipping {path}: {e}", file=sys.stderr)
            continue
        if not isinstance(data, dict) or "config" not in data:
            continue
        try:
            real = data["test"]["both"]["realistic"]
        except (KeyError, TypeError):
            print(f"warning: skipping {path}: no test metrics", file=sys.stderr)
            continue
        try:  # the flat view by alias names, whatever version wrote the file
            cfg = RunConfig.from_dict(data["config"]).aliased()
        except ConfigError as e:
            print(f"warning: skipping {path}: unreadable configuration ({e})", file=sys.stderr)
            continue
        if _against(cfg) != str(cfg["sampler"]).lower():  # no sampler or loss: their options do not apply
            cfg = {k: (None if ALIASES[k].path.startswith(("sampler.", "loss.")) else v) if k in ALIASES else v
                   for k, v in cfg.items()}
        dataset = Path(cfg["train"]).parent.name if cfg.get("train") else str(cfg["dataset"]).lower()
        records.append({
            "path": str(path), "config": cfg, "dataset": dataset,
            "encoder": str(cfg.get("encoder", "lookup")).lower(), "model": str(cfg["model"]).lower(),
            "sampler": _against(cfg), "dim": int(cfg["dim"]), "seed": int(cfg["seed"]),
            "emu": bool(cfg["emu"]), "mrr": float(real["mrr"]), "hits@1": float(real["hits@1"]),
            "validations": [(int(v["step"]), float(v["valid_mrr"])) for v in data.get("validations") or []
                            if isinstance(v, dict) and "step" in v and "valid_mrr" in v],
        })
    return records


def _against(cfg: Dict[str, Any]) -> str:
    """The sampler, or the all-entity regime in its place (1vsAll and KvsAll draw no negatives)."""
    regime = str(cfg.get("regime", "negative_sampling")).lower()
    return str(cfg["sampler"]).lower() if regime == "negative_sampling" else regime


def _rank(order: Sequence[str], value: Any) -> Tuple[int, Any]:
    return (order.index(value), "") if value in order else (len(order), str(value))


def sort_key(key: Dict[str, Any]):
    return (_rank(DATASET_ORDER, key["dataset"]), _rank(ENCODER_ORDER, key["encoder"]),
            _rank(MODEL_ORDER, key["model"]), _rank(SAMPLER_ORDER, key["sampler"]), key["dim"],
            tuple(str(v) for v in key["extras"].values()))
