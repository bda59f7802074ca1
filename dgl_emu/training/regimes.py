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
``(B, slice)`` score matrix at a time, not ``(B, E)``. Every scoring call of a part (each slice,
the true entities' scores, and each slice's recomputation in the backward pass) draws the
interaction's random numbers from the same state: an interaction with dropout (TuckER, ConvE)
scores the part with one mask per query, as the published 1-N scoring does. EMU needs sampled negatives: it works
with ``negative_sampling`` only (the configuration refuses the other combinations).

A regime owns its whole batch path: the examples a batch is drawn from (:meth:`Regime.examples`),
the parts a batch is cut into, each with its side and its negatives if it has any
(:meth:`Regime.parts`), and the loss of a part (:meth:`Regime.scorer`). The trainer and the step
never ask which regime they hold.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..data.index import FilterIndex
from ..registry import Registry
from ..rng import load_rng_states, rng_states
from ..sampling.base import NegativeSampler
from ..typing import Sharing, Target, Tensor

__all__ = ["REGIMES", "Regime", "Part", "NegativeSampling", "OneVsAll", "KvsAll", "alternating_target",
           "split_by_side"]

#: training regimes by name; the builder gives each the run's ``reciprocal`` setting and, to
#: regimes that take one (:attr:`Regime.uses_sampler`), the negative sampler
REGIMES: Registry = Registry("training regime", context=("sampler", "reciprocal"))


class Part(NamedTuple):
    """One side of a batch: the queries of one :class:`~dgl_emu.typing.Target`.

    Attributes
    ----------
    target : Target
        The corrupted (or queried) side.
    rows : Tensor
        ``(n, 3)`` triples (or queries with ``-1`` on the queried side).
    negatives : Tensor, optional
        ``(n, K)`` negative entity ids of sampled-negative regimes; ``None`` when the part is
        scored against every entity.
    sharing : Sharing
        How consecutive rows share their negatives (the sampler's chunks).
    """

    target: Target
    rows: Tensor
    negatives: Optional[Tensor] = None
    sharing: Sharing = Sharing()

    def take(self, rows: slice) -> "Part":
        """The part's ``rows`` (a data-parallel process's share), negatives alike.

        >>> Part(Target.TAIL, torch.zeros(4, 3), torch.ones(4, 2)).take(slice(1, 3)).negatives.shape
        torch.Size([2, 2])
        """
        return Part(self.target, self.rows[rows], None if self.negatives is None else self.negatives[rows],
                    self.sharing.take(rows))


#: ``score(part) -> scalar loss`` of one step (see :meth:`Regime.scorer`)
PartLoss = Callable[[Part], Tensor]


def alternating_target(step: int) -> Target:
    """Side of step ``step`` when batches alternate: tails on even steps, heads on odd."""
    return Target.TAIL if step % 2 == 0 else Target.HEAD


def split_by_side(hrt: Tensor, step: int, sampler: NegativeSampler,
                  generator: torch.Generator) -> Iterator[Tuple[Target, Tensor]]:
    """Yield ``(target, rows)`` parts of a batch.

    Batches alternate sides, unless the sampler gives per-triple head probabilities
    (Bernoulli); then each triple's side is drawn with ``generator`` and the batch is split.
    """
    prob = sampler.head_probability(hrt)
    if prob is None:
        yield alternating_target(step), hrt
        return
    head = torch.rand(len(hrt), generator=generator, device=generator.device).to(hrt.device) < prob
    for target, rows in ((Target.HEAD, head), (Target.TAIL, ~head)):
        if rows.any():
            yield target, hrt[rows]


class Regime:
    """What a step trains against.

    Capabilities, asked instead of names: :attr:`all_entities` (every entity is scored, no
    sampler) and :attr:`uses_sampler` (the regime draws negatives with the run's sampler).

    Parameters
    ----------
    reciprocal : bool
        Train tail queries only: the training triples hold every triple in both directions, the
        inverse of ``r`` being ``r + R`` (:func:`dgl_emu.data.with_reciprocal_relations`).
    """

    all_entities: bool = False
    uses_sampler: bool = False

    def __init__(self, reciprocal: bool = False):
        self.reciprocal = bool(reciprocal)

    def check(self, model) -> None:
        """Refuse a model this regime cannot train (raises :class:`ValueError`)."""

    def examples(self, train: Tensor) -> Tensor:
        """The rows a batch is drawn from (default: the training triples ``(N, 3)``)."""
        return train

    def parts(self, rows: Tensor, step: int, generator: torch.Generator, objective) -> List[Part]:
        """The parts of a batch of examples ``rows (B, 3)`` at ``step``, every random draw for all
        of its rows (data-parallel processes then take their share of each part)."""
        raise NotImplementedError

    def scorer(self, objective, batches, generator: torch.Generator) -> PartLoss:
        """The loss of each part of one step: ``score(part) -> scalar``, the mean over the part's
        rows. The encoder runs once per step, at the first part scored."""
        raise NotImplementedError

    def regularized(self, reps, rows: Tensor, target: Target) -> Tuple[Tensor, ...]:
        """The embeddings the regulariser sees: anchor, relation and the true entity, ``(B, ...)``."""
        return (reps.entity[rows[:, target.other.column]], reps.relation[rows[:, 1]],
                reps.entity[rows[:, target.column]])

    def rng_state(self) -> Optional[dict]:
        """The state of the regime's random draws (its sampler's), for checkpoints."""
        return None

    def load_rng_state(self, state: Optional[dict]) -> None:
        """Restore :meth:`rng_state`."""


