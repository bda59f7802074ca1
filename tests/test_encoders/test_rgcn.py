"""R-GCN encoder against a dense per-relation reference; shared graph helpers; split hygiene."""
from __future__ import annotations

import math

import dgl
import pytest
import torch

from dgl_emu.data import KnowledgeGraph
from dgl_emu.rng import bernoulli_mask
from dgl_emu.nn.encoders import CompGCNEncoder, Decomposition, RelationalGraphConv, RGCNEncoder
from dgl_emu.nn.encoders.graph_utils import (SeededDropout, relation_in_degree_norm,
                                             require_graph_device, reset_parameters_)
from dgl_emu.nn.interactions import DistMult
from dgl_emu.pipeline import training_graph
from dgl_emu.models import KGEModel

from .dense import (HAND_TRAIN, dense_rgcn_layer, make_hand_kg, randomize_, relation_adjacency,
                    rgcn_relation_weights)

DIM = 8


def _rgcn(kg, seed=0, **kwargs) -> RGCNEncoder:
    kwargs.setdefault("dropout", 0.0)
    enc = RGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=DIM),
                      generator=torch.Generator().manual_seed(seed), **kwargs).double()
    randomize_(enc, torch.Generator().manual_seed(seed + 100))
    return enc


def _dense_forward(enc: RGCNEncoder, graph, self_loop: bool = True) -> torch.Tensor:
    A = relation_adjacency(graph, enc.layers[0].linear_r.num_types)
    h = enc.entity
    for i, layer in enumerate(enc.layers):
        act = torch.tanh if i < len(enc.layers) - 1 else None
        h = dense_rgcn_layer(h, A, rgcn_relation_weights(layer),
                             layer.loop_weight if self_loop else None, layer.h_bias, act)
    return h


# ---------------------------------------------------------------------- the graph and the norm
def test_training_graph_layout(hand_kg):
    """Edge i < N is train triple i, edge N + i its inverse with relation r + R."""
    g = hand_kg.graph("train")
    t = hand_kg.splits["train"]
    N, R = len(t), hand_kg.num_relations
    src, dst = g.edges()
    et = g.edata[dgl.ETYPE]
    assert g.num_nodes() == 7 and g.num_edges() == 2 * N
    assert src[:N].tolist() == t[:, 0].tolist() and dst[:N].tolist() == t[:, 2].tolist()
    assert et[:N].tolist() == t[:, 1].tolist()
    assert src[N:].tolist() == t[:, 2].tolist() and dst[N:].tolist() == t[:, 0].tolist()
    assert et[N:].tolist() == (t[:, 1] + R).tolist()


def test_relation_in_degree_norm_is_one_over_c(kg):
    g = kg.graph("train")
    A = relation_adjacency(g, 2 * kg.num_relations)
    src, dst = g.edges()
    expected = torch.tensor([1.0 / float(A[q, v].sum()) for v, q in
                             zip(dst.tolist(), g.edata[dgl.ETYPE].tolist())])
    norm = relation_in_degree_norm(g)
    assert norm.shape == (g.num_edges(), 1)
    torch.testing.assert_close(norm[:, 0], expected.float())


def test_relation_in_degree_norm_counts_per_relation(hand_kg):
    """Entity 1 has three in-edges by relation 0 and one by relation 1 + R (inverse of (1, 1, 2))."""
    g = hand_kg.graph("train")
    norm = relation_in_degree_norm(g)[:, 0]
    N = len(HAND_TRAIN)
    into_1_by_0 = [i for i, (h, r, t) in enumerate(HAND_TRAIN) if t == 1 and r == 0]
    assert len(into_1_by_0) == 3
    assert norm[into_1_by_0].tolist() == pytest.approx([1 / 3] * 3)
    inverse_into_1 = [N + i for i, (h, r, t) in enumerate(HAND_TRAIN) if h == 1 and r == 1]
    assert norm[inverse_into_1].tolist() == [1.0]


# ---------------------------------------------------------------------- R-GCN vs dense
@pytest.mark.parametrize("decomposition,num_bases", [(Decomposition.BASIS, 3), (Decomposition.BASIS, 1),
                                                     (Decomposition.BLOCK, 2), (Decomposition.BLOCK, 4)])
