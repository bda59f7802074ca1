"""CompGCN against a dense reference; compositions; gradients and the EMU objective with encoders."""
from __future__ import annotations

import dgl
import pytest
import torch

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.losses import EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.counter_rng import counter_mask, draw_key
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.encoders import (COMPOSITIONS, RelationalGraphConv, CompGCNEncoder, CompGCNLayer, Decomposition,
                                 RGCNEncoder)
from dgl_emu.nn.encoders.compgcn import circular_correlation, multiply, subtract
from dgl_emu.nn.encoders.graph_utils import symmetric_norm
from dgl_emu.nn.interactions import ComplEx, DistMult, RotatE, TransE
from dgl_emu.pipeline import build_model
from dgl_emu.training.step import Objective
from dgl_emu.typing import Target

from .dense import (DENSE_COMPOSITIONS, circular_correlation_loop, dense_compgcn_layer, randomize_,
                    relation_adjacency)

DIM = 6
COMPS = ["sub", "mult", "corr"]


def _compgcn(kg, composition, num_layers=2, seed=0, dim=DIM, **kwargs) -> CompGCNEncoder:
    kwargs.setdefault("dropout", 0.0)
    enc = CompGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=dim), num_layers=num_layers,
                         composition=composition, generator=torch.Generator().manual_seed(seed),
                         **kwargs).double()
    randomize_(enc, torch.Generator().manual_seed(seed + 100))
    return enc


def _dense_encoder(enc: CompGCNEncoder, graph, composition: str):
    A = relation_adjacency(graph, 2 * enc.num_relations)
    h, z = enc.entity, enc.relation
    for i, layer in enumerate(enc.layers):
        h, z = dense_compgcn_layer(h, z, A, layer, composition,
                                   torch.tanh if i < len(enc.layers) - 1 else None)
    return h, z


