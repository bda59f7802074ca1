""":class:`KGEModel`: an encoder and an interaction, with the gather steps EMU needs."""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .nn.encoders.base import Encoder, LookupEncoder, Representations
from .nn.interactions.base import Interaction
from .nn.fused_engine import engine_for, shared_scores
from .nn.rows import distinct_rows, gather_rows
from .typing import Sharing, Target, Tensor

__all__ = ["KGEModel", "Gathered", "ModelScorer", "distinct_rows", "gather_rows"]


class Gathered(NamedTuple):
    """Embeddings of a training batch, gathered once for both score matrices.

    Attributes
    ----------
    anchor : Tensor
        ``(B, 1, d)`` entity on the side that is kept.
    relation : Tensor
        ``(B, 1, d_r)``.
    pos : Tensor
        ``(B, 1, d)`` true entity on the corrupted side.
    neg : Tensor
        ``(B, K, d)`` negatives, or ``(C, K, d)`` when chunks of rows share them (``sharing``; see
        :meth:`negatives`). Gathered apart from ``pos`` (not sliced from one tensor), so the
        backward pass adds two gathers' gradients instead of zero-filling a ``(B, 1 + K, d)``.
    sharing : Sharing
        How rows share ``neg`` (default: each row its own).
    """

    anchor: Tensor
    relation: Tensor
    pos: Tensor
    neg: Tensor
    sharing: Sharing = Sharing()

    def negatives(self) -> Tensor:
        """``(B, K, d)``: every row's negatives (the shared sets repeated where rows share them)."""
        if self.sharing.chunk == 1:
            return self.neg
        return self.neg[self.sharing.set_of(len(self.pos)).to(self.neg.device)]


