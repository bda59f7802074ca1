"""Generated knowledge graphs: a small learnable one (the default of ``dgl-emu run``) and large
random ones with skewed degrees (scale benchmarks). No files needed."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Iterator, Sequence

import torch

from ..typing import Tensor
from .knowledge_graph import KnowledgeGraph, SplitReport

__all__ = ["generate_cyclic_kg", "generate_large_kg", "RangeLabels"]


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


class RangeLabels(Mapping):
    """``{prefix + str(i): i}`` for ``i < n`` without building it: labels of generated graphs with
    millions of entities cost no memory.

    Examples
    --------
    >>> labels = RangeLabels("e", 3)
    >>> len(labels), labels["e2"], list(labels), "e3" in labels
    (3, 2, ['e0', 'e1', 'e2'], False)
    """

    def __init__(self, prefix: str, n: int):
        self.prefix, self.n = prefix, int(n)

    def __getitem__(self, label: str) -> int:
        if isinstance(label, str) and label.startswith(self.prefix) and label[len(self.prefix):].isdigit():
            i = int(label[len(self.prefix):])
            if 0 <= i < self.n and label == f"{self.prefix}{i}":
                return i
        raise KeyError(label)

    def __iter__(self) -> Iterator[str]:
        return (f"{self.prefix}{i}" for i in range(self.n))

    def __len__(self) -> int:
        return self.n


def _zipf_draw(n: int, count: int, skew: float, gen: torch.Generator) -> Tensor:
    """``count`` ids in ``0..n-1`` with P(id) proportional to ``1 / rank(id)^skew``; the ranks are
    a random permutation of the ids, so popular entities are not the low ids."""
    weights = torch.arange(1, n + 1, dtype=torch.float64).pow_(-skew)
    cdf = torch.cumsum(weights, 0)
    cdf /= cdf[-1].clone()
    ranks = torch.searchsorted(cdf, torch.rand(count, generator=gen, dtype=torch.float64)).clamp_(max=n - 1)
    return torch.randperm(n, generator=gen)[ranks]


def generate_large_kg(num_entities: int, num_triples: int, num_relations: int = 200, *,
                      skew: float = 1.0, num_valid: int = 1000, num_test: int = 1000, seed: int = 0,
                      name: str = "large") -> KnowledgeGraph:
    """A random KG of any size whose degrees are skewed like a real KG's (for scale benchmarks).

    Heads and tails are drawn independently with ``P(e) ∝ 1 / rank(e)^skew`` (a Zipf law over a
    random ordering of the entities, as entity degrees roughly follow in Freebase or Wikidata),
    relations likewise. Valid and test triples are drawn the same way among those whose two
    entities occur in training. It has no learnable structure: it measures speed and memory.

    Parameters
    ----------
    num_entities, num_triples, num_relations : int
        ``E``, training triples, ``R``.
    skew : float
        Zipf exponent (0: uniform).
    num_valid, num_test : int
        Evaluation triples.
    seed : int
        Seed of the ``torch.Generator``; the same arguments give the same graph.
    name : str
        Name of the graph.

    Returns
    -------
    KnowledgeGraph
        With labels ``e<i>`` and ``r<i>`` (:class:`RangeLabels`, not stored).

    Examples
    --------
    >>> kg = generate_large_kg(1000, 5000, 10, num_valid=20, num_test=20)
    >>> kg.num_entities, kg.statistics()["train"], kg.statistics()["test"]
    (1000, 5000, 20)
    """
    if num_entities < 2 or num_triples < 1 or num_relations < 1 or skew < 0:
        raise ValueError("need num_entities >= 2, num_triples >= 1, num_relations >= 1, skew >= 0")
    gen = torch.Generator().manual_seed(seed)
    total = num_triples + 2 * (num_valid + num_test)
    triples = torch.stack([_zipf_draw(num_entities, total, skew, gen),
                           _zipf_draw(num_relations, total, skew, gen),
                           _zipf_draw(num_entities, total, skew, gen)], 1)
    train, rest = triples[:num_triples], triples[num_triples:]
    seen = torch.zeros(num_entities, dtype=torch.bool)
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    rest = rest[seen[rest[:, 0]] & seen[rest[:, 2]]]
    splits = {"train": train, "valid": rest[:num_valid], "test": rest[num_valid:num_valid + num_test]}
    return KnowledgeGraph(RangeLabels("e", num_entities), RangeLabels("r", num_relations), splits, name=name,
                          reports={s: SplitReport(triples=len(t)) for s, t in splits.items()})
