"""A finished run, for use: its embeddings, scores and top-k predictions, and their export.

:class:`TrainedRun` loads a run directory (any placement: one process, data-parallel, sharded —
their checkpoints all load into the one-process model; a sharded run's shard set is assembled,
:mod:`dgl_emu.training.shardset`) with its best weights and answers by label or
by id, so nobody needs to reach into ``best.pt`` or know how ids were assigned.
:func:`export_run` writes the tables as ``.npy`` (and TSV or Parquet on request) with the
id -> label maps and a manifest (``dgl-emu export``).
"""
from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..config import ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..nn.encoders.base import Representations
from ..typing import Target, Tensor
from ..utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from .run import load_run

__all__ = ["TrainedRun", "export_run", "EXPORT_FORMATS", "MANIFEST"]

#: the manifest an export writes first and recognises later
MANIFEST = "export.json"

Triple = Tuple[str, str, str]


class TrainedRun:
    """A run's configuration, knowledge graph and model with its best weights, in eval mode.

    Parameters
    ----------
    cfg : RunConfig
        The run's resolved configuration.
    kg : KnowledgeGraph
        Its data and id maps.
    model : KGEModel
        The model with the best validation weights.
    graph : dgl.DGLGraph, optional
        The training graph of a GNN encoder.

    Examples
    --------
    >>> import tempfile
    >>> from dgl_emu.pipeline import run
    >>> out = run(RunConfig(model="distmult", dim=8, steps=20, eval_every=10, progress=False,
    ...                     output=tempfile.mkdtemp())).run_dir
    >>> trained = TrainedRun.load(out)
    >>> trained.entity_embeddings().shape, trained.relation_embeddings().shape
    (torch.Size([384, 8]), torch.Size([6, 8]))
    >>> [p["rank"] for p in trained.predict(head="e0000", relation="shift_1", k=3)]
    [1, 2, 3]
    """

    def __init__(self, cfg: RunConfig, kg: KnowledgeGraph, model: KGEModel, graph=None):
        self.cfg, self.kg, self.model, self.graph = cfg, kg, model.eval(), graph
        self._reps: Optional[Representations] = None

    @classmethod
    def load(cls, run_dir: Union[str, Path], device: Optional[str] = None) -> "TrainedRun":
        """The run in ``run_dir`` (its ``config.yaml`` and ``best.pt``), on ``device`` if given.

        Raises
        ------
        ConfigError, CheckpointError, DataFormatError
            As :func:`~dgl_emu.pipeline.load_run`.
        """
        return cls(*load_run(Path(run_dir), device))

    # ------------------------------------------------------------------ embeddings
    def representations(self) -> Representations:
        """Entity ``(E, d_e)`` and relation ``(R', d_r)`` representations as scoring uses them
        (a GNN's encoder outputs over the training graph; lookup tables themselves)."""
        if self._reps is None:
            self._reps = self.model.encoder.inference(self.graph)
        return self._reps

    def entity_embeddings(self) -> Tensor:
        """``(E, d_e)``, row ``i`` the entity with id ``i`` (:attr:`entity_labels` ``[i]``)."""
        return self.representations().entity.detach()

    def relation_embeddings(self) -> Tensor:
        """``(R', d_r)``, row ``i`` the relation :attr:`relation_labels` ``[i]`` (``R' = 2R`` with
        reciprocal relations: the inverses follow)."""
        return self.representations().relation.detach()

    @property
    def entity_labels(self) -> List[str]:
        """The label of every entity id."""
        return self.kg.entity_labels

    @property
    def relation_labels(self) -> List[str]:
        """The label of every relation id."""
        return self.kg.relation_labels

    def _id(self, label: str, table: Dict[str, int], what: str) -> int:
        if label not in table:
            raise KeyError(f"unknown {what} {label!r} (the run has {len(table)}; e.g. {', '.join(list(table)[:3])})")
        return table[label]

    def triple_ids(self, triples: Sequence[Triple]) -> Tensor:
        """``(N, 3)`` ids of labelled ``(head, relation, tail)`` triples (``KeyError`` naming an
        unknown label)."""
        return torch.tensor([[self._id(h, self.kg.entity_to_id, "entity"),
                              self._id(r, self.kg.relation_to_id, "relation"),
                              self._id(t, self.kg.entity_to_id, "entity")] for h, r, t in triples],
                            dtype=torch.long).view(-1, 3)

    # ------------------------------------------------------------------ scores
    def score(self, triples: Union[Tensor, Sequence[Triple]]) -> Tensor:
        """Scores ``(N,)`` of ``(N, 3)`` id triples or of labelled triples (higher is more plausible)."""
        hrt = triples if isinstance(triples, torch.Tensor) else self.triple_ids(triples)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            return self.model.score_hrt(self.representations(), hrt.to(device)).cpu()

    def predict(self, *, relation: str, head: Optional[str] = None, tail: Optional[str] = None, k: int = 10,
                filtered: bool = True) -> List[Dict[str, object]]:
        """The top ``k`` completions of ``(head, relation, ?)`` or ``(?, relation, tail)``: rank,
        entity label, id and score; ``filtered`` leaves out the entities that already complete a
        known triple (train, valid or test)."""
        if (head is None) == (tail is None):
            raise ValueError("give exactly one of head and tail")
        target = Target.TAIL if head is not None else Target.HEAD
        q = torch.zeros(1, 3, dtype=torch.long)
        q[0, target.other.column] = self._id(head if head is not None else tail, self.kg.entity_to_id, "entity")
        q[0, 1] = self._id(relation, self.kg.relation_to_id, "relation")
        device = next(self.model.parameters()).device
        with torch.no_grad():
            scores = self.model.score_all(self.representations(), q.to(device), target).cpu()[0]
        if filtered:
            _, cols = self.kg.filter_index().known(q, target)
            scores[cols] = float("-inf")
        top = torch.topk(scores, min(k, int(torch.isfinite(scores).sum())))
        labels = self.entity_labels
        return [{"rank": i + 1, "entity": labels[j], "id": j, "score": float(s)}
                for i, (s, j) in enumerate(zip(top.values.tolist(), top.indices.tolist()))]


