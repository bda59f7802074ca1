"""TransD, pRotatE, TuckER, RESCAL, HolE, SimplE, QuatE and CP: scores written out by hand on small
integer tensors, the equivalences that define them, TuckER's batch norms and dropouts, and their
options through a run configuration. (Their reference formulas on random tensors, and every
fast path against ``forward``, are in ``test_interactions.py``.)"""
from __future__ import annotations

import math

import pytest
import torch

from dgl_emu.cli.options import parse_set
from dgl_emu.config import RunConfig
from dgl_emu.models import KGEModel
from dgl_emu.nn.interactions import (CP, INTERACTIONS, RESCAL, ComplEx, DistMult, HolE, PRotatE, QuatE, RotatE,
                                     SimplE, TransD, TransE, TuckER, place_candidates)
from dgl_emu.pipeline import build_interaction
from dgl_emu.rng import bernoulli_mask
from dgl_emu.typing import Target

NEW = ["transd", "protate", "tucker", "rescal", "hole", "simple", "quate", "cp"]


def T(*values):
    return torch.tensor(values, dtype=torch.float64)


def _randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ----------------------------------------------------------------------------- by hand
def test_transd_by_hand():
    # e_h = (1, 2), h_p = (1, 0); e_t = (0, 1), t_p = (2, 1); r = (1, 1), r_p = (1, -1)
    h, r, t = T(1, 2, 1, 0), T(1, 1, 1, -1), T(0, 1, 2, 1)
    # h_perp = (1, 2) + (h_p . e_h = 1) (1, -1) = (2, 1); t_perp = (0, 1) + (t_p . e_t = 1) (1, -1) = (1, 0)
    # h_perp + r - t_perp = (2, 2)
    assert TransD(dim=2, gamma=10.0, normalize=False)(h, r, t).item() == 10.0 - 4.0
    assert TransD(dim=2, gamma=10.0, p_norm=2, normalize=False)(h, r, t).item() == pytest.approx(10.0 - math.sqrt(8))
    # normalised (the EMU code): h_perp = (2, 1) / sqrt(5), t_perp = (1, 0): difference (2 / sqrt 5, 1 / sqrt 5 + 1)
    assert TransD(dim=2, gamma=10.0)(h, r, t).item() == pytest.approx(10.0 - 3 / math.sqrt(5) - 1)


def test_protate_by_hand():
    # gamma 6, d = 2: range 4, phase = x pi / 4; h + r - t = (2, 4): phases (pi / 2, pi)
    h, r, t = T(2, 3), T(0, 1), T(0, 0)
    code = PRotatE(dim=2, gamma=6.0, modulus=2.0).double()
    assert code(h, r, t).item() == pytest.approx(6.0 - 2.0 * (1.0 + 0.0))
    paper = PRotatE(dim=2, gamma=6.0, modulus=2.0, half_angle=True).double()   # sin(pi / 4), sin(pi / 2)
    assert paper(h, r, t).item() == pytest.approx(6.0 - 2.0 * (math.sqrt(0.5) + 1.0))
    default = PRotatE(dim=2, gamma=6.0)
    assert default.modulus.item() == 0.5 * 4.0 and default.modulus.requires_grad
    assert not PRotatE(dim=2, learn_modulus=False).modulus.requires_grad


def test_rescal_by_hand():
    # h^T M = (1 + 6, 2 + 8) = (7, 10); (7, 10) . (5, 6) = 95
    assert RESCAL(dim=2)(T(1, 2), T(1, 2, 3, 4), T(5, 6)).item() == 95.0
    assert RESCAL(dim=3).relation_dim == 9


def test_hole_by_hand():
    # h star t: k = 0: 1*4 + 2*5 + 3*6 = 32; k = 1: 1*5 + 2*6 + 3*4 = 29; k = 2: 1*6 + 2*4 + 3*5 = 29
    assert HolE(dim=3)(T(1, 2, 3), T(1, 0, 2), T(4, 5, 6)).item() == pytest.approx(32 + 2 * 29)


