"""Training regimes: sampled negatives (with or without EMU), 1vsAll and KvsAll.

* ``negative_sampling``: each positive against ``K`` sampled negatives (the losses of
  :mod:`dgl_emu.losses`, EMU); the default.
* ``1vsall``: softmax cross-entropy of both queries ``(h, r, ?)`` and ``(?, r, t)`` of every
  triple against every entity, the true one the class, with optional label smoothing
  (``(1 - eps)`` on the truth, ``eps / E`` on every entity); with reciprocal relations the
  examples hold both directions and only tail queries are trained.
* ``kvsall``: binary cross-entropy of each distinct query against the multi-hot vector of all
  its known answers in the training split, averaged over the entities (PyKEEN's "LCWA").

Both all-entity regimes score in entity slices with activation checkpointing, so a step holds one
``(B, slice)`` score matrix at a time, not ``(B, E)``. EMU needs sampled negatives: it works
with ``negative_sampling`` only (the configuration refuses the other combinations).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..data.index import FilterIndex
from ..registry import Registry
from ..typing import Target, Tensor

__all__ = ["REGIMES", "Regime", "NegativeSampling", "OneVsAll", "KvsAll"]

#: training regimes by name
REGIMES: Registry = Registry("training regime")


class Regime:
    """What a step trains against; :attr:`all_entities` regimes have no sampler."""

    all_entities: bool = False

    def examples(self, train: Tensor, reciprocal: bool) -> Tensor:
        """The rows a batch is drawn from (default: the training triples)."""
        return train

    def parts(self, rows: Tensor, step: int, reciprocal: bool) -> List[Tuple[Target, Tensor]]:
        """``(target, rows)`` parts of a batch of examples (all-entity regimes)."""
        raise NotImplementedError

    def regularized(self, reps, rows: Tensor, target: Target) -> Tuple[Tensor, ...]:
        """The embeddings the regulariser sees: anchor, relation and the true entity, ``(B, ...)``."""
        return (reps.entity[rows[:, target.other.column]], reps.relation[rows[:, 1]],
                reps.entity[rows[:, target.column]])


@REGIMES.register("negative_sampling")
class NegativeSampling(Regime):
    """Each positive against the sampler's ``K`` negatives (the pipeline's sampler and loss)."""


def _slices(num_entities: int, batch: int, entity_batch_size: Optional[int]) -> List[slice]:
    step = entity_batch_size or max(1, 2 ** 24 // max(1, batch))
    return [slice(s, min(s + step, num_entities)) for s in range(0, num_entities, step)]


def _slice_stats(model, reps, rows: Tensor, target: Target, sl: slice, bce: bool):
    """``(logsumexp or sum of softplus, sum of scores)`` over the entities ``sl``, per row."""
    def stats(entity: Tensor, relation: Tensor):
        scores = model.score_all(type(reps)(entity, relation), rows, target, sl)
        first = F.softplus(scores).sum(1) if bce else torch.logsumexp(scores, 1)
        return first, scores.sum(1)
    return checkpoint(stats, reps.entity, reps.relation, use_reentrant=False)


class _AgainstAllEntities(Regime):
    """What 1vsAll and KvsAll share: label smoothing and entity slices."""

    all_entities = True

    def __init__(self, label_smoothing: float = 0.0, entity_batch_size: Optional[int] = None):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing, self.entity_batch_size = float(label_smoothing), entity_batch_size


@REGIMES.register("1vsall")
class OneVsAll(_AgainstAllEntities):
    """Cross-entropy of every query against all ``E`` entities.

    Parameters
    ----------
    label_smoothing : float
        ``eps`` in ``[0, 1)``.
    entity_batch_size : int, optional
        Entities scored at once (default: ``2**24 / B``).
    """

    def parts(self, rows: Tensor, step: int, reciprocal: bool) -> List[Tuple[Target, Tensor]]:
        """Both queries of every triple (LibKGE's 1vsAll), or its tail query when the relations
        are reciprocal (the examples then hold both directions)."""
        return [(Target.TAIL, rows)] if reciprocal else [(Target.TAIL, rows), (Target.HEAD, rows)]

    def loss(self, model, reps, rows: Tensor, target: Target) -> Tensor:
        """Mean over ``rows (B, 3)`` of ``(1 - eps) (lse - s_true) + eps (lse - mean_e s_e)``."""
        num_entities = reps.entity.shape[0]
        lses, sums = zip(*(_slice_stats(model, reps, rows, target, sl, bce=False)
                           for sl in _slices(num_entities, len(rows), self.entity_batch_size)))
        lse = torch.logsumexp(torch.stack(lses, 1), 1)
        true = model.score_ids(reps, rows, target, rows[:, target.column:target.column + 1])[:, 0]
        eps = self.label_smoothing
        loss = (1 - eps) * (lse - true)
        if eps:
            loss = loss + eps * (lse - torch.stack(sums, 1).sum(1) / num_entities)
        return loss.mean()


@REGIMES.register("kvsall")
class KvsAll(_AgainstAllEntities):
    """Binary cross-entropy of every distinct query against its known answers, over all entities.

    ``loss = mean_b (1/E) sum_e [softplus(s_be) - y_be s_be]`` with ``y`` the multi-hot vector of
    the query's answers in the training split (:meth:`targets`), smoothed to
    ``(1 - eps) y + eps / E``.

    Parameters
    ----------
    label_smoothing : float
        ``eps`` in ``[0, 1)``.
    entity_batch_size : int, optional
        Entities scored at once (default: ``2**24 / B``).
    """

    def __init__(self, label_smoothing: float = 0.0, entity_batch_size: Optional[int] = None):
        super().__init__(label_smoothing, entity_batch_size)
        self.known: Optional[FilterIndex] = None

    def examples(self, train: Tensor, reciprocal: bool) -> Tensor:
        """The distinct queries: ``(h, r, -1)`` for tails, and ``(-1, r, t)`` for heads unless
        reciprocal relations turn head queries into tail queries; the answers of ``train``
        (``(N, 3)``) are kept for :meth:`loss`."""
        train = train.cpu()
        self.known = FilterIndex(train, int(train[:, [0, 2]].max()) + 1, int(train[:, 1].max()) + 1)
        tails = torch.unique(train[:, :2], dim=0)
        out = [torch.cat([tails, torch.full_like(tails[:, :1], -1)], 1)]
        if not reciprocal:
            heads = torch.unique(train[:, 1:], dim=0)
            out.append(torch.cat([torch.full_like(heads[:, :1], -1), heads], 1))
        return torch.cat(out)

    def parts(self, rows: Tensor, step: int, reciprocal: bool) -> List[Tuple[Target, Tensor]]:
        tail = rows[:, 2] < 0
        return [(t, rows[m]) for t, m in ((Target.TAIL, tail), (Target.HEAD, ~tail)) if m.any()]

    def regularized(self, reps, rows: Tensor, target: Target) -> Tuple[Tensor, ...]:
        """Anchor and relation (a query has no single true entity)."""
        return reps.entity[rows[:, target.other.column]], reps.relation[rows[:, 1]]

    @staticmethod
    def targets(known, rows: Tensor, target: Target, num_entities: int) -> Tensor:
        """The ``(B, E)`` multi-hot answers of ``rows`` in the filter index ``known``."""
        y = torch.zeros(len(rows), num_entities)
        r, c = known.known(rows, target)
        y[r.to(y.device), c.to(y.device)] = 1.0
        return y

    def loss(self, model, reps, rows: Tensor, target: Target) -> Tensor:
        """Mean over the queries ``rows (B, 3)`` of the smoothed binary cross-entropy."""
        if self.known is None:
            raise RuntimeError("KvsAll.loss before KvsAll.examples(train): the answers are unknown")
        known = self.known
        num_entities = reps.entity.shape[0]
        softplus, sums = zip(*(_slice_stats(model, reps, rows, target, sl, bce=True)
                               for sl in _slices(num_entities, len(rows), self.entity_batch_size)))
        r, c = known.known(rows, target)
        r, c = r.to(rows.device), c.to(rows.device)
        answer_scores = model.score_ids(reps, rows[r], target, c.unsqueeze(1))[:, 0]
        positive = torch.zeros(len(rows), dtype=answer_scores.dtype, device=rows.device).index_add(0, r, answer_scores)
        eps = self.label_smoothing
        total = torch.stack(softplus, 1).sum(1) - (1 - eps) * positive
        if eps:
            total = total - eps / num_entities * torch.stack(sums, 1).sum(1)
        return (total / num_entities).mean()
