"""A binary cache of parsed datasets, keyed by the sha256 of their files.

Parsing ten million labelled lines takes seconds; reading the same ids back from ``.npy`` files
takes a moment. Each parsed dataset is kept in its own folder under :func:`cache_root`::

    <root>/<key>/dgl-emu-cache.json   what it holds and where it came from (written by dgl-emu)
    <root>/<key>/train.npy ...        (N, 3) int64 id triples per split, memory-mapped when read
    <root>/<key>/entities.arrow       labels in id order (Arrow IPC, memory-mapped), or none for
    <root>/<key>/relations.arrow      generated labels (0, 1, ... or e0, e1, ...)

The key is the sha256 of the reader's version, the input format and its options and the sha256
of every input file (:func:`~dgl_emu.data.checksums.verified_digest`, which hashes a file only when
it changed), so a changed file is a different key and is parsed again; the folder of its previous
content is then removed. An entry is written into a temporary folder and renamed into place, so
no reader sees half an entry. Only folders holding dgl-emu's ``dgl-emu-cache.json`` are read,
replaced or removed, and of them only the files dgl-emu writes: anything else is left alone.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pyarrow as pa
import torch

from .checksums import cache_dir, verified_digest
from .generated import RangeLabels
from .knowledge_graph import SPLITS, KnowledgeGraph
from .labels import LabelArray
from .report import SplitReport

__all__ = ["CACHE_ENV", "MARKER", "CACHE_FORMAT", "cache_root", "cached_load", "CacheEntry", "entries",
           "remove_entry"]

log = logging.getLogger(__name__)

#: environment variable naming the cache folder
CACHE_ENV = "DGL_EMU_CACHE"
#: the file that marks a folder as a cache entry written by dgl-emu
MARKER = "dgl-emu-cache.json"
#: version of the entries' layout and of the readers that fill them (a change parses again)
CACHE_FORMAT = 1
_LABELS = {"entities": "entities.arrow", "relations": "relations.arrow"}
_OWN_FILES = {MARKER, *_LABELS.values(), *(f"{s}.npy" for s in SPLITS)}


def cache_root() -> Path:
    """``$DGL_EMU_CACHE``, else ``$XDG_CACHE_HOME/dgl-emu/parsed`` (``~/.cache/dgl-emu/parsed``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return cache_dir() / "parsed"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def _read_marker(folder: Path) -> Optional[dict]:
    try:
        meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("written_by") == "dgl-emu" else None


def _labels_to_meta(mapping, folder: Path, what: str) -> dict:
    if isinstance(mapping, RangeLabels):
        return {"range": mapping.prefix, "count": len(mapping)}
    labels = mapping.arrow if isinstance(mapping, LabelArray) else LabelArray(list(mapping)).arrow
    with pa.OSFile(str(folder / _LABELS[what]), "wb") as sink, \
            pa.ipc.new_file(sink, pa.schema([("label", labels.type)])) as writer:
        writer.write_table(pa.table({"label": labels}))
    return {"file": _LABELS[what], "count": len(labels)}


def _labels_from_meta(meta: dict, folder: Path):
    if "range" in meta:
        return RangeLabels(meta["range"], meta["count"])
    table = pa.ipc.open_file(pa.memory_map(str(folder / meta["file"]))).read_all()
    return LabelArray(table.column("label"))


def _write_entry(kg: KnowledgeGraph, folder: Path, meta: dict) -> None:
    """Everything into ``folder`` (a fresh temporary one), the marker last."""
    for split, t in kg.splits.items():
        np.save(folder / f"{split}.npy", t.numpy())
    meta = {**meta, "name": kg.name, "splits": list(kg.splits),
            "entities": _labels_to_meta(kg.entity_to_id, folder, "entities"),
            "relations": _labels_to_meta(kg.relation_to_id, folder, "relations"),
            "reports": {s: asdict(r) for s, r in kg.reports.items()}}
    (folder / MARKER).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _read_entry(folder: Path, meta: dict, name: str) -> KnowledgeGraph:
    # copy-on-write mappings: pages are read when touched, and nothing ever changes the files
    splits = {s: torch.from_numpy(np.load(folder / f"{s}.npy", mmap_mode="c", allow_pickle=False))
              for s in meta["splits"]}
    return KnowledgeGraph(_labels_from_meta(meta["entities"], folder), _labels_from_meta(meta["relations"], folder),
                          splits, name=name, reports={s: SplitReport(**r) for s, r in meta["reports"].items()},
                          origin=f"read from the cache {folder}")


def remove_entry(folder: Path) -> bool:
    """Remove a cache entry: only if it holds dgl-emu's marker, and only the files dgl-emu writes
    (the folder itself only once empty). Returns whether the folder is gone."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or _read_marker(folder) is None:
        return False
    (folder / MARKER).unlink()  # first: a half-removed entry is never read
    for name in _OWN_FILES - {MARKER}:
        p = folder / name
        if p.is_file() and not p.is_symlink():
            p.unlink()
    try:
        folder.rmdir()
    except OSError:  # something else lives there: leave it
        return False
    return True


def cached_load(fmt: str, options: dict, files: Dict[str, Path], build: Callable[[], KnowledgeGraph], *,
                name: str, root: Optional[Path] = None) -> KnowledgeGraph:
    """``build()``'s knowledge graph, from the cache when ``files`` (by role) are unchanged.

    Parameters
    ----------
    fmt : str
        The input format (part of the key).
    options : dict
        Every other choice that changes the result (column order, unseen policy, ...): JSON values.
    files : dict of str to Path
        Every file ``build`` reads, by role (``train``, ``entity_dict``, ...).
    build : callable
        Parses the files.
    name : str
        Name of the graph returned (the cache stores ids, not where they came from).
    root : Path, optional
        The cache folder (default :func:`cache_root`).

    Returns
    -------
    KnowledgeGraph
        Its ``origin`` says whether it was read from the cache or parsed (and cached).
    """
    root = Path(root) if root is not None else cache_root()
    files = {role: Path(p).resolve() for role, p in files.items()}
    sums = {role: verified_digest(p) for role, p in files.items()}
    key = _digest({"cache": CACHE_FORMAT, "format": fmt, "options": options, "files": sums})
    origin = _digest({"format": fmt, "options": options, "paths": {r: str(p) for r, p in files.items()}})
    folder = root / key[:40]
    meta = _read_marker(folder)
    if meta is not None and meta.get("key") == key:
        try:
            return _read_entry(folder, meta, name)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as e:
            log.warning("cache entry %s unreadable (%s): parsing again", folder, e)
    kg = build()
    if folder.exists() and meta is None:
        kg.origin = f"parsed; not cached: {folder} exists and is not dgl-emu's"
        return kg
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:12]}-"))
        _write_entry(kg, tmp, {"written_by": "dgl-emu", "key": key, "origin": origin, "created": time.time(),
                               "format": fmt, "options": options,
                               "files": {r: {"path": str(p), "sha256": sums[r]} for r, p in files.items()}})
        if meta is not None:  # an unreadable entry of ours
            remove_entry(folder)
        os.rename(tmp, folder)
        tmp = None
    except OSError as e:  # no room, no permission, or another process was first: parsed is enough
        kg.origin = f"parsed; not cached ({e})"
        return kg
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for entry in entries(root):  # earlier content of the same files
        if entry.meta.get("origin") == origin and entry.path != folder:
            remove_entry(entry.path)
    kg.origin = f"parsed and cached in {folder}"
    return kg


@dataclass
class CacheEntry:
    """One folder of the cache: where, how many bytes, and its marker's content."""

    path: Path
    bytes: int
    meta: dict

    def current(self) -> bool:
        """Whether every file it was parsed from still has the recorded content."""
        for info in self.meta.get("files", {}).values():
            p = Path(info["path"])
            if not p.is_file() or verified_digest(p) != info["sha256"]:
                return False
        return True


def entries(root: Optional[Path] = None) -> List[CacheEntry]:
    """The entries under ``root`` (default :func:`cache_root`) that dgl-emu wrote."""
    root = Path(root) if root is not None else cache_root()
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        meta = _read_marker(folder) if folder.is_dir() and not folder.is_symlink() else None
        if meta is not None:
            size = sum(p.stat().st_size for p in folder.iterdir() if p.name in _OWN_FILES and p.is_file())
            out.append(CacheEntry(folder, size, meta))
    return out
