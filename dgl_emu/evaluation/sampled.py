"""Sampled rank-based evaluation (the OGB ``ogbl-wikikg2`` protocol): rank against N negatives.

At millions of entities a full ranking of every query against every entity costs ``Q x E``
scores; OGB ranks each query against 500 given negatives instead, and PyKEEN's
``SampledRankBasedEvaluator`` against sampled ones. Ranks against N negatives are not ranks
against all entities (an MRR of 0.9 against 500 negatives is a different number), so every result
of this evaluator carries its ``protocol`` string.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..data.index import FilterIndex
from ..typing import Target, Tensor
from .evaluator import RankBasedEvaluator, Scorer
from .metrics import EvaluationResult
from .ranks import count_greater_equal, ranks_from_counts

__all__ = ["SampledRankBasedEvaluator"]


class SampledRankBasedEvaluator:
    """Rank each query's true entity among ``num_negatives`` negatives.

    Negatives are given (``negatives`` of :meth:`evaluate`, e.g. ogbl-wikikg2's 500 per query)
    or drawn uniformly, with replacement, from the entities that are neither the true entity nor
    a known answer of the query (``filter_index``), from a seeded generator. With
    ``num_negatives >= E - 1`` every entity is a candidate and the result is exactly
    :class:`~dgl_emu.evaluation.RankBasedEvaluator`'s filtered ranking.

    Parameters
    ----------
    filter_index : FilterIndex
        Known triples, never drawn as negatives.
    num_negatives : int
        ``N`` per query.
    batch_size : int
        Queries per batch.
    seed : int
        Seed of the negatives' generator (each :meth:`evaluate` call starts from it).
    sides, ks
        As for :class:`~dgl_emu.evaluation.RankBasedEvaluator`.
    max_rounds : int
        Redraws of negatives that hit a known answer before giving up.

    Examples
    --------
    >>> import torch
    >>> from dgl_emu.data.index import FilterIndex
    >>> emb = torch.eye(5)
    >>> def scorer(hrt, target, entities=None):
    ...     return emb[hrt[:, target.other.column]] @ emb.T
    >>> scorer.candidates = lambda hrt, target, ids: (emb[hrt[:, target.other.column]].unsqueeze(1) * emb[ids]).sum(-1)
    >>> ev = SampledRankBasedEvaluator(FilterIndex(torch.empty(0, 3, dtype=torch.long), 5, 1), num_negatives=3)
    >>> res = ev.evaluate(scorer, torch.tensor([[0, 0, 0]]), num_entities=5)
    >>> res.get("mrr", side="tail"), res.protocol
    (1.0, 'sampled: 3 uniform negatives per query (known answers excluded), seed 0')
    """

    def __init__(self, filter_index: FilterIndex, num_negatives: int, batch_size: int = 1024, seed: int = 0,
                 sides: Sequence[Target] = (Target.HEAD, Target.TAIL), ks: Sequence[int] = (1, 3, 10),
                 max_rounds: int = 100):
        if num_negatives < 1 or batch_size < 1:
            raise ValueError("num_negatives and batch_size must be positive")
        self.filter_index, self.num_negatives, self.batch_size = filter_index, num_negatives, batch_size
        self.seed, self.sides, self.ks, self.max_rounds = seed, tuple(sides), tuple(ks), max_rounds

    def protocol(self, given: bool) -> str:
        """The label every result carries."""
        if given:
            return "sampled: the dataset's given negatives per query"
        return (f"sampled: {self.num_negatives} uniform negatives per query (known answers excluded), "
                f"seed {self.seed}")

    def _draw(self, hrt: Tensor, target: Target, num_entities: int, gen: torch.Generator) -> Tensor:
        shape = (len(hrt), self.num_negatives)
        neg = torch.randint(0, num_entities, shape, generator=gen, device=gen.device).to(hrt.device)
        for _ in range(self.max_rounds):
            triples = hrt.unsqueeze(1).expand(-1, shape[1], -1).clone()
            triples[..., target.column] = neg
            bad = self.filter_index.contains(triples) | (neg == hrt[:, target.column:target.column + 1])
            if not bad.any():
                return neg
            fresh = torch.randint(0, num_entities, (int(bad.sum()),), generator=gen, device=gen.device)
            neg[bad] = fresh.to(neg.device)
        raise RuntimeError(f"could not draw {self.num_negatives} negatives that are not known answers in "
                           f"{self.max_rounds} rounds")

    @torch.no_grad()
    def evaluate(self, scorer: Scorer, triples: Tensor, *, num_entities: int,
                 negatives: Optional[Dict[Target, Tensor]] = None, device: Optional[torch.device] = None,
                 progress: bool = False) -> EvaluationResult:
        """Ranks of ``triples (N, 3)`` against their negatives, per side.

        ``scorer`` must also have ``candidates(hrt (B, 3), target, ids (B, N)) -> (B, N)``;
        ``negatives`` maps a side to given ``(N, num_negatives)`` ids (else they are drawn).
        """
        if negatives is None and self.num_negatives >= num_entities - 1:  # every entity: the full ranking
            full = RankBasedEvaluator(self.filter_index, batch_size=self.batch_size, sides=self.sides, ks=self.ks)
            result = full.evaluate(scorer, triples, num_entities=num_entities, device=device, progress=progress)
            result.protocol = f"sampled: all {num_entities} entities (known answers excluded) = filtered ranking"
            return result
        triples = triples.to(device) if device is not None else triples
        gen = torch.Generator().manual_seed(self.seed)
        ranks = {}
        bar = tqdm(total=len(self.sides) * len(triples), disable=not progress, desc="evaluate (sampled)",
                   unit="triple", leave=False)
        for target in self.sides:
            greater, equal = [], []
            for start in range(0, len(triples), self.batch_size):
                hrt = triples[start:start + self.batch_size]
                neg = (negatives[target][start:start + len(hrt)].to(hrt.device) if negatives is not None
                       else self._draw(hrt, target, num_entities, gen))
                true = scorer.candidates(hrt, target, hrt[:, target.column:target.column + 1])[:, 0]
                g, e = count_greater_equal(scorer.candidates(hrt, target, neg), true)
                greater.append(g.cpu())
                equal.append(e.cpu())
                bar.update(len(hrt))
            ranks[target] = ranks_from_counts(torch.cat(greater), torch.cat(equal))
        bar.close()
        result = EvaluationResult(ranks=ranks, relations=triples[:, 1].cpu(), ks=self.ks)
        result.protocol = self.protocol(negatives is not None)
        return result
