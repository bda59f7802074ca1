"""Filtered rank-based evaluation, vectorised and chunked over queries and entities."""
from __future__ import annotations

from typing import Optional, Protocol, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..data.index import FilterIndex
from ..typing import Target, Tensor, as_count
from .metrics import EvaluationResult
from .ranks import count_greater_equal, ranks_from_counts

__all__ = ["RankBasedEvaluator", "Scorer"]


class Scorer(Protocol):
    """Anything that scores queries against all (or a slice of all) entities.

    ``scorer(hrt (B, 3), target, entities: slice | None) -> (B, E)`` or ``(B, stop - start)``.
    """

    def __call__(self, hrt: Tensor, target: Target, entities: Optional[slice] = None) -> Tensor: ...


class RankBasedEvaluator:
    """Filtered link-prediction evaluation with optimistic, pessimistic and realistic ranks.

    For each side, each batch of queries is scored against every entity; the true entity's
    score is read from that same matrix; known positives from ``filter_index`` (and the true
    entity itself) are excluded; ranks count the candidates strictly above and tied with it.

    Parameters
    ----------
    filter_index : FilterIndex, optional
        Known triples to filter out (usually train + valid + test); ``None`` for raw ranks.
    batch_size : int
        Queries per score matrix.
    entity_batch_size : int, optional
        Score entities in slices of this size (two passes: true scores, then counts). Default:
        chosen from ``max_scores`` when ``num_entities`` is given to :meth:`evaluate`.
    max_scores : int
        Memory budget in scores: a ``(batch_size, E)`` matrix larger than this is scored in
        entity slices of ``max_scores // batch_size`` (default ``2**26``, 256 MB of float32).
    sides : sequence of Target
        Sides to evaluate.
    ks : sequence of int
        Hits@k cut-offs.

    Examples
    --------
    >>> import torch
    >>> emb = torch.eye(3)
    >>> def scorer(hrt, target, entities=None):
    ...     return emb[hrt[:, target.other.column]] @ emb.T   # entity scores itself 1, others 0
    >>> ev = RankBasedEvaluator(filter_index=None)
    >>> res = ev.evaluate(scorer, torch.tensor([[0, 0, 0], [1, 0, 2]]))
    >>> res.get("mrr", side="tail")   # ranks 1 and 2 (realistic: tie of 2 zeros -> 2.5)
    0.7
    """

    def __init__(self, filter_index: Optional[FilterIndex], batch_size: int = 1024,
                 entity_batch_size: Optional[int] = None,
                 sides: Sequence[Target] = (Target.HEAD, Target.TAIL),
                 ks: Sequence[int] = (1, 3, 10), max_scores: int = 2 ** 26):
        batch_size, max_scores = as_count(batch_size, "batch_size"), as_count(max_scores, "max_scores")
        if entity_batch_size is not None:
            entity_batch_size = as_count(entity_batch_size, "entity_batch_size")
        self.filter_index = filter_index
        self.batch_size = batch_size
        self.entity_batch_size = entity_batch_size
        self.max_scores = max_scores
        self.sides = tuple(sides)
        self.ks = tuple(ks)

    @torch.no_grad()
    def evaluate(self, scorer: Scorer, triples: Tensor, *, num_entities: Optional[int] = None,
                 device: Optional[torch.device] = None, progress: bool = False) -> EvaluationResult:
        """Rank every triple of ``triples`` on every side.

        Parameters
        ----------
        scorer : Scorer
            Returns ``(B, E)`` scores; see :class:`Scorer`.
        triples : Tensor
            ``(N, 3)`` triples to rank.
        num_entities : int, optional
            ``E``; needed for entity slices (``entity_batch_size``, or chosen from ``max_scores``).
        device : torch.device, optional
            Where queries are sent (the scorer's device).
        progress : bool
            Show a tqdm bar.

        Returns
        -------
        EvaluationResult
        """
        triples = triples.to(device) if device is not None else triples
        chunk = self.entity_batch_size
        if chunk is None and num_entities is not None and self.batch_size * num_entities > self.max_scores:
            chunk = max(1, self.max_scores // self.batch_size)
        ranks = {}
        bar = tqdm(total=len(self.sides) * len(triples), disable=not progress, desc="evaluate",
                   unit="triple", leave=False)
        for target in self.sides:
            parts = []
            for start in range(0, len(triples), self.batch_size):
                hrt = triples[start:start + self.batch_size]
                parts.append(self._batch_counts(scorer, hrt, target, num_entities, chunk))
                bar.update(len(hrt))
            greater = torch.cat([p[0] for p in parts]).cpu()
            equal = torch.cat([p[1] for p in parts]).cpu()
            ranks[target] = ranks_from_counts(greater, equal)
        bar.close()
        return EvaluationResult(ranks=ranks, relations=triples[:, 1].cpu(), ks=self.ks)

    def _excluded(self, hrt: Tensor, target: Target) -> Tuple[Tensor, Tensor]:
        rows = torch.arange(len(hrt), device=hrt.device)
        true = hrt[:, target.column]
        if self.filter_index is None:
            return rows, true
        f_rows, f_cols = self.filter_index.known(hrt, target)
        return torch.cat([rows, f_rows.to(hrt.device)]), torch.cat([true, f_cols.to(hrt.device)])

    def _batch_counts(self, scorer: Scorer, hrt: Tensor, target: Target,
                      num_entities: Optional[int], chunk: Optional[int]) -> Tuple[Tensor, Tensor]:
        true = hrt[:, target.column]
        rows = torch.arange(len(hrt), device=hrt.device)
        ex_rows, ex_cols = self._excluded(hrt, target)
        if chunk is None:
            scores = scorer(hrt, target, None)
            true_scores = scores[rows, true.to(scores.device)].clone()
            _check(true_scores)
            return count_greater_equal(scores, true_scores, (ex_rows, ex_cols))
        if num_entities is None:
            raise ValueError("entity_batch_size needs num_entities")
        chunks = [slice(s, min(s + chunk, num_entities)) for s in range(0, num_entities, chunk)]
        true_scores = None
        for sl in chunks:  # pass 1: true scores, read from the chunk that holds them
            scores = scorer(hrt, target, sl)
            if true_scores is None:
                true_scores = torch.empty(len(hrt), dtype=scores.dtype, device=scores.device)
            inside = (true >= sl.start) & (true < sl.stop)
            true_scores[inside] = scores[rows[inside], true[inside] - sl.start]
        _check(true_scores)
        greater = torch.zeros(len(hrt), dtype=torch.long, device=true_scores.device)
        equal = torch.zeros_like(greater)
        for sl in chunks:  # pass 2: counts
            scores = scorer(hrt, target, sl)
            inside = (ex_cols >= sl.start) & (ex_cols < sl.stop)
            g, e = count_greater_equal(scores, true_scores,
                                       (ex_rows[inside], ex_cols[inside] - sl.start))
            greater += g
            equal += e
        return greater, equal


def _check(true_scores: Tensor) -> None:
    if torch.isnan(true_scores).any():
        raise ValueError("a true score is NaN; the model produced invalid scores")
