"""Checkpoints by wall time: when they are written (on a clock the test moves, no sleeping), and
that they change no number: a run killed after one resumes to the uninterrupted run, bit for bit."""
from __future__ import annotations

import pytest
import torch

from dgl_emu.training import Callback, Replicas

from .test_trainer import Interrupt, assert_same_state, make_trainer, read_log


class Clock:
    """A clock that moves ``seconds`` at the end of every step (a callback), and only then."""

    def __init__(self, seconds: float):
        self.now, self.seconds = 1000.0, seconds

    def __call__(self) -> float:
        return self.now


class Tick(Callback):
    def __init__(self, clock: Clock):
        self.clock = clock

    def on_step_end(self, trainer, record):
        self.clock.now += self.clock.seconds


class Checkpoints(Callback):
    """The steps at which ``last.pt`` was written."""

    def __init__(self):
        self.steps = []

    def on_checkpoint(self, trainer):
        self.steps.append(trainer.step)


def _trainer(run_dir, every, *, extra=(), seconds_per_step=10.0, **kwargs):
    clock = Clock(seconds_per_step)
    return make_trainer(run_dir=run_dir, callbacks=[Tick(clock), *extra], checkpoint_every_seconds=every,
                        clock=clock, **kwargs)


def test_checkpoints_follow_the_clock_and_the_validations(tmp_path):
    """10 s a step, 25 s between checkpoints, a validation every 10 steps: a checkpoint 3 steps
    after each checkpoint (30 s >= 25 s), and at each validation, which restarts the count."""
    seen = Checkpoints()
    _trainer(tmp_path, 25.0, extra=[seen]).fit()
    expected = [3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29, 30, 33, 36, 39, 40]
    assert seen.steps == expected
    seen = Checkpoints()
    _trainer(tmp_path / "none", None, extra=[seen]).fit()   # validations only
    assert seen.steps == [10, 20, 30, 40]
    seen = Checkpoints()
    _trainer(tmp_path / "exact", 20.0, extra=[seen], eval_every=None, validate=None).fit()
    assert seen.steps == list(range(2, 41, 2))              # 20 s after 2 steps: the bound is inclusive


def test_a_run_killed_after_a_wall_time_checkpoint_resumes_to_the_uninterrupted_run(tmp_path):
    """Killed at step 15: the last checkpoint is the wall-time one of step 13 (not a validation
    step); the resumed run ends with the weights, log, validations and best checkpoint of a run
    that was never interrupted, and of one that wrote no wall-time checkpoint."""
    plain = make_trainer(run_dir=tmp_path / "plain").fit()
    whole = _trainer(tmp_path / "whole", 25.0).fit()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "split", 25.0, extra=[Interrupt(15)]).fit()
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["step"] == 13
    resumed = _trainer(tmp_path / "split", 25.0)
    assert resumed.resume() and resumed.step == 13
    resumed.fit()
    for other in (plain, whole):
        assert_same_state(other.model.state_dict(), resumed.model.state_dict())
        assert other.validations == resumed.validations and other.best_step == resumed.best_step
    logs = [read_log(tmp_path / name / "log.jsonl") for name in ("plain", "whole", "split")]
    assert logs[0] == logs[1] == logs[2] and [s for s, _, _ in logs[2][0]] == list(range(1, 41))
    best = [torch.load(tmp_path / name / "best.pt", weights_only=True) for name in ("plain", "split")]
    assert best[0]["step"] == best[1]["step"]
    assert_same_state(best[0]["model"], best[1]["model"])


def test_every_process_checkpoints_when_one_finds_it_due():
    assert Replicas().agree([False, True]) == [False, True] and Replicas().agree([]) == []


@pytest.mark.parametrize("every", [0.0, -5.0])
def test_a_non_positive_interval_is_refused(every):
    with pytest.raises(ValueError, match="checkpoint_every_seconds must be positive"):
        make_trainer(checkpoint_every_seconds=every)