def test_rgcn_matches_dense_reference(kg, decomposition, num_bases):
    enc = _rgcn(kg, decomposition=decomposition, num_bases=num_bases)
    graph = kg.graph("train")
    reps = enc(graph)
    expected = _dense_forward(enc, graph)
    assert reps.entity.shape == (kg.num_entities, DIM)
    torch.testing.assert_close(reps.entity, expected, rtol=1e-9, atol=1e-9)
    assert reps.relation is enc.relation  # the decoder's relation table is not propagated


@pytest.mark.parametrize("num_layers", [1, 3])
def test_rgcn_activation_between_layers_only(hand_kg, num_layers):
    enc = _rgcn(hand_kg, num_layers=num_layers, decomposition=Decomposition.BASIS, num_bases=2)
    assert len(enc.layers) == num_layers
    graph = hand_kg.graph("train")
    torch.testing.assert_close(enc(graph).entity, _dense_forward(enc, graph), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("decomposition", list(Decomposition))
def test_rgcn_without_self_loop(hand_kg, decomposition):
    enc = _rgcn(hand_kg, decomposition=decomposition, num_bases=2, self_loop=False)
    graph = hand_kg.graph("train")
    out = enc(graph).entity
    torch.testing.assert_close(out, _dense_forward(enc, graph, self_loop=False), rtol=1e-9, atol=1e-9)
    # the isolated entity 6 receives no message: only the bias of the last layer is left
    torch.testing.assert_close(out[6], enc.layers[-1].h_bias)


def test_rgcn_isolated_entity_keeps_self_loop_and_bias(hand_kg):
    enc = _rgcn(hand_kg, decomposition=Decomposition.BASIS, num_bases=2)
    out = enc(hand_kg.graph("train")).entity
    l0, l1 = enc.layers
    h1 = torch.tanh(enc.entity[6] @ l0.loop_weight + l0.h_bias)
    torch.testing.assert_close(out[6], h1 @ l1.loop_weight + l1.h_bias)


def test_rgcn_dense_reference_is_sensitive_to_the_norm(hand_kg):
    """Guard: dropping D^{-1} changes the reference, so the comparison above tests the norm."""
    enc = _rgcn(hand_kg, decomposition=Decomposition.BASIS, num_bases=2)
    g = hand_kg.graph("train")
    A = relation_adjacency(g, 4)
    layer = enc.layers[0]
    W = rgcn_relation_weights(layer)
    with_norm = dense_rgcn_layer(enc.entity, A, W, layer.loop_weight, layer.h_bias, torch.tanh)
    no_norm = torch.tanh(enc.entity @ layer.loop_weight + layer.h_bias
                         + sum(A[q] @ enc.entity @ W[q] for q in range(4)))
    assert not torch.allclose(with_norm, no_norm)
    torch.testing.assert_close(layer(g, enc.entity, g.edata[dgl.ETYPE], relation_in_degree_norm(g)),
                               with_norm, rtol=1e-9, atol=1e-9)


def test_block_diagonal_weights_are_block_diagonal(hand_kg):
    enc = _rgcn(hand_kg, decomposition=Decomposition.BLOCK, num_bases=4)
    W = rgcn_relation_weights(enc.layers[0])
    assert W.shape == (4, DIM, DIM)
    mask = torch.block_diag(*[torch.ones(2, 2)] * 4).bool()
    assert (W[:, ~mask] == 0).all() and (W[:, mask] != 0).all()


def test_rgcn_num_bases_defaults_and_validation(hand_kg):
    E, R = hand_kg.num_entities, hand_kg.num_relations
    basis = RGCNEncoder(E, R, DistMult(dim=DIM))
    assert basis.layers[0].linear_r.coeff.shape == (2 * R, min(2 * R, 30))
    assert RGCNEncoder(E, 20, DistMult(dim=DIM)).layers[0].linear_r.coeff.shape == (40, 30)
    for width, blocks in ((8, 4), (6, 2), (5, 1)):
        enc = RGCNEncoder(E, R, DistMult(dim=width), decomposition=Decomposition.BLOCK)
        assert enc.layers[0].linear_r.num_bases == blocks
    with pytest.raises(ValueError, match="dividing 8"):
        RGCNEncoder(E, R, DistMult(dim=8), decomposition=Decomposition.BLOCK, num_bases=3)


# ---------------------------------------------------------------------- init and dropout
def test_reset_parameters_follows_the_generator(hand_kg):
    """DGL initialises from the global RNG; reset_parameters_ must make the generator decide."""
    def build(seed):
        return RGCNEncoder(7, 2, DistMult(dim=DIM), generator=torch.Generator().manual_seed(seed))

    a, b, c = build(0), build(0), build(1)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if pa.dim() >= 2:
            assert not torch.equal(pa, pc), name
    for layer in a.layers:
        for name, p in layer.named_parameters():
            if p.dim() >= 2:
                bound = math.sqrt(6.0 / (p.shape[-2] + p.shape[-1]))
                assert p.abs().max() <= bound and p.abs().max() > 0.5 * bound, name
            else:
                assert (p == 0).all(), name


def test_reset_parameters_bounds_per_tensor():
    m = torch.nn.Linear(30, 2)
    reset_parameters_(m, torch.Generator().manual_seed(0), gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / (m.weight.shape[0] + m.weight.shape[1]))  # fans of the last 2 dims
    assert m.weight.abs().max() <= bound and (m.bias == 0).all()


def test_seeded_dropout_mask_from_its_generator():
    drop = SeededDropout(0.25, seed=7)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = drop.generators.get(torch.device("cpu")).get_state()
    out = drop(x)
    g = torch.Generator()
    g.set_state(state)
    keep = bernoulli_mask(x.shape, 0.75, g, dtype=torch.float64)
    assert 0 < keep.sum() < keep.numel()
    torch.testing.assert_close(out, x * keep / 0.75, rtol=0, atol=0)
    assert drop.eval()(x) is x and SeededDropout(0.0)(x) is x
    with pytest.raises(ValueError):
        SeededDropout(1.0)


def test_encoder_dropout_only_in_training(hand_kg):
    g = hand_kg.graph("train")
    plain = _rgcn(hand_kg, decomposition=Decomposition.BASIS, num_bases=2)
    dropped = _rgcn(hand_kg, decomposition=Decomposition.BASIS, num_bases=2, dropout=0.3)
    assert torch.equal(plain(g).entity, dropped.eval()(g).entity)
    assert not torch.equal(plain(g).entity, dropped.train()(g).entity)


# ---------------------------------------------------------------------- device
@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_require_graph_device_explains_missing_cuda(hand_kg):
    g = hand_kg.graph("train")
    require_graph_device(g, torch.device("cpu"))  # CPU is always fine
    with pytest.raises(RuntimeError, match="CUDA support"):
        require_graph_device(g, torch.device("cuda"))


# ---------------------------------------------------------------------- split hygiene
def _edge_set(graph):
    src, dst = graph.edges()
    return set(zip(src.tolist(), graph.edata[dgl.ETYPE].tolist(), dst.tolist()))


def test_message_passing_graph_has_no_valid_or_test_edges(kg):
    R = kg.num_relations
    train = {tuple(t) for t in kg.splits["train"].tolist()}
    held_out = [tuple(t) for s in ("valid", "test") for t in kg.splits[s].tolist()]
    held_out = [t for t in held_out if t not in train]
    assert held_out, "the graph must hold valid/test triples absent from train"
    for graph in (kg.graph("train"), training_graph(KGEModel(_rgcn(kg), DistMult(dim=DIM)), kg,
                                                  torch.device("cpu"))):
        edges = _edge_set(graph)
        assert graph.num_edges() == 2 * len(kg.splits["train"])
        for h, r, t in held_out:
            assert (h, r, t) not in edges and (t, r + R, h) not in edges


def _encoders(kg):
    yield _rgcn(kg, decomposition=Decomposition.BASIS, num_bases=2)
    yield _rgcn(kg, decomposition=Decomposition.BLOCK, num_bases=2)
    enc = CompGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=DIM), num_layers=2,
                         composition="corr", dropout=0.0, generator=torch.Generator().manual_seed(0)).double()
    randomize_(enc, torch.Generator().manual_seed(1))
    yield enc


