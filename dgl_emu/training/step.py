"""The training objective of one batch: encode -> gather -> (EMU) -> score -> loss."""
from __future__ import annotations

from typing import Iterator, Optional, Tuple, Union

import torch
from torch import nn

from ..losses import EMULoss, Loss, LpRegularizer
from ..models import Gathered, KGEModel
from ..nn.emu import EmbeddingMixup, EmbeddingMutation
from ..nn.encoders.base import Representations
from ..sampling.base import NegativeSampler
from ..typing import Target, Tensor

__all__ = ["Objective", "StepLoss", "alternating_target", "split_by_side"]

Mutation = Union[EmbeddingMutation, EmbeddingMixup]


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


class StepLoss(nn.Module):
    """One training step's loss: every part of the batch gathered and scored (the module that
    data-parallel training wraps; see :mod:`dgl_emu.training.distributed`).

    Parameters
    ----------
    objective : Objective
        Model, loss, EMU layer, regulariser.
    batches : BatchStrategy
        How a part's embeddings are gathered.
    """

    def __init__(self, objective: "Objective", batches, regime=None):
        super().__init__()
        self.objective, self.batches, self.regime = objective, batches, regime

    def forward(self, parts, generator: torch.Generator, batch_size: int, shard) -> Tensor:
        """``parts``: ``(target, rows (n, 3), negatives (n, K) or None, local slice)``; returns the
        rank's ``(W / B) * sum`` of its rows' losses (the mean over the batch in one process).
        Parts without negatives are scored against every entity by the regime."""
        model = self.objective.model
        gather = reps = None
        total = None
        for target, rows, negatives, local in parts:
            n = local.stop - local.start
            if n == 0:
                continue
            if negatives is None:
                reps = reps if reps is not None else self.batches.representations(model)
                mine = rows[local]
                loss = self.regime.loss(model, reps, mine, target)
                reg = self.objective.regularizer
                if reg is not None and reg.weight and not reg.whole_tables:
                    loss = loss + reg(*self.regime.regularized(reps, mine, target))
            else:
                gather = gather or self.batches.gatherer(model, generator)
                g = gather(rows[local], negatives[local], target)
                loss = self.objective.loss_of(g, target, (len(rows), local) if shard.shares_batches else None)
            part = loss * shard.weight(n, batch_size)
            total = part if total is None else total + part
        if total is None:  # no row on this rank: a zero that still reaches every parameter
            total = sum(p.sum() * 0.0 for p in self.objective.parameters() if p.requires_grad)
        reg = self.objective.regularizer
        if reg is not None and reg.weight and reg.whole_tables:  # once per step, on every rank alike
            total = total + reg(*model.encoder.tables())
        return total


class Objective(nn.Module):
    """Loss of a batch of positives for a fixed side, with or without EMU.

    Without a mutation: ``loss(S_plain)``. With one: ``emu_loss(S_emu, S_plain, labels)`` where
    ``S_emu`` scores the mutated negatives; one gather serves both score matrices.

    Parameters
    ----------
    model : KGEModel
        Encoder and interaction.
    loss : Loss or EMULoss
        ``Loss`` for plain training; :class:`~dgl_emu.losses.EMULoss` when ``mutation`` is set.
    mutation : EmbeddingMutation or EmbeddingMixup, optional
        EMU layer applied to the negatives' embeddings.
    regularizer : LpRegularizer, optional
        Applied to the positives' ``h``, ``r``, ``t`` embeddings.
    separate_negatives : bool
        The reference's uniform protocol: the plain and the EMU score matrices each get their own
        ``K`` negatives. The trainer then draws ``2K`` per positive (two independent draws), the
        first ``K`` for the plain pass and the last ``K`` for the mutated ones; ``False``: both
        passes share one draw of ``K``.
    """

    def __init__(self, model: KGEModel, loss: Union[Loss, EMULoss],
                 mutation: Optional[Mutation] = None, regularizer: Optional[LpRegularizer] = None,
                 separate_negatives: bool = False):
        super().__init__()
        if (mutation is not None) != isinstance(loss, EMULoss):
            raise ValueError("EMULoss goes with a mutation layer, and a mutation layer needs EMULoss")
        if separate_negatives and mutation is None:
            raise ValueError("separate_negatives splits the negatives between the plain and the EMU pass: "
                             "it needs a mutation layer")
        self.model, self.loss, self.mutation, self.regularizer = model, loss, mutation, regularizer
        self.separate_negatives = bool(separate_negatives)

    def forward(self, reps: Representations, hrt: Tensor, negatives: Tensor, target: Target) -> Tensor:
        """Scalar loss of ``hrt (B, 3)`` with ``negatives (B, K)`` on ``target``."""
        return self.loss_of(self.model.gather(reps, hrt, negatives, target), target)

    def loss_of(self, g: Gathered, target: Target, rows: Optional[Tuple[int, slice]] = None) -> Tensor:
        """Scalar loss of already gathered embeddings (e.g. from DGL blocks in mini-batches).

        ``rows = (n, part)``: the embeddings are rows ``part`` of an ``n``-row batch (a
        data-parallel rank's part); EMU's random draws are made for the whole batch.
        """
        g_emu = g
        if self.separate_negatives:  # (B, 2K): the plain pass's K, then the EMU pass's own K
            half = g.neg.shape[1] // 2
            g, g_emu = g._replace(neg=g.neg[:, :half]), g._replace(neg=g.neg[:, half:])
        plain = self.model.score_plain(g, target)
        if self.mutation is None:
            loss = self.loss(plain)
        else:
            mutated, labels = self.mutation.mutate(g_emu.pos, g_emu.neg, rows)
            emu = plain if mutated is g.neg else torch.cat(  # un-mutated (soft labels only): same scores
                [plain[:, :1], self.model.score_gathered(g_emu, mutated, target)], dim=1)
            loss = self.loss(emu, plain, labels)
        if self.regularizer is not None and self.regularizer.weight and not self.regularizer.whole_tables:
            loss = loss + self.regularizer(g.anchor, g.relation, g.pos)
        return loss
