"""Dense references and small graphs shared by the encoder tests.

Everything here is written from the papers' formulas with per-relation dense matrices, not from
the package's code paths, so the tests compare two independent computations.
"""
from __future__ import annotations

import dgl
import torch

from dgl_emu.data import KnowledgeGraph

#: training triples of the hand-made graph: entity 1 has three in-edges by relation 0, entity 2
#: two by relation 1, (3, 1, 3) is a self-loop, entity 6 occurs in no triple at all
HAND_TRAIN = [[0, 0, 1], [2, 0, 1], [3, 0, 1], [1, 1, 2], [0, 1, 2], [4, 0, 3], [4, 1, 3],
              [5, 1, 0], [2, 0, 4], [3, 1, 3], [1, 0, 5]]
HAND_VALID = [[0, 0, 2], [5, 0, 4]]
HAND_TEST = [[1, 1, 4], [4, 0, 0]]


def make_hand_kg(valid=HAND_VALID, test=HAND_TEST) -> KnowledgeGraph:
    """The hand-made 7-entity, 2-relation graph (valid/test triples are not in train)."""
    return KnowledgeGraph.from_id_triples({"train": HAND_TRAIN, "valid": valid, "test": test}, 7, 2)


def relation_adjacency(graph: dgl.DGLGraph, num_types: int) -> torch.Tensor:
    """``A (T, V_dst, V_src)`` float64, ``A[q, v, u]`` = number of edges ``u -> v`` of type ``q``."""
    A = torch.zeros(num_types, graph.num_dst_nodes(), graph.num_src_nodes(), dtype=torch.float64)
    src, dst = graph.edges()
    for u, v, q in zip(src.tolist(), dst.tolist(), graph.edata[dgl.ETYPE].tolist()):
        A[q, v, u] += 1.0
    return A


def randomize_(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.5) -> None:
    """Overwrite every parameter with ``N(0, scale^2)`` draws (biases become non-zero too)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale)


# ---------------------------------------------------------------------- R-GCN
def rgcn_relation_weights(layer) -> torch.Tensor:
    """Per-relation ``W_q (T, d_in, d_out)`` rebuilt from a RelGraphConv's TypedLinear.

    Basis: ``W_q = sum_b a_qb V_b`` (``linear_r.coeff (T, B)``, ``linear_r.W (B, in, out)``).
    Block-diagonal: ``W_q = diag(Q_q1, ..., Q_qB)`` with ``linear_r.W (T, B * in/B * out/B)``.
    """
    lin = layer.linear_r
    if lin.regularizer == "basis":
        V, a = lin.W, lin.coeff
        return torch.stack([sum(a[q, b] * V[b] for b in range(V.shape[0])) for q in range(a.shape[0])])
    assert lin.regularizer == "bdd"
    T, B = lin.num_types, lin.num_bases
    blocks = lin.W.reshape(T, B, lin.in_size // B, lin.out_size // B)
    return torch.stack([torch.block_diag(*blocks[q]) for q in range(T)])


def dense_rgcn_layer(h, A, W, loop_weight, bias, activation):
    r"""``act( sum_q D_q^{-1} A_q h W_q + h W_0 + b )`` with ``D_q = diag(in-degree by q)``.

    ``A (T, V_dst, V_src)``: rectangular for a DGL block, whose destinations are the first
    ``V_dst`` sources.
    """
    n_dst = A.shape[1]
    out = bias.expand(n_dst, -1).clone()
    if loop_weight is not None:
        out = out + h[:n_dst] @ loop_weight
    for q in range(A.shape[0]):
        c = A[q].sum(1, keepdim=True)
        # the package stores the norm in float32; for these small counts c, 1/c rounded from
        # float64 to float32 is the same number as a float32 division gives
        inv = torch.where(c > 0, (1.0 / c.clamp(min=1)).float().double(), torch.zeros_like(c))
        out = out + inv * (A[q] @ h @ W[q])
    return activation(out) if activation is not None else out


# ---------------------------------------------------------------------- CompGCN
def circular_correlation_loop(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""``[x \star z]_k = sum_i x_i z_{(i + k) mod d}`` by the definition (last dimension)."""
    x, z = torch.broadcast_tensors(x, z)
    d = x.shape[-1]
    out = torch.zeros_like(x)
    for k in range(d):
        for i in range(d):
            out[..., k] += x[..., i] * z[..., (i + k) % d]
    return out


DENSE_COMPOSITIONS = {"sub": lambda x, z: x - z, "mult": lambda x, z: x * z,
                      "corr": circular_correlation_loop}


def dense_compgcn_layer(h, z, A, layer, composition: str, activation):
    r"""One CompGCN layer from dense per-relation adjacencies ``A (2R, V, V)``.

    ``h'_v = act( (sum_q sum_u A_q[v, u] n_uv phi(h_u, z_q) W_dir(q) + phi(h_v, z_loop) W_S) / 3 + b )``
    with ``n_uv = 1 / sqrt(indeg(u) indeg(v))`` over all ``2R`` types, ``W_dir`` = original for
    ``q < R``, inverse for ``q >= R``; ``z' = z W_rel``.
    """
    phi = DENSE_COMPOSITIONS[composition]
    num_types = A.shape[0]
    R = num_types // 2
    deg = A.sum(dim=(0, 2))  # in-degree of every node over all edge types
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1).rsqrt(), torch.zeros_like(deg))
    agg = torch.zeros(h.shape[0], layer.w_self.shape[1], dtype=h.dtype)
    for q in range(num_types):
        N = A[q] * inv_sqrt.unsqueeze(1) * inv_sqrt.unsqueeze(0)  # N[v, u] = A n_uv
        W = layer.w_inverse if q >= R else layer.w_original
        agg = agg + N @ phi(h, z[q]) @ W
    out = (agg + phi(h, layer.loop_relation[0]) @ layer.w_self) / 3.0 + layer.bias
    return (activation(out) if activation is not None else out), z @ layer.w_relation
