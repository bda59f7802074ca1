"""Golden tests of EMU (embedding mutation), its Bernoulli mask, and the Mixup variant."""
from __future__ import annotations

import math

import pytest
import torch

from dgl_emu.counter_rng import counter_mask, draw_key
from dgl_emu.nn.emu import EmbeddingMixup, EmbeddingMutation
from dgl_emu.rng import bernoulli_mask


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clone(g: torch.Generator) -> torch.Generator:
    """A fresh generator in the same state as ``g``."""
    c = torch.Generator()
    c.set_state(g.get_state())
    return c


def reproduced(seed: int, call: int, shape, p: float, dtype=torch.float64) -> torch.Tensor:
    """The keep-mask of call ``call`` of an EmbeddingMutation seeded ``seed``, from the counter formula."""
    return counter_mask(draw_key(seed, call), 0, shape, p, dtype=dtype)


def pos_neg(B=4, K=6, d=5, seed=0, dtype=torch.float64):
    g = gen(seed)
    pos = torch.randn(B, 1, d, generator=g, dtype=dtype)
    neg = torch.randn(B, K, d, generator=g, dtype=dtype)
    return pos, neg


# ----------------------------------------------------------------------------- EMU: golden values
def test_keep_all_is_identity():
    pos, neg = pos_neg()
    out = EmbeddingMutation(keep_prob=1.0, seed=0)(pos, neg)
    assert torch.equal(out, neg)


def test_keep_none_gives_the_positive_everywhere():
    pos, neg = pos_neg()
    out = EmbeddingMutation(keep_prob=0.0, seed=0)(pos, neg)
    assert out.shape == neg.shape
    assert torch.equal(out, pos.expand_as(neg))


def test_eval_mode_is_identity():
    pos, neg = pos_neg()
    emu = EmbeddingMutation(keep_prob=0.39, seed=0).eval()
    assert torch.equal(emu(pos, neg), neg)
    out, labels = emu.mutate(pos, neg)
    assert torch.equal(out, neg) and labels is None
    # and back in training mode it mutates
    assert not torch.equal(emu.train()(pos, neg), neg)


@pytest.mark.parametrize("p", [0.39, 0.8])
def test_output_matches_definition_with_reproduced_mask(p):
    pos, neg = pos_neg(B=5, K=7, d=9)
    emu = EmbeddingMutation(keep_prob=p, seed=11)
    out = emu(pos, neg)
    m = reproduced(11, 0, neg.shape, p)
    assert 0 < m.sum() < m.numel()
    assert torch.equal(out, m * neg + (1 - m) * pos)
    # each output coordinate is the negative's or the positive's, never anything else
    assert torch.all((out == neg) | (out == pos.expand_as(neg)))
    # a second call draws a fresh mask (per step), continuing the same stream
    out2 = emu(pos, neg)
    m2 = reproduced(11, 1, neg.shape, p)
    assert torch.equal(out2, m2 * neg + (1 - m2) * pos)
    assert not torch.equal(m, m2)


def test_gradients_reach_both_inputs_with_mask_values():
    p = 0.39
    pos, neg = pos_neg(B=3, K=8, d=6)
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    m = reproduced(5, 0, neg.shape, p)
    out = EmbeddingMutation(keep_prob=p, seed=5)(pos, neg)
    out.sum().backward()
    assert torch.equal(neg.grad, m)
    assert torch.equal(pos.grad, (1 - m).sum(1, keepdim=True))
    assert pos.grad.abs().sum() > 0 and neg.grad.abs().sum() > 0


def test_weighted_gradients():
    # d(sum w * out)/d neg = w * m and d/d pos = sum_k w * (1 - m)
    pos, neg = pos_neg(B=2, K=4, d=3)
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    w = torch.randn(2, 4, 3, generator=gen(9), dtype=torch.float64)
    m = reproduced(6, 0, neg.shape, 0.5)
    (EmbeddingMutation(0.5, seed=6)(pos, neg) * w).sum().backward()
    torch.testing.assert_close(neg.grad, w * m)
    torch.testing.assert_close(pos.grad, (w * (1 - m)).sum(1, keepdim=True))