def test_encoder_output_ignores_valid_and_test():
    """Same train split, different valid/test: identical encoder output through the pipeline's graph."""
    kg1 = make_hand_kg()
    kg2 = make_hand_kg(valid=[[6, 1, 0], [2, 1, 5]], test=[[6, 0, 6], [0, 1, 4], [5, 0, 2]])
    for enc in _encoders(kg1):
        model = KGEModel(enc, DistMult(dim=DIM))
        out1 = enc(training_graph(model, kg1, torch.device("cpu"))).entity
        out2 = enc(training_graph(model, kg2, torch.device("cpu"))).entity
        assert torch.equal(out1, out2)
        # control: had valid triples entered the graph, the output would have changed
        both = torch.cat([kg2.splits["train"], kg2.splits["valid"]])
        leaky = KnowledgeGraph.from_id_triples({"train": both}, 7, 2).graph("train")
        assert not torch.allclose(enc(leaky).entity, out1)


@pytest.mark.parametrize("decomposition,num_bases", [(Decomposition.BASIS, 3), (Decomposition.BLOCK, 2)])
def test_encoder_on_the_pair_layer_equals_the_encoder_on_dgls_layer(kg, decomposition, num_bases):
    """Same seed, same initial weights: the encoder's outputs and gradients agree with DGL's layer."""
    encoders = [RGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=DIM), decomposition=decomposition,
                            num_bases=num_bases, dropout=0.0, generator=torch.Generator().manual_seed(4),
                            conv=conv).double() for conv in (RelationalGraphConv, dgl.nn.RelGraphConv)]
    assert isinstance(encoders[0].layers[0], RelationalGraphConv)
    graph = kg.graph("train")
    outs = []
    for enc in encoders:
        out = enc(graph).entity
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        outs.append((out, {n: p.grad for n, p in enc.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-9, atol=1e-9)
    assert outs[0][1].keys() == outs[1][1].keys()
    for name in outs[0][1]:
        torch.testing.assert_close(outs[0][1][name], outs[1][1][name], rtol=1e-9, atol=1e-9, msg=name)


def test_edge_dropout_encodes_the_kept_edges_normalised_after_dropping(kg):
    enc = _rgcn(kg, num_layers=2, decomposition=Decomposition.BASIS, num_bases=2, edge_dropout=0.5)
    graph = kg.graph("train")
    state = enc.edge_dropout.rng_state()
    out = enc(graph).entity                             # training mode: edges dropped
    enc.edge_dropout.load_rng_state(state)
    sub, loop = enc.edge_dropout(graph)                 # the same draw
    assert loop is None and 0.3 < sub.num_edges() / graph.num_edges() < 0.7
    assert sub.num_nodes() == graph.num_nodes() and set(graph.edata) == {dgl.ETYPE}
    expected = _dense_forward(enc.eval(), sub)          # eval mode on the kept edges, their own norms
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(out, enc(graph).entity)   # eval mode: every edge


def test_self_loop_dropout_removes_the_self_loop_term_of_dropped_nodes(kg):
    enc = _rgcn(kg, num_layers=1, decomposition=Decomposition.BASIS, num_bases=2, self_loop_dropout=0.5)
    graph = kg.graph("train")
    state = enc.edge_dropout.rng_state()
    trained = enc(graph).entity
    enc.edge_dropout.load_rng_state(state)
    _, keep = enc.edge_dropout(graph)
    full = enc.eval()(graph).entity
    loop = enc.entity @ enc.layers[0].loop_weight
    torch.testing.assert_close(full - trained, loop * (1 - keep.double()), rtol=1e-9, atol=1e-9)
    assert 0 < int(keep.sum()) < graph.num_nodes()


def test_edge_dropout_options_come_from_the_configuration():
    from dgl_emu.config import RunConfig
    cfg = RunConfig.from_dict({"encoder": {"name": "rgcn", "edge_dropout": 0.4, "self_loop_dropout": 0.2}})
    assert (cfg.get("encoder.edge_dropout"), cfg.get("encoder.self_loop_dropout")) == (0.4, 0.2)
    with pytest.raises(ValueError, match="edge_dropout"):
        RGCNEncoder(5, 1, DistMult(dim=4), edge_dropout=1.0)