@REGIMES.register("negative_sampling")
class NegativeSampling(Regime):
    """Each positive against the sampler's ``K`` negatives, with the objective's loss (and EMU).

    Batches alternate sides (or the sampler draws each triple's side: Bernoulli); with
    reciprocal relations every part is a tail part. When the objective keeps the plain and the
    EMU pass's negatives apart (``separate_negatives``) each part gets two independent draws of
    ``K``, concatenated.

    Parameters
    ----------
    sampler : NegativeSampler
        Draws the negatives.
    reciprocal : bool
        As for :class:`Regime`.
    """

    uses_sampler = True

    def __init__(self, sampler: NegativeSampler, reciprocal: bool = False):
        super().__init__(reciprocal)
        if sampler is None:
            raise ValueError("training with sampled negatives needs a sampler")
        self.sampler = sampler

    def parts(self, rows: Tensor, step: int, generator: torch.Generator, objective) -> List[Part]:
        sides = [(Target.TAIL, rows)] if self.reciprocal else split_by_side(rows, step, self.sampler, generator)
        sharing = Sharing(self.sampler.shared_rows or 1)
        out = []
        for target, mine in sides:
            negatives = self.sampler(mine, target)
            if objective.separate_negatives:  # a second, independent draw for the EMU pass
                negatives = torch.cat([negatives, self.sampler(mine, target)], 1)
            out.append(Part(target, mine, negatives, sharing))
        return out

    def scorer(self, objective, batches, generator: torch.Generator) -> PartLoss:
        gather = None

        def score(part: Part) -> Tensor:
            nonlocal gather
            gather = gather or batches.gatherer(objective.model, generator)
            return objective.loss_of(gather(part.rows, part.negatives, part.target, part.sharing), part.target)

        return score

    def rng_state(self) -> Optional[dict]:
        return self.sampler.rng_state()

    def load_rng_state(self, state: Optional[dict]) -> None:
        self.sampler.load_rng_state(state)


