"""The comparison controls against formulas written by hand: the paper's whole-table L3
regulariser, the label-smoothing-only EMU control, and the reference's two independent uniform
draws per step (``emu.separate_negatives``)."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.losses import EMULoss, TableLpRegularizer
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation, SoftLabelsOnly
from dgl_emu.sampling import UniformNegativeSampler
from dgl_emu.training import FullGraphBatches, NegativeSampling, Objective, OptimizerSchedule, Part, Trainer
from dgl_emu.training.step import StepLoss
from dgl_emu.typing import Target

from .test_objective import B, E, K, R, hand_plain_and_pos_neg, hand_scores, make_batch, make_model, soft_ce


def test_table_regularizer_is_the_published_formula():
    """r * (||E||_3^3 + ||R||_3^3), the 3-norm over every entry of both tables."""
    ent = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    rel = torch.tensor([[-0.5, 2.0, 1.0]])
    want = 1e-5 * ((1 + 8 + 0.125 + 0 + 27 + 1) + (0.125 + 8 + 1))
    assert TableLpRegularizer(weight=1e-5, p=3)(ent, rel).item() == pytest.approx(want, rel=1e-6)


def test_table_regularizer_is_added_once_per_step():
    """A step's loss with the table penalty minus the one without is the penalty of the model's
    whole tables, once, though a Bernoulli-free batch of two parts is scored."""
    model = make_model()
    hrt, neg = make_batch()
    parts = [Part(Target.TAIL, hrt[:3], neg[:3]), Part(Target.HEAD, hrt[3:], neg[3:])]
    reg = TableLpRegularizer(weight=0.01, p=3)
    losses = []
    for r in (None, reg):
        objective = Objective(model, EMULoss().plain_loss, None, r)
        step = StepLoss(objective, FullGraphBatches(), NegativeSampling(UniformNegativeSampler(E, K)))
        losses.append(step(parts, torch.Generator(), B))
    ent, rel = model.encoder.entity, model.encoder.relation
    want = 0.01 * (ent.abs().pow(3).sum() + rel.abs().pow(3).sum())
    assert (losses[1] - losses[0]).item() == pytest.approx(want.item(), rel=1e-9)


def test_label_smoothing_only_is_the_emu_loss_on_unmutated_negatives():
    model = make_model()
    hrt, neg = make_batch()
    loss = EMULoss(negative_label=0.53, plain_weight=0.11)
    objective = Objective(model, loss, SoftLabelsOnly())
    reps = model.encode()
    for target in Target:
        got = objective(reps, hrt, neg, target)
        s_plain, _, _ = hand_plain_and_pos_neg(model, hrt, neg, target)
        y = torch.full((1 + K,), 0.53, dtype=s_plain.dtype)
        y[0] = 1.0
        plain_ce = (torch.logsumexp(s_plain, 1) - s_plain[:, 0]).mean()
        assert got.item() == pytest.approx((soft_ce(s_plain, y) / K + 0.11 * plain_ce).item(), rel=1e-10)


def test_separate_negatives_give_each_pass_its_own():
    """With 2K negatives, the plain pass scores the first K and EMU mutates the last K (keep
    probability 1: the mutation keeps every coordinate, so its scores are those of the last K)."""
    model = make_model()
    hrt, neg = make_batch()
    neg2 = torch.roll(neg, 1, 0)
    objective = Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(keep_prob=1.0), separate_negatives=True)
    target = Target.TAIL
    got = objective(model.encode(), hrt, torch.cat([neg, neg2], 1), target)
    s_plain, pos, _ = hand_plain_and_pos_neg(model, hrt, neg, target)
    s_emu = hand_scores(model, hrt, torch.cat([pos, model.encoder.entity[neg2]], 1), target)
    y = torch.full((1 + K,), 0.53, dtype=s_plain.dtype)
    y[0] = 1.0
    plain_ce = (torch.logsumexp(s_plain, 1) - s_plain[:, 0]).mean()
    assert got.item() == pytest.approx((soft_ce(s_emu, y) / K + 0.11 * plain_ce).item(), rel=1e-10)
    with pytest.raises(ValueError, match="needs a mutation"):
        Objective(model, EMULoss().plain_loss, None, separate_negatives=True)


def test_trainer_draws_twice_per_step_with_separate_negatives():
    """The trainer hands the objective two consecutive, independent draws of the sampler."""
    train = torch.stack([torch.arange(E) % E, torch.arange(E) % R, (torch.arange(E) + 1) % E], 1)
    seen = []

    class Spy(Objective):
        def loss_of(self, g, target):
            seen.append(g.neg.shape)
            return super().loss_of(g, target)

    model = KGEModel.shallow(make_model().interaction, E, R, torch.Generator().manual_seed(0))
    objective = Spy(model, EMULoss(), EmbeddingMutation(), separate_negatives=True)
    sampler = UniformNegativeSampler(E, K, seed=3)
    trainer = Trainer(objective, NegativeSampling(sampler), train, num_steps=1, batch_size=8,
                      optimizer=OptimizerSchedule("adagrad", 0.1), progress=False)
    trainer.training_step(trainer.next_batch())
    assert seen[0][1] == 2 * K
    reference = UniformNegativeSampler(E, K, seed=3)
    reference(train[:8], Target.TAIL)
    reference(train[:8], Target.TAIL)   # two draws of the reference: the streams now agree
    assert torch.equal(sampler(train[:8], Target.TAIL), reference(train[:8], Target.TAIL))
