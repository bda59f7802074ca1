"""Training regimes (1vsAll, KvsAll) and reciprocal relations: each loss against the formula written
by hand on a tiny model, KvsAll's targets against the filter index, reciprocal head scores against
the inverse relation's tail scores, and every regime trained to a high MRR on the generated KG."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.data import FilterIndex, generate_cyclic_kg, with_reciprocal_relations
from dgl_emu.models import KGEModel
from dgl_emu.nn.interactions import INTERACTIONS, DistMult
from dgl_emu.pipeline import run
from dgl_emu.training import REGIMES, KvsAll, OneVsAll
from dgl_emu.typing import Target

E, R = 7, 3
TRAIN = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 1, 2], [3, 2, 4], [5, 0, 1], [6, 2, 4], [2, 1, 0]])


def _model(seed: int = 0, num_relations: int = R, offset=None) -> KGEModel:
    return KGEModel.shallow(DistMult(dim=4), E, num_relations, torch.Generator().manual_seed(seed), offset)


def _all_scores(model, rows, target):
    """DistMult's ``(B, E)`` scores written out: ``<anchor * relation, candidate>``."""
    reps = model.encode()
    anchor = reps.entity[rows[:, target.other.column]]
    return (anchor * reps.relation[rows[:, 1]]) @ reps.entity.T


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("target", list(Target))
def test_one_vs_all_is_cross_entropy(target, eps):
    """1vsAll over entity slices of 2 (so every slice path runs) = torch's cross-entropy with
    label smoothing over the full score matrix; the gradients too."""
    a, b = _model(), _model()
    got = OneVsAll(label_smoothing=eps, entity_batch_size=2).loss(a, a.encode(), TRAIN, target)
    want = F.cross_entropy(_all_scores(b, TRAIN, target), TRAIN[:, target.column], label_smoothing=eps)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    got.backward()
    want.backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-6)


def test_kvsall_targets_are_the_filter_index():
    regime = KvsAll()
    examples = regime.examples(TRAIN)
    tails = {(h, r) for h, r, _ in TRAIN.tolist()}
    heads = {(r, t) for _, r, t in TRAIN.tolist()}
    assert len(examples) == len(tails) + len(heads)
    for target, rows, *_ in regime.parts(examples, 0, None, None):
        y = KvsAll.targets(regime.known, rows, target, E)
        for row, hot in zip(rows.tolist(), y):
            want = torch.zeros(E)
            for h, r, t in TRAIN.tolist():
                if target is Target.TAIL and (h, r) == (row[0], row[1]):
                    want[t] = 1
                if target is Target.HEAD and (r, t) == (row[1], row[2]):
                    want[h] = 1
            assert torch.equal(hot, want), (target, row)
    assert (KvsAll(reciprocal=True).examples(TRAIN)[:, 2] == -1).all()  # tail queries only


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_kvsall_is_binary_cross_entropy(eps):
    """KvsAll = the mean over queries and entities of BCE-with-logits against the smoothed
    multi-hot answers."""
    regime = KvsAll(label_smoothing=eps, entity_batch_size=3)
    examples = regime.examples(TRAIN)
    a, b = _model(1), _model(1)
    for target, rows, *_ in regime.parts(examples, 0, None, None):
        got = regime.loss(a, a.encode(), rows, target)
        y = KvsAll.targets(regime.known, rows, target, E) * (1 - eps) + eps / E
        want = F.binary_cross_entropy_with_logits(_all_scores(b, rows, target), y)
        assert got.item() == pytest.approx(want.item(), rel=1e-6)