class KGEModel(nn.Module):
    """Knowledge-graph embedding model: ``encode -> gather -> score``.

    Parameters
    ----------
    encoder : Encoder
        Produces entity and relation representations (lookup tables, R-GCN, CompGCN).
    interaction : Interaction
        Scoring function.
    reciprocal_offset : int, optional
        ``R`` when the relation table holds ``2R`` rows, ``r + R`` the inverse of ``r``
        (:func:`~dgl_emu.data.with_reciprocal_relations`): :meth:`score_all` and
        :meth:`score_ids` then answer a head query ``(?, r, t)`` as the tail query
        ``(t, r + R, ?)``. Training gathers tail queries only (the :class:`Trainer` does).

    Examples
    --------
    >>> from dgl_emu.nn.interactions import DistMult
    >>> model = KGEModel.shallow(DistMult(dim=4), num_entities=10, num_relations=2)
    >>> reps = model.encode()
    >>> hrt = torch.tensor([[0, 1, 2], [3, 0, 4]])
    >>> model.score_all(reps, hrt, Target.TAIL).shape
    torch.Size([2, 10])
    """

    def __init__(self, encoder: Encoder, interaction: Interaction, reciprocal_offset: Optional[int] = None):
        super().__init__()
        self.encoder = encoder
        self.interaction = interaction
        #: ``R`` when the relations include their inverses ``r + R``: head queries ``(?, r, t)``
        #: are then scored as tail queries ``(t, r + R, ?)``
        self.reciprocal_offset = reciprocal_offset

    def _as_tail(self, hrt: Tensor, target: Target) -> Tuple[Tensor, Target]:
        """Head queries as tail queries of the inverse relation, when relations are reciprocal."""
        if self.reciprocal_offset is None or target is Target.TAIL:
            return hrt, target
        return torch.stack([hrt[:, 2], hrt[:, 1] + self.reciprocal_offset, hrt[:, 0]], 1), Target.TAIL

    @classmethod
    def shallow(cls, interaction: Interaction, num_entities: int, num_relations: int,
                generator: Optional[torch.Generator] = None,
                reciprocal_offset: Optional[int] = None) -> "KGEModel":
        """A model with a :class:`LookupEncoder` (``num_relations`` rows, ``2R`` with reciprocal
        relations and ``reciprocal_offset = R``)."""
        return cls(LookupEncoder(num_entities, num_relations, interaction, generator), interaction,
                   reciprocal_offset)

    def encode(self, graph=None, norms=None) -> Representations:
        """Entity ``(E, d)`` and relation ``(R', d_r)`` representations.

        ``norms``: the encoder's per-layer edge norms of ``graph``, if precomputed.
        """
        return self.encoder(graph, norms=norms)

    def gather(self, reps: Representations, hrt: Tensor, negatives: Tensor,
               target: Target, sharing: Sharing = Sharing()) -> Gathered:
        """Gather a batch's embeddings with one lookup per table.

        Parameters
        ----------
        reps : Representations
            Output of :meth:`encode`.
        hrt : Tensor
            ``(B, 3)`` positive triples.
        negatives : Tensor
            ``(B, K)`` negative entity ids for the ``target`` side.
        target : Target
            Corrupted side.
        sharing : Sharing
            When chunks of rows share their negatives, each shared set is gathered once:
            ``neg`` is then ``(C, K, d)``.
        """
        c, o = target.column, target.other.column
        if sharing.chunk > 1:
            negatives = negatives[sharing.first_rows(len(hrt)).to(negatives.device)]
        if self.encoder.sparse:
            return self._gather_rows(reps, hrt, negatives, c, o, sharing)
        return Gathered(anchor=F.embedding(hrt[:, o:o + 1], reps.entity),
                        relation=F.embedding(hrt[:, 1:2], reps.relation),
                        pos=F.embedding(hrt[:, c:c + 1], reps.entity),
                        neg=F.embedding(negatives, reps.entity), sharing=sharing)

    def _gather_rows(self, reps: Representations, hrt: Tensor, negatives: Tensor, c: int, o: int,
                     sharing: Sharing) -> Gathered:
        """The sparse path: each distinct entity row is looked up once, so the table's gradient is
        a coalesced sparse tensor of ``U`` distinct rows (``U <= min(E, B (K + 2))``); sharded
        tables pull those rows from their servers."""
        B, (C, K) = len(hrt), negatives.shape
        ids = torch.cat([hrt[:, o], hrt[:, c], negatives.reshape(-1)])
        unique, inverse = distinct_rows(ids, self.encoder.num_entities)
        rows = self.encoder.entity_rows(unique)  # (U, d); the lookups below are dense within it
        return Gathered(anchor=F.embedding(inverse[:B].unsqueeze(1), rows),
                        relation=F.embedding(hrt[:, 1:2], reps.relation, sparse=True),
                        pos=F.embedding(inverse[B:2 * B].unsqueeze(1), rows),
                        neg=F.embedding(inverse[2 * B:].view(C, K), rows), sharing=sharing)

    def score_gathered(self, g: Gathered, candidates: Tensor, target: Target) -> Tensor:
        """Scores ``(B, K')`` of ``candidates (B, K', d)`` against the gathered anchors."""
        return self.interaction.score_candidates(g.anchor, g.relation, g.anchor, candidates, target)

    def score_plain(self, g: Gathered, target: Target) -> Tensor:
        """``S_plain (B, 1 + K)``: the positive in column 0, then the sampled negatives (shared sets
        are scored by the fused kernels where they can, without repeating them per row; an
        interaction whose query is costly, :attr:`~dgl_emu.nn.interactions.Interaction.shares_query`,
        scores a row's positive and own negatives in one call)."""
        if self.interaction.shares_query and g.sharing.chunk <= 1:
            return self.score_gathered(g, torch.cat([g.pos, g.negatives()], 1), target)
        return torch.cat([self.score_gathered(g, g.pos, target), self._score_negatives(g, target)], 1)

    def _score_negatives(self, g: Gathered, target: Target) -> Tensor:
        if g.sharing.chunk > 1 and self.interaction.fusable and engine_for(g.neg.device) is not None:
            form = self.interaction.candidate_form(g.anchor, g.relation, g.anchor, target)
            return form.score(shared_scores(form.query[:, 0], g.neg, form.kind, g.sharing.chunk, g.sharing.phase))
        return self.score_gathered(g, g.negatives(), target)

    def score_hrt(self, reps: Representations, hrt: Tensor) -> Tensor:
        """Scores ``(B,)`` of triples ``(B, 3)``."""
        return self.interaction(reps.entity[hrt[:, 0]], reps.relation[hrt[:, 1]], reps.entity[hrt[:, 2]])

    def score_all(self, reps: Representations, hrt: Tensor, target: Target,
                  entities: Optional[slice] = None) -> Tensor:
        """Scores ``(B, E)`` of all entities (or the ``entities`` slice) on ``target``."""
        hrt, target = self._as_tail(hrt, target)
        anchor = reps.entity[hrt[:, target.other.column]]
        rel = reps.relation[hrt[:, 1]]
        cand = reps.entity if entities is None else reps.entity[entities]
        h, t = (None, anchor) if target is Target.HEAD else (anchor, None)
        return self.interaction.score_all(h, rel, t, cand, target)

    def score_ids(self, reps: Representations, hrt: Tensor, target: Target, ids: Tensor) -> Tensor:
        """Scores ``(B, N)`` of candidate entities ``ids (B, N)`` on ``target``."""
        hrt, target = self._as_tail(hrt, target)
        o = target.other.column
        anchor, rel = reps.entity[hrt[:, o]].unsqueeze(1), reps.relation[hrt[:, 1]].unsqueeze(1)
        return self.interaction.score_candidates(anchor, rel, anchor, reps.entity[ids], target)

    def scorer(self, graph=None) -> "ModelScorer":
        """A :class:`~dgl_emu.evaluation.Scorer` that encodes once and scores many batches.

        In eval mode the encoder's :meth:`~dgl_emu.nn.encoders.Encoder.inference` is used (GNN
        encoders: layer by layer over node batches, bounded memory); in training mode
        :meth:`encode`.
        """
        return ModelScorer(self, self.encode(graph) if self.training else self.encoder.inference(graph))


class ModelScorer:
    """Scores of a model's fixed representations: every entity (or a slice), or given candidates.

    ``scorer(hrt, target, entities=None) -> (B, E)`` (the evaluator's protocol) and
    ``scorer.candidates(hrt, target, ids (B, N)) -> (B, N)`` (sampled evaluation).
    """

    def __init__(self, model: KGEModel, reps: Representations):
        self.model, self.reps = model, reps

    def __call__(self, hrt: Tensor, target: Target, entities: Optional[slice] = None) -> Tensor:
        return self.model.score_all(self.reps, hrt, target, entities)

    def candidates(self, hrt: Tensor, target: Target, ids: Tensor) -> Tensor:
        """Scores ``(B, N)`` of the entities ``ids``."""
        return self.model.score_ids(self.reps, hrt, target, ids)
