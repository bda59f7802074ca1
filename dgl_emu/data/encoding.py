"""Labelled triples (Arrow columns) turned into id triples: dictionary encoding, the load report,
the unseen-entity policy.

The ids are those :meth:`KnowledgeGraph.from_labeled_triples
<dgl_emu.data.KnowledgeGraph.from_labeled_triples>` assigns (sorted label order over every kept
split, or the ids of given ``.dict`` files), computed on integer codes with NumPy instead of
Python sets of strings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columnar import ColumnFile
from .io import DataFormatError
from .labels import LabelArray
from .report import SplitReport, UnseenEntityPolicy

__all__ = ["Encoded", "encode_labelled", "triple_keys", "count_unseen", "split_reports"]

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Id triples and their id maps.

    Attributes
    ----------
    entities, relations : LabelArray
        Labels in id order.
    splits : dict of str to numpy.ndarray
        ``(N, 3)`` int64 ``(h, r, t)`` ids per split.
    reports : dict of str to SplitReport
        What loading found per split.
    """

    entities: LabelArray
    relations: LabelArray
    splits: Dict[str, np.ndarray]
    reports: Dict[str, SplitReport]


def _sorted_codes(columns: List[pa.ChunkedArray]) -> Tuple[pa.Array, List[np.ndarray]]:
    """One dictionary over ``columns``: its labels in sorted (code point) order, and each column as
    ``(N,)`` int64 positions in it.

    The columns are concatenated into one array and encoded once: encoding the chunks the CSV
    reader gives and unifying their dictionaries cost 20 s of a 25 s parse of 10M triples (each
    chunk's dictionary holds every label seen before it)."""
    chunks = [c for col in columns for c in col.chunks]
    if not chunks:
        return pa.array([], pa.string()), [np.empty(0, np.int64) for _ in columns]
    size = sum(c.nbytes for c in chunks)
    kind = pa.string() if size < 2 ** 31 - 1 else pa.large_string()  # 32-bit offsets while they fit
    encoded = pc.dictionary_encode(pa.concat_arrays([c.cast(kind) for c in chunks]))
    dictionary = encoded.dictionary.cast(pa.string())
    # UTF-8 byte order is code point order: the order of Python's sorted() on str
    order = np.asarray(pc.array_sort_indices(dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = rank[np.asarray(encoded.indices)]
    bounds = np.cumsum([len(col) for col in columns])[:-1]
    return dictionary.take(pa.array(order)), list(np.split(codes, bounds))


def triple_keys(t: np.ndarray, num_entities: int, num_relations: int) -> np.ndarray:
    """One comparable key per row of ``(N, 3)`` id triples: ``(h R + r) E + t`` as int64 where it
    fits, else the row's bytes.

    Examples
    --------
    >>> triple_keys(np.array([[1, 0, 2]]), 3, 2).tolist()  # (1 * 2 + 0) * 3 + 2
    [8]
    """
    if num_entities * num_entities * max(num_relations, 1) < 2 ** 63:
        return (t[:, 0] * num_relations + t[:, 1]) * num_entities + t[:, 2]
    return np.ascontiguousarray(t, dtype=np.int64).view(np.dtype((np.void, 24))).ravel()


def _distinct_sorted(keys: np.ndarray) -> int:
    """Distinct values of a sorted array."""
    return int(len(keys) > 0) + int(np.count_nonzero(keys[1:] != keys[:-1]))


def _found_sorted(haystack: np.ndarray, needles: np.ndarray) -> int:
    """How many of ``needles`` (with repeats) occur in the sorted ``haystack``."""
    if not len(haystack) or not len(needles):
        return 0
    pos = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return int(np.count_nonzero(haystack[pos] == needles))


def count_unseen(t: np.ndarray, seen_entities: np.ndarray, seen_relations: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows of ``(N, 3)`` id triples with an entity or relation not ``seen``."""
    return ~seen_entities[t[:, 0]] | ~seen_entities[t[:, 2]] | ~seen_relations[t[:, 1]]


def split_reports(splits: Dict[str, np.ndarray], headers: Mapping[str, Optional[tuple]], E: int, R: int,
                  unseen: UnseenEntityPolicy, name: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray],
                                                                  Dict[str, SplitReport]]:
    """What loading found per split (:class:`SplitReport`: duplicates, unseen entities and triples,
    triples also in training), and the kept triples with their rows in the file (``DROP`` removes
    the valid/test triples with an entity or relation absent from training).

    Parameters
    ----------
    splits : dict of str to numpy.ndarray
        ``(N, 3)`` int64 id triples per split, ``"train"`` among them.
    headers : mapping of str to tuple, optional
        A skipped header line per split.
    E, R : int
        Numbers of entity and relation ids.
    unseen : UnseenEntityPolicy
        What to do with valid/test triples unseen in training.
    name : str
        For the duplicate warning.

    Returns
    -------
    kept : dict of str to numpy.ndarray
        ``(N', 3)`` triples kept per split.
    rows : dict of str to numpy.ndarray
        ``(N',)`` their rows in the split.
    reports : dict of str to SplitReport
    """
    train = splits["train"]
    seen_e = np.zeros(E, dtype=bool)
    seen_e[train[:, 0]] = True
    seen_e[train[:, 2]] = True
    seen_r = np.zeros(R, dtype=bool)
    seen_r[train[:, 1]] = True
    train_keys = np.sort(triple_keys(train, E, R))  # sorted once: distinct counts and look-ups by bisection
    kept, rows, reports = {}, {}, {}
    for split, t in splits.items():
        header = headers.get(split)
        rep = SplitReport(triples=len(t), header=list(header) if header else None)
        keys = train_keys if split == "train" else np.sort(triple_keys(t, E, R))
        rep.duplicates = len(t) - _distinct_sorted(keys)
        row = np.arange(len(t))
        if split != "train":
            ents = np.zeros(E, dtype=bool)
            ents[t[:, 0]] = True
            ents[t[:, 2]] = True
            rep.unseen_entities = int((ents & ~seen_e).sum())
            bad = count_unseen(t, seen_e, seen_r)
            rep.unseen_triples = int(bad.sum())
            rep.in_train = _found_sorted(train_keys, keys)
            if unseen is UnseenEntityPolicy.DROP and rep.unseen_triples:
                t, row = t[~bad], row[~bad]
                rep.dropped = rep.unseen_triples
        if rep.duplicates:
            log.warning("%s: split %r has %d duplicate triples (kept)", name, split, rep.duplicates)
        kept[split], rows[split], reports[split] = t, row, rep
    return kept, rows, reports


def _used(kept: Dict[str, np.ndarray], cols: Tuple[int, ...], n: int) -> np.ndarray:
    used = np.zeros(n, dtype=bool)
    for t in kept.values():
        for c in cols:
            used[t[:, c]] = True
    return used


def _map_to(given: LabelArray, labels: pa.Array, kept: Dict[str, np.ndarray], rows: Dict[str, np.ndarray],
            files: Mapping[str, ColumnFile], cols: Tuple[int, ...], what: str) -> np.ndarray:
    """Provisional id -> id of ``given``; a label of a kept triple absent from it is an error naming
    the file and line of its first occurrence."""
    mapping = given.ids_of(labels)
    if (mapping >= 0).all():
        return mapping
    for split, t in kept.items():
        bad = np.zeros(len(t), dtype=bool)
        for c in cols:
            bad |= mapping[t[:, c]] < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            c = next(c for c in cols if mapping[t[i, c]] < 0)
            label = labels[int(t[i, c])].as_py()
            raise DataFormatError(f"{files[split].path}:{files[split].line_of(rows[split][i])}: unknown {what} "
                                  f"{label!r} (not in the {what} id file)")
    return mapping


def encode_labelled(files: Mapping[str, ColumnFile], *, unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
                    entities: Optional[LabelArray] = None, relations: Optional[LabelArray] = None,
                    name: str = "kg") -> Encoded:
    """Id triples of labelled triple files, with the load report.

    Parameters
    ----------
    files : mapping of str to ColumnFile
        Per split (``"train"`` required), string columns ``head``, ``relation``, ``tail``.
    unseen : UnseenEntityPolicy
        ``DROP`` removes valid/test triples with an entity or relation absent from training, and
        the labels that then occur nowhere (unless an id map is given).
    entities, relations : LabelArray, optional
        Given id maps (``.dict`` files): every one of their labels keeps its id, whether it occurs
        in a triple or not; a label absent from them is an error naming the file and line.
    name : str
        For the duplicate warning.

    Returns
    -------
    Encoded
        Without id maps, ids follow sorted label order over the kept splits.
    """
    splits = list(files)
    ent_labels, ent_codes = _sorted_codes([files[s].table.column(c) for s in splits for c in ("head", "tail")])
    rel_labels, rel_codes = _sorted_codes([files[s].table.column("relation") for s in splits])
    ids = {s: np.stack([ent_codes[2 * i], rel_codes[i], ent_codes[2 * i + 1]], 1) for i, s in enumerate(splits)}
    del ent_codes, rel_codes
    kept, rows, reports = split_reports(ids, {s: f.header for s, f in files.items()}, len(ent_labels),
                                        len(rel_labels), unseen, name)
    del ids
    maps = []
    for labels, given, cols, what in ((ent_labels, entities, (0, 2), "entity"), (rel_labels, relations, (1,), "relation")):
        if given is not None:
            maps.append((given, _map_to(given, labels, kept, rows, files, cols, what)))
            continue
        used = _used(kept, cols, len(labels))
        if used.all():
            maps.append((LabelArray(labels), None))
        else:  # labels that occur only in dropped triples
            maps.append((LabelArray(labels.filter(pa.array(used))), np.cumsum(used) - 1))
    (ent_map, ent_ids), (rel_map, rel_ids) = maps
    out = {}
    for split, t in kept.items():
        if ent_ids is not None:
            t[:, 0] = ent_ids[t[:, 0]]
            t[:, 2] = ent_ids[t[:, 2]]
        if rel_ids is not None:
            t[:, 1] = rel_ids[t[:, 1]]
        out[split] = t
    return Encoded(ent_map, rel_map, out, reports)