def test_same_seed_same_mask_and_different_seed_different_mask():
    pos, neg = pos_neg(B=8, K=16, d=10)
    a = EmbeddingMutation(0.39, seed=1)(pos, neg)
    b = EmbeddingMutation(0.39, seed=1)(pos, neg)
    c = EmbeddingMutation(0.39, seed=2)(pos, neg)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(bernoulli_mask((50, 50), 0.3, gen(3)), bernoulli_mask((50, 50), 0.3, gen(3)))
    assert not torch.equal(bernoulli_mask((50, 50), 0.3, gen(3)), bernoulli_mask((50, 50), 0.3, gen(4)))


def test_mask_independent_across_negatives_and_coordinates():
    B, K, d = 200, 32, 40
    m = bernoulli_mask((B, K, d), 0.5, gen(0))
    # not constant along K nor along d (a per-negative or per-coordinate mask would be)
    assert (m != m[:, :1, :]).any(1).float().mean() > 0.99
    assert (m != m[:, :, :1]).any(2).float().mean() > 0.99
    assert (m != m[:1]).any(0).float().mean() > 0.99
    # pairs of neighbours along each axis: all four combinations have frequency 1/4 (p = 0.5)
    n = B * K * d
    for a, b in [(m[:, :-1], m[:, 1:]), (m[..., :-1], m[..., 1:]), (m[:-1], m[1:])]:
        both = (a & b).double().mean().item()
        se = math.sqrt(0.25 * 0.75 / a.numel())
        assert abs(both - 0.25) < 4 * se
    assert abs(m.double().mean().item() - 0.5) < 4 * math.sqrt(0.25 / n)


def test_complex_shaped_inputs_mutate_each_real_coordinate_independently():
    # ComplEx/RotatE entities are 2d reals [real | imag]; the mask must not tie real to imag
    p, d = 0.39, 50
    pos = torch.zeros(100, 1, 2 * d)
    neg = torch.ones(100, 64, 2 * d)
    kept = EmbeddingMutation(p, seed=3)(pos, neg) == 1
    re, im = kept[..., :d], kept[..., d:]
    assert (re != im).any()
    n = re.numel()
    joint = (re & im).double().mean().item()
    assert abs(joint - p * p) < 4 * math.sqrt(p * p * (1 - p * p) / n)
    disagree = (re != im).double().mean().item()
    q = 2 * p * (1 - p)
    assert abs(disagree - q) < 4 * math.sqrt(q * (1 - q) / n)


# ----------------------------------------------------------------------------- keep rates
@pytest.mark.parametrize("p", [0.39, 0.5, 0.1, 0.999, 1 / 256, 255 / 256])
def test_empirical_keep_rate(p):
    shape = (100, 100, 100)
    pos, neg = torch.zeros(100, 1, 100), torch.ones(shape)
    kept = EmbeddingMutation(p, seed=7)(pos, neg)
    n = kept.numel()
    rate = kept.double().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_bernoulli_mask_is_exact_for_fractional_256p():
    # 256 * 0.39 = 99.84: a pure byte threshold would give 99/256 = 0.38671875 or
    # 100/256 = 0.390625; 4e7 draws resolve the difference (standard error 7.7e-5)
    p, n = 0.39, 40_000_000
    m = bernoulli_mask((n,), p, gen(0))
    assert m.dtype == torch.bool and m.shape == (n,)
    rate = int(m.sum()) / n
    quantised = (99 / 256, 100 / 256)
    assert all(abs(rate - p) < abs(rate - q) for q in quantised)
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_mask_float_dtype_matches_bool_mask(dtype):
    shape = (13, 7, 5)                                   # 455 elements: not a multiple of 8
    b = bernoulli_mask(shape, 0.39, gen(2))
    f = bernoulli_mask(shape, 0.39, gen(2), dtype=dtype)
    assert f.dtype == dtype and f.shape == shape
    assert torch.equal(f, b.to(dtype))
    assert set(f.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32])
