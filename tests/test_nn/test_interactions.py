"""Interactions against hand-written reference formulas, and the equivalence of their code paths.

Every registered interaction needs an entry in :data:`REFERENCES` (checked by a meta-test); the
references below are written independently of the package, using torch complex tensors for the
complex-valued models.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dgl_emu.models import KGEModel
from dgl_emu.nn.interactions import (INTERACTIONS, ComplEx, ConvE, DistMult, Interaction, PRotatE, RotatE, TransD,
                                     TransE, TuckER, place_candidates)
from dgl_emu.typing import Target


# ----------------------------------------------------------------------------- references
def ref_transe(h, r, t, gamma, dim, p=1):
    diff = h + r - t
    if p == 1:
        return gamma - diff.abs().sum(-1)
    return gamma - (diff * diff).sum(-1).sqrt()


def ref_distmult(h, r, t, gamma, dim):
    return (h * r * t).sum(-1)


def _as_complex(x):
    d = x.shape[-1] // 2
    return torch.complex(x[..., :d], x[..., d:])


def ref_complex(h, r, t, gamma, dim):
    h, r, t = _as_complex(h), _as_complex(r), _as_complex(t)
    return (h * r * torch.conj(t)).sum(-1).real


def ref_rotate(h, r, t, gamma, dim):
    phase = r / ((gamma + 2.0) / dim / math.pi)
    rotation = torch.exp(1j * phase.to(torch.complex128 if r.dtype == torch.float64 else torch.complex64))
    return gamma - (_as_complex(h) * rotation - _as_complex(t)).abs().sum(-1)


def ref_conve(h, r, t, gamma, dim, module):
    """ConvE written out with functional ops and the module's (eval-mode) parameters."""
    H, W = module.height, module.width

    def bn(x, m):
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    img = torch.cat([h.reshape(1, 1, H, W), r.reshape(1, 1, H, W)], dim=2)
    x = F.conv2d(bn(img, module.bn_input), module.conv.weight, module.conv.bias)
    x = F.relu(bn(x, module.bn_conv))
    x = F.linear(x.reshape(1, -1), module.fc.weight, module.fc.bias)
    x = F.relu(bn(x, module.bn_hidden))
    return (x.reshape(-1) * t).sum()


def ref_transd(h, r, t, gamma, dim, p=1, normalize=True):
    """The matrix form of the paper: e_perp = (r_p e_p^T + I) e, then (optionally) unit L2 norm."""
    def perp(e):
        x = (torch.outer(r[dim:], e[dim:]) + torch.eye(dim, dtype=e.dtype)) @ e[:dim]
        return x / torch.sqrt((x * x).sum()) if normalize else x
    diff = perp(h) + r[:dim] - perp(t)
    return gamma - (diff.abs().sum() if p == 1 else torch.sqrt((diff * diff).sum()))


def ref_protate(h, r, t, gamma, dim, modulus, half_angle=False):
    to_phase = math.pi / ((gamma + 2.0) / dim)
    delta = (h + r - t) * to_phase
    return gamma - modulus * torch.sin(delta / 2 if half_angle else delta).abs().sum()


def ref_tucker(h, r, t, gamma, dim, module):
    """TuckER in eval mode with functional ops: batch norms with running statistics, no dropout."""
    def bn(x, m):
        return x if m is None else F.batch_norm(x[None], m.running_mean, m.running_var, m.weight, m.bias,
                                                False, 0.0, m.eps)[0]
    hidden = bn(torch.einsum("i,j,ijk->k", bn(h, module.bn0), r, module.core), module.bn1)
    return (hidden * t).sum()


def ref_rescal(h, r, t, gamma, dim):
    return h @ r.reshape(dim, dim) @ t


def ref_hole(h, r, t, gamma, dim):
    d = h.shape[-1]
    return sum(r[k] * sum(h[i] * t[(i + k) % d] for i in range(d)) for k in range(d))


def ref_simple(h, r, t, gamma, dim):
    d = dim
    return 0.5 * ((h[:d] * r[:d] * t[d:]).sum() + (t[:d] * r[d:] * h[d:]).sum())


