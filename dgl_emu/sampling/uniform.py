"""Uniform and Bernoulli negative sampling."""
from __future__ import annotations

from typing import Optional

import torch

from ..typing import Target, Tensor
from .base import NegativeSampler, uniform_ids

__all__ = ["UniformNegativeSampler", "BernoulliNegativeSampler"]


class UniformNegativeSampler(NegativeSampler):
    """Corrupt the target slot with entities drawn uniformly, unfiltered (as in the EMU paper).

    Parameters
    ----------
    num_entities, num_negatives, num_relations, generator, seed
        As in :class:`~dgl_emu.sampling.base.NegativeSampler`.
    exclude_true : bool
        Never return the triple's own entity: draw from the other ``E - 1`` uniformly.

    Examples
    --------
    >>> s = UniformNegativeSampler(5, 3, exclude_true=True, generator=torch.Generator().manual_seed(0))
    >>> neg = s(torch.tensor([[0, 0, 1], [2, 0, 3]]), Target.TAIL)
    >>> neg.shape, bool((neg != torch.tensor([[1], [3]])).all())
    (torch.Size([2, 3]), True)
    """

    def __init__(self, num_entities: int, num_negatives: int, num_relations: Optional[int] = None,
                 exclude_true: bool = False, generator: Optional[torch.Generator] = None, seed: int = 0):
        super().__init__(num_entities, num_negatives, num_relations, generator, seed)
        self.exclude_true = exclude_true

    def corrupt(self, hrt: Tensor, target: Target) -> Tensor:
        gen = self.generator(hrt.device)
        if not self.exclude_true:
            return uniform_ids((len(hrt), self.num_negatives), self.num_entities, gen, hrt.device)
        ids = uniform_ids((len(hrt), self.num_negatives), self.num_entities - 1, gen, hrt.device)
        true = hrt[:, target.column:target.column + 1]
        return ids + (ids >= true).long()  # skip the true id: uniform over the other E - 1


class BernoulliNegativeSampler(UniformNegativeSampler):
    """Uniform corruption with the side chosen per triple (Wang et al. 2014, "bern").

    The head of a triple with relation ``r`` is corrupted with probability
    ``tph_r / (tph_r + hpt_r)`` (tails per head, heads per tail, from the training triples),
    so 1-to-N relations corrupt heads more often and produce fewer false negatives.
    :meth:`head_probability` exposes it; the trainer splits each batch by the drawn side.

    Parameters
    ----------
    triples : Tensor
        ``(N, 3)`` training triples for the statistics.
    num_entities, num_relations, num_negatives, generator, seed, exclude_true
        As in :class:`UniformNegativeSampler`.

    Examples
    --------
    >>> tr = torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 3]])   # one head, three tails
    >>> s = BernoulliNegativeSampler(tr, num_entities=4, num_relations=1, num_negatives=2)
    >>> s.head_probability(tr[:1]).tolist()                   # tph=3, hpt=1
    [0.75]
    """

    def __init__(self, triples: Tensor, num_entities: int, num_relations: int, num_negatives: int,
                 exclude_true: bool = False, generator: Optional[torch.Generator] = None, seed: int = 0):
        super().__init__(num_entities, num_negatives, num_relations, exclude_true, generator, seed)
        triples = torch.as_tensor(triples, dtype=torch.long)
        self.probabilities = self._head_probabilities(triples, num_relations)

    @classmethod
    def from_kg(cls, kg, num_negatives: int, exclude_true: bool = False,
                generator: Optional[torch.Generator] = None, seed: int = 0) -> "BernoulliNegativeSampler":
        """Statistics from ``kg``'s training split (never valid/test)."""
        return cls(kg.splits["train"], kg.num_entities, kg.num_relations, num_negatives, exclude_true,
                   generator, seed)

    @staticmethod
    def _head_probabilities(triples: Tensor, num_relations: int) -> Tensor:
        n = torch.bincount(triples[:, 1], minlength=num_relations).double()
        # distinct (r, h) and (r, t) pairs give the number of heads and tails per relation
        heads = torch.unique(triples[:, 1] * (triples.max() + 1) + triples[:, 0])
        tails = torch.unique(triples[:, 1] * (triples.max() + 1) + triples[:, 2])
        n_heads = torch.bincount(heads // (triples.max() + 1), minlength=num_relations).double()
        n_tails = torch.bincount(tails // (triples.max() + 1), minlength=num_relations).double()
        tph, hpt = n / n_heads.clamp(min=1), n / n_tails.clamp(min=1)
        prob = tph / (tph + hpt)
        return torch.where(n > 0, prob, torch.full_like(prob, 0.5))

    def head_probability(self, hrt: Tensor) -> Tensor:
        return self.probabilities.to(hrt.device)[hrt[:, 1]]
