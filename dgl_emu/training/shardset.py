"""Shard sets: the tables of a checkpoint that its processes hold in shards, written by each.

When a table is split between processes (the entity table of sharded training), a checkpoint is
not gathered into one file: every process writes its own rows of each sharded table (the
weights, and the optimiser's state of those rows) with their ids, and the writing process writes
the rest of the checkpoint (``best.pt`` / ``last.pt``) with a *reference* in the place of each
sharded table and the set's manifest. Beside ``NAME.pt``::

    NAME.shards/step-000030/manifest.json                     what is where (below)
    NAME.shards/step-000030/rank-00000.ids.npy                (n_0,) int64: the rows' entity ids
    NAME.shards/step-000030/rank-00000.entity.npy             (n_0, d) the rows
    NAME.shards/step-000030/rank-00000.entity.adagrad.0.npy   (n_0, d) their Adagrad sums
    NAME.shards/step-000030/rank-00001.ids.npy                ... one set of files per process

The manifest (in ``manifest.json`` and in ``NAME.pt``, key ``"shards"``) gives the step, every
table's whole shape and dtype, and per process its rank, what its placement says of it (e.g.
its partition), its number of rows and, per file, the name, shape, dtype and SHA-256. Every
file is a ``.npy`` written atomically and read without pickle (``allow_pickle=False``); the
files of a checkpoint go into a new ``step-N`` folder, ``NAME.pt`` is replaced last (the
commit: a process killed before it leaves the previous checkpoint whole), and the older step
folders are removed after it, file by file, only the names this module writes.

Which tables are sharded, and which rows each process writes, is the placement's choice
(:class:`ShardedTables`); readers need only the manifest: :meth:`ShardSet.assemble` gives a
whole table in one process (``dgl-emu evaluate``, ``predict``, ``export``), :meth:`ShardSet.rows`
the rows of any ids (a sharded process reading its own, whatever wrote them).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..typing import Tensor
from ..utils import atomic_write_json, atomic_write_stream

__all__ = ["ShardedTables", "ShardSet", "ShardSetError", "reference", "references", "write_shard", "commit",
           "shard_folder", "open_shard_set", "resolve", "remove_shard_folder", "MANIFEST", "FORMAT"]

#: the manifest file of a step folder
MANIFEST = "manifest.json"
#: the manifest's ``format``
FORMAT = "dgl-emu shard set"
_VERSION = 1
#: the key of a reference: ``{"shard_table": NAME}`` stands where a sharded table would be
_REF = "shard_table"
_STEP = re.compile(r"step-\d{6,}")
_FILE = re.compile(r"rank-\d{5,}\.[\w.-]+\.npy|" + re.escape(MANIFEST))
_TEMPORARY = re.compile(r"\.(rank-\d{5,}\.[\w.-]+\.npy|" + re.escape(MANIFEST) + r")\.\w{6,}")
_HASH_CHUNK = 1 << 24


class ShardSetError(RuntimeError):
    """A shard set is incomplete, altered (a checksum differs) or does not fit what reads it."""


def reference(name: str) -> Dict[str, str]:
    """What a checkpoint holds in the place of the sharded table ``name``.

    Examples
    --------
    >>> reference("entity")
    {'shard_table': 'entity'}
    """
    return {_REF: name}


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_REF), str)


def references(state: Any) -> List[str]:
    """The names of the sharded tables referred to anywhere in ``state`` (nested dicts and lists).

    Examples
    --------
    >>> references({"model": {"encoder.entity": reference("entity")}, "optimizer": [1, reference("entity.adagrad.0")]})
    ['entity', 'entity.adagrad.0']
    """
    if _is_reference(state):
        return [state[_REF]]
    if isinstance(state, dict):
        return [n for v in state.values() for n in references(v)]
    if isinstance(state, (list, tuple)):
        return [n for v in state for n in references(v)]
    return []


class ShardedTables:
    """The tables of a model that the processes of a run hold in shards: an interface.

    A placement that shards tables gives its trainer an implementation (e.g.
    :class:`dgl_emu.sharded.checkpoint.StoreTables`); the trainer then writes and reads its
    checkpoints as shard sets. Every process calls every method (they may wait for each other).
    """

    def excluded(self) -> ContextManager:
        """Within it, the model's and the optimiser's ``state_dict`` hold :func:`reference` s in the
        place of the sharded tables (and do not gather them)."""
        raise NotImplementedError

    def ids(self) -> Tensor:
        """``(n,)`` the ids of this process's rows (the same rows of every table), distinct; the
        processes' together are every row once."""
        raise NotImplementedError

    def shard(self, name: str) -> Tensor:
        """``(n, d)`` this process's rows of the table ``name``, in the order of :meth:`ids`."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What the manifest says of this process besides its rank and rows (JSON values)."""
        return {}

    def load(self, shards: "ShardSet", names: Sequence[str]) -> None:
        """Write this process's rows of the tables ``names`` from ``shards`` into its tables."""
        raise NotImplementedError