def _owned(out: Path, names: Sequence[str]) -> None:
    """Refuse to overwrite files of ``out`` that an earlier export did not write."""
    manifest = out / MANIFEST
    earlier = set(json.loads(manifest.read_text())["files"]) if manifest.exists() else set()
    foreign = [n for n in names if (out / n).exists() and n not in earlier]
    if foreign:
        raise ConfigError(f"output: {out} holds {foreign[0]}, which no dgl-emu export wrote; choose another "
                          f"directory", "output")


def _npy(labels: Sequence[str], table: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, table, allow_pickle=False)
    return buf.getvalue()


def _tsv(labels: Sequence[str], table: np.ndarray) -> bytes:
    return "".join(f"{label}\t" + "\t".join(f"{v:.9g}" for v in row) + "\n"
                   for label, row in zip(labels, table)).encode("utf-8")


def _parquet(labels: Sequence[str], table: np.ndarray) -> bytes:
    import pyarrow as pa  # start-up cost: pyarrow, only for Parquet exports
    import pyarrow.parquet as pq  # start-up cost, as above
    columns = {"id": pa.array(np.arange(len(labels))), "label": pa.array(list(labels)),
               "embedding": pa.FixedSizeListArray.from_arrays(pa.array(table.reshape(-1)), table.shape[1])}
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue().to_pybytes()


#: formats of :func:`export_run`: file name pattern and writer of a table with its labels
EXPORT_FORMATS = {"npy": ("{}.npy", _npy), "tsv": ("{}.emb.tsv", _tsv), "parquet": ("{}.parquet", _parquet)}


def export_run(run: TrainedRun, out: Union[str, Path], formats: Sequence[str] = ("npy",)) -> List[Path]:
    """Write ``run``'s entity and relation embeddings and id -> label maps into ``out``.

    Always ``entities.tsv`` and ``relations.tsv`` (``id <TAB> label``, id order) and
    :data:`MANIFEST` (run, model, shapes, formats); per format ``entities.npy`` /
    ``relations.npy`` (float32, row ``i`` = id ``i``), ``entities.emb.tsv`` / ``relations.emb.tsv``
    (``label <TAB> v1 <TAB> v2 ...``) or ``entities.parquet`` / ``relations.parquet`` (columns
    ``id``, ``label``, ``embedding``). Files are written atomically; files of ``out`` that no
    earlier export wrote are never overwritten.

    Returns
    -------
    list of Path
        The files written, the manifest last.
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ConfigError(f"format: {unknown[0]!r} is not one of {', '.join(EXPORT_FORMATS)}", "format")
    out = Path(out)
    tables = {"entities": (run.entity_labels, run.entity_embeddings().float().cpu().numpy()),
              "relations": (run.relation_labels, run.relation_embeddings().float().cpu().numpy())}
    files = [f"{kind}.tsv" for kind in tables] + [EXPORT_FORMATS[f][0].format(kind) for f in formats for kind in tables]
    _owned(out, files + [MANIFEST])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, (labels, table) in tables.items():
        atomic_write_text(out / f"{kind}.tsv", "".join(f"{i}\t{label}\n" for i, label in enumerate(labels)))
        written.append(out / f"{kind}.tsv")
        for fmt in formats:
            pattern, write = EXPORT_FORMATS[fmt]
            path = out / pattern.format(kind)
            atomic_write_bytes(path, write(labels, table))
            written.append(path)
    atomic_write_json(out / MANIFEST, {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": run.kg.name, "model": run.cfg.model.name, "encoder": run.cfg.encoder.name,
        "entities": list(tables["entities"][1].shape), "relations": list(tables["relations"][1].shape),
        "representations": "lookup tables" if not run.cfg.gnn else "encoder outputs over the training graph",
        "ids": "row i of every table is id i; entities.tsv and relations.tsv give each id's label",
        "formats": list(formats),
        "files": [p.name for p in written] + [MANIFEST]})
    return written + [out / MANIFEST]
