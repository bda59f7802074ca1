"""Filtered ranks when the entity table is split between processes: each ranks against its own rows.

A process holds ``own_rows (n, d)``, the rows of the entities ``own_ids (n,)`` (its shard); the
shards of all processes cover every entity once. For a batch of queries, every process scores the
queries against its own rows only; the true entity's score is taken from the process that holds
it (in that process's matrix, as :class:`~.evaluator.RankBasedEvaluator` takes it from the full
matrix) and shared by summing; every process counts its candidates above and tied with it,
leaving out its known positives, and the counts are summed. So no process ever holds the table,
and the ranks are those of the full matrix.

The sums go through ``reduce_sum`` (``torch.distributed.all_reduce`` between processes; the
identity in one), so this module needs no process group itself.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from ..data.index import FilterIndex
from ..typing import Target, Tensor
from .metrics import EvaluationResult
from .ranks import count_greater_equal, ranks_from_counts

__all__ = ["ShardRanker"]

#: ``reduce_sum(t) -> t`` summed over the processes (in place or not)
ReduceSum = Callable[[Tensor], Tensor]


class ShardRanker:
    """Ranks of queries against every entity, from the shard of rows this process holds.

    Parameters
    ----------
    interaction : Interaction
        Scores candidates: ``interaction.score_all(h, r, t, candidates, target) -> (B, n)``.
    own_ids : Tensor
        ``(n,)`` the entity ids of this process's rows (distinct; all processes together: each
        of ``0..E-1`` once).
    own_rows : Tensor
        ``(n, d)`` their representations.
    num_entities : int
        ``E``.
    filter_index : FilterIndex, optional
        Known triples to leave out (``None``: raw ranks).
    batch_size : int
        Queries per score matrix.
    max_scores : int
        Scores per matrix: the shard is scored in slices of ``max_scores // batch_size`` rows.
    sides, ks
        As :class:`~.evaluator.RankBasedEvaluator`.

    Examples
    --------
    Two shards of a 4-entity table, ranked in one process (the sums done by hand):

    >>> from dgl_emu.nn.interactions import DistMult
    >>> table, rel = torch.tensor([[1.], [2.], [3.], [4.]]), torch.tensor([[1.]])
    >>> shards = [ShardRanker(DistMult(dim=1), ids, table[ids], 4) for ids in (torch.tensor([0, 3]), torch.tensor([1, 2]))]
    >>> hrt = torch.tensor([[0, 0, 1]])                              # (e0, r0, e1): scores 1 2 3 4
    >>> true = sum(s.true_scores(table[hrt[:, 0]], rel[hrt[:, 1]], hrt, Target.TAIL) for s in shards)
    >>> counts = [s.counts(table[hrt[:, 0]], rel[hrt[:, 1]], hrt, Target.TAIL, true) for s in shards]
    >>> [sum(c[i] for c in counts).tolist() for i in (0, 1)]         # e2, e3 above; none tied
    [[2], [0]]
    """

    def __init__(self, interaction, own_ids: Tensor, own_rows: Tensor, num_entities: int,
                 filter_index: Optional[FilterIndex] = None, batch_size: int = 512, max_scores: int = 2 ** 26,
                 sides: Sequence[Target] = (Target.HEAD, Target.TAIL), ks: Sequence[int] = (1, 3, 10)):
        if own_ids.dim() != 1 or own_rows.dim() != 2 or len(own_ids) != len(own_rows):
            raise ValueError(f"own_ids (n,) and own_rows (n, d) must match, got {tuple(own_ids.shape)} and "
                             f"{tuple(own_rows.shape)}")
        self.interaction, self.own_rows, self.filter_index = interaction, own_rows, filter_index
        self.local = torch.full((num_entities,), -1, dtype=torch.long)   # entity id -> own row, or -1
        self.local[own_ids.long().cpu()] = torch.arange(len(own_ids))
        self.batch_size, self.sides, self.ks = batch_size, tuple(sides), tuple(ks)
        self.slice_rows = max(1, max_scores // batch_size)

    def _scores(self, anchor: Tensor, relation: Tensor, target: Target, rows: slice) -> Tensor:
        """``(B, rows)`` scores of the queries against own rows ``rows``."""
        h, t = (None, anchor) if target is Target.HEAD else (anchor, None)
        return self.interaction.score_all(h, relation, t, self.own_rows[rows], target)

    def _slices(self):
        n = len(self.own_rows)
        return [slice(s, min(s + self.slice_rows, n)) for s in range(0, n, self.slice_rows)]

    def true_scores(self, anchor: Tensor, relation: Tensor, hrt: Tensor, target: Target) -> Tensor:
        """``(B,)`` the true entities' scores that this shard holds, 0 elsewhere (summed over the
        shards: every true score, from the matrix of the shard that holds it).

        ``anchor (B, d)`` and ``relation (B, d_r)`` are the queries' rows (the kept side's entity
        and the relation), whichever shard holds them.
        """
        mine = self.local[hrt[:, target.column].cpu()]
        out = torch.zeros(len(hrt), dtype=self.own_rows.dtype)
        for sl in self._slices():
            inside = (mine >= sl.start) & (mine < sl.stop)
            if inside.any():
                scores = self._scores(anchor, relation, target, sl).cpu()
                out[inside] = scores[inside.nonzero().squeeze(1), mine[inside] - sl.start]
        return out

    def counts(self, anchor: Tensor, relation: Tensor, hrt: Tensor, target: Target, true: Tensor):
        """``(greater, equal)`` ``(B,)``: this shard's candidates above and tied with ``true``, its
        known positives (and the true entity) left out."""
        rows = torch.arange(len(hrt))
        cols = hrt[:, target.column].cpu()
        if self.filter_index is not None:
            f_rows, f_cols = self.filter_index.known(hrt.cpu(), target)
            rows, cols = torch.cat([rows, f_rows]), torch.cat([cols, f_cols])
        local = self.local[cols]
        greater = torch.zeros(len(hrt), dtype=torch.long)
        equal = torch.zeros_like(greater)
        for sl in self._slices():
            inside = (local >= sl.start) & (local < sl.stop)
            scores = self._scores(anchor, relation, target, sl).cpu()
            g, e = count_greater_equal(scores, true.to(scores.dtype), (rows[inside], local[inside] - sl.start))
            greater += g
            equal += e
        return greater, equal

    @torch.no_grad()
    def evaluate(self, triples: Tensor, query_rows: Callable[[Tensor], Tensor], relations: Tensor,
                 reduce_sum: ReduceSum) -> EvaluationResult:
        """Ranks of ``triples (N, 3)`` on every side, the same in every process.

        Parameters
        ----------
        triples : Tensor
            ``(N, 3)`` entity and relation ids.
        query_rows : callable
            ``query_rows(ids (n,)) -> (n, d)`` the rows of any entities (pulled from the shards
            that hold them).
        relations : Tensor
            ``(R', d_r)`` the relation table (every process holds it).
        reduce_sum : callable
            Sums a tensor over the processes.
        """
        ranks = {}
        for target in self.sides:
            greater, equal = [], []
            for start in range(0, len(triples), self.batch_size):
                hrt = triples[start:start + self.batch_size]
                anchor = query_rows(hrt[:, target.other.column])
                rel = relations[hrt[:, 1]]
                true = reduce_sum(self.true_scores(anchor, rel, hrt, target))
                g, e = self.counts(anchor, rel, hrt, target, true)
                greater.append(reduce_sum(g))
                equal.append(reduce_sum(e))
            ranks[target] = ranks_from_counts(torch.cat(greater), torch.cat(equal))
        return EvaluationResult(ranks=ranks, relations=triples[:, 1].cpu(), ks=self.ks)
