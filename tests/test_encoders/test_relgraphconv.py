"""RelationalGraphConv against dgl.nn.RelGraphConv, and compgcn_aggregate against per-edge sums."""
from __future__ import annotations

import dgl
import pytest
import torch

from dgl_emu.nn.encoders.comp_aggregate import compgcn_aggregate
from dgl_emu.nn.encoders.relgraphconv import RelationalGraphConv, relation_pairs

D_IN, D_OUT = 6, 4
TOL = {"rtol": 1e-9, "atol": 1e-9}  # float64 throughout unless stated


def random_kg(seed: int, num_nodes: int = 20, num_edges: int = 120, num_rels: int = 7):
    """Random multigraph: repeated (u, v, r) edges, nodes 0..3 without in-edges, relation
    ``num_rels - 1`` and 1 never used, edges not sorted by relation."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    dst = torch.randint(4, num_nodes, (num_edges,), generator=gen)
    used = torch.tensor([r for r in range(num_rels - 1) if r != 1])
    et = used[torch.randint(0, len(used), (num_edges,), generator=gen)]
    dup = torch.randint(0, num_edges, (num_edges // 5,), generator=gen)  # exact duplicate edges
    src, dst, et = torch.cat([src, src[dup]]), torch.cat([dst, dst[dup]]), torch.cat([et, et[dup]])
    g = dgl.graph((src, dst), num_nodes=num_nodes)
    g.edata[dgl.ETYPE] = et
    return g, gen


def relation_norm(g, et):
    """``1 / c_{v,r}`` (E, 1)."""
    _, dst = g.edges()
    _, inv, cnt = torch.unique(dst * 1000 + et, return_inverse=True, return_counts=True)
    return (1.0 / cnt[inv].double()).unsqueeze(1)


def layer_pair(seed, num_rels=7, dtype=torch.float64, **kwargs):
    """A randomised DGL layer and a RelationalGraphConv loaded from its state dict."""
    path = kwargs.pop("path", "auto")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ref = dgl.nn.RelGraphConv(D_IN, D_OUT, num_rels, **kwargs).to(dtype)
        with torch.no_grad():
            for p in ref.parameters():
                p.uniform_(-1.0, 1.0)  # non-zero bias, layer-norm affine, ...
    ours = RelationalGraphConv(D_IN, D_OUT, num_rels, **kwargs, path=path).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def run(layer, g, feat, et, norm, weight):
    """Output and gradients of ``(out * weight).sum()`` w.r.t. feat, norm and every parameter."""
    feat = feat.detach().clone().requires_grad_()
    norm = None if norm is None else norm.detach().clone().requires_grad_()
    out = layer(g, feat, et, norm)
    inputs = [feat] + ([] if norm is None else [norm]) + list(layer.parameters())
    grads = torch.autograd.grad((out * weight).sum(), inputs, allow_unused=True)
    names = ["feat"] + ([] if norm is None else ["norm"]) + [n for n, _ in layer.named_parameters()]
    return out, dict(zip(names, grads))


def assert_same(ref, ours, g, feat, et, norm, **tol):
    tol = tol or TOL
    weight = torch.randn(g.num_dst_nodes(), D_OUT, dtype=feat.dtype, generator=torch.Generator().manual_seed(1))
    out_ref, grad_ref = run(ref, g, feat, et, norm, weight)
    out, grad = run(ours, g, feat, et, norm, weight)
    torch.testing.assert_close(out, out_ref, **tol)
    assert grad.keys() == grad_ref.keys()
    for name, gr in grad_ref.items():
        gr = torch.zeros_like(grad[name]) if gr is None else gr
        torch.testing.assert_close(grad[name], gr, **tol, msg=lambda m, name=name: f"grad of {name}: {m}")


CONFIGS = [
    {"regularizer": "basis", "num_bases": 3},
    {"regularizer": "basis", "num_bases": 1, "path": "pair"},
    {"regularizer": "basis", "num_bases": 3, "path": "basis"},
    {"regularizer": "basis", "num_bases": 7, "path": "pair"},
    {"regularizer": "basis", "num_bases": 7, "path": "basis"},
    {"regularizer": "basis"},  # num_bases defaults to num_rels
    {"regularizer": "bdd", "num_bases": 2},
    {"regularizer": None},
    {"regularizer": "basis", "num_bases": 2, "self_loop": False, "bias": False},
    {"regularizer": "bdd", "num_bases": 2, "activation": torch.tanh, "self_loop": False},
    {"regularizer": None, "activation": torch.relu, "bias": False},
    {"regularizer": "basis", "num_bases": 4, "layer_norm": True, "activation": torch.tanh},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={getattr(v, '__name__', v)}" for k, v in c.items()))
@pytest.mark.parametrize("with_norm", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_dgl_on_graph(config, with_norm, seed):
    g, gen = random_kg(seed, num_edges=[50, 120, 250][seed])
    et = g.edata[dgl.ETYPE]
    feat = torch.randn(g.num_nodes(), D_IN, dtype=torch.float64, generator=gen)
    norm = relation_norm(g, et) if with_norm else None
    ref, ours = layer_pair(seed, **dict(config))
    assert_same(ref, ours, g, feat, et, norm)


@pytest.mark.parametrize("regularizer,num_bases", [("basis", 3), ("bdd", 2), (None, None)])
def test_matches_dgl_in_float32(regularizer, num_bases):
    g, gen = random_kg(5, num_edges=300)
    et = g.edata[dgl.ETYPE]
    feat = torch.randn(g.num_nodes(), D_IN, generator=gen)
    ref, ours = layer_pair(5, dtype=torch.float32, regularizer=regularizer, num_bases=num_bases)
    assert_same(ref, ours, g, feat, et, relation_norm(g, et).float(), rtol=1e-5, atol=1e-5)


def test_arbitrary_norm_and_1d_norm():
    """Any per-edge scale (not only 1/c), also given as (E,) like DGL's docstring says."""
    g, gen = random_kg(3)
    et = g.edata[dgl.ETYPE]
    feat = torch.randn(g.num_nodes(), D_IN, dtype=torch.float64, generator=gen)
    norm = torch.rand(g.num_edges(), 1, dtype=torch.float64, generator=gen)
    ref, ours = layer_pair(3, regularizer="basis", num_bases=2)
    assert_same(ref, ours, g, feat, et, norm)
    torch.testing.assert_close(ours(g, feat, et, norm[:, 0]), ref(g, feat, et, norm), **TOL)