@pytest.mark.parametrize("name", INTERACTIONS.names())
def test_reciprocal_head_scores_are_inverse_tail_scores(name):
    """A head query (?, r, t) of a reciprocal model is scored as the tail query (t, r + R, ?),
    by every interaction, for all entities and for given candidates."""
    interaction = INTERACTIONS.make(name, {"dim": 8}, {"seed": 0})
    model = KGEModel.shallow(interaction, E, 2 * R, torch.Generator().manual_seed(0), reciprocal_offset=R)
    model.eval()
    reps = model.encode()
    inverse = torch.stack([TRAIN[:, 2], TRAIN[:, 1] + R, TRAIN[:, 0]], 1)
    head = model.score_all(reps, TRAIN, Target.HEAD)
    torch.testing.assert_close(head, model.score_all(reps, inverse, Target.TAIL))
    ids = torch.randint(0, E, (len(TRAIN), 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.score_ids(reps, TRAIN, Target.HEAD, ids),
                               head.gather(1, ids))
    plain = KGEModel(model.encoder, model.interaction)  # same weights, no reciprocal relations
    assert not torch.allclose(plain.score_all(reps, TRAIN, Target.HEAD), head)
    torch.testing.assert_close(plain.score_all(reps, TRAIN, Target.TAIL), model.score_all(reps, TRAIN, Target.TAIL))


def test_with_reciprocal_relations():
    kg = generate_cyclic_kg(num_rings=2, ring_size=5)
    rec = with_reciprocal_relations(kg)
    n = len(kg.splits["train"])
    assert rec.num_relations == 2 * kg.num_relations and rec.num_entities == kg.num_entities
    assert torch.equal(rec.splits["train"][:n], kg.splits["train"])
    assert torch.equal(rec.splits["train"][n:, [2, 1, 0]] - torch.tensor([0, kg.num_relations, 0]),
                       kg.splits["train"])
    assert torch.equal(rec.splits["test"], kg.splits["test"])
    with pytest.raises(ValueError, match="reciprocal already"):
        with_reciprocal_relations(rec)


def test_filter_index_of_examples_ignores_the_missing_column():
    """KvsAll examples carry -1 in the target column; only the other columns are looked up."""
    idx = FilterIndex(TRAIN, E, R)
    rows, cols = idx.known(torch.tensor([[0, 0, -1]]), Target.TAIL)
    assert cols.tolist() == [1, 2] and rows.tolist() == [0, 0]


BASE = dict(dataset="synthetic", model="distmult", dim=32, batch_size=128, eval_every=400,
            progress=False, emu=False)


@pytest.mark.parametrize("regime,reciprocal,steps,optimizer", [
    ("1vsall", False, 300, ("adagrad", 0.1)), ("1vsall", True, 300, ("adagrad", 0.1)),
    ("kvsall", False, 1500, ("adam", 0.01)), ("kvsall", True, 1500, ("adam", 0.01)),
    ("negative_sampling", True, 400, ("adagrad", 0.1))])
def test_each_regime_trains_the_generated_kg(tmp_path, regime, reciprocal, steps, optimizer):
    """Random ranking on the generated KG (384 entities) gives MRR ~0.02; each regime reaches > 0.3
    (KvsAll's binary cross-entropy learns more slowly: valid MRR 0.02 at step 300, 0.42 at 1800)."""
    cfg = RunConfig.from_dict(dict(BASE, regime=regime, reciprocal=reciprocal, steps=steps, optimizer=optimizer[0],
                                   lr=optimizer[1], output=str(tmp_path / "run")))
    metrics = run(cfg).metrics
    assert metrics["test"]["both"]["realistic"]["mrr"] > 0.3, metrics["test"]["both"]["realistic"]
    assert metrics["dataset"]["relations"] == 6 * (2 if reciprocal else 1)


def test_all_entity_regime_resumes_bit_identically(tmp_path):
    """A 1vsAll run stopped after its checkpoint and resumed ends with the uninterrupted run's weights."""
    whole = run(RunConfig.from_dict(dict(BASE, regime="1vsall", steps=40, eval_every=20,
                                         output=str(tmp_path / "whole")))).metrics
    part = RunConfig.from_dict(dict(BASE, regime="1vsall", steps=20, eval_every=20, output=str(tmp_path / "part")))
    run(part)
    (tmp_path / "part" / "metrics.json").unlink()
    cfg = part.updated(**{"training.steps": 40})
    (tmp_path / "part" / "config.yaml").write_text(cfg.to_yaml())  # same run, longer
    resumed = run(cfg).metrics
    assert resumed["test"] == whole["test"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("options,where", [
    (dict(regime="1vsall"), "emu.name"),
    (dict(regime="kvsall", emu=False, num_negatives=8), "sampler.num_negatives"),
    (dict(regime="1vsall", emu=False, sampler="sans"), "sampler"),
    (dict(regime="1vsall", emu=False, loss="softplus"), "loss"),
    (dict(reciprocal=True, encoder="rgcn"), "regime.reciprocal"),
    (dict(reciprocal=True, sampler="bernoulli"), "sampler.name"),
    (dict(regime="1vsall", emu=False, label_smoothing=1.0), "regime"),
    (dict(label_smoothing=0.1), "regime.label_smoothing"),
])
def test_unsupported_combinations_are_refused(options, where):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(dict(dataset="synthetic", **options)).validate()
    assert err.value.path.startswith(where), (err.value.path, str(err.value))


def test_registry_names():
    assert REGIMES.names() == ["negative_sampling", "1vsall", "kvsall"]


@pytest.mark.parametrize("regime_cls", [OneVsAll, KvsAll])
def test_checkpointed_slices_replay_the_interactions_dropout(regime_cls):
    """The all-entity regimes score a part in entity slices, the true entities apart, and recompute
    each slice in the backward pass (activation checkpointing): an interaction's seeded dropout
    (TuckER's here) draws the same masks in every one of those calls, so the loss and its
    gradients are those of one draw over all entities, and the stream goes on as after one draw."""
    from dgl_emu.rng import load_rng_states, rng_states
    interaction = INTERACTIONS.make("tucker", {"dim": 4, "input_dropout": 0.3, "hidden_dropout1": 0.4,
                                               "hidden_dropout2": 0.5, "batch_norm": False}, {"seed": 0})
    model = KGEModel.shallow(interaction, E, R, torch.Generator().manual_seed(0)).double()
    regime = regime_cls(entity_batch_size=3)          # three slices: three recomputations
    rows = regime.examples(TRAIN)[:5] if regime_cls is KvsAll else TRAIN[:5]
    start = rng_states(model)
    loss = regime.loss(model, model.encode(), rows, Target.TAIL)
    after_forward = rng_states(model)
    got = torch.autograd.grad(loss, list(model.parameters()))
    assert str(rng_states(model)) == str(after_forward)   # the recomputations left the stream where it was
    load_rng_states(model, start)                     # one draw, all entities at once, no checkpointing
    scores = model.score_all(model.encode(), rows, Target.TAIL)
    if regime_cls is OneVsAll:
        want = F.cross_entropy(scores, rows[:, 2])
    else:
        want = F.binary_cross_entropy_with_logits(scores, KvsAll.targets(regime.known, rows, Target.TAIL, E).double())
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    for a, b in zip(got, torch.autograd.grad(want, list(model.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
