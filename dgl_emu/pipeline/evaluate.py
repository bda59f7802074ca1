"""Evaluation of a model on a split of its knowledge graph (filtered ranks, both sides)."""
from __future__ import annotations

from typing import Optional

import torch

from ..data import KnowledgeGraph
from ..evaluation import EvaluationResult, RankBasedEvaluator, SampledRankBasedEvaluator
from ..models import KGEModel

__all__ = ["evaluate"]


def evaluate(model: KGEModel, kg: KnowledgeGraph, split: str, *, batch_size: int = 512,
             device: torch.device = torch.device("cpu"), graph=None, progress: bool = False,
             evaluator=None, rows: Optional[slice] = None) -> EvaluationResult:
    """Ranks of ``split``, both sides: filtered by train + valid + test, against every entity,
    unless another ``evaluator`` (e.g. :class:`~dgl_emu.evaluation.SampledRankBasedEvaluator`)
    is given; a sampled evaluator uses the dataset's given negatives of ``split`` when it has
    them (:attr:`KnowledgeGraph.negatives`).

    Parameters
    ----------
    model : KGEModel
        Put in eval mode.
    kg : KnowledgeGraph
        Its ``split`` is ranked; its filter index filters.
    split : str
        ``"valid"`` or ``"test"``.
    graph : dgl.DGLGraph, optional
        The training graph of a GNN encoder.
    rows : slice, optional
        Rank only these triples of the split (a data-parallel process's share); default all.

    Returns
    -------
    EvaluationResult
        Ranks of the triples ranked, in the split's order.
    """
    evaluator = evaluator or RankBasedEvaluator(kg.filter_index(), batch_size=batch_size)
    rows = rows if rows is not None else slice(None)
    triples = kg.splits[split][rows]
    extra = {}
    if isinstance(evaluator, SampledRankBasedEvaluator) and split in kg.negatives:
        extra["negatives"] = {t: n[rows] for t, n in kg.negatives[split].items()}
    model.eval()
    with torch.no_grad():
        return evaluator.evaluate(model.scorer(graph), triples, device=device, progress=progress,
                                  num_entities=kg.num_entities, **extra)
