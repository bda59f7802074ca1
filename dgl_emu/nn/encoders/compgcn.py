"""CompGCN encoder (Vashishth et al., ICLR 2020) on DGL message passing."""
from __future__ import annotations

from typing import Optional, Sequence

import dgl
import dgl.function as fn
import torch
from torch import nn

from ...registry import Registry
from ...typing import Tensor
from ..interactions.base import Interaction
from .base import Encoder, Representations
from .comp_aggregate import COMPOSITION_NAMES, compgcn_aggregate
from .graph_utils import (embedding_tables, layer_inputs, node_blocks, SeededDropout, reset_parameters_,
                          symmetric_norm)

__all__ = ["CompGCNLayer", "CompGCNEncoder", "COMPOSITIONS", "subtract", "multiply",
           "circular_correlation"]

COMPOSITIONS: Registry = Registry("composition")


@COMPOSITIONS.register("sub")
def subtract(x: Tensor, z: Tensor) -> Tensor:
    """``φ(x, z) = x - z`` (TransE-like)."""
    return x - z


@COMPOSITIONS.register("mult")
def multiply(x: Tensor, z: Tensor) -> Tensor:
    """``φ(x, z) = x ⊙ z`` (DistMult-like)."""
    return x * z


@COMPOSITIONS.register("corr")
def circular_correlation(x: Tensor, z: Tensor) -> Tensor:
    r"""``φ(x, z) = x ⋆ z``, :math:`[x \star z]_k = \sum_i x_i z_{(i + k) \bmod d}` (HolE-like).

    Computed with FFTs: ``irfft(conj(rfft(x)) * rfft(z))``.

    Examples
    --------
    >>> circular_correlation(torch.tensor([1., 0., 0.]), torch.tensor([1., 2., 3.]))
    tensor([1., 2., 3.])
    """
    d = x.shape[-1]
    return torch.fft.irfft(torch.conj(torch.fft.rfft(x, dim=-1)) * torch.fft.rfft(z, dim=-1), n=d, dim=-1)