def _slices(num_entities: int, batch: int, entity_batch_size: Optional[int]) -> List[slice]:
    step = entity_batch_size or max(1, 2 ** 24 // max(1, batch))
    return [slice(s, min(s + step, num_entities)) for s in range(0, num_entities, step)]


class _OneDraw:
    """The random numbers of one part's scoring: every call inside :meth:`draw` starts the
    interaction's streams (its dropout masks) from the state they had when the part began; after
    the first call the streams stand where one draw leaves them, and a later call (another slice,
    the true entities' scores, a recomputation in the backward pass, however many parts later)
    leaves them where it found them."""

    def __init__(self, module):
        self.module, self.start, self.after = module, rng_states(module), None

    @contextlib.contextmanager
    def draw(self):
        resume = rng_states(self.module)
        load_rng_states(self.module, self.start)
        try:
            yield
        finally:
            if self.after is None:
                self.after = resume = rng_states(self.module)
            load_rng_states(self.module, resume)

    def contexts(self):
        """``context_fn`` of :func:`~torch.utils.checkpoint.checkpoint`: the forward pass and its
        recomputation draw alike."""
        return self.draw(), self.draw()


def _slice_stats(model, reps, rows: Tensor, target: Target, sl: slice, bce: bool, draws: _OneDraw):
    """``(logsumexp or sum of softplus, sum of scores)`` over the entities ``sl``, per row."""
    def stats(entity: Tensor, relation: Tensor):
        scores = model.score_all(type(reps)(entity, relation), rows, target, sl)
        first = F.softplus(scores).sum(1) if bce else torch.logsumexp(scores, 1)
        return first, scores.sum(1)
    return checkpoint(stats, reps.entity, reps.relation, use_reentrant=False, context_fn=draws.contexts)


class _AgainstAllEntities(Regime):
    """What 1vsAll and KvsAll share: label smoothing, entity slices, the step's scorer."""

    all_entities = True

    def __init__(self, label_smoothing: float = 0.0, entity_batch_size: Optional[int] = None,
                 reciprocal: bool = False):
        super().__init__(reciprocal)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing, self.entity_batch_size = float(label_smoothing), entity_batch_size

    def check(self, model) -> None:
        if model.encoder.sparse_parameters():
            raise ValueError("an all-entity regime scores every row of the tables each step; "
                             "sparse tables bring nothing there (set encoder.sparse to false)")

    def scorer(self, objective, batches, generator: torch.Generator) -> PartLoss:
        reps = None

        def score(part: Part) -> Tensor:
            nonlocal reps
            reps = reps if reps is not None else batches.representations(objective.model)
            loss = self.loss(objective.model, reps, part.rows, part.target)
            penalty = objective.batch_penalty(*self.regularized(reps, part.rows, part.target))
            return loss if penalty is None else loss + penalty

        return score

    def loss(self, model, reps, rows: Tensor, target: Target) -> Tensor:  # pragma: no cover
        """Mean loss of the queries ``rows (B, 3)`` on ``target`` against every entity."""
        raise NotImplementedError


@REGIMES.register("1vsall")
class OneVsAll(_AgainstAllEntities):
    """Cross-entropy of every query against all ``E`` entities.

    Parameters
    ----------
    label_smoothing : float
        ``eps`` in ``[0, 1)``.
    entity_batch_size : int, optional
        Entities scored at once (default: ``2**24 / B``).
    reciprocal : bool
        As for :class:`Regime`.
    """

    def parts(self, rows: Tensor, step: int, generator: torch.Generator, objective) -> List[Part]:
        """Both queries of every triple (LibKGE's 1vsAll), or its tail query when the relations
        are reciprocal (the examples then hold both directions)."""
        return [Part(Target.TAIL, rows)] if self.reciprocal else [Part(Target.TAIL, rows), Part(Target.HEAD, rows)]

    def loss(self, model, reps, rows: Tensor, target: Target) -> Tensor:
        """Mean over ``rows (B, 3)`` of ``(1 - eps) (lse - s_true) + eps (lse - mean_e s_e)``."""
        num_entities = reps.entity.shape[0]
        draws = _OneDraw(model.interaction)
        lses, sums = zip(*(_slice_stats(model, reps, rows, target, sl, False, draws)
                           for sl in _slices(num_entities, len(rows), self.entity_batch_size)))
        lse = torch.logsumexp(torch.stack(lses, 1), 1)
        with draws.draw():
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
    reciprocal : bool
        As for :class:`Regime`.
    """

    def __init__(self, label_smoothing: float = 0.0, entity_batch_size: Optional[int] = None,
                 reciprocal: bool = False):
        super().__init__(label_smoothing, entity_batch_size, reciprocal)
        self.known: Optional[FilterIndex] = None

    def examples(self, train: Tensor) -> Tensor:
        """The distinct queries: ``(h, r, -1)`` for tails, and ``(-1, r, t)`` for heads unless
        reciprocal relations turn head queries into tail queries; the answers of ``train``
        (``(N, 3)``) are kept for :meth:`loss`."""
        train = train.cpu()
        self.known = FilterIndex(train, int(train[:, [0, 2]].max()) + 1, int(train[:, 1].max()) + 1)
        tails = torch.unique(train[:, :2], dim=0)
        out = [torch.cat([tails, torch.full_like(tails[:, :1], -1)], 1)]
        if not self.reciprocal:
            heads = torch.unique(train[:, 1:], dim=0)
            out.append(torch.cat([torch.full_like(heads[:, :1], -1), heads], 1))
        return torch.cat(out)

    def parts(self, rows: Tensor, step: int, generator: torch.Generator, objective) -> List[Part]:
        tail = rows[:, 2] < 0
        return [Part(t, rows[m]) for t, m in ((Target.TAIL, tail), (Target.HEAD, ~tail)) if m.any()]

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
        draws = _OneDraw(model.interaction)
        softplus, sums = zip(*(_slice_stats(model, reps, rows, target, sl, True, draws)
                               for sl in _slices(num_entities, len(rows), self.entity_batch_size)))
        r, c = known.known(rows, target)   # answers grouped by query, in query order
        r, c = r.to(rows.device), c.to(rows.device)
        # each query's answers in one row (padded with weight 0): the rows are scored as queries of
        # the part, so an interaction with dropout scores them with the slices' masks
        counts = torch.bincount(r, minlength=len(rows))
        place = torch.arange(len(r), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
        ids = torch.zeros(len(rows), max(1, int(counts.max()) if len(r) else 1), dtype=c.dtype, device=c.device)
        ids[r, place] = c
        weight = torch.zeros(ids.shape, dtype=reps.entity.dtype, device=c.device)
        weight[r, place] = 1.0
        with draws.draw():
            positive = (model.score_ids(reps, rows, target, ids) * weight).sum(1)
        eps = self.label_smoothing
        total = torch.stack(softplus, 1).sum(1) - (1 - eps) * positive
        if eps:
            total = total - eps / num_entities * torch.stack(sums, 1).sum(1)
        return (total / num_entities).mean()
