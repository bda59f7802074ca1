"""A small generated knowledge graph with learnable, compositional structure (no files needed)."""
from __future__ import annotations

from typing import Sequence

import torch

from .knowledge_graph import KnowledgeGraph

__all__ = ["generate_cyclic_kg"]


def generate_cyclic_kg(num_rings: int = 24, ring_size: int = 16,
                       shifts: Sequence[int] = (1, 2, 3, 4, 7), with_mirror: bool = True,
                       split_fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                       name: str = "synthetic") -> KnowledgeGraph:
    """A KG of entities on cyclic rings, with relations that compose.

    Entity ``j`` of ring ``g`` sits at position ``j`` of ``Z_m`` (``m = ring_size``).
    Relation ``shift_k`` links each entity to the one ``k`` steps further on its ring, so
    ``shift_1 ∘ shift_2 = shift_3``; ``mirror`` links position ``j`` to ``-j mod m``
    (an involution). Triples are split at random; every entity and relation occurs in training.

    Parameters
    ----------
    num_rings : int
        Number of rings ``G``; there are ``E = G * m`` entities.
    ring_size : int
        ``m``, entities per ring.
    shifts : sequence of int
        The step of each ``shift_k`` relation.
    with_mirror : bool
        Add the ``mirror`` relation.
    split_fractions : sequence of float
        Fractions of train, valid and test triples.
    seed : int
        Seed of the ``torch.Generator`` that shuffles labels and splits; the same seed gives the
        same graph.
    name : str
        Name of the graph.

    Returns
    -------
    KnowledgeGraph
        ``G * m`` entities, ``len(shifts) + with_mirror`` relations.

    Examples
    --------
    >>> kg = generate_cyclic_kg(num_rings=2, ring_size=4, shifts=(1,), with_mirror=False)
    >>> kg.num_entities, kg.num_relations, sum(t.shape[0] for t in kg.splits.values())
    (8, 1, 8)
    """
    if num_rings < 1 or ring_size < 2 or not shifts:
        raise ValueError("need num_rings >= 1, ring_size >= 2 and at least one shift")
    gen = torch.Generator().manual_seed(seed)
    m = ring_size
    ring = torch.arange(num_rings).repeat_interleave(m)
    pos = torch.arange(m).repeat(num_rings)
    node = torch.arange(num_rings * m)
    relations = [(f"shift_{k}", (pos + k) % m) for k in shifts]
    if with_mirror:
        relations.append(("mirror", (-pos) % m))
    triples = torch.cat([torch.stack([node, torch.full_like(node, r), ring * m + target], 1)
                         for r, (_, target) in enumerate(relations)])
    triples = triples[torch.randperm(len(triples), generator=gen)]
    n_train = int(round(split_fractions[0] * len(triples)))
    n_valid = int(round(split_fractions[1] * len(triples)))
    train, rest = triples[:n_train], triples[n_train:]
    # move held-out triples whose entities are missing from training back into training
    seen = torch.zeros(num_rings * m, dtype=torch.bool)
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    back = ~(seen[rest[:, 0]] & seen[rest[:, 2]])
    train, rest = torch.cat([train, rest[back]]), rest[~back]
    perm = torch.randperm(num_rings * m, generator=gen)
    labels = [f"e{int(p):04d}" for p in perm]  # labels do not reveal ring or position
    splits = {"train": train, "valid": rest[:n_valid], "test": rest[n_valid:]}
    return KnowledgeGraph.from_id_triples(splits, num_rings * m, len(relations),
                                          entity_labels=labels,
                                          relation_labels=[n for n, _ in relations], name=name)