class _Hashing:
    """A binary file that hashes what is written through it."""

    def __init__(self, file):
        self.file, self.hash = file, hashlib.sha256()

    def write(self, data) -> int:
        self.hash.update(data)
        return self.file.write(data)


def _write_npy(path: Path, array: np.ndarray) -> str:
    """Write ``array`` to ``path`` (``.npy``, atomically, in pieces); returns its SHA-256."""
    digest = {}

    def write(f):
        out = _Hashing(f)
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
        digest["sha256"] = out.hash.hexdigest()
    atomic_write_stream(path, write)
    return digest["sha256"]


def _file_record(path: Path, array: np.ndarray) -> dict:
    return {"file": path.name, "shape": list(array.shape), "dtype": str(array.dtype), "sha256": _write_npy(path, array)}


def write_shard(folder: Path, rank: int, tables: ShardedTables, names: Sequence[str]) -> dict:
    """Write this process's rows of the tables ``names`` into ``folder``; returns its record for
    the manifest (its rank, rows, :meth:`~ShardedTables.describe` and files)."""
    ids = tables.ids().to(torch.long).cpu().numpy()
    prefix = f"rank-{rank:05d}"
    record = {"rank": rank, "rows": int(len(ids)), **tables.describe(),
              "ids": _file_record(folder / f"{prefix}.ids.npy", ids), "tables": {}}
    for name in names:
        rows = tables.shard(name).detach().cpu()
        if rows.shape[0] != len(ids):
            raise ValueError(f"table {name}: {rows.shape[0]} rows for {len(ids)} ids")
        record["tables"][name] = _file_record(folder / f"{prefix}.{name}.npy", rows.numpy())
    return record


def commit(path: Path, state: dict, step: int, records: Sequence[dict], save) -> dict:
    """Finish a shard-set checkpoint (the writing process, once every process wrote its shard).

    Writes the manifest of ``records`` into the step folder, then ``save(path, state)`` with the
    manifest under ``"shards"`` (the commit), then removes the older step folders of
    ``NAME.shards``. Returns the manifest.
    """
    folder = _folder(path, step)
    tables = {}
    for name in records[0]["tables"]:
        parts = [r["tables"][name] for r in records]
        tables[name] = {"shape": [sum(r["rows"] for r in records), *parts[0]["shape"][1:]], "dtype": parts[0]["dtype"]}
    manifest = {"format": FORMAT, "version": _VERSION, "step": int(step), "checkpoint": path.name,
                "folder": str(folder.relative_to(path.parent)), "processes": len(records), "tables": tables,
                "shards": sorted(records, key=lambda r: r["rank"])}
    atomic_write_json(folder / MANIFEST, manifest)
    save(path, {**state, "shards": manifest})
    parent = folder.parent
    for old in parent.iterdir():
        if old.name != folder.name and _STEP.fullmatch(old.name) and old.is_dir() and not old.is_symlink():
            _remove_files(old)
    return manifest


def _folder(path: Path, step: int) -> Path:
    """The step folder of checkpoint ``path`` at ``step``."""
    return path.parent / f"{path.stem}.shards" / f"step-{int(step):06d}"


def shard_folder(path: Path, step: int) -> Path:
    """Where the processes write their shards of checkpoint ``path`` (e.g. ``run/last.pt``) at ``step``."""
    return _folder(Path(path), step)


def _remove_files(folder: Path) -> bool:
    """Remove the files this module writes from ``folder``, then ``folder`` when nothing else is
    in it; returns whether it is gone."""
    for entry in folder.iterdir():
        if (_FILE.fullmatch(entry.name) or _TEMPORARY.fullmatch(entry.name)) and not entry.is_dir():
            entry.unlink()
    with contextlib.suppress(OSError):  # something dgl-emu did not write is in it: left alone
        folder.rmdir()
        return True
    return False