def test_simple_by_hand():
    # <h^H, r, t^T> = 1*1*5 + 2*(-1)*6 = -7; <t^H, r^-1, h^T> = 0*2*3 + 1*0*4 = 0
    h, r, t = T(1, 2, 3, 4), T(1, -1, 2, 0), T(0, 1, 5, 6)
    assert SimplE(dim=2)(h, r, t).item() == -3.5
    # the second term alone: t^H = (1, 1), r^-1 = (2, 3), h^T = (3, 4): 6 + 12
    assert SimplE(dim=2)(h, T(0, 0, 2, 3), T(1, 1, 0, 0)).item() == 9.0


def test_quate_by_hand():
    # h = 1 + 2i, r = 3j + 4k (unit: 0.6j + 0.8k); (1 + 2i)(0.6j + 0.8k) = 0.6j + 0.8k + 1.2k - 1.6j = -j + 2k
    h, r, t = T(1, 2, 0, 0), T(0, 0, 3, 4), T(7, 7, 5, 10)
    assert QuatE(dim=1)(h, r, t).item() == pytest.approx(-5.0 + 20.0)
    # the norm of r does not matter, its direction does
    assert QuatE(dim=1)(h, 10 * r, t).item() == pytest.approx(15.0)


def test_cp_by_hand():
    h, r, t = T(1, 2, 9, 9), T(5, 6), T(9, 9, 3, 4)       # only h^H = (1, 2) and t^T = (3, 4) count
    assert CP(dim=2)(h, r, t).item() == 1 * 5 * 3 + 2 * 6 * 4


def test_tucker_by_hand():
    tucker = TuckER(dim=2, relation_dim=1, batch_norm=False).double().eval()
    with torch.no_grad():
        tucker.core.copy_(T(1, 2, 3, 4).reshape(2, 1, 2))   # W[:, 0, :] = [[1, 2], [3, 4]]
    # r h^T W t = 2 * ((1, 1) W) . (1, 0) = 2 * (4, 6) . (1, 0)
    assert tucker(T(1, 1), T(2), T(1, 0)).item() == 8.0
    # batch norm (eval: running statistics) with eps 0: bn0(h) = ((h - mean) / sqrt(var)) w + b
    bn = TuckER(dim=2, relation_dim=1).double().eval()
    with torch.no_grad():
        bn.core.copy_(tucker.core)
        bn.bn0.running_mean.copy_(T(1, 0)), bn.bn0.running_var.copy_(T(4, 1))
        bn.bn1.running_mean.copy_(T(0, 2)), bn.bn1.running_var.copy_(T(1, 1)), bn.bn1.weight.copy_(T(3, 1))
        bn.bn1.bias.copy_(T(0, 5))
    bn.bn0.eps = bn.bn1.eps = 0.0
    # bn0((1, 1)) = (0, 1); (0, 1) W r = 2 (3, 4) = (6, 8); bn1 = (3 * 6, (8 - 2) + 5) = (18, 11); . (1, 2) = 40
    assert bn(T(1, 1), T(2), T(1, 2)).item() == 40.0
    scores = bn.score_all(None, T(2)[None], T(1, 2)[None], T(1, 1, 0, 0)[None].reshape(2, 2), Target.HEAD)
    # bn0((0, 0)) = (-1/2, 0); W r: (-1, -2); bn1: (3 * -1, (-2 - 2) + 5) = (-3, 1); . (1, 2) = -1
    assert scores.tolist() == [[40.0, -1.0]]   # the affine head form of eval mode


# ----------------------------------------------------------------------------- widths, init, names
@pytest.mark.parametrize("name,widths", [("transd", (10, 10)), ("protate", (5, 5)), ("tucker", (5, 5)),
                                         ("rescal", (5, 25)), ("hole", (5, 5)), ("simple", (10, 10)),
                                         ("quate", (20, 20)), ("cp", (10, 5))])
