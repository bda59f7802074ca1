"""Losses against hand-written formulas (scores ``(B, 1 + K)``, column 0 the positive)."""
from __future__ import annotations

import math

import pytest
import torch

from dgl_emu.losses import (LOSSES, BCELoss, CrossEntropyLoss, EMULoss, LpRegularizer, MarginRankingLoss,
                            SoftplusLoss, soft_cross_entropy)


def scores(B=4, K=5, seed=0, requires_grad=False):
    s = torch.randn(B, 1 + K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    return s.requires_grad_(requires_grad)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def log_softmax_row(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


# ----------------------------------------------------------------------------- softplus
def test_softplus_uniform_weights_hand_formula():
    s = scores()
    expected = 0.0
    for row in s.tolist():
        pos, negs = row[0], row[1:]
        expected += 0.5 * (-log_sigmoid(pos) - sum(log_sigmoid(-n) for n in negs) / len(negs))
    expected /= len(s)
    assert SoftplusLoss()(s).item() == pytest.approx(expected, rel=1e-12)


def test_softplus_exact_small_value():
    # s0 = 0 and two negatives at 0: 0.5 * (log 2 + log 2) = log 2
    assert SoftplusLoss()(torch.zeros(3, 3)).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_self_adversarial_hand_formula(alpha):
    s = scores(seed=1)
    expected = 0.0
    for row in s.tolist():
        pos, negs = row[0], row[1:]
        z = [math.exp(alpha * n) for n in negs]
        w = [x / sum(z) for x in z]
        expected += 0.5 * (-log_sigmoid(pos) - sum(wk * log_sigmoid(-n) for wk, n in zip(w, negs)))
    expected /= len(s)
    loss = SoftplusLoss(adversarial_temperature=alpha)
    assert loss(s).item() == pytest.approx(expected, rel=1e-12)
    w = loss.negative_weights(s[:, 1:])
    torch.testing.assert_close(w.sum(1), torch.ones(len(s), dtype=s.dtype))
    torch.testing.assert_close(w, torch.softmax(alpha * s[:, 1:], 1))


def test_self_adversarial_weights_are_detached():
    alpha = 1.0
    s = scores(seed=2, requires_grad=True)
    SoftplusLoss(adversarial_temperature=alpha)(s).backward()
    # the manual computation with constant weights
    s2 = s.detach().clone().requires_grad_(True)
    w = torch.softmax(alpha * s2.detach()[:, 1:], 1)
    manual = 0.5 * (torch.nn.functional.softplus(-s2[:, 0])
                    + (w * torch.nn.functional.softplus(s2[:, 1:])).sum(1)).mean()
    manual.backward()
    torch.testing.assert_close(s.grad, s2.grad)
    # by hand: dL/ds_k = 0.5 * w_k * sigmoid(s_k) / B for the negatives, -0.5 sigmoid(-s_0) / B
    B = len(s)
    torch.testing.assert_close(s.grad[:, 1:], 0.5 * w * torch.sigmoid(s.detach()[:, 1:]) / B)
    torch.testing.assert_close(s.grad[:, 0], -0.5 * torch.sigmoid(-s.detach()[:, 0]) / B)
    # letting the gradient through the weights would give something else
    s3 = s.detach().clone().requires_grad_(True)
    w3 = torch.softmax(alpha * s3[:, 1:], 1)
    (0.5 * (torch.nn.functional.softplus(-s3[:, 0])
            + (w3 * torch.nn.functional.softplus(s3[:, 1:])).sum(1)).mean()).backward()
    assert not torch.allclose(s.grad, s3.grad)


# ----------------------------------------------------------------------------- margin / CE
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
def test_margin_ranking_hand_formula(margin):
    s = scores(seed=3)
    terms = [max(0.0, margin - row[0] + n) for row in s.tolist() for n in row[1:]]
    assert MarginRankingLoss(margin=margin)(s).item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    assert 0 < sum(t > 0 for t in terms) < len(terms)   # the hinge is active on some pairs only


def test_margin_exact():
    # pairs: max(0, 1 - 2 + 1.5) = 0.5, max(0, 1 - 2 + 0) = 0 -> mean 0.25
    assert MarginRankingLoss(1.0)(torch.tensor([[2.0, 1.5, 0.0]])).item() == 0.25


def test_cross_entropy_vs_torch_and_hand_formula():
    s = scores(seed=4)
    ce = CrossEntropyLoss()(s)
    torch.testing.assert_close(ce, -torch.log_softmax(s, 1)[:, 0].mean())
    torch.testing.assert_close(ce, (torch.logsumexp(s, 1) - s[:, 0]).mean())
    hand = sum(-log_softmax_row(row)[0] for row in s.tolist()) / len(s)
    assert ce.item() == pytest.approx(hand, rel=1e-12)
    assert CrossEntropyLoss()(torch.zeros(2, 4)).item() == pytest.approx(math.log(4))


def test_soft_cross_entropy_hand_formula():
    s = scores(seed=5, K=3)
    y = torch.tensor([[1.0, 0.2, 0.0, 0.7], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0],
                      [2.0, 0.1, 0.3, 0.9]], dtype=torch.float64)
    hand = sum(-sum(yj * lj for yj, lj in zip(yr, log_softmax_row(row)))
               for row, yr in zip(s.tolist(), y.tolist())) / len(s)
    assert soft_cross_entropy(s, y).item() == pytest.approx(hand, rel=1e-12)
    # one-hot labels give the ordinary cross-entropy
    onehot = torch.zeros_like(s)
    onehot[:, 0] = 1
    torch.testing.assert_close(soft_cross_entropy(s, onehot), CrossEntropyLoss()(s))
    # labels broadcast from one row
    row = y[0]
    torch.testing.assert_close(soft_cross_entropy(s, row), soft_cross_entropy(s, row.expand_as(s)))
    # not normalised: doubling the labels doubles the loss
    torch.testing.assert_close(soft_cross_entropy(s, 2 * y), 2 * soft_cross_entropy(s, y))


# ----------------------------------------------------------------------------- EMU loss
def emu_formula(s_emu, s_plain, q, c, labels=None):
    """L = CE_soft(S_emu, y) / K + c * CE(S_plain, onehot_0), y = [1, q, ..., q], by hand."""
    B, C = len(s_emu), len(s_emu[0])
    K = C - 1
    soft = 0.0
    for b in range(B):
        y = [1.0] + ([q] * K if labels is None else list(labels[b]))
        logp = log_softmax_row(s_emu[b])
        soft -= sum(yj * lj for yj, lj in zip(y, logp))
    soft /= B
    plain = sum(-log_softmax_row(row)[0] for row in s_plain) / B
    return soft / K + c * plain


@pytest.mark.parametrize("q,c", [(0.53, 0.11), (0.0, 1.0), (1.0, 0.0), (0.25, 2.0)])
def test_emu_loss_formula(q, c):
    s_emu, s_plain = scores(seed=6, K=7), scores(seed=7, K=7)
    loss = EMULoss(negative_label=q, plain_weight=c)(s_emu, s_plain)
    expected = emu_formula(s_emu.tolist(), s_plain.tolist(), q, c)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_emu_loss_soft_labels_are_not_normalised():
    y = EMULoss(negative_label=0.53).soft_labels(4, torch.zeros(1, dtype=torch.float64))
    assert y.tolist() == [1.0, 0.53, 0.53, 0.53, 0.53]
    assert y.dtype == torch.float64


def test_emu_loss_with_per_negative_labels():
    s_emu, s_plain = scores(seed=8, K=4), scores(seed=9, K=4)
    labels = torch.rand(len(s_emu), 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = EMULoss(negative_label=0.53, plain_weight=0.11)(s_emu, s_plain, labels)
    expected = emu_formula(s_emu.tolist(), s_plain.tolist(), None, 0.11, labels.tolist())
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    # the fixed label is overridden: a different value than with q = 0.53
    fixed = EMULoss(negative_label=0.53, plain_weight=0.11)(s_emu, s_plain)
    assert fixed.item() != pytest.approx(loss.item())
    # float32 labels are cast to the scores' dtype
    loss32 = EMULoss(negative_label=0.53, plain_weight=0.11)(s_emu, s_plain, labels.float())
    assert loss32.dtype == torch.float64
    assert loss32.item() == pytest.approx(expected, rel=1e-6)


def test_emu_loss_with_self_adversarial_plain_loss():
    s_emu, s_plain = scores(seed=10, K=5), scores(seed=11, K=5)
    q, c = 0.53, 0.11
    loss = EMULoss(q, c, plain_loss=SoftplusLoss(adversarial_temperature=1.0))(s_emu, s_plain)
    plain = 0.0
    for row in s_plain.tolist():
        z = [math.exp(n) for n in row[1:]]
        plain += 0.5 * (-log_sigmoid(row[0]) - sum(zk / sum(z) * log_sigmoid(-n) for zk, n in zip(z, row[1:])))
    plain /= len(s_plain)
    soft = emu_formula(s_emu.tolist(), s_plain.tolist(), q, 0.0)
    assert loss.item() == pytest.approx(soft + c * plain, rel=1e-12)


def test_emu_loss_gradients_and_zero_plain_weight():
    s_emu = scores(seed=12, K=3, requires_grad=True)
    s_plain = scores(seed=13, K=3, requires_grad=True)
    EMULoss(0.53, 0.0)(s_emu, s_plain).backward()
    assert s_plain.grad is None or s_plain.grad.abs().sum() == 0
    # dL/dS_emu = (softmax(S) * sum(y) - y) / (B K)
    y = torch.tensor([1.0, 0.53, 0.53, 0.53], dtype=torch.float64)
    B, K = len(s_emu), 3
    expected = (torch.softmax(s_emu.detach(), 1) * y.sum() - y) / (B * K)
    torch.testing.assert_close(s_emu.grad, expected)
    with pytest.raises(ValueError):
        EMULoss(plain_weight=-0.1)


def test_emu_loss_default_plain_loss_is_cross_entropy():
    s_emu, s_plain = scores(seed=14), scores(seed=15)
    a = EMULoss(0.53, 0.11)(s_emu, s_plain)
    b = EMULoss(0.53, 0.11, plain_loss=CrossEntropyLoss())(s_emu, s_plain)
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- bce
def test_bce_hand_formula():
    """mean over all B(1+K) scores of log(1+e^-s) for the positive and log(1+e^s) for negatives."""
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 3.0, 1.0]])
    terms = [math.log1p(math.exp(-2.0)), math.log1p(1.0), math.log1p(math.exp(-1.0)),
             math.log1p(math.exp(-0.5)), math.log1p(math.exp(3.0)), math.log1p(math.exp(1.0))]
    assert BCELoss()(s).item() == pytest.approx(sum(terms) / 6, rel=1e-6)


