"""A wrapper that never returns a known positive."""
from __future__ import annotations

from typing import Optional

import torch

from ..data.index import FilterIndex
from ..typing import Target, Tensor, as_count
from .base import NegativeSampler

__all__ = ["FilteredNegativeSampler", "SamplingExhaustedError"]


class SamplingExhaustedError(RuntimeError):
    """No valid negative was found within the allowed number of redraws."""


class FilteredNegativeSampler(NegativeSampler):
    """Redraw negatives of ``base`` that form known triples until none remain.

    Parameters
    ----------
    base : NegativeSampler
        The sampler to filter.
    filter_index : FilterIndex
        Known triples (usually the training split; never evaluation triples in training).
    max_rounds : int
        Redraw rounds before giving up with :class:`SamplingExhaustedError`.

    Examples
    --------
    >>> from dgl_emu.sampling import UniformNegativeSampler
    >>> known = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2]]), 4, 1)
    >>> s = FilteredNegativeSampler(UniformNegativeSampler(4, 8), known)
    >>> sorted(set(s(torch.tensor([[0, 0, 1]]), Target.TAIL).flatten().tolist()))
    [0, 3]
    """

    def __init__(self, base: NegativeSampler, filter_index: FilterIndex, max_rounds: int = 100):
        self.base = base
        self.filter_index = filter_index
        self.max_rounds = as_count(max_rounds, "max_rounds")

    # everything but the redraws is the base sampler's, read through (no copied state)
    num_entities = property(lambda self: self.base.num_entities)
    num_negatives = property(lambda self: self.base.num_negatives)
    num_relations = property(lambda self: self.base.num_relations)
    generators = property(lambda self: self.base.generators)

    def head_probability(self, hrt: Tensor) -> Optional[Tensor]:
        return self.base.head_probability(hrt)

    def _is_known(self, hrt: Tensor, neg: Tensor, target: Target) -> Tensor:
        triples = hrt.unsqueeze(1).expand(-1, neg.shape[1], -1).clone()
        triples[..., target.column] = neg
        return self.filter_index.contains(triples)

    def corrupt(self, hrt: Tensor, target: Target) -> Tensor:
        neg = self.base.corrupt(hrt, target)
        bad = self._is_known(hrt, neg, target)
        for _ in range(self.max_rounds):
            if not bad.any():
                return neg
            rows = bad.any(1)
            fresh = self.base.corrupt(hrt[rows], target)
            neg[rows] = torch.where(bad[rows], fresh, neg[rows])
            bad = self._is_known(hrt, neg, target)
        if bad.any():
            raise SamplingExhaustedError(
                f"{int(bad.sum())} negatives were still known positives after {self.max_rounds} "
                f"redraws; the base sampler cannot avoid them (e.g. an entity whose whole "
                f"neighbourhood is known)")
        return neg

    def __repr__(self) -> str:
        return f"FilteredNegativeSampler({self.base!r})"
