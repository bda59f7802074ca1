"""Uniform and Bernoulli negative sampling."""
from __future__ import annotations

from typing import Optional

import torch

from ..typing import Target, Tensor, as_count
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
    chunk_size : int, optional
        Share negatives: consecutive chunks of ``chunk_size`` positives share one draw of ``K``
        entities (DGL-KE's chunked negatives, PyTorch-BigGraph's batch negatives). A batch of
        ``B`` then touches ``ceil(B / chunk_size) K`` negative rows instead of ``B K``, so the
        step of sparse tables stops growing with the table; each positive still gets ``K``
        uniform negatives (they are no longer independent across the chunk). ``None`` (the
        default) draws for every positive; not with ``exclude_true``.

    Examples
    --------
    >>> s = UniformNegativeSampler(5, 3, exclude_true=True, generator=torch.Generator().manual_seed(0))
    >>> neg = s(torch.tensor([[0, 0, 1], [2, 0, 3]]), Target.TAIL)
    >>> neg.shape, bool((neg != torch.tensor([[1], [3]])).all())
    (torch.Size([2, 3]), True)
    >>> shared = UniformNegativeSampler(100, 4, chunk_size=2, generator=torch.Generator().manual_seed(0))
    >>> neg = shared(torch.zeros(5, 3, dtype=torch.long), Target.TAIL)   # chunks: rows 0-1, 2-3, 4
    >>> neg.shape, torch.equal(neg[0], neg[1]), torch.equal(neg[2], neg[3])
    (torch.Size([5, 4]), True, True)
    """

    def __init__(self, num_entities: int, num_negatives: int, num_relations: Optional[int] = None,
                 exclude_true: bool = False, generator: Optional[torch.Generator] = None, seed: int = 0,
                 chunk_size: Optional[int] = None):
        super().__init__(num_entities, num_negatives, num_relations, generator, seed)
        if chunk_size is not None:
            chunk_size = as_count(chunk_size, "chunk_size")
        if chunk_size is not None and exclude_true:
            raise ValueError("chunk_size shares negatives between positives, so it cannot exclude each "
                             "positive's own entity (exclude_true)")
        self.exclude_true, self.chunk_size = exclude_true, chunk_size

    @property
    def shared_rows(self) -> Optional[int]:
        """``chunk_size``: rows of a batch that share one draw."""
        return self.chunk_size

    def corrupt(self, hrt: Tensor, target: Target) -> Tensor:
        gen = self.generator(hrt.device)
        if self.chunk_size is not None:
            chunks = -(-len(hrt) // self.chunk_size)
            drawn = uniform_ids((chunks, self.num_negatives), self.num_entities, gen, hrt.device)
            return drawn.repeat_interleave(self.chunk_size, dim=0)[:len(hrt)]
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
    num_entities, num_relations, num_negatives, generator, seed, exclude_true, chunk_size
        As in :class:`UniformNegativeSampler` (chunks are formed within each side's triples).

    Examples
    --------
    >>> tr = torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 3]])   # one head, three tails
    >>> s = BernoulliNegativeSampler(tr, num_entities=4, num_relations=1, num_negatives=2)
    >>> s.head_probability(tr[:1]).tolist()                   # tph=3, hpt=1
    [0.75]
    """

    def __init__(self, triples: Tensor, num_entities: int, num_relations: int, num_negatives: int,
                 exclude_true: bool = False, generator: Optional[torch.Generator] = None, seed: int = 0,
                 chunk_size: Optional[int] = None):
        super().__init__(num_entities, num_negatives, num_relations, exclude_true, generator, seed, chunk_size)
        triples = torch.as_tensor(triples, dtype=torch.long)
        self.probabilities = self._head_probabilities(triples, num_relations)

    @classmethod
    def from_kg(cls, kg, num_negatives: int, exclude_true: bool = False,
                generator: Optional[torch.Generator] = None, seed: int = 0,
                chunk_size: Optional[int] = None) -> "BernoulliNegativeSampler":
        """Statistics from ``kg``'s training split (never valid/test)."""
        return cls(kg.splits["train"], kg.num_entities, kg.num_relations, num_negatives, exclude_true,
                   generator, seed, chunk_size)

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
