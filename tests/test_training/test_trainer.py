"""Trainer: determinism, learning, bit-identical kill-and-resume, divergence, checkpoints, callbacks."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dgl_emu.data import generate_cyclic_kg
from dgl_emu.losses import CrossEntropyLoss, EMULoss
from dgl_emu.models import KGEModel
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.interactions import DistMult
from dgl_emu.pipeline import evaluate
from dgl_emu.sampling import BernoulliNegativeSampler, UniformNegativeSampler
from dgl_emu.training import (Callback, EarlyStopping, JsonLinesLogger, NegativeSampling, Objective, OptimizerSchedule,
                              Trainer, TrainingDivergedError)

KG = generate_cyclic_kg(num_rings=4, ring_size=8)
E, R = KG.num_entities, KG.num_relations
TRAIN = KG.splits["train"]
ADAGRAD = OptimizerSchedule("adagrad", 0.1)


class Recorder(Callback):
    """Collects step records and validation metrics."""

    def __init__(self):
        self.records, self.metrics = [], []

    def on_step_end(self, trainer, record):
        self.records.append(dict(record))

    def on_validation_end(self, trainer, metric, improved):
        self.metrics.append((trainer.step, metric, improved))

    @property
    def losses(self):
        return [r["loss"] for r in self.records]


class Interrupt(Callback):
    """Raises ``KeyboardInterrupt`` at the end of step ``at`` (simulates a kill)."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer, record):
        if record["step"] == self.at:
            raise KeyboardInterrupt


def valid_mrr(model) -> float:
    return evaluate(model, KG, "valid").get("mrr")


def scripted(values):
    """A ``validate`` function returning ``values`` in turn; counts its calls."""
    it = iter(values)

    def validate(model):
        validate.calls += 1
        return next(it)

    validate.calls = 0
    return validate


def make_trainer(*, seed: int = 0, data_seed=None, sampler: str = "uniform", emu: bool = True,
                 num_steps: int = 40, eval_every=10, run_dir=None, callbacks=(), optimizer=ADAGRAD,
                 validate=valid_mrr, batch_size: int = 32, **options) -> Trainer:
    """A brand-new trainer: fresh model, sampler, EMU layer and objective, all seeded
    (``options``: more arguments of :class:`Trainer`)."""
    model = KGEModel.shallow(DistMult(dim=8), E, R, torch.Generator().manual_seed(seed))
    if sampler == "bernoulli":
        neg = BernoulliNegativeSampler(TRAIN, E, R, 8, seed=seed + 1)
    else:
        neg = UniformNegativeSampler(E, 8, R, seed=seed + 1)
    objective = (Objective(model, EMULoss(0.53, 0.11), EmbeddingMutation(0.39, seed=seed + 2)) if emu
                 else Objective(model, CrossEntropyLoss()))
    cbs = list(callbacks)
    if run_dir is not None:
        cbs.insert(0, JsonLinesLogger(Path(run_dir) / "log.jsonl"))
    return Trainer(objective, NegativeSampling(neg), TRAIN, num_steps=num_steps, batch_size=batch_size, optimizer=optimizer,
                   seed=seed if data_seed is None else data_seed, validate=validate,
                   eval_every=eval_every, run_dir=run_dir, callbacks=cbs, progress=False, **options)


def read_log(path: Path):
    """``(step lines without timings, validation lines)`` of a ``log.jsonl``."""
    steps, vals = [], []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            steps.append((rec["step"], rec["loss"], rec["lr"]))
        else:
            vals.append((rec["step"], rec["valid_mrr"]))
    return steps, vals


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("sampler", ["uniform", "bernoulli"])
def test_same_seed_same_trace_and_weights_other_seed_differs(sampler):
    runs = {}
    for key, seed in (("a", 0), ("b", 0), ("c", 1)):
        rec = Recorder()
        trainer = make_trainer(seed=seed, sampler=sampler, num_steps=30, callbacks=[rec]).fit()
        runs[key] = (rec.losses, trainer.model.state_dict(), [m for _, m, _ in rec.metrics])
    (la, wa, va), (lb, wb, vb), (lc, wc, _) = runs["a"], runs["b"], runs["c"]
    assert len(la) == 30 and all(math.isfinite(x) for x in la)
    assert la == lb and va == vb
    assert_same_state(wa, wb)
    assert la != lc
    assert not torch.equal(wa["encoder.entity"], wc["encoder.entity"])