class CompGCNLayer(nn.Module):
    r"""One CompGCN layer with direction-specific weights.

    .. math::
        h_v' = f\Big(\tfrac13 \sum_{(u, r) \in N(v)} n_{uv} W_{\lambda(r)} \phi(h_u, z_r)
               + \tfrac13 W_{S}\,\phi(h_v, z_{loop}) \Big), \qquad z_r' = W_{rel} z_r

    with ``λ(r)`` = original (``r < R``) or inverse (``r >= R``) and ``n_uv = 1/sqrt(d_u d_v)``.
    The official implementation averages the three directions with weight 1/3 each; so does this
    (each direction's sum already carries the degree norm). The registered compositions are linear
    in ``h``, so the messages are summed per (node, relation) pair before ``φ`` and ``W`` are
    applied (:func:`~dgl_emu.nn.encoders.comp_aggregate.compgcn_aggregate`); any other
    composition gets one message per edge.

    Parameters
    ----------
    in_dim, out_dim : int
        Widths.
    num_relations : int
        ``R``; relation inputs have ``2R`` rows (originals, then inverses).
    composition : callable
        ``φ``, e.g. from :data:`COMPOSITIONS`.
    activation : callable, optional
        ``f``.

    Notes
    -----
    ``forward(graph, h (V_src, in), z (2R, in), norm (E, 1))`` returns
    ``(h' (V_dst, out), z' (2R, out))``; ``norm`` defaults to :func:`symmetric_norm` of a full
    graph (blocks must pass theirs).
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, composition,
                 activation=torch.tanh):
        super().__init__()
        self.num_relations = num_relations
        self.composition = composition
        self.activation = activation
        self.w_original = nn.Parameter(torch.empty(in_dim, out_dim))
        self.w_inverse = nn.Parameter(torch.empty(in_dim, out_dim))
        self.w_self = nn.Parameter(torch.empty(in_dim, out_dim))
        self.w_relation = nn.Parameter(torch.empty(in_dim, out_dim))
        self.loop_relation = nn.Parameter(torch.empty(1, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, graph: dgl.DGLGraph, h: Tensor, z: Tensor, norm: Optional[Tensor] = None):
        norm = symmetric_norm(graph).to(h.device) if norm is None else norm
        name = _registered_name(self.composition)
        if name is not None:  # linear in h: aggregate per (node, relation) pair (comp_aggregate)
            agg = compgcn_aggregate(graph, h, z, norm, name, self.w_original, self.w_inverse,
                                    self.num_relations)
        else:  # any other composition: one message per edge
            agg = self._per_edge(graph, h, z, norm)
        h_dst = h[: graph.num_dst_nodes()]
        out = (agg + self.composition(h_dst, self.loop_relation) @ self.w_self) / 3.0 + self.bias
        if self.activation is not None:
            out = self.activation(out)
        return out, z @ self.w_relation

    def _per_edge(self, graph: dgl.DGLGraph, h: Tensor, z: Tensor, norm: Tensor) -> Tensor:
        """The per-edge messages, summed: ``(V_dst, out)``."""
        etype = graph.edata[dgl.ETYPE].long()
        inverse = (etype >= self.num_relations).unsqueeze(1)
        with graph.local_scope():
            graph.srcdata["h"] = h
            graph.edata["z"] = z[etype]
            graph.apply_edges(lambda e: {"phi": self.composition(e.src["h"], e.data["z"])})
            phi = graph.edata["phi"]
            msg = torch.where(inverse, phi @ self.w_inverse, phi @ self.w_original)
            graph.edata["m"] = msg * norm
            graph.update_all(fn.copy_e("m", "m"), fn.sum("m", "agg"))
            return graph.dstdata["agg"]


def _registered_name(composition) -> Optional[str]:
    """The name of ``composition`` if it is one of the registered (linear) compositions."""
    for name in COMPOSITIONS.names():
        if COMPOSITIONS.get(name) is composition and name in COMPOSITION_NAMES:
            return name
    return None


class CompGCNEncoder(Encoder):
    """CompGCN: entities and relations embedded jointly, relations updated per layer.

    Parameters
    ----------
    num_entities : int
        ``E``.
    num_relations : int
        ``R``; the encoder learns ``2R`` relation vectors (originals and inverses) and returns
        the ``R`` originals for decoding.
    interaction : Interaction
        Decoder; needs ``entity_dim == relation_dim`` (DistMult, TransE, ComplEx, ConvE).
    num_layers : int
        CompGCN layers (default 2).
    composition : str
        ``"sub"``, ``"mult"`` or ``"corr"`` (see :data:`COMPOSITIONS`).
    dropout : float
        Dropout after each layer (seeded; default 0.1).
    generator : torch.Generator, optional
        Initialisation randomness.
    seed : int
        Seed of the dropout masks.

    Examples
    --------
    >>> from dgl_emu.nn.interactions import DistMult
    >>> from dgl_emu.data import generate_cyclic_kg
    >>> kg = generate_cyclic_kg(num_rings=2, ring_size=4)
    >>> enc = CompGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=8), composition="corr")
    >>> [tuple(x.shape) for x in enc(kg.graph("train"))]
    [(8, 8), (6, 8)]
    """

    needs_graph = True

    def __init__(self, num_entities: int, num_relations: int, interaction: Interaction,
                 num_layers: int = 2, composition: str = "mult", dropout: float = 0.1,
                 generator: Optional[torch.Generator] = None, seed: int = 0):
        super().__init__()
        width = interaction.entity_dim
        if interaction.relation_dim != width:
            raise ValueError(f"CompGCN composes entities with relations, so the decoder needs equal "
                             f"entity and relation widths; {type(interaction).__name__} has "
                             f"{width} and {interaction.relation_dim} (use DistMult, TransE, ComplEx or ConvE)")
        try:
            phi = COMPOSITIONS.get(composition)
        except KeyError as e:
            raise ValueError(f"composition: {e.args[0]}") from None
        self.num_relations = num_relations
        self.entity, self.relation = embedding_tables(num_entities, 2 * num_relations, interaction, generator)
        self.layers = nn.ModuleList([
            CompGCNLayer(width, width, num_relations, phi,
                         activation=torch.tanh if i < num_layers - 1 else None)
            for i in range(num_layers)])
        reset_parameters_(self.layers, generator)
        self.dropout = SeededDropout(dropout, seed)

    def forward(self, graph, features: Optional[Tensor] = None,
                norms: Optional[Sequence[Tensor]] = None) -> Representations:
        """Encode the full graph, or a list of DGL blocks with their input ``features``.

        Blocks need ``norms`` (from :meth:`edge_norm` with the full graph's in-degrees).
        """
        blocks, norms, h = layer_inputs(graph, features, self.entity, len(self.layers), norms, self.edge_norm)
        z = self.relation
        for layer, block, norm in zip(self.layers, blocks, norms):
            h, z = layer(block, h, z, norm)
            h = self.dropout(h)
        return Representations(h, z[: self.num_relations])

    @torch.no_grad()
    def inference(self, graph: dgl.DGLGraph, batch_size: int = 16384) -> Representations:
        """:meth:`forward` of the full graph in eval mode, layer by layer over node batches
        (see :meth:`RGCNEncoder.inference`)."""
        in_degrees = graph.in_degrees()
        h, z = self.entity, self.relation
        for layer in self.layers:
            out, z_next = None, None
            for nodes, block in node_blocks(graph, batch_size):
                part, z_next = layer(block, h[block.srcdata[dgl.NID].long()], z, self.edge_norm(block, in_degrees))
                out = part.new_empty(h.shape[0], part.shape[1]) if out is None else out
                out[nodes] = part
            h, z = out, z_next
        return Representations(h, z[: self.num_relations])

    def edge_norm(self, graph, in_degrees: Optional[Tensor] = None) -> Tensor:
        """``1 / sqrt(d_u d_v)`` with full-graph in-degrees (see :func:`symmetric_norm`)."""
        return symmetric_norm(graph, in_degrees).to(graph.device)
