"""The per-batch objective against the EMU definition written out by hand.

ARCHITECTURE.md §1: ``neg_emu = m * neg + (1 - m) * pos`` with ``m ~ Bernoulli(p)`` per coordinate,
``L = CE_soft(S_emu, [1, q, ..., q]) / K + c * CE(S_plain, 0)``. Every hand computation below
works from the raw embedding tables and the interaction's ``forward(h, r, t)`` on explicitly
placed tensors, never through ``KGEModel.gather`` / ``score_candidates``.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from dgl_emu.losses import CrossEntropyLoss, EMULoss, LpRegularizer, SoftplusLoss
from dgl_emu.models import KGEModel
from dgl_emu.counter_rng import counter_mask, draw_key
from dgl_emu.nn.emu import EmbeddingMixup, EmbeddingMutation
from dgl_emu.nn.fused import kernels, unfused
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.sampling import BernoulliNegativeSampler, UniformNegativeSampler
from dgl_emu.training import Objective, alternating_target, split_by_side
from dgl_emu.typing import Target

E, R, B, K, DIM = 20, 3, 6, 5, 4
CPU = torch.device("cpu")


def make_model(name: str = "distmult", seed: int = 0) -> KGEModel:
    gen = torch.Generator().manual_seed(seed)
    model = KGEModel.shallow(INTERACTIONS.get(name)(dim=DIM, gamma=2.0), E, R, generator=gen)
    return model.double()


def make_batch(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    hrt = torch.stack([torch.randint(0, E, (B,), generator=gen), torch.randint(0, R, (B,), generator=gen),
                       torch.randint(0, E, (B,), generator=gen)], 1)
    neg = torch.randint(0, E, (B, K), generator=gen)
    return hrt, neg


def hand_scores(model: KGEModel, hrt, candidates, target: Target):
    """``(B, C)`` scores with ``candidates (B, C, d)`` put in the ``target`` slot by hand."""
    ent, rel = model.encoder.entity, model.encoder.relation
    h, r, t = ent[hrt[:, 0]].unsqueeze(1), rel[hrt[:, 1]].unsqueeze(1), ent[hrt[:, 2]].unsqueeze(1)
    if target is Target.HEAD:
        return model.interaction(candidates, r, t)
    return model.interaction(h, r, candidates)


def hand_plain_and_pos_neg(model, hrt, neg, target):
    ent = model.encoder.entity
    pos = ent[hrt[:, target.column]].unsqueeze(1)             # (B, 1, d)
    negs = ent[neg]                                            # (B, K, d)
    s_plain = hand_scores(model, hrt, torch.cat([pos, negs], 1), target)
    return s_plain, pos, negs


def soft_ce(scores, labels):
    """mean_b -sum_j y_bj log softmax(S_b)_j, written out."""
    logp = scores - torch.logsumexp(scores, dim=1, keepdim=True)
    return -(labels * logp).sum(1).mean()


def tables_grad(loss, model):
    return torch.autograd.grad(loss, [model.encoder.entity, model.encoder.relation])


# --------------------------------------------------------------------------- EMU (mutation)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "formed"])
@pytest.mark.parametrize("name", ["distmult", "transe", "complex", "rotate"])
@pytest.mark.parametrize("target", [Target.TAIL, Target.HEAD])
def test_emu_objective_equals_hand_definition(name, target, fused):
    """Both ways of scoring the mutated negatives (the fused kernels, and the mutated tensor
    formed) give EMU's loss and gradients as defined, with the counter formula's mask."""
    if fused and kernels() is None:
        pytest.skip("the fused kernels are not available here")
    model = make_model(name)
    hrt, neg = make_batch()
    q, c, p = 0.53, 0.11, 0.39
    mutation = EmbeddingMutation(keep_prob=p, seed=7)
    objective = Objective(model, EMULoss(q, c), mutation)

    with (contextlib.nullcontext() if fused else unfused()):
        loss = objective(model.encode(), hrt, neg, target)
        grads = tables_grad(loss, model)

    # the mask of the layer's first draw, from the counter formula
    width = model.interaction.entity_dim
    m = counter_mask(draw_key(7, 0), 0, (B, K, width), p, dtype=torch.float64)
    assert 0 < m.sum() < m.numel()                          # a real mix of both sources
    s_plain, pos, negs = hand_plain_and_pos_neg(model, hrt, neg, target)
    neg_emu = m * negs + (1 - m) * pos
    s_emu = hand_scores(model, hrt, torch.cat([pos, neg_emu], 1), target)
    y = torch.tensor([1.0] + [q] * K, dtype=torch.float64)
    expected = soft_ce(s_emu, y) / K + c * F.cross_entropy(s_plain, torch.zeros(B, dtype=torch.long))
    expected_grads = tables_grad(expected, model)

    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # one draw taken: the next call uses a fresh mask
    assert mutation.generators.state_dict() == {"draws": 1}


def test_emu_gradient_reaches_positive_through_mutated_negatives():
    """keep_prob 0 and plain_weight 0: the negatives enter only through EMU, which replaces them
    by the positive, so the gradient is that of S_emu = [s, s, ..., s] and none reaches them."""
    model = make_model("distmult")
    hrt, neg = make_batch()
    target = Target.TAIL
    objective = Objective(model, EMULoss(negative_label=0.5, plain_weight=0.0),
                          EmbeddingMutation(0.0, seed=3))
    g_ent, _ = tables_grad(objective(model.encode(), hrt, neg, target), model)
    # keep_prob 0: every mutated negative equals the positive, so S_emu = [s, s, ..., s] per row
    s_pos = hand_scores(model, hrt, model.encoder.entity[hrt[:, 2]].unsqueeze(1), target)
    s_emu = s_pos.expand(B, 1 + K)
    y = torch.tensor([1.0] + [0.5] * K, dtype=torch.float64)
    expected = soft_ce(s_emu, y) / K
    torch.testing.assert_close(g_ent, tables_grad(expected, model)[0], rtol=1e-10, atol=1e-12)
    # the sampled negatives' rows receive nothing (unless they coincide with a batch entity)
    used = set(hrt[:, 0].tolist()) | set(hrt[:, 2].tolist())
    only_neg = sorted(set(neg.flatten().tolist()) - used)
    assert only_neg, "batch should have negatives that are not batch entities"
    assert torch.count_nonzero(g_ent[only_neg]) == 0


def test_eval_mode_emu_scores_sampled_negatives():
    """In eval mode the layer is the identity, so S_emu = S_plain."""
    model = make_model("complex")
    hrt, neg = make_batch()
    mutation = EmbeddingMutation(0.39, seed=1)
    objective = Objective(model, EMULoss(0.53, 0.11), mutation).eval()
    loss = objective(model.encode(), hrt, neg, Target.TAIL)
    s_plain, _, _ = hand_plain_and_pos_neg(model, hrt, neg, Target.TAIL)
    y = torch.tensor([1.0] + [0.53] * K, dtype=torch.float64)
    expected = soft_ce(s_plain, y) / K + 0.11 * F.cross_entropy(s_plain, torch.zeros(B, dtype=torch.long))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- plain, mixup, regulariser
@pytest.mark.parametrize("target", [Target.TAIL, Target.HEAD])
def test_plain_objective_is_cross_entropy_of_plain_scores(target):
    model = make_model("rotate")
    hrt, neg = make_batch()
    loss = Objective(model, CrossEntropyLoss())(model.encode(), hrt, neg, target)
    s_plain, _, _ = hand_plain_and_pos_neg(model, hrt, neg, target)
    expected = (torch.logsumexp(s_plain, 1) - s_plain[:, 0]).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(tables_grad(loss, model), tables_grad(expected, model)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_emu_with_softplus_plain_term():
    """The plain term of EMU is whichever plain loss is given (here softplus, no temperature)."""
    model = make_model("transe")
    hrt, neg = make_batch()
    mutation = EmbeddingMutation(1.0)                       # keep everything: S_emu == S_plain
    loss = Objective(model, EMULoss(0.2, 0.5, SoftplusLoss()), mutation)(model.encode(), hrt, neg, Target.TAIL)
    s, _, _ = hand_plain_and_pos_neg(model, hrt, neg, Target.TAIL)
    y = torch.tensor([1.0] + [0.2] * K, dtype=torch.float64)
    softplus = 0.5 * (F.softplus(-s[:, 0]) + F.softplus(s[:, 1:]).mean(1)).mean()
    torch.testing.assert_close(loss, soft_ce(s, y) / K + 0.5 * softplus, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", [Target.TAIL, Target.HEAD])
def test_mixup_objective_uses_one_minus_lambda_labels(target):
    model = make_model("distmult")
    hrt, neg = make_batch()
    mix = EmbeddingMixup(alpha=2.0, beta=1.0, generator=torch.Generator().manual_seed(11))
    state = mix.generators.get(CPU).get_state().clone()
    loss = Objective(model, EMULoss(0.53, 0.11), mix)(model.encode(), hrt, neg, target)

    # λ ~ Beta(2, 1) = Ga(2) / (Ga(2) + Ga(1)), reproduced from the same generator state
    gen = torch.Generator().set_state(state)
    a = torch._standard_gamma(torch.full((B, K), 2.0), generator=gen)
    b = torch._standard_gamma(torch.full((B, K), 1.0), generator=gen)
    lam = (a / (a + b)).double()
    s_plain, pos, negs = hand_plain_and_pos_neg(model, hrt, neg, target)
    mixed = lam.unsqueeze(-1) * negs + (1 - lam.unsqueeze(-1)) * pos
    s_mix = hand_scores(model, hrt, torch.cat([pos, mixed], 1), target)
    y = torch.cat([torch.ones(B, 1, dtype=torch.float64), 1 - lam], 1)
    expected = soft_ce(s_mix, y) / K + 0.11 * F.cross_entropy(s_plain, torch.zeros(B, dtype=torch.long))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    # the labels really are per negative: the fixed label q would give another value
    y_fixed = torch.tensor([1.0] + [0.53] * K, dtype=torch.float64)
    wrong = soft_ce(s_mix, y_fixed) / K + 0.11 * F.cross_entropy(s_plain, torch.zeros(B, dtype=torch.long))
    assert abs(loss.item() - wrong.item()) > 1e-6


@pytest.mark.parametrize("emu", [False, True])
def test_regularizer_term_is_added(emu):
    model = make_model("complex")
    hrt, neg = make_batch()
    target = Target.HEAD
    weight, p = 0.01, 3.0

    def objective(reg):
        if emu:
            return Objective(model, EMULoss(0.53, 0.11),
                             EmbeddingMutation(0.39, seed=5), reg)
        return Objective(model, CrossEntropyLoss(), None, reg)

    base = objective(None)(model.encode(), hrt, neg, target)
    with_reg = objective(LpRegularizer(weight, p))(model.encode(), hrt, neg, target)
    ent, rel = model.encoder.entity, model.encoder.relation
    # regularised: the kept entity (tail, since the head is corrupted), the relation, the true head
    term = sum((x.abs() ** p).sum(1).mean() for x in (ent[hrt[:, 2]], rel[hrt[:, 1]], ent[hrt[:, 0]]))
    torch.testing.assert_close(with_reg - base, weight * term, rtol=1e-10, atol=1e-12)
    assert (weight * term).item() > 1e-6
    # weight 0 adds nothing at all
    zero = objective(LpRegularizer(0.0, p))(model.encode(), hrt, neg, target)
    assert zero.item() == base.item()


def test_objective_rejects_mismatched_loss_and_mutation():
    model = make_model()
    with pytest.raises(ValueError, match="EMULoss"):
        Objective(model, EMULoss(0.53, 0.11), None)
    with pytest.raises(ValueError, match="EMULoss"):
        Objective(model, CrossEntropyLoss(), EmbeddingMutation(0.39))
    with pytest.raises(ValueError, match="EMULoss"):
        Objective(model, CrossEntropyLoss(), EmbeddingMixup())


# --------------------------------------------------------------------------- sides
def test_alternating_target_without_head_probability():
    assert [alternating_target(s) for s in range(4)] == [Target.TAIL, Target.HEAD, Target.TAIL, Target.HEAD]
    hrt, _ = make_batch()
    sampler = UniformNegativeSampler(E, K, R, seed=0)
    for step, side in ((0, Target.TAIL), (1, Target.HEAD), (6, Target.TAIL), (9, Target.HEAD)):
        gen = torch.Generator().manual_seed(0)
        before = gen.get_state().clone()
        parts = list(split_by_side(hrt, step, sampler, gen))
        assert len(parts) == 1 and parts[0][0] is side and torch.equal(parts[0][1], hrt)
        assert torch.equal(gen.get_state(), before)        # no draw is taken


def _bernoulli_setup():
    gen = torch.Generator().manual_seed(4)
    n = 40
    # relation 0 is 1-to-N (one head, many tails), relation 1 is N-to-1: probabilities 0.9+ / 0.1-
    heads = torch.cat([torch.zeros(n // 2, dtype=torch.long), torch.randint(1, E, (n // 2,), generator=gen)])
    tails = torch.cat([torch.randint(1, E, (n // 2,), generator=gen), torch.zeros(n // 2, dtype=torch.long)])
    rels = torch.cat([torch.zeros(n // 2, dtype=torch.long), torch.ones(n // 2, dtype=torch.long)])
    train = torch.stack([heads, rels, tails], 1)
    return train, BernoulliNegativeSampler(train, E, 2, K, seed=2)


def test_split_by_side_with_bernoulli_draws_per_row():
    train, sampler = _bernoulli_setup()
    hrt = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:16]]
    prob = sampler.head_probability(hrt)
    assert ((prob > 0.5) == (hrt[:, 1] == 0)).all()
    gen = torch.Generator().manual_seed(9)
    state = gen.get_state().clone()
    parts = list(split_by_side(hrt, 0, sampler, gen))
    head = torch.rand(len(hrt), generator=torch.Generator().set_state(state)) < prob
    assert 0 < head.sum() < len(hrt)                       # both sides occur in this batch
    assert [t for t, _ in parts] == [Target.HEAD, Target.TAIL]
    assert torch.equal(parts[0][1], hrt[head]) and torch.equal(parts[1][1], hrt[~head])


def test_weighted_part_losses_equal_per_row_side_losses():
    train, sampler = _bernoulli_setup()
    hrt = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:16]]
    model = make_model("distmult")
    objective = Objective(model, CrossEntropyLoss())
    reps = model.encode()
    total, per_row = 0.0, []
    for target, rows in split_by_side(hrt, 0, sampler, torch.Generator().manual_seed(9)):
        neg = sampler(rows, target)
        total = total + objective(reps, rows, neg, target) * (len(rows) / len(hrt))
        per_row += [objective(reps, rows[i:i + 1], neg[i:i + 1], target) for i in range(len(rows))]
    assert len(per_row) == len(hrt)
    torch.testing.assert_close(total, torch.stack(per_row).mean(), rtol=1e-12, atol=1e-12)