def test_bernoulli_mask_follows_its_documented_recipe(dtype):
    # the recipe of the docstring, written out: the committed benchmark rows depend on this stream
    p, shape = 0.39, (9, 11, 13)
    n, g = 9 * 11 * 13, gen(5)
    words = torch.empty((n + 7) // 8, dtype=torch.int64).random_(-2 ** 63, None, generator=g)
    byte = words.view(torch.uint8)[:n]
    expected = byte < 99                                  # floor(256 * 0.39) = 99
    ties = (byte == 99).nonzero().squeeze(1)
    expected[ties] = torch.rand(len(ties), generator=g) < 256 * p - 99
    assert len(ties) > 0
    got = bernoulli_mask(shape, p, gen(5), dtype=dtype)
    assert got.dtype == dtype and torch.equal(got, expected.view(shape).to(dtype))


def test_bernoulli_mask_edges():
    assert bernoulli_mask((10, 3), 0.0, gen(0)).sum() == 0
    assert bernoulli_mask((10, 3), 1.0, gen(0)).all()
    # odd element counts (not a multiple of 8 bytes) and a scalar-ish shape
    for shape in [(1,), (7,), (3, 5, 3)]:
        m = bernoulli_mask(shape, 0.5, gen(0))
        assert m.shape == shape and m.dtype == torch.bool
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError):
            bernoulli_mask((4,), bad, gen(0))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_invalid_keep_prob_raises(bad):
    with pytest.raises(ValueError):
        EmbeddingMutation(keep_prob=bad)


def test_broadcast_positive_is_not_modified_in_place():
    pos, neg = pos_neg()
    pos0, neg0 = pos.clone(), neg.clone()
    EmbeddingMutation(0.39, seed=0)(pos, neg)
    assert torch.equal(pos, pos0) and torch.equal(neg, neg0)


# ----------------------------------------------------------------------------- Mixup
def _lambda_from_output(out, pos, neg):
    """Recover the per-negative λ of ``out = λ neg + (1 - λ) pos`` (constant along d)."""
    lam = (out - pos) / (neg - pos)
    torch.testing.assert_close(lam, lam[..., :1].expand_as(lam), rtol=1e-9, atol=1e-9)
    return lam[..., 0]


def test_mixup_output_and_labels():
    pos, neg = pos_neg(B=6, K=9, d=4)
    mix = EmbeddingMixup(generator=gen(2))
    out, labels = mix.mutate(pos, neg)
    assert out.shape == neg.shape and labels.shape == (6, 9)
    assert labels.dtype == neg.dtype
    lam = _lambda_from_output(out, pos, neg)
    assert torch.all((lam >= 0) & (lam <= 1))
    torch.testing.assert_close(labels, 1 - lam, rtol=1e-9, atol=1e-9)
    # one λ per negative, not one per batch
    assert lam.unique().numel() == lam.numel()
    # forward returns the same mixed embeddings as mutate with the same generator state
    torch.testing.assert_close(EmbeddingMixup(generator=gen(2))(pos, neg), out)


def test_mixup_lambda_reproduced_from_sample_lambda():
    pos, neg = pos_neg(B=3, K=5, d=2)
    g = gen(8)
    lam = EmbeddingMixup(generator=clone(g)).sample_lambda((3, 5), torch.device("cpu")).double()
    out, labels = EmbeddingMixup(generator=g).mutate(pos, neg)
    torch.testing.assert_close(out, lam.unsqueeze(-1) * neg + (1 - lam.unsqueeze(-1)) * pos)
    torch.testing.assert_close(labels, 1 - lam)


def test_mixup_fixed_negative_label():
    pos, neg = pos_neg()
    out, labels = EmbeddingMixup(fixed_label=0.53, generator=gen(0)).mutate(pos, neg)
    assert torch.all(labels == 0.53)
    lam = _lambda_from_output(out, pos, neg)
    assert torch.all((lam >= 0) & (lam <= 1)) and lam.std() > 0


