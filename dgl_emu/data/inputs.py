"""Input formats of custom data (``dgl-emu run --train ... --input-format NAME``): a registry, one
reader per layout.

* ``labels``: labelled triples (``head<TAB>relation<TAB>tail``), ids in sorted label order unless
  ``id<TAB>label`` dictionaries fix them: the RotatE code's ``entities.dict`` / ``relations.dict``
  + ``train.txt``, DGL-KE's ``raw_udd_{hrt}`` (and the ``entities.tsv`` it writes).
* ``ids``: integer id triples in tab-separated text, as DGL-KE's ``udd_{hrt}`` lays them out
  (``entities.dict relations.dict train.tsv valid.tsv test.tsv``).
* ``arrays``: NumPy id arrays, OGB-style: per split a ``.npy`` file holding an ``(N, 3)`` integer
  array of ``(h, r, t)`` rows, or a ``.npz`` file holding ``head``, ``relation`` and ``tail``
  (what ``dgl-emu datasets generate`` writes, and the arrays of OGB's split dictionaries).

Formats without labels take the number of entities and relations from dictionaries, or from
``data.entities`` / ``data.relations``: never from the largest id. Every entity of a dictionary
(or of the count) keeps its id, whether it occurs in a triple or not.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..registry import Registry
from .columnar import read_dictionary, read_triple_columns
from .encoding import split_reports
from .generated import RangeLabels
from .io import DataFormatError
from .knowledge_graph import SPLITS, KnowledgeGraph
from .report import UnseenEntityPolicy

__all__ = ["InputFiles", "InputFormat", "INPUT_FORMATS", "LabelledTriples", "IdTriples", "IdArrays", "load_input",
           "read_id_array"]


@dataclass(frozen=True)
class InputFiles:
    """What a custom dataset is read from.

    Attributes
    ----------
    splits : dict of str to Path
        Triple file per split (``train`` required, ``valid`` and ``test`` optional).
    entities, relations : Path, optional
        ``id<TAB>label`` dictionaries (ids exactly ``0..n-1``).
    num_entities, num_relations : int, optional
        Counts for formats without labels, when no dictionary is given (checked against one that is).
    columns : str
        Order of the fields in text triple files (``hrt``, DGL-KE's ``htr``, ...).
    """

    splits: Dict[str, Path]
    entities: Optional[Path] = None
    relations: Optional[Path] = None
    num_entities: Optional[int] = None
    num_relations: Optional[int] = None
    columns: str = "hrt"

    def paths(self) -> Dict[str, Path]:
        """Every file read, by role: the split names, ``entity_dict`` and ``relation_dict``."""
        out = dict(self.splits)
        if self.entities is not None:
            out["entity_dict"] = self.entities
        if self.relations is not None:
            out["relation_dict"] = self.relations
        return out


@dataclass
class InputFormat:
    """One layout of custom data.

    Attributes
    ----------
    name : str
        Its registry name.
    cacheable : bool
        Whether the parsed result is worth the binary cache (:mod:`dgl_emu.data.cache`): text
        yes, arrays that load in a moment no.
    """

    name: str = ""
    cacheable: bool = True
    help: str = field(default="", repr=False)

    def load(self, files: InputFiles, *, unseen: UnseenEntityPolicy, name: str) -> KnowledgeGraph:
        """The knowledge graph of ``files``."""
        raise NotImplementedError


#: input formats by name
INPUT_FORMATS: Registry = Registry("input format")


@INPUT_FORMATS.register("labels")
@dataclass
class LabelledTriples(InputFormat):
    """Labelled triples; ``id<TAB>label`` dictionaries, if given, fix the ids (RotatE, DGL-KE raw_udd)."""

    name: str = "labels"

    def load(self, files: InputFiles, *, unseen: UnseenEntityPolicy, name: str) -> KnowledgeGraph:
        s = files.splits
        return KnowledgeGraph.from_files(s["train"], s.get("valid"), s.get("test"), name=name, unseen=unseen,
                                         entities=files.entities, relations=files.relations,
                                         columns=files.columns)


def _id_map(path: Optional[Path], count: Optional[int], what: str, option: str):
    """Labels from a dictionary, else ``0 .. count-1`` as labels; the two must agree."""
    if path is not None:
        labels = read_dictionary(path)
        if count is not None and count != len(labels):
            raise DataFormatError(f"{path}: {len(labels)} {what} labels, but {option} = {count}")
        return labels
    if count is None:
        raise DataFormatError(f"the number of {what} ids is needed: give an {what} dictionary or {option}")
    return RangeLabels("", count)


def _ids_kg(splits: Dict[str, Tuple[np.ndarray, str, Optional[tuple], int]], files: InputFiles,
            unseen: UnseenEntityPolicy, name: str) -> KnowledgeGraph:
    """A graph of id triples ``{split: (ids (N, 3), source, header, first line)}``: ranges checked
    (naming the file and row), the same report and unseen policy as for labelled triples."""
    ents = _id_map(files.entities, files.num_entities, "entity", "data.entities")
    rels = _id_map(files.relations, files.num_relations, "relation", "data.relations")
    E, R = len(ents), len(rels)
    for split, (t, source, _, first) in splits.items():
        bad = (t[:, 0] >= E) | (t[:, 2] >= E) | (t[:, 1] >= R) | (t < 0).any(1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = f"{source}:{first + i}" if first else f"{source}: row {i}"
            raise DataFormatError(f"{where}: id out of range (E={E}, R={R}): {t[i].tolist()}")
    kept, _, reports = split_reports({s: v[0] for s, v in splits.items()}, {s: v[2] for s, v in splits.items()},
                                     E, R, unseen, name)
    out = {s: torch.from_numpy(np.ascontiguousarray(t, dtype=np.int64)) for s, t in kept.items()}
    return KnowledgeGraph(ents, rels, out, name=name, reports=reports)


@INPUT_FORMATS.register("ids")
@dataclass
class IdTriples(InputFormat):
    """Integer id triples in tab-separated text, as DGL-KE's ``udd_{hrt}`` (dictionaries or counts)."""

    name: str = "ids"

    def load(self, files: InputFiles, *, unseen: UnseenEntityPolicy, name: str) -> KnowledgeGraph:
        splits = {}
        for split, path in files.splits.items():
            f = read_triple_columns(path, ids=True, columns=files.columns)
            t = np.stack([np.asarray(f.table.column(c).to_numpy()) for c in ("head", "relation", "tail")], 1)
            splits[split] = (t, str(path), f.header, f.first_line)
        return _ids_kg(splits, files, unseen, name)


def read_id_array(path: Path) -> np.ndarray:
    """``(N, 3)`` int64 ``(h, r, t)`` rows of a ``.npy`` file (an ``(N, 3)`` integer array) or a
    ``.npz`` file (``head``, ``relation`` and ``tail``: ``(N,)`` integer arrays, OGB's names).

    Raises
    ------
    DataFormatError
        Naming the file, for another suffix, a file NumPy cannot read (pickles are refused), or
        arrays of another shape or type.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file does not exist")
    try:
        if path.suffix == ".npy":
            t = np.load(path, mmap_mode="c", allow_pickle=False)  # copy-on-write: never changes the file
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                missing = {"head", "relation", "tail"} - set(z.files)
                if missing:
                    raise DataFormatError(f"{path}: expected arrays head, relation and tail, "
                                          f"missing {', '.join(sorted(missing))}")
                parts = [np.asarray(z[k]) for k in ("head", "relation", "tail")]
            if any(p.ndim != 1 for p in parts) or len({len(p) for p in parts}) != 1:
                raise DataFormatError(f"{path}: head, relation and tail must be 1-D arrays of one length, "
                                      f"got shapes {[p.shape for p in parts]}")
            bad = [p.dtype for p in parts if p.dtype.kind not in "iu"]
            if bad:
                raise DataFormatError(f"{path}: holds {bad[0]} values, expected integer ids")
            t = np.stack(parts, 1)
        else:
            raise DataFormatError(f"{path}: expected a .npy or .npz file of id arrays")
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a NumPy array file ({e})") from None
    if t.dtype.kind not in "iu":
        raise DataFormatError(f"{path}: holds {t.dtype} values, expected integer ids")
    if t.ndim != 2 or t.shape[1] != 3:
        raise DataFormatError(f"{path}: expected an (N, 3) array of (head, relation, tail) ids, "
                              f"got shape {t.shape}")
    return np.asarray(t, dtype=np.int64)


@INPUT_FORMATS.register("arrays")
@dataclass
class IdArrays(InputFormat):
    """NumPy id arrays (``.npy`` ``(N, 3)`` or ``.npz`` head/relation/tail), as OGB and ``datasets generate``."""

    name: str = "arrays"
    cacheable: bool = False

    def load(self, files: InputFiles, *, unseen: UnseenEntityPolicy, name: str) -> KnowledgeGraph:
        splits = {s: (read_id_array(p), str(p), None, 0) for s, p in files.splits.items()}
        return _ids_kg(splits, files, unseen, name)


def load_input(fmt: str, files: InputFiles, *, unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
               name: Optional[str] = None) -> KnowledgeGraph:
    """Read ``files`` in the input format named ``fmt`` (a name in :data:`INPUT_FORMATS`).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(d / "train.npy", np.array([[0, 0, 1], [1, 1, 3]]))
    >>> kg = load_input("arrays", InputFiles({"train": d / "train.npy"}, num_entities=5, num_relations=2))
    >>> kg.num_entities, kg.splits["train"].tolist()
    (5, [[0, 0, 1], [1, 1, 3]])
    """
    if "train" not in files.splits or set(files.splits) - set(SPLITS):
        raise ValueError(f"splits must be train (required), valid and test, got {sorted(files.splits)}")
    return INPUT_FORMATS.get(fmt)().load(files, unseen=unseen, name=name or Path(files.splits["train"]).parent.name)

