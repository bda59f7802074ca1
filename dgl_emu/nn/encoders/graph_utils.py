"""Helpers shared by the GNN encoders: edge normalisation, seeded init and dropout."""
from __future__ import annotations

import math
from typing import Optional

import dgl
import torch
from torch import nn

from ...typing import Tensor
from ..dropout import SeededDropout  # noqa: F401  (re-exported for the encoders)

__all__ = ["embedding_tables", "layer_inputs", "relation_in_degree_norm", "symmetric_norm", "store_in_degrees", "reset_parameters_", "SeededDropout",
           "require_graph_device"]


def embedding_tables(num_entities: int, num_relation_rows: int, interaction,
                     generator: Optional[torch.Generator]):
    """Trainable ``(E, entity_dim)`` and ``(rows, relation_dim)`` input tables, initialised by
    ``interaction`` (entities first, then relations, from ``generator``)."""
    entity = nn.Parameter(torch.empty(num_entities, interaction.entity_dim))
    relation = nn.Parameter(torch.empty(num_relation_rows, interaction.relation_dim))
    interaction.init_entities_(entity, generator)
    interaction.init_relations_(relation, generator)
    return entity, relation


def layer_inputs(graph, features: Optional[Tensor], table: Tensor, num_layers: int):
    """Per-layer graphs and input features of a GNN encoder.

    A full graph is used by every layer with the whole ``table`` as input; a list of DGL blocks
    gives one block per layer with the sampled input ``features``.
    """
    blocks = list(graph) if isinstance(graph, (list, tuple)) else [graph] * num_layers
    return blocks, (table if features is None else features)


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


def symmetric_norm(graph: dgl.DGLGraph) -> Tensor:
    """``(num_edges, 1)`` norm ``1 / sqrt(deg(u) deg(v))`` (in-degrees, as in CompGCN's code).

    On a DGL block the degrees come from ``srcdata`` / ``dstdata["in_deg"]`` (full-graph
    in-degrees stored by :func:`store_in_degrees` before sampling), so sampled blocks use the
    same normalisation as the full graph.
    """
    src, dst = graph.edges()
    if graph.is_block:
        if "in_deg" not in graph.srcdata:
            raise ValueError("blocks need full-graph degrees: call store_in_degrees(graph) before sampling")
        d_src, d_dst = graph.srcdata["in_deg"], graph.dstdata["in_deg"]
    else:
        d_src = d_dst = graph.in_degrees()
    d_src, d_dst = d_src.float().clamp(min=1), d_dst.float().clamp(min=1)
    return (d_src[src.long()] * d_dst[dst.long()]).rsqrt().unsqueeze(1)


def store_in_degrees(graph: dgl.DGLGraph) -> dgl.DGLGraph:
    """Store full-graph in-degrees as ``ndata["in_deg"]`` (carried into sampled blocks)."""
    graph.ndata["in_deg"] = graph.in_degrees()
    return graph


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
