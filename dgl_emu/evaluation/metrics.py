"""Rank-based metrics: MR, MRR and Hits@k, per side and per tie policy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import torch

from ..typing import Target, Tensor
from .ranks import TiePolicy

__all__ = ["rank_metrics", "EvaluationResult", "SIDES", "FULL_PROTOCOL"]

SIDES = ("head", "tail", "both")
#: the protocol of :class:`~dgl_emu.evaluation.RankBasedEvaluator`'s results
FULL_PROTOCOL = "filtered: every entity ranked, known answers excluded"


def rank_metrics(ranks: Tensor, ks: Sequence[int] = (1, 3, 10)) -> Dict[str, float]:
    """MR, MRR and Hits@k of a vector of ranks.

    Parameters
    ----------
    ranks : Tensor
        ``(N,)`` 1-based ranks (fractional for the realistic policy).
    ks : sequence of int
        Cut-offs for Hits@k (a rank counts if ``rank <= k``).

    Examples
    --------
    >>> rank_metrics(torch.tensor([1., 2., 4.]), ks=(1, 3))
    {'mr': 2.3333333333333335, 'mrr': 0.5833333333333334, 'hits@1': 0.3333333333333333, 'hits@3': 0.6666666666666666, 'count': 3}
    """
    ranks = ranks.double()
    if ranks.numel() == 0:
        return {"mr": float("nan"), "mrr": float("nan"), **{f"hits@{k}": float("nan") for k in ks},
                "count": 0}
    out = {"mr": ranks.mean().item(), "mrr": ranks.reciprocal().mean().item()}
    out.update({f"hits@{k}": (ranks <= k).double().mean().item() for k in ks})
    out["count"] = int(ranks.numel())
    return out


@dataclass
class EvaluationResult:
    """Ranks of every evaluated query and the metrics derived from them.

    Attributes
    ----------
    ranks : dict
        ``{Target: {TiePolicy: Tensor (N,)}}`` for each evaluated side.
    relations : Tensor
        ``(N,)`` relation id of each evaluated triple.
    ks : tuple of int
        Hits@k cut-offs.
    protocol : str
        What the ranks are against, stated in every :meth:`metrics` (full filtered ranking, or
        a sampled protocol: see :class:`~dgl_emu.evaluation.SampledRankBasedEvaluator`).
    """

    ranks: Dict[Target, Dict[TiePolicy, Tensor]]
    relations: Tensor
    ks: Sequence[int] = (1, 3, 10)
    extra: Dict[str, float] = field(default_factory=dict)
    protocol: str = FULL_PROTOCOL

    def _side_ranks(self, side: str, policy: TiePolicy, mask: Optional[Tensor] = None) -> Tensor:
        sides = [t for t in self.ranks if side in ("both", t.value)]
        parts = [self.ranks[t][policy] if mask is None else self.ranks[t][policy][mask] for t in sides]
        return torch.cat(parts) if parts else torch.empty(0)

    def metrics(self, mask: Optional[Tensor] = None) -> Dict[str, object]:
        """Nested ``{side: {policy: {metric: value}}}`` with sides head, tail and both, and the
        ``"protocol"`` the ranks were computed under."""
        out: Dict[str, object] = {side: {p.value: rank_metrics(self._side_ranks(side, p, mask), self.ks)
                                         for p in TiePolicy}
                                  for side in SIDES if side == "both" or Target(side) in self.ranks}
        out["protocol"] = self.protocol
        return out

    def get(self, metric: str = "mrr", side: str = "both",
            policy: TiePolicy = TiePolicy.REALISTIC) -> float:
        """One number, by default the headline realistic MRR over both sides."""
        return rank_metrics(self._side_ranks(side, policy), self.ks)[metric]

    def per_relation(self, relation_labels: Optional[Sequence[str]] = None) -> Dict[str, dict]:
        """Metrics restricted to each relation present in the evaluated triples."""
        out = {}
        for rel in torch.unique(self.relations).tolist():
            name = relation_labels[rel] if relation_labels is not None else str(rel)
            out[name] = self.metrics(self.relations == rel)
        return out

    def to_dict(self) -> dict:
        """JSON-ready metrics (no ranks)."""
        return {"metrics": self.metrics(), **self.extra}