def _quaternion_left(p):
    """4x4 real matrix of q -> p q for one quaternion p = (a, b, c, d)."""
    a, b, c, d = p
    return torch.stack([torch.stack([a, -b, -c, -d]), torch.stack([b, a, -d, c]),
                        torch.stack([c, d, a, -b]), torch.stack([d, -c, b, a])])


def ref_quate(h, r, t, gamma, dim):
    q = lambda x, i: x.reshape(4, dim)[:, i]  # noqa: E731  (the i-th quaternion of a [a|b|c|d] row)
    total = 0.0
    for i in range(dim):
        unit = q(r, i) / torch.sqrt((q(r, i) ** 2).sum())
        total = total + (_quaternion_left(q(h, i)) @ unit * q(t, i)).sum()
    return total


def ref_cp(h, r, t, gamma, dim):
    return (h[:dim] * r * t[dim:]).sum()


# registry name -> reference f(h, r, t, gamma, dim, **extra)
REFERENCES = {
    "transe": ref_transe,
    "distmult": ref_distmult,
    "complex": ref_complex,
    "rotate": ref_rotate,
    "conve": ref_conve,
    "transd": ref_transd,
    "protate": ref_protate,
    "tucker": ref_tucker,
    "rescal": ref_rescal,
    "hole": ref_hole,
    "simple": ref_simple,
    "quate": ref_quate,
    "cp": ref_cp,
}

# every configuration exercised below: (registry name, extra constructor kwargs)
CONFIGS = [("transe", {"p_norm": 1}), ("transe", {"p_norm": 2}), ("distmult", {}), ("complex", {}),
           ("rotate", {}), ("conve", {"height": 1, "num_filters": 2, "kernel": 2}),
           ("transd", {}), ("transd", {"p_norm": 2, "normalize": False}), ("protate", {}),
           ("protate", {"half_angle": True}), ("tucker", {"relation_dim": 3}), ("tucker", {"batch_norm": False}),
           ("rescal", {}), ("hole", {}), ("simple", {}), ("quate", {}), ("cp", {})]
CONFIG_IDS = [f"{n}{''.join(f'-{k}{v}' for k, v in kw.items())}" for n, kw in CONFIGS]


