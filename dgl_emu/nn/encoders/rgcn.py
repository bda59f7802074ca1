"""R-GCN encoder (Schlichtkrull et al., ESWC 2018) on :class:`RelationalGraphConv`, which computes
what :class:`dgl.nn.RelGraphConv` computes, per (node, relation) pair instead of per edge."""
from __future__ import annotations

import enum
from typing import Optional, Sequence

import dgl
import torch
from torch import nn

from ...typing import Tensor, as_count
from ..interactions.base import Interaction
from .base import Encoder, Representations
from .graph_utils import (embedding_tables, layer_inputs, node_blocks, SeededDropout, relation_in_degree_norm,
                          reset_parameters_)
from .relgraphconv import RelationalGraphConv, relation_pairs
from ...rng import GeneratorPool, Stochastic, bernoulli_mask

__all__ = ["RGCNEncoder", "Decomposition", "EdgeDropout"]


class Decomposition(enum.Enum):
    """R-GCN weight decomposition: basis or block-diagonal (``"bdd"`` in DGL)."""

    BASIS = "basis"
    BLOCK = "bdd"


class EdgeDropout(Stochastic, nn.Module):
    """Drop edges (and self-loop terms) of a graph in training, from seeded generators.

    ``forward(graph) -> (subgraph, loop_mask)``: the graph without the dropped edges (all nodes
    kept, ``edata`` carried) and a ``(V, 1)`` 0/1 mask of the kept self-loops (``None`` when
    ``self_loop_p`` is 0). Nothing is rescaled: dropped messages are removed before the norms are
    computed.

    Parameters
    ----------
    p : float
        Probability of dropping an edge, in ``[0, 1)``.
    self_loop_p : float
        Probability of dropping a node's self-loop, in ``[0, 1)``.
    seed : int
        Seed of the generators.
    """

    def __init__(self, p: float = 0.0, self_loop_p: float = 0.0, seed: int = 0):
        super().__init__()
        for name, value in (("edge_dropout", p), ("self_loop_dropout", self_loop_p)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.p, self.self_loop_p = float(p), float(self_loop_p)
        self.generators = GeneratorPool(seed)

    @property
    def active(self) -> bool:
        """Whether anything is dropped."""
        return self.p > 0 or self.self_loop_p > 0

    def forward(self, graph: dgl.DGLGraph):
        gen = self.generators.get(graph.device)
        if self.p > 0:
            keep = bernoulli_mask((graph.num_edges(),), 1.0 - self.p, gen, graph.device)
            graph = dgl.edge_subgraph(graph, keep.nonzero().squeeze(1), relabel_nodes=False)
        loop = None
        if self.self_loop_p > 0:
            loop = bernoulli_mask((graph.num_nodes(), 1), 1.0 - self.self_loop_p, gen, graph.device,
                                  torch.float32)
        return graph, loop

    def extra_repr(self) -> str:
        return f"p={self.p}, self_loop_p={self.self_loop_p}"


class RGCNEncoder(Encoder):
    r"""Relational GCN over the training graph with inverse relations.

    Each layer is a :class:`~dgl_emu.nn.encoders.relgraphconv.RelationalGraphConv`, equal to
    DGL's :class:`~dgl.nn.pytorch.conv.RelGraphConv` to float rounding (and tested against it) but
    without DGL's per-edge ``d x d`` products:

    .. math:: h_v' = \sigma\Big(W_0 h_v + b + \sum_{r}\sum_{u \in N_r(v)} \tfrac{1}{c_{v,r}} W_r h_u\Big)

    with ``c_{v,r}`` the in-degree of ``v`` by relation ``r`` and ``2R`` relations (inverse
    edges ``r + R``), followed by dropout (a seeded one; DGL's own dropout is off). Entity
    inputs are a trainable table; the decoder's relation table is separate and not propagated.

    Parameters
    ----------
    num_entities : int
        ``E``.
    num_relations : int
        ``R`` (the graph carries ``2R`` relation ids).
    interaction : Interaction
        Decoder; the encoder's width is ``interaction.entity_dim``.
    num_layers : int
        Convolution layers.
    decomposition : Decomposition
        Basis or block-diagonal weights.
    num_bases : int, optional
        Bases (basis) or blocks (block-diagonal; must divide the width). Default: ``min(2R, 30)``
        bases; for block-diagonal the largest of 4, 2, 1 that divides the width.
    self_loop : bool
        Include ``W_0 h_v``.
    dropout : float
        Dropout after each layer (default 0.1).
    generator : torch.Generator, optional
        Initialisation randomness.
    seed : int
        Seed of the dropout masks.
    edge_dropout : float
        In training, drop each edge of the full graph with this probability before the norms are
        computed (Schlichtkrull et al.: 0.4), a new draw every forward pass.
    self_loop_dropout : float
        In training, drop each node's self-loop term with this probability (the paper: 0.2).
    conv : type
        The layer class: :class:`RelationalGraphConv` (default) or :class:`dgl.nn.RelGraphConv`
        (same parameters, for comparisons; no self-loop dropout); not a configuration option.

    Notes
    -----
    Input graph: homogeneous, ``edata[dgl.ETYPE]`` in ``0..2R-1``; a DGL block works too (the
    destination nodes are the first ``num_dst_nodes`` sources). Output: ``entity (E, d_e)``,
    ``relation (R, d_r)``.

    Examples
    --------
    >>> from dgl_emu.nn.interactions import DistMult
    >>> from dgl_emu.data import generate_cyclic_kg
    >>> kg = generate_cyclic_kg(num_rings=2, ring_size=4)
    >>> enc = RGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=8), num_bases=2)
    >>> [tuple(x.shape) for x in enc(kg.graph("train"))]
    [(8, 8), (6, 8)]
    """

    needs_graph = True

    def __init__(self, num_entities: int, num_relations: int, interaction: Interaction,
                 num_layers: int = 2, decomposition: Decomposition = Decomposition.BASIS,
                 num_bases: Optional[int] = None, self_loop: bool = True, dropout: float = 0.1,
                 generator: Optional[torch.Generator] = None, seed: int = 0,
                 edge_dropout: float = 0.0, self_loop_dropout: float = 0.0,
                 conv: type = RelationalGraphConv):
        super().__init__()
        width = interaction.entity_dim
        if num_bases is None:
            num_bases = min(2 * num_relations, 30) if decomposition is Decomposition.BASIS else \
                next(b for b in (4, 2, 1) if width % b == 0)
        num_bases = as_count(num_bases, "num_bases")
        if decomposition is Decomposition.BLOCK and width % num_bases:
            raise ValueError(f"num_bases: the block-diagonal decomposition needs num_bases dividing {width}, "
                             f"got {num_bases}")
        self.entity, self.relation = embedding_tables(num_entities, num_relations, interaction, generator)
        self.layers = nn.ModuleList([
            conv(width, width, 2 * num_relations, regularizer=decomposition.value,
                                num_bases=num_bases, self_loop=self_loop, dropout=0.0,
                                activation=torch.tanh if i < num_layers - 1 else None)
            for i in range(num_layers)])
        reset_parameters_(self.layers, generator)
        self.dropout = SeededDropout(dropout, seed)
        if self_loop_dropout and conv is not RelationalGraphConv:
            raise ValueError("self-loop dropout needs RelationalGraphConv layers")
        self.edge_dropout = EdgeDropout(edge_dropout, self_loop_dropout, seed + 1)

    def forward(self, graph, features: Optional[Tensor] = None,
                norms: Optional[Sequence[Tensor]] = None) -> Representations:
        """Encode the full graph, or a list of DGL blocks with their input ``features``."""
        loop_mask = None
        if self.training and self.edge_dropout.active:
            if isinstance(graph, (list, tuple)):
                raise ValueError("edge dropout works on the full graph, not on sampled blocks")
            graph, loop_mask = self.edge_dropout(graph)
            norms = None  # normalised after the dropout, as in the paper
        blocks, norms, h = layer_inputs(graph, features, self.entity, len(self.layers), norms, self.edge_norm)
        pairs = {}  # the edge grouping of each distinct graph, shared by the layers that use it
        for layer, block, norm in zip(self.layers, blocks, norms):
            extra = {}
            if isinstance(layer, RelationalGraphConv):
                if id(block) not in pairs:
                    pairs[id(block)] = relation_pairs(block, block.edata[dgl.ETYPE], layer.num_rels)
                extra = {"pairs": pairs[id(block)], "loop_mask": loop_mask}
            h = self.dropout(layer(block, h, block.edata[dgl.ETYPE], norm, **extra))
        return Representations(h, self.relation)

    @torch.no_grad()
    def inference(self, graph: dgl.DGLGraph, batch_size: int = 16384) -> Representations:
        """:meth:`forward` of the full graph in eval mode, layer by layer over node batches.

        Memory holds two ``(E, d)`` activations and one batch's edges, never every layer's
        activations and every edge at once. Equal to ``self.eval()(graph)`` to float rounding.
        """
        h = self.entity
        for layer in self.layers:
            out = None
            for nodes, block in node_blocks(graph, batch_size):
                part = layer(block, h[block.srcdata[dgl.NID].long()], block.edata[dgl.ETYPE], self.edge_norm(block))
                out = part.new_empty(h.shape[0], part.shape[1]) if out is None else out
                out[nodes] = part
            h = out
        return Representations(h, self.relation)

    def edge_norm(self, graph, in_degrees: Optional[Tensor] = None) -> Tensor:
        """``1 / c_{v,r}`` within ``graph`` (a block counts its own sampled in-edges)."""
        return relation_in_degree_norm(graph).to(graph.device)