def test_bce_is_softplus_with_the_papers_weights():
    """BCE = (positive term + K * mean negative term) / (1 + K), where softplus takes halves."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 1 + 7, generator=g)
    pos = torch.nn.functional.softplus(-s[:, 0]).mean()
    neg = torch.nn.functional.softplus(s[:, 1:]).mean(1).mean()
    torch.testing.assert_close(BCELoss()(s), (pos + 7 * neg) / 8)
    torch.testing.assert_close(SoftplusLoss()(s), 0.5 * (pos + neg))


# ----------------------------------------------------------------------------- regulariser
def test_lp_regularizer_exact():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0]])          # row sums of |x|^3: 9, 27 -> mean 18
    y = torch.tensor([[[1.0, 1.0]], [[0.0, -2.0]]])      # (2, 1, 2): 2, 8 -> mean 5
    assert LpRegularizer(weight=0.1, p=3)(x, y).item() == pytest.approx(0.1 * (18 + 5))
    assert LpRegularizer(weight=1.0, p=2)(x).item() == pytest.approx((5 + 9) / 2)
    assert LpRegularizer(weight=0.0, p=3)(x).item() == 0.0


def test_loss_registry_names():
    for name, cls in [("softplus", SoftplusLoss), ("bce", BCELoss), ("margin", MarginRankingLoss),
                      ("ce", CrossEntropyLoss)]:
        assert LOSSES.get(name) is cls
    assert "emu" not in LOSSES  # the EMU loss wraps a plain loss; it is built from the emu section
