"""Mini-batch training of GNN encoders with DGL neighbour sampling."""
from __future__ import annotations

from typing import Sequence

import dgl
import torch

from ..models import Gathered
from ..nn.encoders.graph_utils import store_in_degrees
from ..typing import Target, Tensor
from .step import alternating_target
from .trainer import Trainer

__all__ = ["MiniBatchTrainer"]


class MiniBatchTrainer(Trainer):
    """A :class:`Trainer` that encodes only each batch's sampled neighbourhood.

    Edges are seeded through :func:`dgl.dataloading.as_edge_prediction_sampler` with the
    dgl-emu negative sampler in DGL's protocol. The training graph must be
    :meth:`KnowledgeGraph.graph` with inverse edges: edge ``i < N`` is training triple ``i`` and
    edge ``N + i`` its inverse, so tail-corruption steps seed original edges and head-corruption
    steps seed inverse edges (whose destination is the triple's head). The encoder must accept
    ``(blocks, input_features)``. Neighbour sampling draws from DGL's RNG, which is re-seeded from
    the trainer's generator before every batch, so runs stay reproducible and resumable.

    Parameters
    ----------
    fanouts : sequence of int
        Neighbours per layer (``-1``: all, which reproduces full-graph training exactly).
    num_relations : int
        ``R`` (inverse edges carry ``r + R``).
    **kwargs
        As for :class:`Trainer`; ``graph`` is required.
    """

    def __init__(self, *args, fanouts: Sequence[int], num_relations: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_relations = num_relations
        if self.graph is None:
            raise ValueError("mini-batch training needs the training graph")
        if not getattr(self.model.encoder, "needs_graph", False):
            raise ValueError(f"mini-batch training samples neighbourhoods for a GNN encoder (rgcn, "
                             f"compgcn); {type(self.model.encoder).__name__} uses none")
        if self.sampler.head_probability(self.triples[:1]) is not None:
            raise ValueError("mini-batch training alternates sides; per-triple sides (Bernoulli) "
                             "are not supported here")
        store_in_degrees(self.graph)
        self.num_train = len(self.triples)
        if self.graph.num_edges() != 2 * self.num_train:
            raise ValueError("expected the training graph with inverse edges (2N edges)")
        block_sampler = dgl.dataloading.MultiLayerNeighborSampler(list(fanouts))
        self.edge_sampler = dgl.dataloading.as_edge_prediction_sampler(
            block_sampler, negative_sampler=self.sampler)

    def _next_batch(self) -> Tensor:
        """The next batch as training-triple indices (= original edge ids)."""
        return self._next_indices()

    def sample(self, idx: Tensor, target: Target):
        """Blocks and pair graphs of triples ``idx`` corrupted on ``target``."""
        eids = idx if target is Target.TAIL else idx + self.num_train
        # dgl.seed takes a C int: a seed above 2**31 - 1 raises DGLError
        dgl.seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.generator)))
        return self.edge_sampler.sample(self.graph, eids.to(self.graph.device))

    def gather_from_blocks(self, idx: Tensor, target: Target) -> Gathered:
        """Encode the sampled blocks and gather anchor, relation, positive and negatives."""
        input_nodes, pair, neg_pair, blocks = self.sample(idx, target)
        encoder = self.model.encoder
        reps = encoder(blocks, encoder.entity[input_nodes])
        src, dst = pair.edges()
        _, neg_dst = neg_pair.edges()
        rel = self.graph.edata[dgl.ETYPE][pair.edata[dgl.EID]].long()
        if target is Target.HEAD:  # inverse edge t -(r+R)-> h stands for (h, r, t)
            rel = rel - self.num_relations
        K = self.sampler.num_negatives
        ent = reps.entity
        return Gathered(anchor=ent[src.long()].unsqueeze(1), relation=reps.relation[rel].unsqueeze(1),
                        pos=ent[dst.long()].unsqueeze(1),
                        neg=ent[neg_dst.long()].view(len(src), K, -1))

    def training_step(self, idx: Tensor) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        target = alternating_target(self.step)
        total = self.objective.loss_of(self.gather_from_blocks(idx, target), target)
        return self._finish(total)