def make(name: str, dim: int = 5, gamma: float = 3.0, **kwargs) -> Interaction:
    inter = INTERACTIONS.get(name)(dim=dim, gamma=gamma, **kwargs)
    norms = {ConvE: ("bn_input", "bn_conv", "bn_hidden"), TuckER: ("bn0", "bn1")}.get(type(inter), ())
    if any(getattr(inter, n) is not None for n in norms):  # batch norm with non-trivial running statistics
        g = torch.Generator().manual_seed(5)
        for bn in (getattr(inter, n) for n in norms):
            bn.running_mean.uniform_(-0.5, 0.5, generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.data.uniform_(0.5, 1.5, generator=g)
            bn.bias.data.uniform_(-0.5, 0.5, generator=g)
    return inter.double().eval()


def reference(inter: Interaction, name: str, h, r, t):
    extra = {"p": inter.p} if isinstance(inter, TransE) else {}
    if isinstance(inter, (ConvE, TuckER)):
        extra = {"module": inter}
    if isinstance(inter, TransD):
        extra = {"p": inter.p, "normalize": inter.normalize}
    if isinstance(inter, PRotatE):
        extra = {"modulus": inter.modulus.item(), "half_angle": inter.half_angle}
    return REFERENCES[name](h, r, t, inter.gamma, inter.dim, **extra)


def random_tables(inter: Interaction, E: int, R: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ent = torch.randn(E, inter.entity_dim, generator=g, dtype=torch.float64)
    rel = torch.randn(R, inter.relation_dim, generator=g, dtype=torch.float64)
    return ent, rel


def test_every_registered_interaction_has_a_reference():
    names = list(INTERACTIONS.names())
    assert len(names) >= 4
    missing = [n for n in names if n not in REFERENCES]
    assert not missing, f"interactions without a reference formula in this test: {missing}"
    assert {n for n, _ in CONFIGS} == set(names)


# ----------------------------------------------------------------------------- exact values
def test_transe_exact_l1_and_l2():
    h, r, t = torch.tensor([1., 2.]), torch.tensor([2., 2.]), torch.tensor([0., 0.])   # h + r - t = (3, 4)
    assert TransE(dim=2, gamma=10.0, p_norm=1)(h, r, t).item() == 10.0 - 7.0
    assert TransE(dim=2, gamma=10.0, p_norm=2)(h, r, t).item() == pytest.approx(10.0 - 5.0)
    # t != 0 and negative coordinates: h + r - t = (1 + 2 - 5, -1 + 0 - 2) = (-2, -3)
    h2, r2, t2 = torch.tensor([1., -1.]), torch.tensor([2., 0.]), torch.tensor([5., 2.])
    assert TransE(dim=2, gamma=1.0)(h2, r2, t2).item() == 1.0 - 5.0


def test_distmult_exact():
    h, r, t = torch.tensor([1., 2., 3.]), torch.tensor([2., -1., 1.]), torch.tensor([3., 1., -2.])
    assert DistMult(dim=3)(h, r, t).item() == 6.0 - 2.0 - 6.0


def test_complex_exact():
    # h = (1 + 2i, i), r = (3 - i, 2), t = (1 + i, -1 + 2i)
    # h*r = (5 + 5i, 2i); times conj(t) = ((5 + 5i)(1 - i), 2i(-1 - 2i)) = (10, 4 - 2i) -> Re sum = 14
    h = torch.tensor([1., 0., 2., 1.])
    r = torch.tensor([3., 2., -1., 0.])
    t = torch.tensor([1., -1., 1., 2.])
    assert ComplEx(dim=2)(h, r, t).item() == 14.0
    # not symmetric in h and t when r is not real:
    # Re sum t*r*conj(h) = Re((1+i)(3-i)(1-2i) + (-1+2i)(2)(-i)) = Re((8 - 6i) + (4 + 2i)) = 12
    assert ComplEx(dim=2)(t, r, h).item() == 12.0


def test_rotate_exact_rotations():
    rot = RotatE(dim=2, gamma=6.0)          # range = (6 + 2) / 2 = 4, phase = r * pi / 4
    r = torch.tensor([4., 2.])              # phases pi and pi/2: multiply by -1 and by i
    h = torch.tensor([1., 0., 0., 2.])      # (1, 2i) -> rotated (-1, -2)
    t = torch.tensor([-1., 1., 0., 0.])     # (-1, 1): distances 0 and 3
    assert rot(h, r, t).item() == pytest.approx(6.0 - 3.0, abs=1e-6)
    assert rot.embedding_range == 4.0


# ----------------------------------------------------------------------------- references
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_forward_matches_reference_with_broadcasting(name, kwargs):
    inter = make(name, dim=4, gamma=2.5, **kwargs)
    g = torch.Generator().manual_seed(1)
    B, K = 3, 6
    h = torch.randn(B, 1, inter.entity_dim, generator=g, dtype=torch.float64)
    r = torch.randn(B, 1, inter.relation_dim, generator=g, dtype=torch.float64)
    t = torch.randn(1, K, inter.entity_dim, generator=g, dtype=torch.float64)
    out = inter(h, r, t)
    assert out.shape == (B, K)
    expected = torch.stack([torch.stack([reference(inter, name, h[b, 0], r[b, 0], t[0, k])
                                         for k in range(K)]) for b in range(B)])
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,kwargs", CONFIGS[:4], ids=CONFIG_IDS[:4])
def test_gamma_shifts_transe_only(name, kwargs):
    ent, rel = random_tables(make(name, **kwargs), 4, 1)
    a, b = make(name, gamma=1.0, **kwargs), make(name, gamma=1.0, **kwargs)
    b.gamma = 4.0
    diff = b(ent[0], rel[0], ent[1]) - a(ent[0], rel[0], ent[1])
    # (RotatE is left out: its phase depends on gamma through the embedding range)
    assert diff.item() == (pytest.approx(3.0) if name == "transe" else 0.0)


# ----------------------------------------------------------------------------- equivalences
def _candidate_inputs(inter, seed=0, B=4, K=5, E=9, R=3):
    ent, rel = random_tables(inter, E, R, seed)
    g = torch.Generator().manual_seed(seed + 100)
    hrt = torch.stack([torch.randint(0, E, (B,), generator=g), torch.randint(0, R, (B,), generator=g),
                       torch.randint(0, E, (B,), generator=g)], 1)
    cand_ids = torch.randint(0, E, (B, K), generator=g)
    return ent, rel, hrt, cand_ids


@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_single_equals_candidates_equals_all(name, kwargs, target):
    inter = make(name, dim=3, gamma=2.0, **kwargs)
    ent, rel, hrt, cand_ids = _candidate_inputs(inter)
    B, K = cand_ids.shape
    E = ent.shape[0]
    h, r, t = ent[hrt[:, 0]], rel[hrt[:, 1]], ent[hrt[:, 2]]

    # one triple at a time through forward, with the candidate in the target slot
    def single(b, e):
        if target is Target.HEAD:
            return inter(ent[e], r[b], t[b])
        return inter(h[b], r[b], ent[e])

    alone = torch.tensor([[single(b, int(e)).item() for e in cand_ids[b]] for b in range(B)],
                         dtype=torch.float64)
    # the target slot's own embedding is ignored by score_candidates: pass garbage there
    junk = torch.full_like(h, float("nan"))
    hh, tt = (junk, t) if target is Target.HEAD else (h, junk)
    batched = inter.score_candidates(hh.unsqueeze(1), r.unsqueeze(1), tt.unsqueeze(1), ent[cand_ids],
                                     target)
    assert batched.shape == (B, K)
    torch.testing.assert_close(batched, alone, rtol=1e-10, atol=1e-10)

    # 1-vs-all, through the class's own score_all (fast paths for TransE/DistMult/ComplEx)
    hq, tq = (None, t) if target is Target.HEAD else (h, None)
    full = inter.score_all(hq, r, tq, ent, target)
    assert full.shape == (B, E)
    torch.testing.assert_close(full.gather(1, cand_ids), alone, rtol=1e-10, atol=1e-10)
    every = torch.tensor([[single(b, e).item() for e in range(E)] for b in range(B)], dtype=torch.float64)
    torch.testing.assert_close(full, every, rtol=1e-10, atol=1e-10)

    # the generic chunked path of the base class, forced through several chunks
    small = B * ent.shape[1] * 2           # two entities per chunk -> ceil(E / 2) chunks
    generic = Interaction.score_all(inter, hq, r, tq, ent, target, max_elements=small)
    torch.testing.assert_close(generic, every, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inter.score_all(hq, r, tq, ent, target, max_elements=small), every,
                               rtol=1e-10, atol=1e-10)
    # max_elements smaller than one row still progresses one entity at a time
    tiny = Interaction.score_all(inter, hq, r, tq, ent, target, max_elements=1)
    torch.testing.assert_close(tiny, every, rtol=1e-10, atol=1e-10)


def test_rotate_generic_path_really_chunks(monkeypatch):
    inter = RotatE(dim=3, gamma=2.0)
    ent, rel, hrt, _ = _candidate_inputs(inter)
    calls = []
    original = RotatE.score_candidates

    def spy(self, h, r, t, candidates, target):
        calls.append(candidates.shape[1])
        return original(self, h, r, t, candidates, target)

    monkeypatch.setattr(RotatE, "score_candidates", spy)
    B, E = hrt.shape[0], ent.shape[0]
    out = inter.score_all(ent[hrt[:, 0]], rel[hrt[:, 1]], None, ent, Target.TAIL,
                          max_elements=B * ent.shape[1] * 2)
    assert out.shape == (B, E)
    assert calls == [2, 2, 2, 2, 1]        # E = 9 entities, two per chunk


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
def test_transe_fast_path_precise_in_float32(p, target):
    # more than 25 rows: torch.cdist's default would switch to |q|^2 + |e|^2 - 2 q.e for p = 2
    g = torch.Generator().manual_seed(0)
    inter = TransE(dim=100, gamma=12.0, p_norm=p)
    ent = torch.rand(300, 100, generator=g) * 2 - 1
    r = torch.zeros(64, 100)
    anchor = ent[:64]
    h, t = (None, anchor) if target is Target.HEAD else (anchor, None)
    fast = inter.score_all(h, r, t, ent, target)
    # h + 0 == h exactly: the distance to itself is exactly zero, the score exactly gamma
    assert torch.equal(fast.diagonal()[:64], torch.full((64,), 12.0))
    r = (torch.rand(64, 100, generator=g) * 2 - 1) * 0.1
    h, t = (None, anchor) if target is Target.HEAD else (anchor, None)
    slow = Interaction.score_all(inter, h, r, t, ent, target)
    torch.testing.assert_close(inter.score_all(h, r, t, ent, target), slow, rtol=0, atol=2e-5)


# ----------------------------------------------------------------------------- KGEModel
def _model(name, kwargs, E=8, R=3, seed=0):
    inter = make(name, dim=3, gamma=2.0, **kwargs)
    model = KGEModel.shallow(inter, E, R, generator=torch.Generator().manual_seed(seed)).double()
    return model


@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_model_score_all_equals_score_hrt(name, kwargs, target):
    E, R = 8, 3
    model = _model(name, kwargs, E, R)
    reps = model.encode()
    assert reps.entity.dtype == torch.float64
    hrt = torch.tensor([[0, 0, 1], [3, 2, 3], [7, 1, 0], [5, 0, 6]])
    full = model.score_all(reps, hrt, target)
    assert full.shape == (len(hrt), E)
    for e in range(E):
        corrupted = hrt.clone()
        corrupted[:, target.column] = e
        torch.testing.assert_close(full[:, e], model.score_hrt(reps, corrupted), rtol=1e-10, atol=1e-10)
    # the score of the true entity is the triple's own score
    own = full.gather(1, hrt[:, target.column:target.column + 1]).squeeze(1)
    torch.testing.assert_close(own, model.score_hrt(reps, hrt), rtol=1e-10, atol=1e-10)
    # an entity slice gives the matching columns
    torch.testing.assert_close(model.score_all(reps, hrt, target, slice(2, 6)), full[:, 2:6],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_gather_and_score_gathered_equal_per_triple_scores(name, kwargs, target):
    E, R, K = 8, 3, 4
    model = _model(name, kwargs, E, R, seed=3)
    reps = model.encode()
    hrt = torch.tensor([[0, 0, 1], [3, 2, 3], [7, 1, 0]])
    negatives = torch.tensor([[2, 5, 1, 1], [0, 7, 6, 3], [4, 4, 7, 0]])
    gathered = model.gather(reps, hrt, negatives, target)
    B, d = len(hrt), reps.entity.shape[1]
    assert gathered.anchor.shape == (B, 1, d)
    assert gathered.relation.shape == (B, 1, reps.relation.shape[1])
    assert gathered.pos.shape == (B, 1, d) and gathered.neg.shape == (B, K, d)
    assert torch.equal(gathered.pos, reps.entity[hrt[:, target.column]].unsqueeze(1))
    assert torch.equal(gathered.neg, reps.entity[negatives])
    assert torch.equal(gathered.anchor, reps.entity[hrt[:, target.other.column]].unsqueeze(1))
    assert torch.equal(gathered.relation, reps.relation[hrt[:, 1]].unsqueeze(1))

    ids = torch.cat([hrt[:, target.column:target.column + 1], negatives], 1)
    candidates = torch.cat([gathered.pos, gathered.neg], 1)
    scores = model.score_gathered(gathered, candidates, target)
    assert scores.shape == (B, 1 + K)
    for k in range(1 + K):
        triples = hrt.clone()
        triples[:, target.column] = ids[:, k]
        torch.testing.assert_close(scores[:, k], model.score_hrt(reps, triples), rtol=1e-10, atol=1e-10)
    # and the same numbers as the 1-vs-all matrix and as S_plain
    torch.testing.assert_close(scores, model.score_all(reps, hrt, target).gather(1, ids),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.score_plain(gathered, target), scores, rtol=1e-10, atol=1e-10)


def test_gather_is_differentiable_to_the_tables():
    model = _model("distmult", {}, E=6, R=2)
    reps = model.encode()
    hrt = torch.tensor([[0, 1, 2]])
    g = model.gather(reps, hrt, torch.tensor([[3, 3]]), Target.TAIL)
    (model.score_gathered(g, g.pos, Target.TAIL).sum()
     + model.score_gathered(g, g.neg, Target.TAIL).sum()).backward()
    grad = model.encoder.entity.grad
    used = {0, 2, 3}
    assert all(grad[e].abs().sum() > 0 for e in used)
    assert all(grad[e].abs().sum() == 0 for e in set(range(6)) - used)
    # entity 3 appears twice among the negatives: its gradient is twice one copy's
    h, r = reps.entity[0].detach(), reps.relation[1].detach()
    torch.testing.assert_close(grad[3], 2 * h * r)
    torch.testing.assert_close(grad[2], h * r)


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError):
        TransE(dim=2, p_norm=3)
    with pytest.raises(ValueError):
        DistMult(dim=0)


@pytest.mark.parametrize("name", ["complex", "rotate", "transe", "distmult"])
def test_table_widths(name):
    inter = make(name, dim=5)
    factor_e = 2 if name in ("complex", "rotate") else 1
    factor_r = 2 if name == "complex" else 1
    assert (inter.entity_dim, inter.relation_dim) == (5 * factor_e, 5 * factor_r)
    model = KGEModel.shallow(inter, 4, 2, generator=torch.Generator().manual_seed(0))
    ent, rel = model.encode()
    bound = (inter.gamma + 2.0) / 5
    assert ent.shape == (4, 5 * factor_e) and rel.shape == (2, 5 * factor_r)
    assert ent.abs().max() <= bound and rel.abs().max() <= bound


# ----------------------------------------------------------------------------- candidate_dot
def test_candidate_dot_values_and_gradients_match_broadcasting():
    from dgl_emu.nn.interactions.base import candidate_dot
    g = torch.Generator().manual_seed(3)
    c = torch.randn(4, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    q = torch.randn(4, 1, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, generator=g)
    out = candidate_dot(c, q)
    ref = (c * q).sum(-1)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    gc, gq = torch.autograd.grad((out * w).sum(), (c, q))
    rc, rq = torch.autograd.grad((ref * w).sum(), (c, q))
    # by hand: d/dc[b,k] = w[b,k] q[b]; d/dq[b] = sum_k w[b,k] c[b,k]
    torch.testing.assert_close(gc, w.unsqueeze(-1) * q.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gq, (w.unsqueeze(-1) * c.detach()).sum(1, keepdim=True), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gc, rc)
    torch.testing.assert_close(gq, rq)
    assert torch.autograd.gradcheck(candidate_dot, (c, q))
    # only the candidates need a gradient (e.g. a frozen query)
    (only_c,) = torch.autograd.grad(candidate_dot(c, q.detach()).sum(), (c,))
    torch.testing.assert_close(only_c, q.detach().expand_as(c))


def test_candidate_dot_other_shapes_broadcast_and_double_backward_is_refused():
    from dgl_emu.nn.interactions.base import candidate_dot
    g = torch.Generator().manual_seed(4)
    every = torch.randn(1, 7, 3, generator=g)           # all entities for every query
    q = torch.randn(2, 1, 3, generator=g)
    torch.testing.assert_close(candidate_dot(every, q), (every * q).sum(-1))
    per_candidate = torch.randn(2, 7, 3, generator=g)   # one query per candidate
    torch.testing.assert_close(candidate_dot(every, per_candidate), (every * per_candidate).sum(-1))
    c = torch.randn(2, 7, 3, generator=g, requires_grad=True)
    (gc,) = torch.autograd.grad(candidate_dot(c, q).sum(), (c,), create_graph=True)
    with pytest.raises(RuntimeError):
        gc.sum().backward()

# ----------------------------------------------------------------------------- candidate_distance
@pytest.mark.parametrize("p", [1, 2])
def test_candidate_distance_values_and_gradients_match_autograd(p):
    from dgl_emu.nn.interactions.base import candidate_distance
    g = torch.Generator().manual_seed(6)
    c = torch.randn(4, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    q = torch.randn(4, 1, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, generator=g)
    out = candidate_distance(c, q, p)
    diff = (c - q).detach()
    by_hand = diff.abs().sum(-1) if p == 1 else (diff * diff).sum(-1).sqrt()
    torch.testing.assert_close(out, by_hand, rtol=1e-12, atol=1e-12)
    gc, gq = torch.autograd.grad((out * w).sum(), (c, q))
    # d/dc ||c - q||_1 = sign(c - q); d/dc ||c - q||_2 = (c - q) / ||c - q||_2; d/dq = -sum_k d/dc
    unit = diff.sign() if p == 1 else diff / by_hand.unsqueeze(-1)
    torch.testing.assert_close(gc, w.unsqueeze(-1) * unit, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gq, -(w.unsqueeze(-1) * unit).sum(1, keepdim=True), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: candidate_distance(a, b, p), (c, q))


@pytest.mark.parametrize("p", [1, 2])
def test_candidate_distance_at_zero_distance_gives_autograds_subgradient(p):
    from dgl_emu.nn.interactions.base import candidate_distance
    q = torch.tensor([[[1.0, -2.0]]], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([[[1.0, -2.0], [1.0, 0.0]]], dtype=torch.float64, requires_grad=True)  # first: distance 0
    w = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    ours = torch.autograd.grad((candidate_distance(c, q, p) * w).sum(), (c, q))
    theirs = torch.autograd.grad((torch.linalg.vector_norm(c - q, ord=p, dim=-1) * w).sum(), (c, q))
    for a, b in zip(ours, theirs):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_candidate_distance_other_shapes_and_bad_p():
    from dgl_emu.nn.interactions.base import candidate_distance
    g = torch.Generator().manual_seed(8)
    every, q = torch.randn(1, 7, 3, generator=g), torch.randn(2, 1, 3, generator=g)
    torch.testing.assert_close(candidate_distance(every, q, 2), torch.cdist(q, every).squeeze(1))
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        candidate_distance(every, q, 3)


FAST = [(n, kw) for n, kw in CONFIGS if n not in ("conve", "protate")]   # the models with their own score_candidates


@pytest.mark.parametrize("name,kwargs", FAST, ids=[f"{n}{''.join(f'-{k}{v}' for k, v in kw.items())}" for n, kw in FAST])
@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
def test_fast_candidate_scores_and_gradients_equal_forward(name, kwargs, target):
    """The query-first score_candidates of every built-in model (TuckER's head side: the affine
    form of eval mode with batch norm, the linear query without): values and gradients of forward."""
    inter = make(name, dim=3, gamma=2.0, **kwargs)
    g = torch.Generator().manual_seed(9)
    de = inter.entity_dim
    h, t = (torch.randn(4, 1, de, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(2))
    r = torch.randn(4, 1, inter.relation_dim, dtype=torch.float64, generator=g, requires_grad=True)
    c = torch.randn(4, 6, de, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 6, dtype=torch.float64, generator=g)
    fast = inter.score_candidates(h, r, t, c, target)
    slow = inter(*place_candidates(h, r, t, c, target))
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    anchor = t if target is Target.HEAD else h
    for a, b in zip(torch.autograd.grad((fast * w).sum(), (anchor, r, c)),
                    torch.autograd.grad((slow * w).sum(), (anchor, r, c))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_candidate_complex_distance_by_hand_and_against_autograd():
    from dgl_emu.nn.interactions.base import candidate_complex_distance
    g = torch.Generator().manual_seed(10)
    c = torch.randn(3, 4, 6, dtype=torch.float64, generator=g, requires_grad=True)   # d = 3 complex
    q = torch.randn(3, 1, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, generator=g)
    z = torch.complex(*(c - q).detach().split(3, dim=-1))
    torch.testing.assert_close(candidate_complex_distance(c, q), z.abs().sum(-1), rtol=1e-12, atol=1e-12)
    gc, gq = torch.autograd.grad((candidate_complex_distance(c, q) * w).sum(), (c, q))
    unit = z / z.abs()                                           # d|z|/d(re, im) = (re, im) / |z|
    expected = w.unsqueeze(-1) * torch.cat([unit.real, unit.imag], dim=-1)
    torch.testing.assert_close(gc, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gq, -expected.sum(1, keepdim=True), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(candidate_complex_distance, (c, q))
    # a zero difference gets gradient 0 (autograd's sqrt/hypot would give NaN)
    same = q.detach().expand(3, 2, 6).clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(candidate_complex_distance(same, q.detach()).sum(), (same,))
    assert torch.equal(g0, torch.zeros_like(g0))
    # other shapes broadcast through autograd
    every = torch.randn(1, 5, 6, dtype=torch.float64, generator=g)
    torch.testing.assert_close(candidate_complex_distance(every, q.detach()),
                               torch.complex(*(every - q.detach()).split(3, dim=-1)).abs().sum(-1))
