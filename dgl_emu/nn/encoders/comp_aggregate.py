r"""CompGCN neighbourhood aggregation per (destination, relation) pair instead of per edge.

The per-edge CompGCN layer computes, for every edge ``e = (u -> v, r)``,

.. math::

    \mathrm{agg}_v = \sum_{e = (u \to v, r)} n_e\, \phi(h_u, z_r)\, W_{\lambda(r)}, \qquad
    \lambda(r) = \text{original if } r < R \text{ else inverse}

with ``φ`` one of ``sub`` (``h - z``), ``mult`` (``h ⊙ z``) or ``corr``
(``irfft(conj(rfft(h)) ⊙ rfft(z))``, circular correlation). For a fixed ``z_r`` each ``φ`` is
linear in ``h`` up to a constant (``sub``), so over the edges of one pair ``p = (v, r)``

.. math::

    \sum_{e \in p} n_e \phi(h_u, z_r) = \phi(x_p, z_r) \ (\text{mult, corr}), \quad
    x_p - s_p z_r \ (\text{sub}), \qquad x_p = \sum_{e \in p} n_e h_u,\ s_p = \sum_{e \in p} n_e

and since ``W`` only depends on the direction, the compositions are summed per
(destination, direction) and multiplied once: ``agg = [A_orig, A_inv] (N_dst, 2 d_in) @
[W_orig; W_inv] (2 d_in, d_out)``. Cost: one sparse sum over ``E`` edges, ``|P|`` compositions
and an ``N_dst x 2 d_in x d_out`` product, instead of ``E`` compositions and ``E`` products.
"""
from __future__ import annotations

import dgl
import torch

from .relgraphconv import RelationPairs, relation_pairs

Tensor = torch.Tensor

__all__ = ["COMPOSITION_NAMES", "compgcn_aggregate"]

#: compositions that are linear in the entity argument (the only ones this aggregation supports)
COMPOSITION_NAMES = ("sub", "mult", "corr")


def compgcn_aggregate(graph: dgl.DGLGraph, h: Tensor, z: Tensor, norm: Tensor | None,
                      composition: str, w_original: Tensor, w_inverse: Tensor, num_relations: int,
                      etypes: Tensor | None = None, pairs: RelationPairs | None = None) -> Tensor:
    r"""``Σ_{e=(u→v,r)} n_e φ(h_u, z_r) W_{λ(r)}`` for every destination ``v``, per pair.

    Parameters
    ----------
    graph : dgl.DGLGraph
        Homogeneous graph or block (``E`` edges); never written to.
    h : Tensor
        ``(N_src, d_in)`` source features.
    z : Tensor
        ``(2R, d_in)`` relation features (originals, then inverses).
    norm : Tensor, optional
        ``(E, 1)`` per-edge scale ``n_e`` (``None``: 1).
    composition : {"sub", "mult", "corr"}
        ``φ``.
    w_original, w_inverse : Tensor
        ``(d_in, d_out)``: ``W`` of relations ``r < R`` and ``r >= R``.
    num_relations : int
        ``R``.
    etypes : Tensor, optional
        ``(E,)`` relation ids in ``0..2R-1``; default ``graph.edata[dgl.ETYPE]``.
    pairs : RelationPairs, optional
        :func:`~dgl_emu.nn.encoders.relgraphconv.relation_pairs` ``(graph, etypes, len(z))``,
        to skip regrouping the edges; must come from this graph and ``etypes``.

    Returns
    -------
    Tensor
        ``(N_dst, d_out)``.

    Examples
    --------
    >>> g = dgl.graph(([0, 1, 2, 2], [1, 1, 0, 1]))
    >>> h, z = torch.arange(6.).view(3, 2), torch.ones(4, 2)
    >>> w = torch.eye(2)  # node 1: (h0 - z) + (h1 - z) with W = I, plus 2 (h2 - z) (inverse)
    >>> compgcn_aggregate(g, h, z, None, "sub", w, 2 * w, 2, etypes=torch.tensor([0, 0, 3, 3]))
    tensor([[ 6.,  8.],
            [ 6., 10.],
            [ 0.,  0.]])
    """
    if composition not in COMPOSITION_NAMES:
        raise ValueError(f"composition must be one of {COMPOSITION_NAMES} (linear in h), got {composition!r}")
    if z.shape[0] != 2 * num_relations:
        raise ValueError(f"z must have 2 * num_relations = {2 * num_relations} rows, got {z.shape[0]}")
    if etypes is None:
        etypes = graph.edata[dgl.ETYPE]
    if pairs is None:
        pairs = relation_pairs(graph, etypes, z.shape[0])
    elif (pairs.num_src, pairs.num_dst, pairs.num_edges, pairs.num_rels) != (
            graph.num_src_nodes(), graph.num_dst_nodes(), graph.num_edges(), z.shape[0]):
        raise ValueError("pairs were built for another graph or number of relations")
    if h.dim() != 2 or h.shape[0] != pairs.num_src:
        raise ValueError(f"h must have {pairs.num_src} rows, got shape {tuple(h.shape)}")
    d_in = h.shape[1]
    if norm is not None:
        if norm.shape != (pairs.num_edges, 1):
            raise ValueError(f"norm must have shape ({pairs.num_edges}, 1), got {tuple(norm.shape)}")
        if torch.promote_types(h.dtype, norm.dtype) != h.dtype:
            raise ValueError(f"norm ({norm.dtype}) would promote the {h.dtype} features")
        norm = norm.to(h.dtype)
    pg = pairs.graph
    x = dgl.ops.copy_u_sum(pg, h) if norm is None else dgl.ops.u_mul_e_sum(pg, h, norm)  # (|P|, d_in)
    if composition == "sub":
        if norm is None:
            s = torch.diff(pg.adj_tensors("csc")[0]).unsqueeze(1).to(h.dtype)
        else:
            s = dgl.ops.copy_e_sum(pg, norm)
        phi = x - s * z.index_select(0, pairs.pair_rel)
    elif composition == "mult":
        phi = x * z.index_select(0, pairs.pair_rel)
    else:  # transform the 2R relation rows once, not |P|
        z_hat = torch.fft.rfft(z, dim=-1).index_select(0, pairs.pair_rel)
        phi = torch.fft.irfft(torch.conj(torch.fft.rfft(x, dim=-1)) * z_hat, n=d_in, dim=-1)
    row = pairs.pair_dst * 2 + (pairs.pair_rel >= num_relations).long()
    per_direction = phi.new_zeros(pairs.num_dst * 2, d_in).index_add(0, row, phi)
    weight = torch.cat([w_original, w_inverse], dim=0)  # (2 d_in, d_out)
    return per_direction.view(pairs.num_dst, 2 * d_in) @ weight