def test_entity_rows_hold_every_vector_of_the_entity(name, widths):
    """One row per entity (what EMU mutates): every vector it carries, side by side."""
    inter = INTERACTIONS.make(name, {"dim": 5}, {"seed": 0})
    assert (inter.entity_dim, inter.relation_dim) == widths
    model = KGEModel.shallow(inter, 4, 2, generator=torch.Generator().manual_seed(0))
    ent, rel = model.encode()
    assert ent.shape == (4, widths[0]) and rel.shape == (2, widths[1])
    bound = (inter.gamma + 2.0) / 5
    assert ent.abs().max() <= bound and rel.abs().max() <= bound


def test_tucker_relation_dim_and_core():
    tucker = TuckER(dim=4, relation_dim=3, seed=7)
    assert (tucker.entity_dim, tucker.relation_dim, tuple(tucker.core.shape)) == (4, 3, (4, 3, 4))
    assert tucker.core.abs().max() <= 1.0
    assert torch.equal(tucker.core, TuckER(dim=4, relation_dim=3, seed=7).core)       # seeded, not global
    assert not torch.equal(tucker.core, TuckER(dim=4, relation_dim=3, seed=8).core)
    assert TuckER(dim=4).relation_dim == 4
    # stored relation-first (the published W); a state dict of the earlier layout, ``core``, still loads
    assert torch.equal(tucker.weight, tucker.core.permute(1, 0, 2)) and tucker.weight.is_contiguous()
    old = {k: v for k, v in tucker.state_dict().items() if k != "weight"} | {"core": tucker.core.clone()}
    fresh = TuckER(dim=4, relation_dim=3, seed=8)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.core, tucker.core)
    with pytest.raises(ValueError):
        TuckER(dim=4, relation_dim=0)


def test_options_through_a_run_configuration():
    """Constructor arguments are ``--set model.<option>=...`` options."""
    sets = parse_set(("model.relation_dim=3", "model.hidden_dropout2=0.5", "model.batch_norm=false"))
    cfg = RunConfig.from_dict({"model": {"name": "tucker", "dim": 6}}).updated(**sets).validate()
    tucker = build_interaction(cfg)
    assert isinstance(tucker, TuckER) and (tucker.dim, tucker.d_r, tucker.batch_norm) == (6, 3, False)
    assert tucker.hidden_dropout2.p == 0.5 and tucker.bn0 is None
    cfg = RunConfig.from_dict({"model": {"name": "pRotatE", "half_angle": True, "learn_modulus": False}}).validate()
    prot = build_interaction(cfg)
    assert isinstance(prot, PRotatE) and prot.half_angle and not prot.modulus.requires_grad
    transd = build_interaction(RunConfig.from_dict({"model": {"name": "transd", "p_norm": 2}}).validate())
    assert isinstance(transd, TransD) and transd.p == 2 and transd.normalize


# ----------------------------------------------------------------------------- equivalences
def _dft(x):
    """``[Re F(x) | Im F(x)]``: the full discrete Fourier transform as ComplEx stores it."""
    f = torch.fft.fft(x, dim=-1)
    return torch.cat([f.real, f.imag], dim=-1)


@pytest.mark.parametrize("target", list(Target))
def test_hole_is_complex_of_the_fourier_transforms(target):
    """Hayashi & Shimbo (2017): HolE(h, r, t) = ComplEx(F h, F r, F t) / d, with ComplEx over all
    d frequencies; so the two rank every candidate alike."""
    d, E = 6, 11
    g = torch.Generator().manual_seed(0)
    ent, rel = _randn(g, E, d), _randn(g, 3, d)
    hole, complex_ = HolE(dim=d), ComplEx(dim=d)
    hrt = torch.tensor([[0, 1, 2], [3, 0, 4], [5, 2, 6], [7, 1, 8]])
    h, r, t = ent[hrt[:, 0]], rel[hrt[:, 1]], ent[hrt[:, 2]]
    torch.testing.assert_close(complex_(_dft(h), _dft(r), _dft(t)) / d, hole(h, r, t), rtol=1e-10, atol=1e-10)
    hq, tq = (None, t) if target is Target.HEAD else (h, None)
    ours = hole.score_all(hq, r, tq, ent, target)
    theirs = complex_.score_all(None if hq is None else _dft(hq), _dft(r), None if tq is None else _dft(tq),
                                _dft(ent), target)
    torch.testing.assert_close(theirs / d, ours, rtol=1e-10, atol=1e-10)
    assert torch.equal(ours.argsort(1), theirs.argsort(1))


