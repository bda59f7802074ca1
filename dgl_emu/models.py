""":class:`KGEModel`: an encoder and an interaction, with the gather steps EMU needs."""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .nn.encoders.base import Encoder, LookupEncoder, Representations
from .nn.interactions.base import Interaction
from .typing import Target, Tensor

__all__ = ["KGEModel", "Gathered", "ModelScorer"]


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
        ``(B, K, d)`` negatives. Gathered apart from ``pos`` (not sliced from one tensor), so the
        backward pass adds two gathers' gradients instead of zero-filling a ``(B, 1 + K, d)``.
    """

    anchor: Tensor
    relation: Tensor
    pos: Tensor
    neg: Tensor


class KGEModel(nn.Module):
    """Knowledge-graph embedding model: ``encode -> gather -> score``.

    Parameters
    ----------
    encoder : Encoder
        Produces entity and relation representations (lookup tables, R-GCN, CompGCN).
    interaction : Interaction
        Scoring function.

    Examples
    --------
    >>> from dgl_emu.nn.interactions import DistMult
    >>> model = KGEModel.shallow(DistMult(dim=4), num_entities=10, num_relations=2)
    >>> reps = model.encode()
    >>> hrt = torch.tensor([[0, 1, 2], [3, 0, 4]])
    >>> model.score_all(reps, hrt, Target.TAIL).shape
    torch.Size([2, 10])
    """

    def __init__(self, encoder: Encoder, interaction: Interaction):
        super().__init__()
        self.encoder = encoder
        self.interaction = interaction

    @classmethod
    def shallow(cls, interaction: Interaction, num_entities: int, num_relations: int,
                generator: Optional[torch.Generator] = None) -> "KGEModel":
        """A model with a :class:`LookupEncoder`."""
        return cls(LookupEncoder(num_entities, num_relations, interaction, generator), interaction)

    def encode(self, graph=None, norms=None) -> Representations:
        """Entity ``(E, d)`` and relation ``(R', d_r)`` representations.

        ``norms``: the encoder's per-layer edge norms of ``graph``, if precomputed.
        """
        return self.encoder(graph, norms=norms)

    def gather(self, reps: Representations, hrt: Tensor, negatives: Tensor,
               target: Target) -> Gathered:
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
        """
        c, o = target.column, target.other.column
        sparse = self.encoder.sparse  # row gradients for lookup tables that ask for them
        return Gathered(anchor=F.embedding(hrt[:, o:o + 1], reps.entity, sparse=sparse),
                        relation=F.embedding(hrt[:, 1:2], reps.relation, sparse=sparse),
                        pos=F.embedding(hrt[:, c:c + 1], reps.entity, sparse=sparse),
                        neg=F.embedding(negatives, reps.entity, sparse=sparse))

    def score_gathered(self, g: Gathered, candidates: Tensor, target: Target) -> Tensor:
        """Scores ``(B, K')`` of ``candidates (B, K', d)`` against the gathered anchors."""
        return self.interaction.score_candidates(g.anchor, g.relation, g.anchor, candidates, target)

    def score_plain(self, g: Gathered, target: Target) -> Tensor:
        """``S_plain (B, 1 + K)``: the positive in column 0, then the sampled negatives."""
        return torch.cat([self.score_gathered(g, g.pos, target), self.score_gathered(g, g.neg, target)], 1)

    def score_hrt(self, reps: Representations, hrt: Tensor) -> Tensor:
        """Scores ``(B,)`` of triples ``(B, 3)``."""
        return self.interaction(reps.entity[hrt[:, 0]], reps.relation[hrt[:, 1]], reps.entity[hrt[:, 2]])

    def score_all(self, reps: Representations, hrt: Tensor, target: Target,
                  entities: Optional[slice] = None) -> Tensor:
        """Scores ``(B, E)`` of all entities (or the ``entities`` slice) on ``target``."""
        anchor = reps.entity[hrt[:, target.other.column]]
        rel = reps.relation[hrt[:, 1]]
        cand = reps.entity if entities is None else reps.entity[entities]
        h, t = (None, anchor) if target is Target.HEAD else (anchor, None)
        return self.interaction.score_all(h, rel, t, cand, target)

    def score_ids(self, reps: Representations, hrt: Tensor, target: Target, ids: Tensor) -> Tensor:
        """Scores ``(B, N)`` of candidate entities ``ids (B, N)`` on ``target``."""
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
