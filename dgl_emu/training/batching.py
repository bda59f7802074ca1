"""Batch strategies: how a training step turns triples and negative ids into embeddings.

Every strategy returns the same :class:`~dgl_emu.models.Gathered` embeddings, so the objective,
EMU and every sampler work the same with lookup tables, full-graph GNN encoders and DGL
neighbour sampling. Negatives are always entity ids drawn by the sampler from the triples.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import dgl
import torch

from ..models import Gathered, KGEModel
from ..nn.encoders.base import Encoder
from ..rng import dgl_single_thread
from ..typing import Sharing, Target, Tensor

__all__ = ["BatchStrategy", "FullGraphBatches", "NeighborSampledBatches", "Gather"]

#: ``gather(hrt (B, 3), negatives (B, K), target, sharing=Sharing()) -> Gathered``
Gather = Callable[..., Gathered]


class BatchStrategy:
    """Turns a step's triples into :class:`~dgl_emu.models.Gathered` embeddings.

    :meth:`prepare` is called once with the encoder (to precompute what depends only on the
    graph); :meth:`gatherer` once per step, returning the function that gathers each part of
    the batch (one part, or one per side for per-triple sides).
    """

    def prepare(self, encoder: Encoder) -> None:
        """Precompute graph-only quantities for ``encoder`` (edge norms, degrees)."""

    def gatherer(self, model: KGEModel, generator: torch.Generator) -> Gather:  # pragma: no cover
        """The gather function of one step; ``generator`` is the trainer's."""
        raise NotImplementedError

    def representations(self, model: KGEModel):
        """Every entity's representation (for regimes that score all entities)."""
        raise ValueError(f"{type(self).__name__} gathers rows; scoring every entity needs full-graph batches")


class FullGraphBatches(BatchStrategy):
    """Encode the whole training graph once per step, then gather the batch's rows.

    Parameters
    ----------
    graph : dgl.DGLGraph, optional
        The training graph (with inverse edges, never valid/test) for GNN encoders; ``None``
        for lookup tables.

    Examples
    --------
    >>> from dgl_emu.nn.interactions import DistMult
    >>> model = KGEModel.shallow(DistMult(dim=4), num_entities=5, num_relations=2)
    >>> gather = FullGraphBatches().gatherer(model, torch.Generator())
    >>> g = gather(torch.tensor([[0, 1, 2]]), torch.tensor([[3, 4]]), Target.TAIL)
    >>> tuple(g.neg.shape)
    (1, 2, 4)
    """

    def __init__(self, graph: Optional[dgl.DGLGraph] = None):
        self.graph = graph
        self.norms: Optional[list] = None

    def prepare(self, encoder: Encoder) -> None:
        if self.graph is None:
            if encoder.needs_graph:
                raise ValueError(f"{type(encoder).__name__} needs the training graph: "
                                 f"FullGraphBatches(kg.graph('train'))")
            return
        norm = encoder.edge_norm(self.graph)
        self.norms = None if norm is None else [norm] * encoder.num_layers

    def representations(self, model: KGEModel):
        return model.encode(self.graph, norms=self.norms)

    def gatherer(self, model: KGEModel, generator: torch.Generator) -> Gather:
        reps = model.encode(self.graph, norms=self.norms)  # one encoder pass serves every part

        def gather(hrt: Tensor, negatives: Tensor, target: Target, sharing: Sharing = Sharing()) -> Gathered:
            return model.gather(reps, hrt, negatives, target, sharing)

        return gather


class NeighborSampledBatches(BatchStrategy):
    """Encode only each part's sampled neighbourhood (DGL blocks), for GNN encoders.

    The seed nodes are the part's anchors, true entities and negatives, compacted in the order
    :func:`dgl.compact_graphs` gives for the positive and negative edges ``anchor -> entity``;
    :class:`dgl.dataloading.MultiLayerNeighborSampler` samples the blocks, on one thread (see
    :func:`~dgl_emu.rng.dgl_single_thread`) after re-seeding DGL's RNG from the trainer's
    generator, so runs stay reproducible and resumable. With every fanout ``-1`` the result equals :class:`FullGraphBatches`.

    Parameters
    ----------
    graph : dgl.DGLGraph
        The training graph with inverse edges (never valid/test).
    fanouts : sequence of int
        Neighbours per layer (``-1``: all).
    """

    def __init__(self, graph: dgl.DGLGraph, fanouts: Sequence[int]):
        if graph is None:
            raise ValueError("neighbour sampling needs the training graph")
        self.graph = graph
        self.fanouts = list(fanouts)
        self.block_sampler = dgl.dataloading.MultiLayerNeighborSampler(self.fanouts)
        self.in_degrees = graph.in_degrees()

    def prepare(self, encoder: Encoder) -> None:
        if not encoder.needs_graph:
            raise ValueError(f"neighbour sampling samples neighbourhoods for a GNN encoder (rgcn, "
                             f"compgcn); {type(encoder).__name__} uses none")
        if len(self.fanouts) != encoder.num_layers:
            raise ValueError(f"need one fanout per encoder layer ({encoder.num_layers}), got {self.fanouts}")

    def sample(self, hrt: Tensor, negatives: Tensor, target: Target, generator: torch.Generator):
        """``(input_nodes, pos_graph, neg_graph, blocks)`` of one part (pair graphs compacted)."""
        anchor, true = hrt[:, target.other.column], hrt[:, target.column]
        n, K = self.graph.num_nodes(), negatives.shape[1]
        # dgl.seed takes a C int: a seed above 2**31 - 1 raises DGLError
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
        with dgl_single_thread():  # DGL's multi-threaded sampling and relabelling vary from run to run
            pos = dgl.graph((anchor, true), num_nodes=n, idtype=self.graph.idtype, device=self.graph.device)
            neg = dgl.graph((anchor.repeat_interleave(K), negatives.reshape(-1)), num_nodes=n,
                            idtype=self.graph.idtype, device=self.graph.device)
            pos, neg = dgl.compact_graphs([pos, neg])
            dgl.seed(seed)
            input_nodes, _, blocks = self.block_sampler.sample(self.graph, pos.ndata[dgl.NID])
            for block in blocks:  # with CSR and CSC at hand DGL's kernels avoid order-dependent
                block.create_formats_()  # atomic adds (COO), so gradients repeat bit for bit
        return input_nodes, pos, neg, blocks

    def features(self, encoder: Encoder, input_nodes: Tensor) -> Tensor:
        """``(N_src, d)`` the input rows of the first block's source nodes ``input_nodes``."""
        return encoder.entity[input_nodes]

    def gatherer(self, model: KGEModel, generator: torch.Generator) -> Gather:
        encoder = model.encoder

        def gather(hrt: Tensor, negatives: Tensor, target: Target, sharing: Sharing = Sharing()) -> Gathered:
            # every negative is a seed node of the blocks: shared sets are not gathered apart here
            input_nodes, pos, neg, blocks = self.sample(hrt, negatives, target, generator)
            norms = [encoder.edge_norm(b, self.in_degrees) for b in blocks]
            reps = encoder(blocks, self.features(encoder, input_nodes), norms)
            src, dst = pos.edges()
            ent = reps.entity
            return Gathered(anchor=ent[src.long()].unsqueeze(1),
                            relation=reps.relation[hrt[:, 1]].unsqueeze(1),
                            pos=ent[dst.long()].unsqueeze(1),
                            neg=ent[neg.edges()[1].long()].view(len(hrt), negatives.shape[1], -1))

        return gather