def test_protate_is_rotate_on_the_unit_circle():
    """With entities e^{i theta} (unit moduli) and the same relation phases:
    pRotatE(half_angle, modulus 2) = RotatE exactly (|e^{ia} - e^{ib}| = 2 |sin((a - b) / 2)|), and
    the code's pRotatE with modulus C = RotatE with entities (C / 2) e^{2 i theta} and relations 2 r
    (doubled phases, |sin(x)| = |sin(2x / 2)|)."""
    d, gamma = 5, 4.0
    g = torch.Generator().manual_seed(1)
    h, r, t = (_randn(g, 3, 7, d) for _ in range(3))
    scale = math.pi / ((gamma + 2.0) / d)               # raw value -> phase

    def on_circle(x, modulus=1.0, times=1.0):
        return modulus * torch.cat([torch.cos(times * x * scale), torch.sin(times * x * scale)], dim=-1)

    rotate = RotatE(dim=d, gamma=gamma)
    paper = PRotatE(dim=d, gamma=gamma, modulus=2.0, learn_modulus=False, half_angle=True).double()
    torch.testing.assert_close(paper(h, r, t), rotate(on_circle(h), r, on_circle(t)), rtol=1e-10, atol=1e-10)
    code = PRotatE(dim=d, gamma=gamma, modulus=0.75, learn_modulus=False).double()
    torch.testing.assert_close(code(h, r, t), rotate(on_circle(h, 0.375, 2.0), 2 * r, on_circle(t, 0.375, 2.0)),
                               rtol=1e-10, atol=1e-10)


def test_cp_with_tied_roles_is_distmult():
    g = torch.Generator().manual_seed(2)
    h, r, t = _randn(g, 4, 1, 5), _randn(g, 4, 1, 5), _randn(g, 1, 6, 5)
    tied = lambda e: torch.cat([e, e], dim=-1)  # noqa: E731
    torch.testing.assert_close(CP(dim=5)(tied(h), r, tied(t)), DistMult(dim=5)(h, r, t), rtol=1e-12, atol=1e-12)


def test_rescal_with_diagonal_matrices_is_distmult():
    g = torch.Generator().manual_seed(3)
    h, r, t = _randn(g, 4, 1, 5), _randn(g, 4, 1, 5), _randn(g, 1, 6, 5)
    diagonal = torch.diag_embed(r).flatten(-2)           # M_r = diag(r)
    torch.testing.assert_close(RESCAL(dim=5)(h, diagonal, t), DistMult(dim=5)(h, r, t), rtol=1e-12, atol=1e-12)