def test_mixup_lambda_mean_is_two_thirds_for_beta_2_1():
    n = 200_000
    lam = EmbeddingMixup(generator=gen(0)).sample_lambda((n,), torch.device("cpu")).double()
    # Beta(2, 1): mean 2/3, variance 1/18; P(λ < 1/2) = 1/4
    assert abs(lam.mean().item() - 2 / 3) < 4 * math.sqrt(1 / 18 / n)
    assert abs((lam < 0.5).double().mean().item() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    lam2 = EmbeddingMixup(alpha=1.0, beta=3.0, generator=gen(0)).sample_lambda((n,), torch.device("cpu"))
    var = 3 / (16 * 5)
    assert abs(lam2.double().mean().item() - 0.25) < 4 * math.sqrt(var / n)


def test_mixup_eval_identity_and_gradients():
    pos, neg = pos_neg()
    mix = EmbeddingMixup(generator=gen(1)).eval()
    out, labels = mix.mutate(pos, neg)
    assert torch.equal(out, neg) and labels is None
    assert torch.equal(mix(pos, neg), neg)
    mix.train()
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    g = gen(4)
    lam = EmbeddingMixup(generator=clone(g)).sample_lambda(neg.shape[:-1], torch.device("cpu")).double()
    EmbeddingMixup(generator=g)(pos, neg).sum().backward()
    torch.testing.assert_close(neg.grad, lam.unsqueeze(-1).expand_as(neg))
    torch.testing.assert_close(pos.grad, (1 - lam).sum(1).reshape(-1, 1, 1).expand_as(pos))


def test_mixup_determinism_and_invalid_parameters():
    pos, neg = pos_neg()
    assert torch.equal(EmbeddingMixup(generator=gen(3))(pos, neg), EmbeddingMixup(generator=gen(3))(pos, neg))
    assert not torch.equal(EmbeddingMixup(generator=gen(3))(pos, neg), EmbeddingMixup(generator=gen(4))(pos, neg))
    for a, b in [(0.0, 1.0), (2.0, -1.0)]:
        with pytest.raises(ValueError):
            EmbeddingMixup(alpha=a, beta=b)


def test_mutate_equals_autograd_lerp_values_and_gradients():
    from dgl_emu.nn.emu import mutate
    g = torch.Generator().manual_seed(7)
    pos = torch.randn(3, 1, 4, dtype=torch.float64, generator=g, requires_grad=True)
    neg = torch.randn(3, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    m = (torch.rand(3, 5, 4, generator=g) < 0.4).double()
    w = torch.randn(3, 5, 4, dtype=torch.float64, generator=g)
    out, ref = mutate(pos, neg, m), torch.lerp(pos, neg, m)
    assert torch.equal(out, ref)
    for a, b in zip(torch.autograd.grad((out * w).sum(), (pos, neg)),
                    torch.autograd.grad((ref * w).sum(), (pos, neg))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # one input without gradient
    (gn,) = torch.autograd.grad((mutate(pos.detach(), neg, m) * w).sum(), (neg,))
    torch.testing.assert_close(gn, w * m)
    (gp,) = torch.autograd.grad((mutate(pos, neg.detach(), m) * w).sum(), (pos,))
    torch.testing.assert_close(gp, (w * (1 - m)).sum(1, keepdim=True))
    with pytest.raises(ValueError, match="constant 0/1"):
        mutate(pos, neg, m.clone().requires_grad_(True))


@pytest.mark.parametrize("shape, rows_per_slice", [((37, 6, 5), 4), ((37, 6, 5), 1), ((5, 3, 2), 100)])
def test_sliced_backward_is_bit_identical_to_the_plain_formula(monkeypatch, shape, rows_per_slice):
    """The backward of ``mutate`` works slice by slice of rows (a cache-sized buffer); its
    gradients equal ``grad * mask`` and ``(grad - grad * mask).sum_to_size(pos)`` bit for bit,
    whatever the slice size (the last slice shorter, one row, one slice for all)."""
    import dgl_emu.nn.emu as emu_module
    n, k, d = shape
    monkeypatch.setattr(emu_module, "_SLICE", rows_per_slice * k * d)
    g = gen(3)
    pos = torch.randn(n, 1, d, generator=g, requires_grad=True)
    neg = torch.randn(n, k, d, generator=g, requires_grad=True)
    mask = bernoulli_mask(shape, 0.39, g, dtype=torch.float32)
    w = torch.randn(n, k, d, generator=g)
    gp, gn = torch.autograd.grad((emu_module.mutate(pos, neg, mask) * w).sum(), (pos, neg))
    assert torch.equal(gn, w * mask)
    assert torch.equal(gp, (w - w * mask).sum_to_size(pos.shape))


@pytest.mark.parametrize("slice_elements", [7, 1000])
@pytest.mark.parametrize("p", [0.39, 0.5, 0.999])
def test_sliced_mask_equals_the_one_pass_mask(monkeypatch, slice_elements, p):
    """On CPU the mask is drawn in slices (cache-sized); the ties of every slice are collected in
    order, so the mask equals the one-pass recipe bit for bit."""
    import dgl_emu.rng as rng_module
    one_pass = bernoulli_mask((40, 9, 11), p, gen(5), dtype=torch.float32)
    monkeypatch.setattr(rng_module, "_SLICE", slice_elements)
    assert torch.equal(rng_module.bernoulli_mask((40, 9, 11), p, gen(5), dtype=torch.float32), one_pass)