def test_data_order_seed_alone_changes_the_trace():
    """Same initialisation, sampler and EMU seeds; only the trainer's data-order seed differs."""
    a = Recorder()
    b = Recorder()
    make_trainer(seed=0, num_steps=5, eval_every=None, callbacks=[a]).fit()
    make_trainer(seed=0, data_seed=99, num_steps=5, eval_every=None, callbacks=[b]).fit()
    assert a.losses[0] != b.losses[0]


def test_epoch_permutation_covers_every_training_triple():
    """Batches are drawn without replacement: one epoch visits each training triple once."""
    trainer = make_trainer(num_steps=1, eval_every=None, batch_size=50)
    seen = torch.cat([trainer.next_batch() for _ in range(math.ceil(len(TRAIN) / 50))])
    assert len(seen) == len(TRAIN)
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(seen) == key(TRAIN)


@pytest.mark.parametrize("emu", [True, False])
def test_loss_falls_on_generated_kg(emu):
    rec = Recorder()
    make_trainer(emu=emu, num_steps=60, eval_every=None, callbacks=[rec]).fit()
    first, last = sum(rec.losses[:10]) / 10, sum(rec.losses[-10:]) / 10
    assert last < 0.85 * first, (first, last)


# --------------------------------------------------------------------------- kill and resume
RESUME_CASES = {
    "emu-uniform": dict(sampler="uniform"),
    "emu-bernoulli": dict(sampler="bernoulli"),
    "plain-bernoulli": dict(sampler="bernoulli", emu=False),
    "switch-crossed": dict(optimizer=OptimizerSchedule("adagrad", 0.1, switch_step=20),
                           stop=10),
    "switch-landed": dict(optimizer=OptimizerSchedule("adagrad", 0.1, switch_step=20)),
    "switch-passed": dict(optimizer=OptimizerSchedule("adagrad", 0.1, switch_step=15)),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_kill_and_resume_equals_uninterrupted(tmp_path, case):
    kwargs = dict(RESUME_CASES[case])
    stop = kwargs.pop("stop", 20)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a = make_trainer(run_dir=a_dir, **kwargs).fit()

    with pytest.raises(KeyboardInterrupt):  # killed one step after the checkpoint at `stop`
        make_trainer(run_dir=b_dir, callbacks=[Interrupt(stop + 1)], **kwargs).fit()
    assert torch.load(b_dir / "last.pt", weights_only=False)["step"] == stop
    assert read_log(b_dir / "log.jsonl")[0][-1][0] == stop + 1  # the lost step was logged

    b = make_trainer(run_dir=b_dir, **kwargs)
    assert b.resume() and b.step == stop
    b.fit()
    assert b.step == a.step == 40
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    assert type(a.optimizer) is type(b.optimizer)
    log_a, log_b = read_log(a_dir / "log.jsonl"), read_log(b_dir / "log.jsonl")
    assert [s for s, _, _ in log_b[0]] == list(range(1, 41))  # no step twice, none missing
    assert log_a == log_b
    assert a.validations == b.validations and a.best_step == b.best_step
    best_a = torch.load(a_dir / "best.pt", weights_only=False)
    best_b = torch.load(b_dir / "best.pt", weights_only=False)
    assert best_a["step"] == best_b["step"] and best_a["valid_mrr"] == best_b["valid_mrr"]
    assert_same_state(best_a["model"], best_b["model"])


def test_resume_after_graceful_stop(tmp_path):
    """``trainer.stop`` ends the loop after the step's validation and checkpoint."""
    class StopAt(Callback):
        def on_step_end(self, trainer, record):
            if record["step"] == 20:
                trainer.stop("test")

    a = make_trainer(num_steps=30, run_dir=tmp_path / "a").fit()
    b1 = make_trainer(num_steps=30, run_dir=tmp_path / "b", callbacks=[StopAt()]).fit()
    assert b1.step == 20 and b1.stop_reason == "test"
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["step"] == 20
    b2 = make_trainer(num_steps=30, run_dir=tmp_path / "b")
    assert b2.resume()
    b2.fit()
    assert_same_state(a.model.state_dict(), b2.model.state_dict())
    assert read_log(tmp_path / "a" / "log.jsonl") == read_log(tmp_path / "b" / "log.jsonl")


def test_a_resumed_run_records_which_steps_ran_in_which_environment(tmp_path):
    """Killed at step 21 on two threads (checkpoint at 20), resumed on one: two records, each
    equal to :func:`~dgl_emu.utils.environment` of its part; a finished run adds none."""
    from dgl_emu.utils import environment

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = environment(torch.device("cpu"))
        with pytest.raises(KeyboardInterrupt):
            make_trainer(run_dir=tmp_path, callbacks=[Interrupt(21)]).fit()
        torch.set_num_threads(1)
        second = environment(torch.device("cpu"))
        b = make_trainer(run_dir=tmp_path)
        assert b.resume() and b.step == 20
        b.fit()
    finally:
        torch.set_num_threads(threads)
    assert first["threads"] == 2 and second["threads"] == 1
    assert b.environments == [{"from_step": 0, **first}, {"from_step": 20, **second}]
    c = make_trainer(run_dir=tmp_path)  # the finished run, resumed: nothing trains, nothing added
    assert c.resume() and c.fit().step == 40
    assert c.environments == b.environments


def test_resume_without_checkpoint_returns_false(tmp_path):
    assert make_trainer(run_dir=tmp_path).resume() is False
    assert make_trainer().resume() is False           # no run_dir at all
    assert make_trainer().resume(tmp_path / "missing.pt") is False


# --------------------------------------------------------------------------- divergence
def _snapshot(run_dir: Path):
    return {name: ((run_dir / name).read_bytes(), (run_dir / name).stat().st_mtime_ns)
            for name in ("last.pt", "best.pt")}


def test_inf_weights_raise_diverged_and_keep_checkpoints(tmp_path):
    class Poison(Callback):
        """After step 12 (last checkpoint at 10) put an infinity into the entity table."""

        def on_step_end(self, trainer, record):
            if record["step"] == 12:
                self.files = _snapshot(tmp_path)
                with torch.no_grad():
                    trainer.model.encoder.entity[:] = float("inf")
                self.weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    poison = Poison()
    trainer = make_trainer(run_dir=tmp_path, eval_every=5, callbacks=[poison])
    with pytest.raises(TrainingDivergedError, match=r"at step 13\b"):
        trainer.fit()
    assert trainer.step == 12
    assert _snapshot(tmp_path) == poison.files
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 10
    assert_same_state(trainer.model.state_dict(), poison.weights)  # the failing step changed nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "log.jsonl"]


def test_huge_learning_rate_diverges_with_step_in_message(tmp_path):
    files = {}

    class Snap(Callback):
        def on_checkpoint(self, trainer):
            files.update(_snapshot(tmp_path))

    sgd = OptimizerSchedule("sgd", 1e30)
    # the validation only has to exist (real ranks of NaN scores would raise in the evaluator)
    trainer = make_trainer(run_dir=tmp_path, emu=False, eval_every=1, optimizer=sgd, callbacks=[Snap()],
                           validate=lambda model: 0.0)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit()
    step = trainer.step + 1
    assert f"at step {step}" in str(info.value)
    assert step >= 2 and files and _snapshot(tmp_path) == files
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == step - 1


# --------------------------------------------------------------------------- best checkpoint, early stopping
def test_best_checkpoint_holds_the_max_validation_step(tmp_path):
    weights = {}

    class Keep(Callback):
        def on_validation_end(self, trainer, metric, improved):
            weights[trainer.step] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    validate = scripted([0.1, 0.5, 0.3])
    rec = Recorder()
    trainer = make_trainer(num_steps=30, run_dir=tmp_path, validate=validate, callbacks=[Keep(), rec]).fit()
    assert validate.calls == 3
    assert rec.metrics == [(10, 0.1, True), (20, 0.5, True), (30, 0.3, False)]
    assert trainer.best_step == 20 and trainer.best_metric == 0.5
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["step"] == 20 and best["valid_mrr"] == 0.5
    assert_same_state(best["model"], weights[20])
    assert not torch.equal(best["model"]["encoder.entity"], trainer.model.state_dict()["encoder.entity"])
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 30
    assert read_log(tmp_path / "log.jsonl")[1] == [(10, 0.1), (20, 0.5), (30, 0.3)]
    assert trainer.validations == [{"step": s, "valid_mrr": m} for s, m in ((10, 0.1), (20, 0.5), (30, 0.3))]


def test_last_step_is_validated_even_off_the_grid():
    validate = scripted([0.1, 0.2, 0.3])
    trainer = make_trainer(num_steps=25, eval_every=10, validate=validate).fit()
    assert [v["step"] for v in trainer.validations] == [10, 20, 25]


@pytest.mark.parametrize("values,patience,stop_step", [
    ([0.5, 0.4, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9], 2, 15),
    ([0.5, 0.4, 0.6, 0.55, 0.5, 0.9, 0.9, 0.9], 2, 25),   # an improvement resets the count
    ([0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4], 10, 40),  # never stops: runs to the end
])
def test_early_stopping(values, patience, stop_step):
    validate = scripted(values)
    trainer = make_trainer(eval_every=5, validate=validate, callbacks=[EarlyStopping(patience)]).fit()
    assert trainer.step == stop_step and validate.calls == stop_step // 5
    if stop_step < 40:
        assert trainer.stop_reason is not None and "early stopping" in trainer.stop_reason
        assert str(patience) in trainer.stop_reason
    else:
        assert trainer.stop_reason is None
    with pytest.raises(ValueError):
        EarlyStopping(0)


def test_early_stopped_run_stays_stopped_on_resume(tmp_path):
    """Resuming a run that early stopping ended must not train further."""
    values = [0.5, 0.4, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9]
    first = make_trainer(eval_every=5, run_dir=tmp_path, validate=scripted(values),
                         callbacks=[EarlyStopping(2)]).fit()
    assert first.step == 15
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    again = make_trainer(eval_every=5, run_dir=tmp_path, validate=scripted(values[3:]),
                         callbacks=[EarlyStopping(2)])
    assert again.resume()
    again.fit()
    assert again.step == 15 and again.stop_reason is not None
    assert_same_state(again.model.state_dict(), weights)
    assert [e["from_step"] for e in again.environments] == [0]  # the stopped resume trained nothing
    assert [s for s, _, _ in read_log(tmp_path / "log.jsonl")[0]] == list(range(1, 16))


# --------------------------------------------------------------------------- optimiser schedule
def test_schedule_phases_and_learning_rates():
    s = OptimizerSchedule("adagrad", 0.1, switch_step=20)
    assert [s.phase(i) for i in (0, 19, 20, 39)] == [0, 0, 1, 1]
    assert s.lr_at(19) == 0.1 and s.lr_at(20) == pytest.approx(0.01)
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(s.build(params, 19), torch.optim.Adagrad)
    adam = s.build(params, 20)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == pytest.approx(0.01)
    never = OptimizerSchedule("adam", 0.5)
    assert never.phase(10 ** 9) == 0 and isinstance(never.build(params, 10 ** 9), torch.optim.Adam)
    with pytest.raises(ValueError):
        OptimizerSchedule("sgd", 0.0)


def test_trainer_switches_to_adam_at_lr_over_ten():
    seen = []

    class Watch(Callback):
        def on_step_end(self, trainer, record):
            opt = trainer.optimizer
            p = trainer.model.encoder.entity
            steps = opt.state[p]["step"] if isinstance(opt, torch.optim.Adam) else None
            seen.append((record["step"], type(opt).__name__, opt.param_groups[0]["lr"], record["lr"],
                         None if steps is None else int(steps)))

    schedule = OptimizerSchedule("adagrad", 0.1, switch_step=20)
    make_trainer(num_steps=30, eval_every=None, optimizer=schedule, callbacks=[Watch()]).fit()
    for step, name, lr, logged, adam_steps in seen:
        if step <= 20:
            assert (name, lr, logged, adam_steps) == ("Adagrad", 0.1, 0.1, None)
        else:
            assert name == "Adam" and lr == pytest.approx(0.01) and logged == pytest.approx(0.01)
            assert adam_steps == step - 20          # a fresh Adam, started at the switch


def test_resume_after_kill_mid_log_line(tmp_path):
    """A hard kill can leave a half-written line after the last checkpoint; resuming drops it."""
    a = make_trainer(num_steps=20, run_dir=tmp_path / "a").fit()
    with pytest.raises(KeyboardInterrupt):
        make_trainer(num_steps=20, run_dir=tmp_path / "b", callbacks=[Interrupt(12)]).fit()
    with open(tmp_path / "b" / "log.jsonl", "a") as f:
        f.write('{"step": 13, "loss": 1.2')                # no closing brace, no newline
    b = make_trainer(num_steps=20, run_dir=tmp_path / "b")
    assert b.resume() and b.step == 10
    b.fit()
    assert read_log(tmp_path / "a" / "log.jsonl") == read_log(tmp_path / "b" / "log.jsonl")
    assert_same_state(a.model.state_dict(), b.model.state_dict())


def test_each_log_line_is_on_disk_as_its_step_ends(tmp_path):
    """No validation and no checkpoint in 12 steps: after each step the file (read by another
    handle) already holds every step so far."""
    class Reader(Callback):
        seen = []

        def on_step_end(self, trainer, record):
            self.seen.append([s for s, _, _ in read_log(tmp_path / "log.jsonl")[0]])

    make_trainer(num_steps=12, eval_every=None, validate=None, run_dir=tmp_path, callbacks=[Reader()]).fit()
    assert Reader.seen == [list(range(1, n + 1)) for n in range(1, 13)]
    assert not (tmp_path / "last.pt").exists()


def test_resume_on_the_switch_step_gives_a_usable_optimizer(tmp_path):
    """A checkpoint written at ``switch_step`` holds Adagrad's state; the resumed trainer is in
    the Adam phase and must hold a working Adam, not Adam with Adagrad's hyper-parameters."""
    schedule = OptimizerSchedule("adagrad", 0.1, switch_step=20)
    make_trainer(num_steps=20, run_dir=tmp_path, optimizer=schedule).fit()
    b = make_trainer(num_steps=40, run_dir=tmp_path, optimizer=schedule)
    assert b.resume() and b.step == 20
    assert isinstance(b.optimizer, torch.optim.Adam)
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    assert "betas" in b.optimizer.param_groups[0]
    assert math.isfinite(b.training_step(b.next_batch()))  # a step outside fit() works too


def test_gradient_clipping_bounds_the_step():
    """SGD at lr 1 moves the parameters by exactly the clipped gradient: total norm <= the bound."""
    before = None
    for bound in (None, 1e-3):
        trainer = make_trainer(emu=False, num_steps=1, eval_every=None, validate=None,
                               optimizer=OptimizerSchedule("sgd", 1.0))
        trainer.max_grad_norm = bound
        start = [p.detach().clone() for p in trainer.model.parameters()]
        trainer.train_step()
        moved = torch.sqrt(sum(((p.detach() - s) ** 2).sum() for p, s in zip(trainer.model.parameters(), start)))
        if bound is None:
            before = float(moved)
        else:
            assert float(moved) == pytest.approx(bound, rel=1e-4) and before > 10 * bound


def test_the_finiteness_check_reads_the_table_in_chunks_and_misses_no_entry():
    """The validation's NaN/inf check, chunk by chunk, agrees with ``torch.isfinite`` on the whole
    tensor wherever the bad entry sits (first, inside, last chunk; a chunk that divides unevenly)."""
    from dgl_emu.training.trainer import _all_finite
    t = torch.randn(7, 5)
    assert _all_finite(t, chunk=4)
    for flat, bad in [(0, float("nan")), (17, float("inf")), (34, -float("inf"))]:
        u = t.clone()
        u.view(-1)[flat] = bad
        assert not _all_finite(u, chunk=4) and not bool(torch.isfinite(u).all())