def test_tucker_with_a_diagonal_core_is_distmult_and_without_norms_is_rescal():
    """W_ijk = 1 if i = j = k else 0 gives DistMult; any core without batch norm is RESCAL with
    M_r = W x_2 r."""
    g = torch.Generator().manual_seed(4)
    h, r, t = _randn(g, 4, 1, 5), _randn(g, 4, 1, 5), _randn(g, 1, 6, 5)
    tucker = TuckER(dim=5, batch_norm=False).double().eval()
    torch.testing.assert_close(tucker(h, r, t), RESCAL(dim=5)(h, tucker.relation_matrix(r).flatten(-2), t),
                               rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        tucker.core.copy_(torch.zeros(5, 5, 5, dtype=torch.float64).index_put_(
            (torch.arange(5),) * 3, torch.ones(5, dtype=torch.float64)))
    torch.testing.assert_close(tucker(h, r, t), DistMult(dim=5)(h, r, t), rtol=1e-12, atol=1e-12)


def test_simple_is_the_mean_of_two_cp_scores():
    """SimplE(h, [r | r^-1], t) = (CP(h, r, t) + CP(t, r^-1, h)) / 2, the entity rows being
    [head role | tail role] in both."""
    g = torch.Generator().manual_seed(5)
    h, r, t = _randn(g, 4, 1, 6), _randn(g, 4, 1, 6), _randn(g, 1, 7, 6)
    cp = CP(dim=3)
    expected = 0.5 * (cp(h, r[..., :3], t) + cp(t, r[..., 3:], h))
    torch.testing.assert_close(SimplE(dim=3)(h, r, t), expected, rtol=1e-12, atol=1e-12)


def test_quate_in_the_complex_plane_is_complex_with_unit_relations():
    """Quaternions a + b i (c = d = 0) multiply as complex numbers: QuatE = ComplEx with every
    relation coordinate scaled to modulus 1."""
    g = torch.Generator().manual_seed(6)
    h, r, t = _randn(g, 4, 1, 6), _randn(g, 4, 1, 6), _randn(g, 1, 7, 6)
    zeros = lambda x: torch.cat([x, torch.zeros_like(x)], dim=-1)  # noqa: E731  ([a | b] -> [a | b | 0 | 0])
    re, im = r.chunk(2, -1)
    unit = r / torch.sqrt(re * re + im * im).repeat(1, 1, 2)
    torch.testing.assert_close(QuatE(dim=3)(zeros(h), zeros(r), zeros(t)), ComplEx(dim=3)(h, unit, t),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("p", [1, 2])
def test_transd_without_projection_vectors_is_transe(p):
    g = torch.Generator().manual_seed(7)
    h, r, t = _randn(g, 4, 1, 5), _randn(g, 4, 1, 5), _randn(g, 1, 6, 5)
    no_proj = lambda x: torch.cat([x, torch.zeros_like(x)], dim=-1)  # noqa: E731
    torch.testing.assert_close(TransD(dim=5, p_norm=p, normalize=False)(no_proj(h), no_proj(r), no_proj(t)),
                               TransE(dim=5, p_norm=p)(h, r, t), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- TuckER's modules
def _tucker_inputs(seed=0, B=6, K=4, d=5, d_r=3):
    g = torch.Generator().manual_seed(seed)
    return _randn(g, B, 1, d), _randn(g, B, 1, d_r), _randn(g, B, 1, d), _randn(g, B, K, d)


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("target", list(Target))
def test_tucker_in_train_mode_scores_candidates_as_forward(batch_norm, target):
    """Train mode, batch statistics: tail candidates through the query (batch norm over the B
    anchors, as forward does before broadcasting); head candidates through the linear query
    without batch norm, through forward with it (no candidate form then: EMU forms them)."""
    h, r, t, c = _tucker_inputs()
    tucker = TuckER(dim=5, relation_dim=3, batch_norm=batch_norm).double().train()
    fast = tucker.score_candidates(h, r, t, c, target)
    torch.testing.assert_close(fast, tucker(*place_candidates(h, r, t, c, target)), rtol=1e-10, atol=1e-10)
    has_form = tucker.candidate_form(h, r, t, target) is not None
    assert has_form == (target is Target.TAIL or not batch_norm)
    if not has_form:
        with pytest.raises(ValueError, match="linear in the head only without batch norm"):
            tucker.query(h, r, t, target)
    # batch statistics, not running ones: the train-mode scores differ from eval mode's
    assert not torch.allclose(fast, tucker.eval().score_candidates(h, r, t, c, target)) or not batch_norm


def test_tucker_dropouts_where_the_published_model_has_them():
    """Train mode: input dropout on the (normalised) head, the first hidden dropout on the
    relation's matrix W x_2 r, the second on the (normalised) product, masks drawn in that order
    from one seeded stream; eval mode: none."""
    h, r, t, c = _tucker_inputs(1)
    tucker = TuckER(dim=5, relation_dim=3, input_dropout=0.3, hidden_dropout1=0.4, hidden_dropout2=0.5,
                    batch_norm=False, seed=3).double().train()
    state = tucker.input_dropout.rng_state()
    got = tucker.score_candidates(h, r, t, c, Target.TAIL)
    tucker.input_dropout.load_rng_state(state)
    gen = tucker.input_dropout.generators.get(h.device)
    m0 = bernoulli_mask(h.shape, 0.7, gen, dtype=h.dtype)
    m1 = bernoulli_mask((6, 1, 5, 5), 0.6, gen, dtype=h.dtype)
    m2 = bernoulli_mask((6, 1, 5), 0.5, gen, dtype=h.dtype)
    x = torch.einsum("bni,bnik->bnk", h * m0 / 0.7, tucker.relation_matrix(r) * m1 / 0.6) * m2 / 0.5
    torch.testing.assert_close(got, (x * c).sum(-1), rtol=1e-10, atol=1e-10)
    assert tucker.hidden_dropout1.generators is tucker.hidden_dropout2.generators is tucker.input_dropout.generators
    # a reseeded module draws the same masks; eval mode drops nothing
    again = TuckER(dim=5, relation_dim=3, input_dropout=0.3, hidden_dropout1=0.4, hidden_dropout2=0.5,
                   batch_norm=False, seed=3).double().train()
    with torch.no_grad():
        again.core.copy_(tucker.core)
    torch.testing.assert_close(again.score_candidates(h, r, t, c, Target.TAIL), got)
    plain = TuckER(dim=5, relation_dim=3, batch_norm=False, seed=3).double()
    with torch.no_grad():
        plain.core.copy_(tucker.core)
    torch.testing.assert_close(tucker.eval().score_candidates(h, r, t, c, Target.TAIL),
                               plain.score_candidates(h, r, t, c, Target.TAIL), rtol=1e-12, atol=1e-12)


def test_tucker_batch_norm_learns_in_train_mode_only():
    h, r, t, c = _tucker_inputs(2)
    tucker = TuckER(dim=5, relation_dim=3).double()
    before = tucker.bn0.running_mean.clone()
    tucker.eval().score_candidates(h, r, t, c, Target.TAIL)
    assert torch.equal(tucker.bn0.running_mean, before)
    tucker.train().score_candidates(h, r, t, c, Target.TAIL)
    assert not torch.equal(tucker.bn0.running_mean, before)


def test_tucker_scores_a_steps_positive_with_its_negatives_from_one_query(monkeypatch):
    """``shares_query``: S_plain of a training step computes TuckER's query (the core product) once
    per row, the positive scored as one more candidate; without dropout (one draw either way) the
    scores and gradients are those of the positive and the negatives scored apart, batch norm in
    train mode included."""
    from dgl_emu.models import Gathered
    from dgl_emu.nn.encoders.base import LookupEncoder
    h, r, t, c = (x.requires_grad_() for x in _tucker_inputs(4))
    tucker = TuckER(dim=5, relation_dim=3, seed=3).double().train()
    model = KGEModel(LookupEncoder(4, 2, tucker), tucker)
    calls = []
    product = TuckER.relation_matrix
    monkeypatch.setattr(TuckER, "relation_matrix", lambda self, rel: calls.append(rel.shape) or product(self, rel))
    g = Gathered(h, r, t, c)
    together = model.score_plain(g, Target.TAIL)
    assert calls == [(6, 1, 3)] and together.shape == (6, 5)
    apart = torch.cat([model.score_gathered(g, t, Target.TAIL), model.score_gathered(g, c, Target.TAIL)], 1)
    torch.testing.assert_close(together, apart, rtol=1e-12, atol=1e-12)
    w = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = [torch.autograd.grad((s * w).sum(), (h, r, t, c, tucker.weight)) for s in (together, apart)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert not DistMult.shares_query    # cheap queries: the positive apart, the negatives not copied