@pytest.mark.parametrize("regularizer,num_bases", [("basis", 3), ("bdd", 2), (None, None)])
def test_matches_dgl_on_sampled_blocks(regularizer, num_bases):
    g, gen = random_kg(4, num_nodes=30, num_edges=300)
    seeds = torch.tensor([5, 7, 11, 2, 0])
    ref, ours = layer_pair(4, regularizer=regularizer, num_bases=num_bases)
    dgl.seed(0)
    _, _, blocks = dgl.dataloading.MultiLayerNeighborSampler([4, 3]).sample(g, seeds)
    blocks.append(dgl.to_block(dgl.in_subgraph(g, seeds), seeds))
    for block in blocks:
        et = block.edata[dgl.ETYPE]
        feat = torch.randn(block.num_src_nodes(), D_IN, dtype=torch.float64, generator=gen)
        assert block.num_dst_nodes() < block.num_src_nodes()
        assert_same(ref, ours, block, feat, et, relation_norm(block, et))
        assert_same(ref, ours, block, feat, et, None)


def test_graph_is_not_written_and_pairs_reuse():
    g, gen = random_kg(6)
    g.ndata["x"] = torch.zeros(g.num_nodes())
    et = g.edata[dgl.ETYPE]
    feat = torch.randn(g.num_nodes(), D_IN, dtype=torch.float64, generator=gen)
    _ref, ours = layer_pair(6, regularizer="basis", num_bases=2)
    before = (set(g.ndata.keys()), set(g.edata.keys()))
    norm = relation_norm(g, et)
    out = ours(g, feat, et, norm)
    assert (set(g.ndata.keys()), set(g.edata.keys())) == before
    pairs = relation_pairs(g, et, 7)
    torch.testing.assert_close(ours(g, feat, et, norm, pairs=pairs), out, **TOL)
    with pytest.raises(ValueError, match="another graph"):
        ours(dgl.add_edges(g, [0], [5]), feat, torch.cat([et, et[:1]]), pairs=pairs)
    block = dgl.to_block(g, torch.arange(10, 20))
    before = (set(block.srcdata.keys()), set(block.dstdata.keys()), set(block.edata.keys()))
    ours(block, feat[block.srcdata[dgl.NID]], block.edata[dgl.ETYPE])
    assert (set(block.srcdata.keys()), set(block.dstdata.keys()), set(block.edata.keys())) == before


