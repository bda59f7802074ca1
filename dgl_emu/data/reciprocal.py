"""Reciprocal relations: every relation ``r`` gets an inverse ``r + R`` and every training triple
``(h, r, t)`` its inverse ``(t, r + R, h)``.

With them a model answers head queries ``(?, r, t)`` as tail queries ``(t, r + R, ?)``
(:class:`~dgl_emu.models.KGEModel` with ``reciprocal_offset = R``) and trains on tail queries
only. This changes the model: the relation table has ``2R`` rows, and a head query no longer uses
``r``'s own embedding (Lacroix et al. 2018; Dettmers et al. 2018).
"""
from __future__ import annotations

import torch

from .knowledge_graph import KnowledgeGraph

__all__ = ["with_reciprocal_relations", "RECIPROCAL_SUFFIX"]

#: appended to a relation's label to name its inverse
RECIPROCAL_SUFFIX = "^-1"


def with_reciprocal_relations(kg: KnowledgeGraph) -> KnowledgeGraph:
    """``kg`` with ``2R`` relations and a training split holding both directions of each triple.

    Validation and test triples are unchanged (queries are mapped when scored), so metrics stay
    comparable with a model without reciprocal relations.

    Parameters
    ----------
    kg : KnowledgeGraph
        ``E`` entities, ``R`` relations, training triples ``(N, 3)``.

    Returns
    -------
    KnowledgeGraph
        ``E`` entities, ``2R`` relations (``r + R`` labelled ``label^-1``), training triples
        ``(2N, 3)``: the ``N`` given ones, then their inverses in the same order.

    Examples
    --------
    >>> kg = KnowledgeGraph.from_labeled_triples({"train": [("a", "likes", "b")]})
    >>> rec = with_reciprocal_relations(kg)
    >>> rec.relation_labels, rec.splits["train"].tolist()
    (['likes', 'likes^-1'], [[0, 0, 1], [1, 1, 0]])
    """
    R = kg.num_relations
    labels = kg.relation_labels
    inverse = [label + RECIPROCAL_SUFFIX for label in labels]
    if set(inverse) & set(labels):
        raise ValueError(f"relation labels already end in {RECIPROCAL_SUFFIX!r}: is this graph "
                         f"reciprocal already?")
    train = kg.splits["train"]
    flipped = torch.stack([train[:, 2], train[:, 1] + R, train[:, 0]], 1)
    splits = {**kg.splits, "train": torch.cat([train, flipped])}
    relations = {label: i for i, label in enumerate(labels + inverse)}
    return KnowledgeGraph(kg.entity_to_id, relations, splits, name=kg.name, reports=dict(kg.reports),
                          negatives=dict(kg.negatives), origin=kg.origin)