def remove_shard_folder(folder: Path) -> bool:
    """Remove a ``NAME.shards`` folder's step folders and files, only what this module writes;
    returns whether the folder is gone (it stays, with what else it holds, otherwise)."""
    folder = Path(folder)
    for entry in folder.iterdir():
        if _STEP.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            _remove_files(entry)
    with contextlib.suppress(OSError):
        folder.rmdir()
        return True
    return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class ShardSet:
    """The shard set of a checkpoint, for reading: tables whole or the rows of any ids.

    Parameters
    ----------
    folder : Path
        The step folder.
    manifest : dict
        Its manifest (the checkpoint's copy).

    Every file is checked against the manifest's SHA-256, shape and dtype before its first use,
    and read as a memory map without pickle.
    """

    def __init__(self, folder: Path, manifest: dict):
        if manifest.get("format") != FORMAT or manifest.get("version") != _VERSION:
            raise ShardSetError(f"{folder}: not a {FORMAT} of version {_VERSION}")
        self.folder, self.manifest = Path(folder), manifest
        self._checked: set = set()

    @property
    def step(self) -> int:
        return int(self.manifest["step"])

    @property
    def names(self) -> List[str]:
        """The tables of the set."""
        return list(self.manifest["tables"])

    def shape(self, name: str) -> tuple:
        """The whole table's shape."""
        return tuple(self.manifest["tables"][name]["shape"])

    def _array(self, record: dict) -> np.ndarray:
        path = self.folder / record["file"]
        if path.name not in self._checked:
            if not path.is_file():
                raise ShardSetError(f"{path}: missing (the shard set of {self.manifest['checkpoint']} at step "
                                    f"{self.step} lists it)")
            if _sha256(path) != record["sha256"]:
                raise ShardSetError(f"{path}: its SHA-256 differs from the manifest's (altered or truncated)")
            self._checked.add(path.name)
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise ShardSetError(f"{path}: not a readable .npy ({e})") from None
        if list(array.shape) != record["shape"] or str(array.dtype) != record["dtype"]:
            raise ShardSetError(f"{path}: {array.dtype} {list(array.shape)}, the manifest says {record['dtype']} "
                                f"{record['shape']}")
        return array

    def _shards(self, name: str) -> List[dict]:
        if name not in self.manifest["tables"]:
            raise ShardSetError(f"{self.folder}: no table {name!r} (it holds {', '.join(self.names)})")
        return list(self.manifest["shards"])

    def assemble(self, name: str) -> Tensor:
        """The whole table ``name``, ``(E, d)``, row ``i`` the id ``i``.

        Raises
        ------
        ShardSetError
            When a file is missing or altered, or the shards do not cover every row once.
        """
        shape = self.shape(name)
        out = torch.empty(shape, dtype=getattr(torch, self.manifest["tables"][name]["dtype"]))
        seen = torch.zeros(shape[0], dtype=torch.long)
        for shard in self._shards(name):
            ids = torch.from_numpy(np.array(self._array(shard["ids"])))
            out[ids] = torch.from_numpy(np.array(self._array(shard["tables"][name])))
            seen.index_add_(0, ids, torch.ones_like(ids))
        if not bool((seen == 1).all()):
            bad = int((seen != 1).nonzero()[0])
            raise ShardSetError(f"{self.folder}: the shards of {name} hold row {bad} {int(seen[bad])} times, not once")
        return out

    def rows(self, name: str, ids: Tensor, prefer: Optional[int] = None) -> Tensor:
        """``(n, d)`` the rows of the distinct ids ``ids (n,)`` of table ``name``, read from the
        shards that hold them; the shard of rank ``prefer`` is read first, and when it holds
        every id, alone (a process that resumes with the same partitioning reads its own files
        only)."""
        ids = ids.to(torch.long).cpu()
        shape = self.shape(name)
        out = torch.empty((len(ids), *shape[1:]), dtype=getattr(torch, self.manifest["tables"][name]["dtype"]))
        where = torch.full((shape[0],), -1, dtype=torch.long)
        where[ids] = torch.arange(len(ids))
        missing = torch.ones(len(ids), dtype=torch.bool)
        for shard in sorted(self._shards(name), key=lambda s: s["rank"] != prefer):
            if not bool(missing.any()):
                break
            pos = where[torch.from_numpy(np.array(self._array(shard["ids"])))]
            take = pos >= 0
            if bool(take.any()):
                rows = self._array(shard["tables"][name])
                out[pos[take]] = torch.from_numpy(np.array(rows[take.numpy()]))
                missing[pos[take]] = False
        if bool(missing.any()):
            raise ShardSetError(f"{self.folder}: no shard of {name} holds row {int(ids[missing][0])}")
        return out


def open_shard_set(checkpoint: Path, state: dict) -> Optional[ShardSet]:
    """The shard set a checkpoint ``state`` (read from ``checkpoint``) refers to, or ``None``."""
    manifest = state.get("shards")
    if manifest is None:
        return None
    if not isinstance(manifest, dict) or "folder" not in manifest:
        raise ShardSetError(f"{checkpoint}: its shard-set manifest is not readable")
    folder = Path(checkpoint).parent / manifest["folder"]
    on_disk = folder / MANIFEST
    if on_disk.is_file() and json.loads(on_disk.read_text(encoding="utf-8")) != manifest:
        raise ShardSetError(f"{on_disk}: differs from the manifest in {checkpoint}")
    return ShardSet(folder, manifest)


def resolve(state: Any, shards: ShardSet) -> Any:
    """``state`` with every :func:`reference` replaced by the whole table (:meth:`ShardSet.assemble`)."""
    if _is_reference(state):
        return shards.assemble(state[_REF])
    if isinstance(state, dict):
        return {k: resolve(v, shards) for k, v in state.items()}
    if isinstance(state, list):
        return [resolve(v, shards) for v in state]
    if isinstance(state, tuple):
        return tuple(resolve(v, shards) for v in state)
    return state