def test_relation_pairs_groups_by_destination_and_relation():
    g, _ = random_kg(7)
    et = g.edata[dgl.ETYPE]
    p = relation_pairs(g, et, 7)
    _, dst = g.edges()
    expected = sorted(set(zip(et.tolist(), dst.tolist())))
    assert list(zip(p.pair_rel.tolist(), p.pair_dst.tolist())) == expected
    assert [r for r, _, _ in p.segments] == sorted(set(et.tolist()))
    assert p.graph.num_edges() == g.num_edges() and p.graph.num_dst_nodes() == len(expected)


def test_no_edges_gives_self_loop_and_bias():
    g = dgl.graph(([], []), num_nodes=5)
    feat = torch.randn(5, D_IN, dtype=torch.float64)
    _, ours = layer_pair(0, regularizer="basis", num_bases=2, activation=torch.tanh)
    expected = torch.tanh(ours.h_bias + feat @ ours.loop_weight)
    torch.testing.assert_close(ours(g, feat, torch.zeros(0, dtype=torch.long)), expected, **TOL)


def test_init_uses_generator_not_global_rng():
    state = torch.random.get_rng_state()
    a = RelationalGraphConv(D_IN, D_OUT, 5, "basis", 2, generator=torch.Generator().manual_seed(3))
    b = RelationalGraphConv(D_IN, D_OUT, 5, "basis", 2, generator=torch.Generator().manual_seed(3))
    c = RelationalGraphConv(D_IN, D_OUT, 5, "basis", 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.linear_r.W, c.linear_r.W)
    assert a.linear_r.W.abs().max() <= D_IN ** -0.5
    with torch.random.fork_rng():
        ref = dgl.nn.RelGraphConv(D_IN, D_OUT, 5, "bdd", 2)
    ours = RelationalGraphConv(D_IN, D_OUT, 5, "bdd", 2)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def test_rejects_what_it_would_compute_differently():
    g, _ = random_kg(0)
    et = g.edata[dgl.ETYPE]
    feat = torch.randn(g.num_nodes(), D_IN)
    with pytest.raises(ValueError, match="dropout"):
        RelationalGraphConv(D_IN, D_OUT, 7, dropout=0.5)
    with pytest.raises(ValueError, match="path"):
        RelationalGraphConv(D_IN, D_OUT, 7, "bdd", 2, path="basis")
    with pytest.raises(ValueError, match="divisible"):
        RelationalGraphConv(D_IN, D_OUT, 7, "bdd", 4)
    conv = RelationalGraphConv(D_IN, D_OUT, 7, "basis", 2)
    for bad in (7, -1):
        with pytest.raises(ValueError, match="edge types"):
            conv(g, feat, torch.cat([et[:-1], torch.tensor([bad])]))
    with pytest.raises(ValueError, match="norm"):
        conv(g, feat, et, torch.ones(g.num_edges(), D_OUT))
    with pytest.raises(ValueError, match="promote"):
        conv(g, feat, et, torch.ones(g.num_edges(), 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="feat"):
        conv(g, feat[:-1], et)


# ------------------------------------------------------------------------ CompGCN aggregation
def _corr_direct(x, z):
    """[x ⋆ z]_k = Σ_i x_i z_{(i + k) mod d}, by the definition (no FFT)."""
    d = x.shape[-1]
    idx = (torch.arange(d).unsqueeze(0) + torch.arange(d).unsqueeze(1)) % d  # idx[k, i] = (i + k) % d
    return torch.einsum("ei,eki->ek", x, z[:, idx])


_PHI = {"sub": lambda x, z: x - z, "mult": lambda x, z: x * z, "corr": _corr_direct}


def per_edge_aggregate(graph, h, z, norm, composition, w_original, w_inverse, num_relations, et):
    src, dst = graph.edges()
    phi = _PHI[composition](h[src], z[et])
    msg = torch.where((et >= num_relations).unsqueeze(1), phi @ w_inverse, phi @ w_original)
    if norm is not None:
        msg = msg * norm
    return msg.new_zeros(graph.num_dst_nodes(), w_original.shape[1]).index_add(0, dst, msg)


@pytest.mark.parametrize("composition", ["sub", "mult", "corr"])
@pytest.mark.parametrize("kind", ["graph", "block", "no-norm"])
def test_compgcn_aggregate_matches_per_edge(composition, kind):
    R = 3  # ids 0..5: random_kg uses 0, 2 (original) and 3, 4 (inverse), leaves 1 and 5 unused
    g, gen = random_kg(8, num_edges=200, num_rels=2 * R)
    if kind == "block":
        g = dgl.to_block(dgl.in_subgraph(g, torch.arange(8, 16)), torch.arange(8, 16))
    et = g.edata[dgl.ETYPE]
    norm = None if kind == "no-norm" else torch.rand(g.num_edges(), 1, dtype=torch.float64, generator=gen)
    leaves = [torch.randn(*s, dtype=torch.float64, generator=gen, requires_grad=True)
              for s in [(g.num_src_nodes(), 7), (2 * R, 7), (7, 5), (7, 5)]]
    if norm is not None:
        leaves.append(norm.requires_grad_())
    h, z, wo, wi = leaves[:4]
    weight = torch.randn(g.num_dst_nodes(), 5, dtype=torch.float64, generator=gen)
    keys = (set(g.srcdata.keys()), set(g.edata.keys()))
    got = compgcn_aggregate(g, h, z, norm, composition, wo, wi, R)
    assert (set(g.srcdata.keys()), set(g.edata.keys())) == keys
    want = per_edge_aggregate(g, h, z, norm, composition, wo, wi, R, et)
    torch.testing.assert_close(got, want, **TOL)
    again = compgcn_aggregate(g, h, z, norm, composition, wo, wi, R, pairs=relation_pairs(g, et, 2 * R))
    torch.testing.assert_close(again, want, **TOL)
    for a, b in zip(torch.autograd.grad((got * weight).sum(), leaves),
                    torch.autograd.grad((want * weight).sum(), leaves)):
        torch.testing.assert_close(a, b, **TOL)


def test_compgcn_aggregate_rejects_nonlinear_composition_and_foreign_pairs():
    g, _ = random_kg(0, num_rels=4)
    with pytest.raises(ValueError, match="composition"):
        compgcn_aggregate(g, torch.ones(20, 3), torch.ones(4, 3), None, "rotate",
                          torch.ones(3, 2), torch.ones(3, 2), 2)
    with pytest.raises(ValueError, match="another graph"):
        compgcn_aggregate(g, torch.ones(20, 3), torch.ones(4, 3), None, "mult", torch.ones(3, 2),
                          torch.ones(3, 2), 2, pairs=relation_pairs(g, g.edata[dgl.ETYPE], 6))