# ---------------------------------------------------------------------- compositions
@pytest.mark.parametrize("d", [1, 2, 5, 8])
def test_circular_correlation_matches_definition(d):
    g = torch.Generator().manual_seed(d)
    x = torch.randn(3, d, generator=g, dtype=torch.float64)
    z = torch.randn(d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(circular_correlation(x, z), circular_correlation_loop(x, z),
                               rtol=1e-12, atol=1e-12)
    z2 = torch.randn(2, 1, d, generator=g, dtype=torch.float64)
    out = circular_correlation(x, z2)
    assert out.shape == (2, 3, d)
    torch.testing.assert_close(out, circular_correlation_loop(x, z2), rtol=1e-12, atol=1e-12)


def test_circular_correlation_is_not_convolution():
    """[x ⋆ z]_k pairs x_i with z_{i+k}: a shift of z by one moves the result by one."""
    x = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    z = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(circular_correlation(x, z), z)
    e1 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(circular_correlation(e1, z), torch.tensor([2.0, 3.0, 4.0, 1.0],
                                                                         dtype=torch.float64))


def test_composition_registry():
    x, z = torch.tensor([3.0, -1.0]), torch.tensor([2.0, 5.0])
    assert COMPOSITIONS.get("sub") is subtract and COMPOSITIONS.get("mult") is multiply
    assert COMPOSITIONS.get("corr") is circular_correlation
    assert subtract(x, z).tolist() == [1.0, -6.0] and multiply(x, z).tolist() == [6.0, -5.0]
    for name in COMPS:
        torch.testing.assert_close(COMPOSITIONS.get(name)(x.double(), z.double()),
                                   DENSE_COMPOSITIONS[name](x.double(), z.double()))


# ---------------------------------------------------------------------- normalisation
def test_symmetric_norm_full_graph(kg):
    g = kg.graph("train")
    deg = relation_adjacency(g, 2 * kg.num_relations).sum(dim=(0, 2))
    src, dst = g.edges()
    expected = (deg[src] * deg[dst]).rsqrt()
    torch.testing.assert_close(symmetric_norm(g)[:, 0].double(), expected, rtol=1e-6, atol=0)


def test_symmetric_norm_on_sampled_block_uses_full_graph_degrees(cyclic_kg):
    g = cyclic_kg.graph("train")
    seeds = torch.tensor([0, 3, 7, 11])
    sampler = dgl.dataloading.MultiLayerNeighborSampler([2])
    dgl.seed(0)  # DGL's own RNG drives the neighbour choice
    block = sampler.sample(g, seeds)[2][0]
    with pytest.raises(ValueError, match="in_degrees"):
        symmetric_norm(block)
    assert block.num_edges() == 2 * len(seeds) < g.in_degrees(seeds).sum()  # really sampled
    full = symmetric_norm(g)
    assert torch.equal(symmetric_norm(block, g.in_degrees()), full[block.edata[dgl.EID].long()])
    assert set(g.ndata) == set() and set(g.edata) == {dgl.ETYPE}  # nothing was written into g


# ---------------------------------------------------------------------- CompGCN vs dense
@pytest.mark.parametrize("composition", COMPS)
@pytest.mark.parametrize("activation", [torch.tanh, None])
def test_compgcn_layer_matches_dense_reference(kg, composition, activation):
    R = kg.num_relations
    layer = CompGCNLayer(DIM, 4, R, COMPOSITIONS.get(composition), activation=activation).double()
    g = torch.Generator().manual_seed(3)
    randomize_(layer, g)
    h = torch.randn(kg.num_entities, DIM, generator=g, dtype=torch.float64)
    z = torch.randn(2 * R, DIM, generator=g, dtype=torch.float64)
    graph = kg.graph("train")
    h_out, z_out = layer(graph, h, z)
    h_ref, z_ref = dense_compgcn_layer(h, z, relation_adjacency(graph, 2 * R), layer, composition,
                                       activation)
    assert h_out.shape == (kg.num_entities, 4) and z_out.shape == (2 * R, 4)
    torch.testing.assert_close(h_out, h_ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(z_out, z_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("composition", COMPS)
def test_compgcn_layer_direction_weights(hand_kg, composition):
    """Original edges use W_original only, inverse edges W_inverse only."""
    R = hand_kg.num_relations
    layer = CompGCNLayer(DIM, DIM, R, COMPOSITIONS.get(composition), activation=None).double()
    randomize_(layer, torch.Generator().manual_seed(4))
    g = hand_kg.graph("train")
    h = torch.randn(7, DIM, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = torch.randn(2 * R, DIM, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    base = layer(g, h, z)[0]
    with torch.no_grad():
        layer.w_inverse.zero_()
    only_original = layer(g, h, z)[0]
    A = relation_adjacency(g, 2 * R)
    A[R:] = 0  # keep only the original relations' edges, but the degrees of the full graph
    deg = relation_adjacency(g, 2 * R).sum(dim=(0, 2))
    n = deg.clamp(min=1).rsqrt()  # entity 6 is isolated; its row of A is zero anyway
    phi = DENSE_COMPOSITIONS[composition]
    msgs = sum((A[q] * n[:, None] * n[None, :]) @ phi(h, z[q]) @ layer.w_original for q in range(R))
    ref = (msgs + phi(h, layer.loop_relation[0]) @ layer.w_self) / 3 + layer.bias
    torch.testing.assert_close(only_original, ref, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(base, only_original)


@pytest.mark.parametrize("composition", COMPS)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_compgcn_encoder_matches_dense_reference(kg, composition, num_layers):
    enc = _compgcn(kg, composition, num_layers=num_layers)
    reps = enc(kg.graph("train"))
    h_ref, z_ref = _dense_encoder(enc, kg.graph("train"), composition)
    assert reps.entity.shape == (kg.num_entities, DIM)
    assert reps.relation.shape == (kg.num_relations, DIM)  # the R originals, not the 2R
    torch.testing.assert_close(reps.entity, h_ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(reps.relation, z_ref[: kg.num_relations], rtol=1e-12, atol=1e-12)


def test_compgcn_isolated_entity_gets_self_loop_only(hand_kg):
    enc = _compgcn(hand_kg, "mult", num_layers=1)
    out = enc(hand_kg.graph("train")).entity
    layer = enc.layers[0]
    expected = (enc.entity[6] * layer.loop_relation[0]) @ layer.w_self / 3 + layer.bias
    torch.testing.assert_close(out[6], expected)


def test_compgcn_needs_equal_widths(hand_kg):
    E, R = hand_kg.num_entities, hand_kg.num_relations
    with pytest.raises(ValueError, match="equal entity and relation widths"):
        CompGCNEncoder(E, R, RotatE(dim=4))
    for inter in (DistMult(dim=4), TransE(dim=4), ComplEx(dim=4)):
        enc = CompGCNEncoder(E, R, inter)
        assert enc.relation.shape == (2 * R, inter.entity_dim)
    with pytest.raises(ConfigError, match="encoder"):
        build_model(RunConfig(encoder="compgcn", model="rotate", dim=4).validate(), hand_kg)


# ---------------------------------------------------------------------- gradients and EMU
ENCODER_KINDS = ["rgcn-basis", "rgcn-bdd", "compgcn-sub", "compgcn-mult", "compgcn-corr"]


def _encoder(kind, kg, dim=DIM):
    if kind.startswith("rgcn"):
        dec = Decomposition.BASIS if kind.endswith("basis") else Decomposition.BLOCK
        enc = RGCNEncoder(kg.num_entities, kg.num_relations, DistMult(dim=dim), num_layers=2,
                          decomposition=dec, num_bases=2, generator=torch.Generator().manual_seed(0))
        return enc.double()
    return _compgcn(kg, kind.split("-")[1], num_layers=2, dim=dim)


def _emu_objective(model, seed=9):
    mutation = EmbeddingMutation(0.39, seed=seed)
    return Objective(model, EMULoss(negative_label=0.53, plain_weight=0.11), mutation)


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_gradients_reach_every_encoder_weight(hand_kg, kind):
    enc = _encoder(kind, hand_kg)
    model = KGEModel(enc, DistMult(dim=DIM))
    objective = _emu_objective(model).train()
    hrt = hand_kg.splits["train"]
    negatives = torch.randint(0, 7, (len(hrt), 4), generator=torch.Generator().manual_seed(1))
    reps = model.encode(hand_kg.graph("train"))
    loss = objective(reps, hrt, negatives, Target.TAIL) + objective(reps, hrt, negatives, Target.HEAD)
    loss.backward()
    names = [n for n, _ in enc.named_parameters()]
    assert "entity" in names and any(n.startswith("layers.1.") for n in names)
    layer_cls = RelationalGraphConv if kind.startswith("rgcn") else CompGCNLayer
    assert all(isinstance(layer, layer_cls) for layer in enc.layers)
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["rgcn-basis", "compgcn-corr"])
@pytest.mark.parametrize("target", list(Target))
def test_emu_loss_with_encoder_matches_definition(cyclic_kg, kind, target):
    kg = cyclic_kg
    enc = _encoder(kind, kg)
    model = KGEModel(enc, DistMult(dim=DIM))
    objective = _emu_objective(model).train()
    hrt = kg.splits["train"][:10]
    K, q, c = 5, 0.53, 0.11
    negatives = torch.randint(0, kg.num_entities, (len(hrt), K), generator=torch.Generator().manual_seed(2))
    reps = model.encode(kg.graph("train"))
    loss = objective(reps, hrt, negatives, target)

    # the definition, from the encoder outputs
    ent, rel = reps.entity, reps.relation[hrt[:, 1]]
    kept, corrupted = (hrt[:, 0], hrt[:, 2]) if target is Target.TAIL else (hrt[:, 2], hrt[:, 0])
    anchor, pos, neg = ent[kept], ent[corrupted], ent[negatives]
    m = counter_mask(draw_key(9, 0), 0, (len(hrt), K, DIM), 0.39, dtype=torch.float64)  # the first draw
    mutated = m * neg + (1 - m) * pos.unsqueeze(1)

    def score(x):  # DistMult is symmetric in h and t, so the side only picks the anchor
        return (anchor.unsqueeze(1) * rel.unsqueeze(1) * x).sum(-1)

    s_pos = (anchor * rel * pos).sum(-1, keepdim=True)
    s_plain = torch.cat([s_pos, score(neg)], 1)
    s_emu = torch.cat([s_pos, score(mutated)], 1)
    y = torch.tensor([1.0] + [q] * K, dtype=torch.float64)
    emu_term = -(y * torch.log_softmax(s_emu, 1)).sum(1).mean() / K
    plain_term = -torch.log_softmax(s_plain, 1)[:, 0].mean()
    torch.testing.assert_close(loss, emu_term + c * plain_term, rtol=1e-10, atol=1e-12)
    # the mutation matters: the same formula with un-mutated negatives gives another value
    unmutated = -(y * torch.log_softmax(s_plain, 1)).sum(1).mean() / K + c * plain_term
    assert not torch.allclose(loss, unmutated)
    assert 0 < m.mean() < 1
