"""The training objective of one batch: encode -> gather -> (EMU) -> score -> loss."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from ..losses import EMULoss, Loss, LpRegularizer
from ..models import Gathered, KGEModel
from ..nn.emu import EmbeddingMixup, EmbeddingMutation
from ..nn.fused_engine import engine_for, engine_note
from ..nn.interactions.base import candidate_dot
from ..nn.encoders.base import Representations
from ..typing import Target, Tensor
from .regimes import Part, Regime
from .replicas import Replicas

__all__ = ["Objective", "StepLoss"]

Mutation = Union[EmbeddingMutation, EmbeddingMixup]


class StepLoss(nn.Module):
    """One training step's loss: every part of the batch scored by the regime (the module that
    :class:`~dgl_emu.training.replicas.Replicas` wrap, e.g. in DDP).

    Parameters
    ----------
    objective : Objective
        Model, loss, EMU layer, regulariser.
    batches : BatchStrategy
        How a part's embeddings are gathered.
    regime : Regime
        Scores each part.
    replicas : Replicas
        Which rows of each part this process scores, and their weight.
    """

    def __init__(self, objective: "Objective", batches, regime: Regime, replicas: Optional[Replicas] = None):
        super().__init__()
        self.objective, self.batches, self.regime = objective, batches, regime
        self.replicas = replicas if replicas is not None else Replicas()

    def forward(self, parts: List[Part], generator: torch.Generator, batch_size: int) -> Tensor:
        """The loss of ``parts`` (every part drawn for the whole batch of ``batch_size``): the
        mean over the batch in one process, this process's weighted share of it with several
        (:meth:`Replicas.weight`); a whole-table penalty is added once."""
        score = self.regime.scorer(self.objective, self.batches, generator)
        total = None
        for part in parts:
            rows = self.replicas.rows(len(part.rows))
            n = rows.stop - rows.start
            if n == 0:
                continue
            with self.replicas.drawing(self.objective, len(part.rows), rows):
                loss = score(part.take(rows))
            term = loss * self.replicas.weight(n, batch_size)
            total = term if total is None else total + term
        if total is None:  # no row in this process: a zero that still reaches every parameter
            total = sum(p.sum() * 0.0 for p in self.objective.parameters() if p.requires_grad)
        penalty = self.objective.table_penalty()  # once per step, in every process alike
        return total if penalty is None else total + penalty


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

    def loss_of(self, g: Gathered, target: Target) -> Tensor:
        """Scalar loss of already gathered embeddings (e.g. from DGL blocks in mini-batches)."""
        g_emu = g
        if self.separate_negatives:  # (B, 2K): the plain pass's K, then the EMU pass's own K
            half = g.neg.shape[1] // 2
            g, g_emu = g._replace(neg=g.neg[:, :half]), g._replace(neg=g.neg[:, half:])
        if self.mutation is None:
            loss = self.loss(self.model.score_plain(g, target))
        else:
            loss = self.loss(*self.emu_scores(g, g_emu, target))
        penalty = self.batch_penalty(g.anchor, g.relation, g.pos)
        return loss if penalty is None else loss + penalty

    def emu_scores(self, g: Gathered, g_emu: Gathered, target: Target) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """``(S_emu, S_plain, labels)``: the scores ``(B, 1 + K)`` of the mutated negatives of
        ``g_emu`` and of the negatives of ``g`` (the positive in column 0 of both), and the soft
        labels (``None``: the loss's fixed label).

        When the mutation and the interaction allow it (:attr:`EmbeddingMutation.fusable
        <dgl_emu.nn.emu.EmbeddingMutation.fusable>`, :meth:`Interaction.candidate_form
        <dgl_emu.nn.interactions.Interaction.candidate_form>`) and the kernels are loaded, the
        fused kernels score the mutated negatives without forming them, reading the negatives once
        for both matrices when both passes share them; otherwise the mutated negatives are formed.
        Both ways use the same mask bits.
        """
        engine, form = self._fused_form(g_emu, target)
        if form is None:
            plain = self.model.score_plain(g, target)
            negatives = g_emu.negatives()
            mutated, labels = self.mutation.mutate(g_emu.pos, negatives)
            if mutated is negatives and g_emu is g:  # un-mutated (soft labels only), shared draw: same scores
                return plain, plain, labels
            return torch.cat([plain[:, :1], self.model.score_gathered(g_emu, mutated, target)], dim=1), plain, labels
        key, row0 = self.mutation.draw()
        pos = (form.score(candidate_dot(g.pos, form.query)) if self.model.interaction.shares_query
               else self.model.score_gathered(g, g.pos, target))
        shared = g_emu is g
        raw_emu, raw_plain = engine(form.query[:, 0], g_emu.pos[:, 0], g_emu.neg, form.kind, key, row0,
                                    self.mutation.keep_prob, with_plain=shared, chunk=g_emu.sharing.chunk,
                                    phase=g_emu.sharing.phase)
        plain = torch.cat([pos, form.score(raw_plain)], 1) if shared else self.model.score_plain(g, target)
        return torch.cat([pos, form.score(raw_emu)], 1), plain, None

    def kernel_note(self, device: torch.device) -> Optional[str]:
        """Load the fused engine of ``device`` now if this objective will use it (so a first build
        happens before training, not inside its first step); one line saying how it went, or
        ``None`` when the objective has no use for it."""
        if not (self.mutation is not None and self.mutation.fusable and self.model.interaction.fusable):
            return None
        return f"EMU: {engine_note(device)}"

    def _fused_form(self, g: Gathered, target: Target):
        """The fused engine of ``g``'s device and the interaction's candidate form when that
        engine can score this step's mutation; ``(None, None)`` otherwise."""
        engine = engine_for(g.neg.device) if self.mutation.fusable and self.mutation.training else None
        if engine is None:
            return None, None
        form = self.model.interaction.candidate_form(g.anchor, g.relation, g.anchor, target)
        return (engine, form) if form is not None else (None, None)

    def batch_penalty(self, *embeddings: Tensor) -> Optional[Tensor]:
        """The per-batch regulariser of ``embeddings`` (anchor, relation, true entity), or
        ``None`` when there is none (or it is a whole-table one)."""
        reg = self.regularizer
        if reg is None or not reg.weight or reg.whole_tables:
            return None
        return reg(*embeddings)

    def table_penalty(self) -> Optional[Tensor]:
        """The whole-table regulariser of the model's tables (once per step), or ``None``."""
        reg = self.regularizer
        if reg is None or not reg.weight or not reg.whole_tables:
            return None
        return reg(*self.model.encoder.tables())
