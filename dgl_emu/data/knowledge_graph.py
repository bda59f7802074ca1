"""The :class:`KnowledgeGraph`: shared id maps, splits of id triples, and DGL views of them."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import dgl
import torch

from ..typing import Tensor, as_count, as_id_triples
from .columnar import read_dictionary, read_triple_columns
from .encoding import encode_labelled
from .index import FilterIndex
from .io import DataFormatError, PathLike, Triples, read_id_triples, resolve_split_file
from .labels import LabelArray
from .report import SplitReport, UnseenEntityPolicy

__all__ = ["KnowledgeGraph", "UnseenEntityPolicy", "SplitReport", "SPLITS", "count_in_training"]

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")
LabeledTriple = Tuple[str, str, str]


@dataclass
class KnowledgeGraph:
    """A knowledge graph with train/valid/test splits over one shared id space.

    Parameters
    ----------
    entity_to_id : dict of str to int
        Entity label to id ``0..E-1``.
    relation_to_id : dict of str to int
        Relation label to id ``0..R-1``.
    splits : dict of str to Tensor
        Split name (``"train"``, ``"valid"``, ``"test"``) to ``(N, 3)`` int64 ``(h, r, t)`` ids.
    name : str
        Human-readable name.
    reports : dict of str to SplitReport
        What loading found per split.
    negatives : dict, optional
        Given evaluation negatives per split: ``{split: {Target: (N, n) entity ids}}`` (e.g.
        ogbl-wikikg2's 500 per query), used by sampled evaluation.
    origin : str
        Where the ids came from, when it matters to the user (``"read from the cache ..."``).

    Examples
    --------
    >>> kg = KnowledgeGraph.from_labeled_triples(
    ...     {"train": [("a", "r", "b"), ("b", "r", "c")], "test": [("a", "r", "c")]})
    >>> kg.num_entities, kg.num_relations, kg.splits["train"].tolist()
    (3, 1, [[0, 0, 1], [1, 0, 2]])
    >>> kg.heterograph().canonical_etypes
    [('entity', 'r', 'entity')]
    >>> g = kg.graph("train", add_inverse=True)
    >>> g.num_edges(), g.edata[dgl.ETYPE].tolist()
    (4, [0, 0, 1, 1])
    """

    entity_to_id: Dict[str, int]
    relation_to_id: Dict[str, int]
    splits: Dict[str, Tensor]
    name: str = "kg"
    reports: Dict[str, SplitReport] = field(default_factory=dict)
    negatives: Dict[str, dict] = field(default_factory=dict)
    origin: str = ""

    def __post_init__(self):
        if "train" not in self.splits:
            raise ValueError("a KnowledgeGraph needs a 'train' split")
        E, R = self.num_entities, self.num_relations
        for split, t in self.splits.items():
            t = as_id_triples(t, f"split {split!r}")
            if t.numel() and (t.min() < 0 or t[:, [0, 2]].max() >= E or t[:, 1].max() >= R):
                raise ValueError(f"split {split!r} holds ids outside 0..{E - 1} (entities) "
                                 f"or 0..{R - 1} (relations)")
            self.splits[split] = t
        self._cache: Dict[tuple, object] = {}

    # ------------------------------------------------------------------ sizes and labels
    @property
    def num_entities(self) -> int:
        """``E``: the number of entities in the id map (never inferred from ids)."""
        return len(self.entity_to_id)

    @property
    def num_relations(self) -> int:
        """``R``: the number of relations in the id map."""
        return len(self.relation_to_id)

    @property
    def entity_labels(self) -> List[str]:
        """Entity labels indexed by id."""
        return _invert(self.entity_to_id)

    @property
    def relation_labels(self) -> List[str]:
        """Relation labels indexed by id."""
        return _invert(self.relation_to_id)

    def load_report(self) -> Dict[str, dict]:
        """Per split: what loading found (triples, duplicates, unseen kept/dropped, header)."""
        return {s: {**asdict(r), "kept_unseen": r.kept_unseen} for s, r in self.reports.items()}

    def statistics(self) -> Dict[str, int]:
        """Counts: entities, relations and triples per split."""
        stats = {"entities": self.num_entities, "relations": self.num_relations}
        stats.update({split: int(t.shape[0]) for split, t in self.splits.items()})
        return stats

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_labeled_triples(cls, splits: Mapping[str, Sequence[LabeledTriple]], *,
                             unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
                             entity_to_id: Optional[Dict[str, int]] = None,
                             relation_to_id: Optional[Dict[str, int]] = None,
                             name: str = "kg",
                             sources: Optional[Mapping[str, str]] = None) -> "KnowledgeGraph":
        """Build from label triples; ids are assigned in sorted label order unless given.

        Parameters
        ----------
        splits : mapping of str to sequence of (str, str, str)
            Label triples per split; ``"train"`` is required.
        unseen : UnseenEntityPolicy
            Policy for valid/test triples with entities or relations absent from training.
        entity_to_id, relation_to_id : dict, optional
            Fixed id maps (e.g. from ``entities.dict``); a label missing from them is an error.
        name : str
            Name of the graph.
        sources : mapping of str to str, optional
            File name per split, used in error messages.
        """
        sources = dict(sources or {})
        reports = {s: SplitReport(triples=len(t), header=list(t.header) if isinstance(t, Triples) and t.header
                                  else None) for s, t in splits.items()}
        train = splits["train"]
        train_set = set(train)
        train_ents = {h for h, _, _ in train} | {t for _, _, t in train}
        train_rels = {r for _, r, _ in train}
        kept: Dict[str, Sequence[LabeledTriple]] = {}
        for split, triples in splits.items():
            rep = reports[split]
            rep.duplicates = len(triples) - len(set(triples))
            if split != "train":
                ents = {h for h, _, _ in triples} | {t for _, _, t in triples}
                rep.unseen_entities = len(ents - train_ents)
                bad = [(h not in train_ents or t not in train_ents or r not in train_rels)
                       for h, r, t in triples]
                rep.unseen_triples = sum(bad)
                rep.in_train = sum(x in train_set for x in triples)
                if unseen is UnseenEntityPolicy.DROP and rep.unseen_triples:
                    triples = [x for x, b in zip(triples, bad) if not b]
                    rep.dropped = rep.unseen_triples
            if rep.duplicates:
                log.warning("%s: split %r has %d duplicate triples (kept)", name, split, rep.duplicates)
            kept[split] = triples
        if entity_to_id is None:
            labels = set()
            for triples in kept.values():
                labels.update(h for h, _, _ in triples)
                labels.update(t for _, _, t in triples)
            entity_to_id = {e: i for i, e in enumerate(sorted(labels))}
        if relation_to_id is None:
            rels = sorted({r for triples in kept.values() for _, r, _ in triples})
            relation_to_id = {r: i for i, r in enumerate(rels)}
        tensors = {s: _to_ids(t, entity_to_id, relation_to_id, sources.get(s, s),
                              first_line=2 if reports[s].header else 1)
                   for s, t in kept.items()}
        return cls(entity_to_id, relation_to_id, tensors, name=name, reports=reports)

    @classmethod
    def from_files(cls, train: PathLike, valid: Optional[PathLike] = None,
                   test: Optional[PathLike] = None, *, name: Optional[str] = None,
                   unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
                   entities: Optional[PathLike] = None,
                   relations: Optional[PathLike] = None, columns: str = "hrt") -> "KnowledgeGraph":
        """Read labelled TSV files (plain or ``.gz``); optional RotatE-style ``.dict`` id maps.

        The files are read by pyarrow's multi-threaded CSV reader and dictionary-encoded
        (:func:`~dgl_emu.data.columnar.read_triple_columns`, :func:`~dgl_emu.data.encoding.encode_labelled`):
        the ids, splits and reports equal those of :meth:`from_labeled_triples` on
        :func:`~dgl_emu.data.read_labeled_triples`' lists. Given id maps keep every label they hold,
        whether it occurs in a triple or not.

        Parameters
        ----------
        train, valid, test : path-like
            Labelled triple files (``valid`` and ``test`` optional).
        name : str, optional
            Name of the graph (default: the folder of ``train``).
        unseen : UnseenEntityPolicy
            Policy for valid/test triples with entities or relations absent from training.
        entities, relations : path-like, optional
            ``id<TAB>label`` files fixing the ids.
        columns : str
            Order of the fields in the triple files (``hrt``; DGL-KE's ``htr`` ...).
        """
        paths = {s: Path(p) for s, p in zip(SPLITS, (train, valid, test)) if p is not None}
        files = {s: read_triple_columns(p, columns=columns) for s, p in paths.items()}
        ent = read_dictionary(entities) if entities is not None else None
        rel = read_dictionary(relations) if relations is not None else None
        name = name or Path(train).parent.name
        enc = encode_labelled(files, unseen=unseen, entities=ent, relations=rel, name=name)
        del files
        return cls(enc.entities, enc.relations, {s: torch.from_numpy(t) for s, t in enc.splits.items()},
                   name=name, reports=enc.reports)

    @classmethod
    def from_directory(cls, directory: PathLike, *, name: Optional[str] = None,
                       unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP) -> "KnowledgeGraph":
        """Read ``train``/``valid``/``test`` (``.txt`` or ``.txt.gz``) from a directory.

        If ``entities.dict`` and ``relations.dict`` are present (RotatE layout) they fix the ids.
        Only ``train`` is required.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise DataFormatError(f"{directory}: dataset directory does not exist")
        files = {"train": resolve_split_file(directory, "train")}
        for split in ("valid", "test"):
            try:
                files[split] = resolve_split_file(directory, split)
            except DataFormatError:
                pass
        ent, rel = directory / "entities.dict", directory / "relations.dict"
        return cls.from_files(files["train"], files.get("valid"), files.get("test"),
                              name=name or directory.name, unseen=unseen,
                              entities=ent if ent.exists() else None,
                              relations=rel if rel.exists() else None)

    @classmethod
    def from_id_triples(cls, splits: Mapping[str, object], num_entities: int, num_relations: int, *,
                        entity_labels: Optional[Sequence[str]] = None,
                        relation_labels: Optional[Sequence[str]] = None,
                        name: str = "kg") -> "KnowledgeGraph":
        """Build from integer triples (tensors, lists, or paths of ``h<TAB>r<TAB>t`` id files).

        ``num_entities`` and ``num_relations`` are required: they are never inferred from ids.
        Triples must be integers of shape ``(N, 3)``: nothing is reshaped, rounded or cut.

        Raises
        ------
        TypeError, ValueError
            Naming the split, for triples that are not integer ``(N, 3)`` ids in range, or counts
            that are not positive integers.
        """
        num_entities = as_count(num_entities, "num_entities")
        num_relations = as_count(num_relations, "num_relations")
        tensors = {}
        for split, data in splits.items():
            if isinstance(data, (str, Path)):
                t = torch.tensor(read_id_triples(data), dtype=torch.long)
                bad = (t[:, [0, 2]] >= num_entities).any(1) | (t[:, 1] >= num_relations)
                if bad.any():
                    line = int(bad.nonzero()[0]) + 1
                    raise DataFormatError(f"{data}:{line}: id out of range (E={num_entities}, "
                                          f"R={num_relations}): {t[line - 1].tolist()}")
            else:
                t = as_id_triples(data, f"split {split!r}")
            tensors[split] = t
        ents = list(entity_labels) if entity_labels is not None else [str(i) for i in range(num_entities)]
        rels = list(relation_labels) if relation_labels is not None else [str(i) for i in range(num_relations)]
        if len(ents) != num_entities or len(rels) != num_relations:
            raise ValueError("label lists must have num_entities / num_relations entries")
        reports = {s: SplitReport(triples=int(t.shape[0])) for s, t in tensors.items()}
        if "train" in tensors:
            for s, n in count_in_training(tensors, num_entities, num_relations).items():
                reports[s].in_train = n
        return cls({e: i for i, e in enumerate(ents)}, {r: i for i, r in enumerate(rels)}, tensors,
                   name=name, reports=reports)

    @classmethod
    def from_dgl(cls, graph, *, splits: Optional[Mapping[str, Tensor]] = None,
                 name: str = "kg") -> "KnowledgeGraph":
        """Build from a DGL graph or a ``(src, dst, etype)`` tuple of tensors as the train split.

        A heterograph with one node type gives one relation per canonical etype (named by the
        etype); a homogeneous graph needs ``g.edata[dgl.ETYPE]`` (else one relation, ``"0"``).
        ``splits`` may add ``valid``/``test`` id triples in the same id space.
        """
        if isinstance(graph, tuple):
            parts = [torch.as_tensor(x) for x in graph]
            if len(parts) != 3 or any(p.dim() != 1 for p in parts) or len({len(p) for p in parts}) != 1:
                raise ValueError(f"expected (src, dst, etype): three 1-D tensors of one length, got shapes "
                                 f"{[tuple(p.shape) for p in parts]}")
            src, dst, etype = as_id_triples(torch.stack(parts, 1), "(src, dst, etype)").T
            num_nodes = int(max(src.max(), dst.max())) + 1 if src.numel() else 0
            num_rels = int(etype.max()) + 1 if etype.numel() else 1
            rel_names = [str(i) for i in range(num_rels)]
        elif len(graph.ntypes) > 1:
            raise ValueError(f"expected one node type, found {graph.ntypes}")
        elif len(graph.canonical_etypes) > 1 or (dgl.ETYPE not in graph.edata
                                                 and graph.canonical_etypes[0][1] != "_E"):
            rel_names = [et for _, et, _ in graph.canonical_etypes]
            parts = [(*graph.edges(etype=cet), i) for i, cet in enumerate(graph.canonical_etypes)]
            src = torch.cat([p[0] for p in parts])
            dst = torch.cat([p[1] for p in parts])
            etype = torch.cat([torch.full_like(p[0], p[2]) for p in parts])
            num_nodes = graph.num_nodes()
        else:
            src, dst = graph.edges()
            etype = graph.edata.get(dgl.ETYPE, torch.zeros_like(src))
            num_rels = int(etype.max()) + 1 if etype.numel() else 1
            rel_names = [str(i) for i in range(num_rels)]
            num_nodes = graph.num_nodes()
        all_splits = {"train": torch.stack([src, etype.long(), dst], 1)}
        all_splits.update(splits or {})
        return cls.from_id_triples(all_splits, num_nodes, len(rel_names), relation_labels=rel_names,
                                   name=name)

    # ------------------------------------------------------------------ DGL views
    def heterograph(self, split: str = "train") -> dgl.DGLGraph:
        """One canonical etype ``("entity", relation_label, "entity")`` per relation.

        Relations without edges in ``split`` still get an (empty) etype. Each etype's edges carry
        ``edata["relation"]``, the relation id.

        Returns
        -------
        dgl.DGLHeteroGraph
            ``E`` nodes of type ``"entity"``, ``R`` canonical edge types.
        """
        key = ("hetero", split)
        if key not in self._cache:
            t = self.splits[split]
            order = torch.argsort(t[:, 1], stable=True)
            t = t[order]
            counts = torch.bincount(t[:, 1], minlength=self.num_relations).tolist()
            data, start = {}, 0
            for rel, n in zip(self.relation_labels, counts):
                data[("entity", rel, "entity")] = (t[start:start + n, 0], t[start:start + n, 2])
                start += n
            g = dgl.heterograph(data, num_nodes_dict={"entity": self.num_entities})
            for rel, rid in self.relation_to_id.items():
                cet = ("entity", rel, "entity")
                g.edges[cet].data["relation"] = torch.full((g.num_edges(cet),), rid, dtype=torch.long)
            self._cache[key] = g
        return self._cache[key]

    def graph(self, split: str = "train", add_inverse: bool = True) -> dgl.DGLGraph:
        """Homogeneous view for encoders and random walks.

        Parameters
        ----------
        split : str
            Which split's edges to use; encoders must only ever see ``"train"``.
        add_inverse : bool
            Add ``t -> h`` with relation id ``r + R`` for every ``h -r-> t``.

        Returns
        -------
        dgl.DGLGraph
            ``E`` nodes; ``edata[dgl.ETYPE]`` holds relation ids in ``0..2R-1`` (``0..R-1``
            without inverses).
        """
        key = ("homo", split, add_inverse)
        if key not in self._cache:
            t = self.splits[split]
            src, rel, dst = t[:, 0], t[:, 1], t[:, 2]
            if add_inverse:
                src, dst, rel = (torch.cat([src, dst]), torch.cat([dst, src]),
                                 torch.cat([rel, rel + self.num_relations]))
            g = dgl.graph((src, dst), num_nodes=self.num_entities)
            g.edata[dgl.ETYPE] = rel
            self._cache[key] = g
        return self._cache[key]

    def filter_index(self, splits: Iterable[str] = SPLITS) -> FilterIndex:
        """A :class:`FilterIndex` over the union of the given splits (those present)."""
        names = tuple(s for s in splits if s in self.splits)
        key = ("filter", names)
        if key not in self._cache:
            triples = torch.cat([self.splits[s] for s in names]) if names else torch.empty(0, 3)
            self._cache[key] = FilterIndex(triples, self.num_entities, self.num_relations)
        return self._cache[key]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={t.shape[0]}" for s, t in self.splits.items())
        return (f"KnowledgeGraph(name={self.name!r}, entities={self.num_entities}, "
                f"relations={self.num_relations}, {sizes})")


def count_in_training(splits: Mapping[str, Tensor], num_entities: int, num_relations: int) -> Dict[str, int]:
    """Per split other than ``"train"``: how many of its ``(N, 3)`` id triples also occur in
    ``splits["train"]``.

    Examples
    --------
    >>> t = torch.tensor([[0, 0, 1], [1, 0, 2]])
    >>> count_in_training({"train": t, "test": torch.tensor([[0, 0, 1], [2, 0, 0], [0, 0, 1]])}, 3, 1)
    {'test': 2}
    """
    def keys(t: Tensor) -> Tensor:
        t = t.long()
        return (t[:, 0] * num_relations + t[:, 1]) * num_entities + t[:, 2]

    train = splits["train"]
    out = {}
    for split, t in splits.items():
        if split == "train":
            continue
        if num_entities * num_entities * max(num_relations, 1) < 2 ** 63:
            out[split] = int(torch.isin(keys(t), keys(train)).sum()) if len(t) and len(train) else 0
        else:  # ids too large for one int64 key
            known = set(map(tuple, train.tolist()))
            out[split] = sum(tuple(x) in known for x in t.tolist())
    return out


def _invert(mapping: Dict[str, int]) -> List[str]:
    if isinstance(mapping, LabelArray):  # labels already in id order
        return mapping.labels()
    out = [""] * len(mapping)
    for label, i in mapping.items():
        out[i] = label
    return out


def _to_ids(triples: Sequence[LabeledTriple], ent: Dict[str, int], rel: Dict[str, int],
            source: str, first_line: int = 1) -> Tensor:
    out = torch.empty((len(triples), 3), dtype=torch.long)
    try:
        ids = [(ent[h], rel[r], ent[t]) for h, r, t in triples]
    except KeyError:
        for lineno, (h, r, t) in enumerate(triples, start=first_line):
            for label, table, what in ((h, ent, "entity"), (r, rel, "relation"), (t, ent, "entity")):
                if label not in table:
                    raise DataFormatError(f"{source}:{lineno}: unknown {what} {label!r} "
                                          f"(not in the {what} id file)") from None
        raise
    if ids:
        out[:] = torch.tensor(ids, dtype=torch.long)
    return out
