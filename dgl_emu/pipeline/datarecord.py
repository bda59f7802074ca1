"""What a run trained on, kept in its run directory so that it never trains or reports on other data.

A run directory records its data when the run starts:

* ``data.json``: per data file (by split, and any extra file of a registered dataset's format) the
  resolved absolute path, the size and the sha256 of its content; and per id map (entities,
  relations) the number of labels and the sha256 of the labels in id order;
* ``entities.dict`` and ``relations.dict``: the id maps themselves (``id<TAB>label``, the format
  :func:`~dgl_emu.data.read_dict_file` reads), except for generated labels (``e0``, ``e1``, ...).

Resuming a run, ``dgl-emu evaluate`` and ``dgl-emu predict`` compare the data they load with the
record (:func:`changes`) and refuse a changed file or id map, naming it, unless the change is
accepted explicitly (``--accept-changed-data``): the run then reads the files with its recorded
id maps, so every label keeps the row it trained (:func:`recorded_id_maps`). A file is found at
its recorded absolute path first, so a run evaluated from another working directory reads the
files it trained on, and at the configuration's path when the recorded one is gone (a run
directory copied to another machine); either way its content must match.

Run directories of older dgl-emu versions hold no record: they are read as before, and a resumed
one records its data from then on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..config import RunConfig
from ..data import KnowledgeGraph, RangeLabels, dataset_files
from ..data.datasets import GENERATED, SYNTHETIC
from ..data.checksums import verified_digest
from ..utils import atomic_write_json, atomic_write_text

__all__ = ["RECORD", "ENTITIES", "RELATIONS", "DataChanged", "data_files", "fingerprint", "describe",
           "write_record", "read_record", "changes", "recorded_id_maps", "located"]

RECORD, ENTITIES, RELATIONS = "data.json", "entities.dict", "relations.dict"


class DataChanged(ValueError):
    """The data differs from what the run directory records; the message names the file."""


def data_files(cfg: RunConfig) -> Dict[str, Path]:
    """The files ``cfg`` reads, resolved to absolute paths: ``{split: path}`` for custom files,
    and ``entity_dict`` / ``relation_dict`` when given; the registered dataset's files
    (:func:`~dgl_emu.data.dataset_files`); none for the generated graphs.

    Raises
    ------
    DatasetNotFoundError
        When a registered dataset's files are missing.
    """
    data = cfg.data
    if data.train is not None:
        return {s: Path(p).resolve() for s, p in (("train", data.train), ("valid", data.valid),
                                                   ("test", data.test), ("entity_dict", data.entity_dict),
                                                   ("relation_dict", data.relation_dict)) if p is not None}
    if data.dataset.lower() in (SYNTHETIC, GENERATED):
        return {}
    return dataset_files(data.dataset, data.data_dir)


def _labels_digest(labels: List[str]) -> str:
    h = hashlib.sha256()
    for label in labels:
        h.update(label.encode("utf-8") + b"\n")
    return h.hexdigest()


def _base_relations(kg: KnowledgeGraph, cfg: RunConfig) -> List[str]:
    """The relation labels of the files (without the inverses of reciprocal relations)."""
    labels = kg.relation_labels
    return labels[: len(labels) // 2] if cfg.regime.options["reciprocal"] else labels


def fingerprint(files: Dict[str, Path]) -> Dict[str, dict]:
    """``{name: {"path", "bytes", "sha256"}}`` of ``files`` (digests through
    :func:`~dgl_emu.data.checksums.verified_digest`, whose cache only saves re-reading a file that
    has not changed)."""
    return {name: {"path": str(path), "bytes": path.stat().st_size, "sha256": verified_digest(path)}
            for name, path in files.items()}


def describe(cfg: RunConfig, kg: KnowledgeGraph, files: Dict[str, Path]) -> dict:
    """The record of a run on ``kg`` read from ``files`` (see the module docstring)."""
    relations = _base_relations(kg, cfg)
    return {"format": 1, "dataset": kg.name, "files": fingerprint(files),
            "entities": {"count": kg.num_entities, "sha256": _labels_digest(kg.entity_labels)},
            "relations": {"count": len(relations), "sha256": _labels_digest(relations)}}


def write_record(run_dir: Path, cfg: RunConfig, kg: KnowledgeGraph, record: dict) -> None:
    """Write ``record`` and the id maps of ``kg`` into ``run_dir`` (atomically, through no link)."""
    for name, mapping, labels in ((ENTITIES, kg.entity_to_id, kg.entity_labels),
                                  (RELATIONS, kg.relation_to_id, _base_relations(kg, cfg))):
        if isinstance(mapping, RangeLabels):
            (run_dir / name).unlink(missing_ok=True)
            continue
        atomic_write_text(run_dir / name, "".join(f"{i}\t{label}\n" for i, label in enumerate(labels)))
    atomic_write_json(run_dir / RECORD, record)


def read_record(run_dir: Path) -> Optional[dict]:
    """The record in ``run_dir``; ``None`` for a run directory of an older dgl-emu.

    Raises
    ------
    DataChanged
        When ``data.json`` exists but is not a record (naming it).
    """
    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
            raise ValueError("no files")
    except (OSError, ValueError) as e:
        raise DataChanged(f"{path}: not a record of the run's data ({e}); it cannot be checked") from None
    return record


def located(record: Optional[dict], files: Dict[str, Path]) -> Dict[str, Path]:
    """``files`` with each one at its recorded absolute path where that file exists (a run read
    from another working directory finds the files it trained on)."""
    if not record:
        return files
    out = dict(files)
    for name, entry in record["files"].items():
        path = Path(entry.get("path", ""))
        if name in out and path.is_absolute() and path.is_file():
            out[name] = path
    return out


def changes(record: dict, current: dict) -> List[str]:
    """What differs between a ``record`` and the ``current`` description: one line per changed,
    added or missing file and per changed id map, each naming it.

    Examples
    --------
    >>> a = {"files": {"train": {"path": "/d/train.txt", "bytes": 3, "sha256": "aa"}},
    ...      "entities": {"count": 2, "sha256": "e"}, "relations": {"count": 1, "sha256": "r"}}
    >>> b = {"files": {"train": {"path": "/d/train.txt", "bytes": 4, "sha256": "bb"}},
    ...      "entities": {"count": 2, "sha256": "e"}, "relations": {"count": 1, "sha256": "r"}}
    >>> changes(a, b)
    ['/d/train.txt (train) changed since the run trained on it (sha256 bb, recorded aa)']
    """
    out = []
    old, new = record.get("files", {}), current["files"]
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"{old[name].get('path', name)} ({name}) was part of the run's data and is not now")
        elif name not in old:
            out.append(f"{new[name]['path']} ({name}) was not part of the run's data")
        elif old[name].get("sha256") != new[name]["sha256"]:
            out.append(f"{new[name]['path']} ({name}) changed since the run trained on it "
                       f"(sha256 {new[name]['sha256'][:12]}, recorded {str(old[name].get('sha256'))[:12]})")
    for what, noun in (("entities", "entity"), ("relations", "relation")):
        a, b = record.get(what, {}), current[what]
        if a and a != b:
            out.append(f"the {noun} id map differs from the one the run trained with ({b['count']} labels, "
                       f"recorded {a.get('count')})")
    return out


def recorded_id_maps(run_dir: Path) -> Tuple[Optional[Path], Optional[Path]]:
    """``(entities.dict, relations.dict)`` of ``run_dir``, each ``None`` where not recorded."""
    run_dir = Path(run_dir)
    return tuple(run_dir / n if (run_dir / n).is_file() else None for n in (ENTITIES, RELATIONS))
