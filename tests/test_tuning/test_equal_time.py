"""EMU and its baseline tuned with the same wall time (``dgl-emu tune --compare-emu --equal-time``)."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from dgl_emu.config import RunConfig
from dgl_emu.tuning.budget import ArmUse, EqualTime, EqualTrials
from dgl_emu.tuning.compare import ARMS, compare_emu
from dgl_emu.tuning.study import DATABASE, STUDY_NAME
from test_cli.clihelp import invoke

FAST = ["--model", "distmult", "--dim", "16", "--negatives", "16", "--batch-size", "128", "--no-progress"]


def _cfg(**kw) -> RunConfig:
    return RunConfig.from_dict({"model": "distmult", "dim": 16, "num_negatives": 16, "batch_size": 128,
                                "steps": 40, "eval_every": 20, "progress": False, **kw})


def _trials(out, arm):
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / arm / DATABASE}")
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_the_budgets_say_which_arm_is_open_and_which_goes_next():
    time_budget = EqualTime(10.0, max_trials=3)
    assert time_budget.open(ArmUse(2, 9.9)) and not time_budget.open(ArmUse(1, 10.0))
    assert not time_budget.open(ArmUse(3, 1.0))                   # the trial cap
    assert time_budget.used(ArmUse(5, 4.5)) == 4.5
    assert EqualTrials(4).used(ArmUse(2, 99.0)) == 2
    with pytest.raises(ValueError, match="seconds must be positive"):
        EqualTime(0.0)


def test_equal_time_gives_each_arm_its_seconds_and_alternates(tmp_path):
    """Each arm ran trials until its trials' wall time reached the budget (its last trial started
    below it), the next trial always went to the arm that had used less, and the report states
    trials, steps and seconds per arm."""
    seconds = 3.0
    out = tmp_path / "cmp"
    comparison = compare_emu(_cfg(lr=0.3), out, budget=EqualTime(seconds))
    report = comparison.report
    assert report["equal_budgets"] and report["budget_given"] == {"kind": "equal-time", "seconds": 3.0,
                                                                    "max_trials": None}
    used = {}
    starts = []
    for arm in ARMS:
        trials = _trials(out, arm)
        spent = [t.user_attrs["seconds"] for t in trials]
        assert sum(spent) >= seconds and sum(spent[:-1]) < seconds, (arm, spent)
        assert report["arms"][arm]["seconds_trained"] == pytest.approx(sum(spent), abs=0.05)
        assert report["arms"][arm]["trials_finished"] == len(trials)
        assert report["arms"][arm]["steps_trained"] == sum(t.user_attrs["steps"] for t in trials)
        used[arm] = 0.0
        starts += [(t.datetime_start, arm, s) for t, s in zip(trials, spent)]
    for _, arm, spent in sorted(starts):   # in the order the trials started
        other = next(a for a in ARMS if a != arm)
        assert used[arm] <= used[other] or used[other] >= seconds, (arm, used)
        used[arm] += spent
    text = (out / "report.md").read_text()
    assert text.startswith("# EMU against the plain baseline, tuned with equal time")
    emu, base = report["arms"]["emu"], report["arms"]["baseline"]
    assert (f"The budgets are equal: both arms had 3 s of trial wall time per arm on the same machine, the next "
            f"trial always going to the arm that had used less (so they alternated): EMU ran "
            f"{emu['trials_finished']} trials in {emu['seconds_trained']:.0f} s, the baseline "
            f"{base['trials_finished']} in {base['seconds_trained']:.0f} s") in text
    assert f"Equal time is not equal trials: EMU ran {emu['trials_finished']} trials" in text


def test_the_cli_takes_equal_time_with_compare_emu_only(tmp_path):
    result = invoke("tune", *FAST, "--steps", "20", "--eval-every", "20", "--equal-time", "5",
                    "--output", tmp_path / "t")
    assert result.exit_code == 2
    assert "Error: --equal-time gives EMU and its baseline the same time: it goes with --compare-emu" in result.output
    result = invoke("tune", *FAST, "--steps", "20", "--eval-every", "20", "--compare-emu", "--equal-time", "2",
                    "--trials", "2", "--lr", "0.3", "--output", tmp_path / "c")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["budget_given"] == {"kind": "equal-time", "seconds": 2.0, "max_trials": 2}
    assert all(a["trials_finished"] <= 2 for a in report["arms"].values())
