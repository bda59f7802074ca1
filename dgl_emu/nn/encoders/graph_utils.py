"""Helpers shared by the GNN encoders: edge normalisation, seeded init and dropout."""
from __future__ import annotations

import math
from typing import Optional

import dgl
import torch
from torch import nn

from ...typing import Tensor
from ..dropout import SeededDropout  # noqa: F401  (re-exported for the encoders)

__all__ = ["embedding_tables", "layer_inputs", "relation_in_degree_norm", "symmetric_norm",
           "reset_parameters_", "SeededDropout", "require_graph_device", "node_blocks"]


def embedding_tables(num_entities: int, num_relation_rows: int, interaction,
                     generator: Optional[torch.Generator]):
    """Trainable ``(E, entity_dim)`` and ``(rows, relation_dim)`` input tables, initialised by
    ``interaction`` (entities first, then relations, from ``generator``)."""
    entity = nn.Parameter(torch.empty(num_entities, interaction.entity_dim))
    relation = nn.Parameter(torch.empty(num_relation_rows, interaction.relation_dim))
    interaction.init_entities_(entity, generator)
    interaction.init_relations_(relation, generator)
    return entity, relation


def layer_inputs(graph, features: Optional[Tensor], table: Tensor, num_layers: int, norms, norm_fn):
    """Per-layer graphs, edge norms and input features of a GNN encoder.

    A full graph is used by every layer with the whole ``table`` as input; a list of DGL blocks
    gives one block per layer with the sampled input ``features``. ``norms`` (one ``(E_l, 1)``
    tensor per layer) are used as given; when ``None`` they are computed with ``norm_fn(graph)``
    (once for a full graph), never stored on the graph.
    """
    if isinstance(graph, (list, tuple)):
        blocks = list(graph)
        if norms is None:
            norms = [norm_fn(b) for b in blocks]
    else:
        blocks = [graph] * num_layers
        if norms is None:
            norms = [norm_fn(graph)] * num_layers
    if len(norms) != len(blocks):
        raise ValueError(f"need one edge norm per layer ({len(blocks)}), got {len(norms)}")
    return blocks, list(norms), (table if features is None else features)


def node_blocks(graph: dgl.DGLGraph, batch_size: int):
    """Yield ``(nodes, block)`` for consecutive batches of destination nodes: each block holds
    every in-edge of its nodes (sources first the nodes themselves, as DGL orders them), so a
    layer applied to it gives exactly the full-graph outputs of those nodes.

    Used for layer-wise inference: one layer at a time over all nodes, in batches, keeps only
    two ``(V, d)`` activations and one batch's edges in memory.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = graph.num_nodes()
    for start in range(0, n, batch_size):
        nodes = torch.arange(start, min(start + batch_size, n), device=graph.device)
        sub = dgl.in_subgraph(graph, nodes)
        yield nodes, dgl.to_block(sub, dst_nodes=nodes)


def relation_in_degree_norm(graph: dgl.DGLGraph) -> Tensor:
    """``(num_edges, 1)`` norm ``1 / c_{v,r}``: one over the destination's in-degree by relation.

    This is R-GCN's normalisation (Schlichtkrull et al. 2018, Eq. 2) with ``edata[dgl.ETYPE]``.
    """
    src, dst = graph.edges()
    etype = graph.edata[dgl.ETYPE].long()
    num_rel = int(etype.max()) + 1 if etype.numel() else 1
    key = dst.long() * num_rel + etype
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    return (1.0 / counts[inverse].float()).unsqueeze(1)


def symmetric_norm(graph: dgl.DGLGraph, in_degrees: Optional[Tensor] = None) -> Tensor:
    """``(num_edges, 1)`` norm ``1 / sqrt(deg(u) deg(v))`` (in-degrees, as in CompGCN's code).

    Parameters
    ----------
    graph : dgl.DGLGraph
        A full graph, or a DGL block sampled from one.
    in_degrees : Tensor, optional
        ``(V,)`` in-degrees of the full graph, indexed by its node ids. Required for a block (read
        through ``srcdata`` / ``dstdata[dgl.NID]``), so sampled blocks use the same normalisation
        as the full graph; a full graph's own degrees are used when it is omitted.
    """
    src, dst = graph.edges()
    if graph.is_block:
        if in_degrees is None:
            raise ValueError("a block needs the full graph's in_degrees")
        d_src = in_degrees[graph.srcdata[dgl.NID].long()]
        d_dst = in_degrees[graph.dstdata[dgl.NID].long()]
    else:
        d_src = d_dst = graph.in_degrees() if in_degrees is None else in_degrees
    d_src, d_dst = d_src.float().clamp(min=1), d_dst.float().clamp(min=1)
    return (d_src[src.long()] * d_dst[dst.long()]).rsqrt().unsqueeze(1)


def reset_parameters_(module: nn.Module, generator: Optional[torch.Generator], gain: float = 1.0) -> None:
    """Re-initialise every parameter of ``module`` from ``generator``.

    Matrices and higher get Xavier-uniform (fan-in/fan-out of the last two dimensions), vectors
    zeros. DGL's layers initialise from the global RNG; this makes them follow the run's seed.
    """
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() >= 2:
                fan_in, fan_out = p.shape[-2], p.shape[-1]
                bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
                p.uniform_(-bound, bound, generator=generator)
            else:
                p.zero_()


def require_graph_device(graph: dgl.DGLGraph, device: torch.device) -> None:
    """Fail clearly when a GNN must run on CUDA but the installed DGL has no CUDA support."""
    if device.type == "cuda" and graph.device.type != "cuda":
        try:
            graph.to(device)
        except Exception as e:  # DGL raises DGLError without CUDA support
            raise RuntimeError(
                "this DGL build has no CUDA support (PyPI's DGL is CPU-only), so GNN encoders cannot "
                "run on the GPU; use --device cpu, or install a CUDA build of DGL. Shallow models "
                "(--encoder lookup) do run on CUDA.") from e
