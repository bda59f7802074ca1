"""Linear learning-rate decay (``optimizer.decay_from``): the formula, what the optimiser is
given at each step, equality with the constant run before the decay, and bit-identical resume."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.pipeline.builders import build_schedule
from dgl_emu.training import Callback, OptimizerSchedule

from .test_trainer import Interrupt, assert_same_state, make_trainer, read_log


class LearningRates(Callback):
    """Every step's logged rate and the rate in each of the optimiser's parameter groups."""

    def __init__(self):
        self.logged, self.groups = [], []

    def on_step_end(self, trainer, record):
        self.logged.append(record["lr"])
        self.groups.append({g["lr"] for g in trainer.optimizer.param_groups})


def test_rate_is_constant_then_linear_to_zero():
    s = OptimizerSchedule("adam", 0.02, decay_start=6, decay_end=10)
    # by hand: 0.02 * (10 - t) / 4 from t = 6 on
    assert [s.lr_at(t) for t in (0, 5, 6)] == [0.02, 0.02, 0.02]
    assert [s.lr_at(t) for t in (7, 8, 9)] == pytest.approx([0.015, 0.01, 0.005], abs=1e-15)
    assert s.lr_at(10) == 0.0 and s.lr_at(12) == 0.0 and s.decays
    assert not OptimizerSchedule("adam", 0.02).decays


def test_decay_multiplies_the_switched_rate():
    s = OptimizerSchedule("adagrad", 0.1, switch_step=4, decay_start=2, decay_end=10)
    assert s.lr_at(3) == pytest.approx(0.1 * 7 / 8)        # Adagrad phase, decaying
    assert s.lr_at(4) == pytest.approx(0.1 * 0.1 * 6 / 8)  # Adam at lr/10, decaying


@pytest.mark.parametrize("start, end", [(None, 10), (5, None), (-1, 10), (10, 10), (11, 10)])
def test_bad_decay_is_refused(start, end):
    with pytest.raises(ValueError):
        OptimizerSchedule("adam", 0.01, decay_start=start, decay_end=end)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trainer_gives_the_optimiser_each_steps_rate(optimizer):
    schedule = OptimizerSchedule(optimizer, 0.05, decay_start=30, decay_end=40)
    rates = LearningRates()
    make_trainer(optimizer=schedule, eval_every=None, callbacks=[rates]).fit()
    expected = [0.05] * 30 + [0.05 * (40 - t) / 10 for t in range(30, 40)]
    assert rates.logged == pytest.approx(expected, abs=1e-15)
    assert [g.pop() for g in rates.groups] == pytest.approx(expected, abs=1e-15)


def test_equals_the_constant_run_until_the_decay_starts():
    constant = OptimizerSchedule("adam", 0.05)
    decayed = OptimizerSchedule("adam", 0.05, decay_start=25, decay_end=40)
    a = make_trainer(optimizer=constant, num_steps=25, eval_every=None).fit()
    b = make_trainer(optimizer=decayed, num_steps=40, eval_every=None)
    b.num_steps = 25
    b.fit()
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    b.num_steps = 40  # the last 15 steps take smaller steps than the constant run's
    a.num_steps = 40
    a.fit(), b.fit()
    assert not torch.equal(a.model.encoder.entity, b.model.encoder.entity)


@pytest.mark.parametrize("stop", [10, 30])  # killed before the decay starts, and inside it
def test_kill_and_resume_inside_the_decay_is_bit_identical(tmp_path, stop):
    schedule = OptimizerSchedule("adam", 0.05, decay_start=20, decay_end=40)
    a = make_trainer(optimizer=schedule, run_dir=tmp_path / "a").fit()
    with pytest.raises(KeyboardInterrupt):
        make_trainer(optimizer=schedule, run_dir=tmp_path / "b", callbacks=[Interrupt(stop + 1)]).fit()
    b = make_trainer(optimizer=schedule, run_dir=tmp_path / "b")
    assert b.resume() and b.step == stop
    b.fit()
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    assert read_log(tmp_path / "a" / "log.jsonl") == read_log(tmp_path / "b" / "log.jsonl")


def test_config_option_builds_the_schedule():
    cfg = RunConfig.from_dict({"optimizer": {"name": "adam", "lr": 0.01, "decay_from": 30},
                               "training": {"steps": 40}})
    s = build_schedule(cfg)
    assert (s.decay_start, s.decay_end, s.lr) == (30, 40, 0.01)
    assert build_schedule(RunConfig.from_dict({"training": {"steps": 40}})).decays is False
    for bad in (40, -1):
        with pytest.raises(ConfigError, match="optimizer.decay_from"):
            RunConfig.from_dict({"optimizer": {"decay_from": bad}, "training": {"steps": 40}})
