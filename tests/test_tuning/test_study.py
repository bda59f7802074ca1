"""Studies: trials, pruning, best.yaml, resuming a killed ``dgl-emu tune``, equal-budget comparisons."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.tuning import FloatRange
from dgl_emu.tuning.compare import compare_emu
from dgl_emu.locking import DirectoryLock
from dgl_emu.tuning.pruning import MedianRule
from dgl_emu.tuning.study import DATABASE, STUDY_NAME, PruningCallback, StudyLocked, Tuner, tune
from test_cli.clihelp import invoke

ROOT = Path(__file__).resolve().parents[2]

#: DistMult on the generated KG learns within tens of steps (valid MRR 0.02 -> 0.3 at lr 0.3)
FAST = ["--model", "distmult", "--dim", "16", "--negatives", "16", "--batch-size", "128", "--no-progress"]
#: the killed study's trials: long enough (about a second each) to be killed in the middle of one
KILLED = [*FAST, "--steps", "200", "--eval-every", "20", "--trials", "4"]


def _cfg(**kw) -> RunConfig:
    return RunConfig.from_dict({"model": "distmult", "dim": 16, "num_negatives": 16, "batch_size": 128,
                                "steps": 60, "eval_every": 20, "progress": False, **kw})


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / DATABASE}")


def _finished(out: Path):
    """``(params, value, state)`` of the finished trials, in order."""
    return [(t.params, t.value, t.state) for t in _study(out).trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


# --------------------------------------------------------------------------- a study and best.yaml
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``dgl-emu tune`` with :data:`KILLED`'s options, uninterrupted."""
    out = tmp_path_factory.mktemp("tune") / "study"
    result = invoke("tune", *KILLED, "--output", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_a_study_runs_its_trials_and_writes_its_outputs(reference):
    out, result = reference
    rows = json.loads((out / "trials.json").read_text())
    assert rows["finished_trials"] == 4 and len(rows["trials"]) == 4
    assert {r["state"] for r in rows["trials"]} == {"COMPLETE"}  # pruning starts after 5 complete trials
    assert set(rows["search_space"]) == {"emu.keep_prob", "emu.negative_label", "emu.plain_weight",
                                         "regularizer.weight", "optimizer.lr"}
    for r in rows["trials"]:
        metrics = json.loads((out / r["run_dir"] / "metrics.json").read_text())
        assert r["steps"] == metrics["steps"] == 200 and r["best_valid_mrr"] == metrics["best_valid_mrr"]
        assert metrics["config"]["optimizer"]["lr"] == r["params"]["optimizer.lr"]
    best = max(rows["trials"], key=lambda r: r["best_valid_mrr"])
    assert rows["best_trial"] == best["number"]
    assert f"best trial {best['number']}: validation MRR" in result.output
    table = (out / "trials.md").read_text()
    assert "| trial | state | valid MRR | steps | seconds | emu.keep_prob |" in table
    assert (out / "importance.png").stat().st_size > 1000 and rows["importance"]
    assert not (out / "tune.lock").exists()


def test_best_yaml_reproduces_the_best_trial(reference, tmp_path):
    out, _ = reference
    rows = json.loads((out / "trials.json").read_text())
    best = next(r for r in rows["trials"] if r["number"] == rows["best_trial"])
    saved = yaml.safe_load((out / "best.yaml").read_text())
    assert saved["output"] is None and saved["optimizer"]["lr"] == best["params"]["optimizer.lr"]
    result = invoke("run", "--config", out / "best.yaml", "--no-progress", "--output", tmp_path / "again")
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["best_valid_mrr"] == best["best_valid_mrr"]  # exactly: same configuration, same seed


def test_a_finished_study_runs_nothing_more_and_another_configuration_is_refused(reference, tmp_path):
    out, _ = reference
    before = sorted(p.stat().st_mtime_ns for p in (out / "trials").glob("*/metrics.json"))
    result = invoke("tune", *KILLED, "--output", out)
    assert result.exit_code == 0, result.output
    assert "4 of 4 trials finished" in result.output
    assert sorted(p.stat().st_mtime_ns for p in (out / "trials").glob("*/metrics.json")) == before
    result = invoke("tune", *KILLED, "--dim", "32", "--output", out)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"Error: output: {out} holds a study of another "
                                                             f"configuration (model.dim: 16 -> 32)")


# --------------------------------------------------------------------------- resume after a kill
def _start(args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("DGL_EMU_TEST_SIGNAL", None)
    return subprocess.Popen([sys.executable, "-m", "dgl_emu", "tune", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _complete_rows(out: Path):
    try:
        rows = json.loads((out / "trials.json").read_text())["trials"]
    except (OSError, ValueError):
        return []
    return [r for r in rows if r["state"] == "COMPLETE"]


def test_a_killed_tune_resumes_its_study_without_repeating_finished_trials(reference, tmp_path):
    out = tmp_path / "study"
    args = [*KILLED, "--output", out]
    proc = _start(args)
    try:
        deadline = time.monotonic() + 240
        while len(_complete_rows(out)) < 2:  # two trials complete ...
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no two complete trials in time"
            time.sleep(0.05)
        third = out / "trials" / "2" / "last.pt"
        while not third.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # ... and the third has a checkpoint: kill it in the middle
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            _kill(proc)
    before = _complete_rows(out)
    assert len(before) >= 2 and proc.returncode == -signal.SIGKILL
    stamps = {r["number"]: (out / r["run_dir"] / "metrics.json").stat().st_mtime_ns for r in before}
    assert (out / "tune.lock").exists()  # left by the killed tuner, taken over below

    again = _start(args)
    try:
        text, _ = again.communicate(timeout=240)
    finally:
        if again.poll() is None:
            _kill(again)
    assert again.returncode == 0, text
    rows = json.loads((out / "trials.json").read_text())["trials"]
    by_number = {r["number"]: r for r in rows}
    for r in before:  # the same trials, not run again
        same = by_number[r["number"]]
        assert (same["state"], same["params"], same["best_valid_mrr"]) == (r["state"], r["params"], r["best_valid_mrr"])
        assert (out / r["run_dir"] / "metrics.json").stat().st_mtime_ns == stamps[r["number"]]
    assert sum(r["state"] in ("COMPLETE", "PRUNED") for r in rows) == 4
    failed = [r for r in rows if r["state"] == "FAIL"]
    assert len(failed) <= 1
    for f in failed:  # the killed trial: its values resumed by a later trial, in its run directory
        resumed = next(r for r in rows if f"resumes the run of trial {f['number']}" in r["note"])
        assert resumed["params"] == f["params"] and f"trial {resumed['number']} resumes the run of trial" in text
        assert int(resumed["note"].rsplit("from step ", 1)[1]) >= 20  # from its checkpoint, not step 0
        assert not (out / "trials" / str(f["number"])).exists()
    # killed and resumed, the study holds what the uninterrupted one holds
    assert _finished(out) == _finished(reference[0])


def test_ctrl_c_queues_the_running_trial_again_and_the_next_invocation_resumes_it(tmp_path, monkeypatch):
    out = tmp_path / "study"
    args = ["tune", *FAST, "--steps", "40", "--eval-every", "10", "--trials", "1", "--output", out]
    monkeypatch.setenv("DGL_EMU_TEST_SIGNAL", "SIGINT@15")  # Ctrl-C after step 15 of the trial
    result = invoke(*args)
    assert result.exit_code == 130 and "re-run the same command to resume the study" in result.output
    assert not (out / "tune.lock").exists()
    monkeypatch.delenv("DGL_EMU_TEST_SIGNAL")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "trials.json").read_text())["trials"]
    assert [r["state"] for r in rows] == ["FAIL", "COMPLETE"] and rows[0]["params"] == rows[1]["params"]
    assert rows[1]["note"] == "resumes the run of trial 0 from step 15" and rows[1]["steps"] == 40
    assert not (out / "trials" / "0").exists()


# --------------------------------------------------------------------------- pruning
class _Trainer:
    def __init__(self, step=20, validations=()):  # what the callback sees of a Trainer
        self.step, self.validations, self.reason = step, list(validations), None

    def stop(self, reason):
        self.reason = reason


def _median_study():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(optuna.trial.create_trial(value=0.3, intermediate_values={20: 0.1, 40: 0.3}))
    return study


def test_the_pruning_callback_stops_a_trial_below_the_median():
    study = _median_study()
    good, bad = PruningCallback(study.ask()), PruningCallback(study.ask())
    t_good, t_bad = _Trainer(), _Trainer()
    good.on_validation_end(t_good, 0.2, True)
    bad.on_validation_end(t_bad, 0.05, True)
    assert t_good.reason is None and good.pruned_at is None
    assert bad.pruned_at == 20 and "pruned by the median rule at step 20" in t_bad.reason
    # a resumed trial reports the validations of its checkpoint first, and is pruned at once
    resumed, trainer = PruningCallback(study.ask()), _Trainer(20, [{"step": 20, "valid_mrr": 0.05}])
    resumed.on_fit_start(trainer)
    assert resumed.pruned_at == 20 and trainer.reason


def test_the_warmup_keeps_a_trial_from_being_pruned_before_its_fraction_of_the_steps():
    rule = MedianRule(after=1, warmup=0.5)
    assert rule.warmup_steps(60) == 30 and rule.warmup_steps(2000) == 1000 and MedianRule(warmup=0).warmup_steps(7) == 0
    study = optuna.create_study(direction="maximize", pruner=rule.pruner(60))
    study.add_trial(optuna.trial.create_trial(value=0.3, intermediate_values={20: 0.1, 40: 0.3}))
    late, trainer = PruningCallback(study.ask()), _Trainer(20)
    late.on_validation_end(trainer, 0.05, True)  # below the median at step 20 < 30: kept
    assert late.pruned_at is None and trainer.reason is None
    trainer.step = 40
    late.on_validation_end(trainer, 0.1, True)  # still below it at step 40: pruned
    assert late.pruned_at == 40 and "at step 40" in trainer.reason


@pytest.mark.parametrize("warmup, pruned_at", [(0.0, 20), (0.5, 40)])
def test_a_study_prunes_a_trial_that_falls_below_the_median(tmp_path, warmup, pruned_at):
    out = tmp_path / "study"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / DATABASE}", direction="maximize")
    study.enqueue_trial({"optimizer.lr": 0.3})
    study.enqueue_trial({"optimizer.lr": 1e-4})  # learns nothing in 60 steps
    space = {"optimizer.lr": FloatRange(1e-5, 1.0, log=True)}
    result = tune(_cfg(), out, trials=2, space=space, pruning=MedianRule(after=1, warmup=warmup))
    assert result.counts == {"complete": 1, "pruned": 1, "diverged": 0}
    states = [t.state for t in _study(out).trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED]
    pruned = json.loads((out / "trials" / "1" / "metrics.json").read_text())
    # validations every 20 steps; the first one at or after warmup * 60 steps may prune
    assert pruned["steps"] == pruned_at and f"pruned by the median rule at step {pruned_at}" in pruned["stop_reason"]
    assert json.loads((out / "trials" / "0" / "metrics.json").read_text())["steps"] == 60
    assert "Parameter importance: not computed: needs 2 complete trials" in (out / "trials.md").read_text()


# --------------------------------------------------------------------------- one tuner per directory
def test_a_live_tuner_locks_its_directory_and_a_dead_ones_lock_is_taken_over(tmp_path):
    (tmp_path / "tune.lock").write_text(f"{os.getppid()}\n")  # a live process, not this one
    with pytest.raises(StudyLocked, match=f"in use by another dgl-emu tune \\(PID {os.getppid()}\\)"):
        Tuner(_cfg(), tmp_path).__enter__()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "tune.lock").write_text(f"{dead.pid}\n")
    with DirectoryLock(tmp_path / "tune.lock"):
        assert int((tmp_path / "tune.lock").read_text().split()[0]) == os.getpid()
    assert not (tmp_path / "tune.lock").exists()


def test_a_study_keeps_its_pruning_rule(tmp_path):
    with Tuner(_cfg(), tmp_path, pruning=MedianRule(after=3, warmup=0.25)):
        pass
    assert _study(tmp_path).user_attrs["pruning"] == {"after": 3, "warmup": 0.25}
    with pytest.raises(ConfigError, match=r"holds a study of another configuration \(pruning.warmup: 0.25 -> 0.5\)"):
        Tuner(_cfg(), tmp_path, pruning=MedianRule(after=3, warmup=0.5)).__enter__()
    assert not (tmp_path / "tune.lock").exists()  # the refused tuner let go of the directory
    with Tuner(_cfg(), tmp_path, pruning=MedianRule(after=3, warmup=0.25)):  # the same rule resumes
        pass


@pytest.mark.parametrize("kw, option", [({"after": -1}, "prune_after"), ({"warmup": 1.0}, "prune_warmup"),
                                        ({"warmup": -0.1}, "prune_warmup")])
def test_a_bad_pruning_rule_names_its_option(kw, option):
    with pytest.raises(ConfigError, match=f"^{option}: expected"):
        MedianRule(**kw)


def test_timeout_stops_starting_trials(tmp_path):
    result = tune(_cfg(), tmp_path / "study", trials=3, timeout=1e-9)
    assert result.finished == 0 and result.stopped.startswith("timeout")


# --------------------------------------------------------------------------- equal budgets
def test_compare_emu_gives_both_arms_the_same_budget(tmp_path):
    out = tmp_path / "cmp"
    result = invoke("tune", *FAST, "--steps", "40", "--eval-every", "20", "--trials", "2", "--compare-emu",
                    "--lr", "0.3", "--output", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    emu, base = report["arms"]["emu"], report["arms"]["baseline"]
    assert report["equal_budgets"] and emu["trials_finished"] == base["trials_finished"] == 2
    assert emu["steps_per_trial"] == base["steps_per_trial"] == 40
    assert set(emu["search_space"]) == {"emu.keep_prob", "emu.negative_label", "emu.plain_weight", "regularizer.weight"}
    assert set(base["search_space"]) == {"regularizer.weight"}  # --lr fixes the learning rate in both
    text = (out / "report.md").read_text()
    assert "The budgets are equal: both arms ran 2 trials of at most 40 steps each" in text
    assert ("the same sampler (TPE, whose first 10 trials are random: with 2 trials per arm a random search) and "
            "pruning rule (median of the complete trials at the same step, once 5 trials are complete, never "
            "before step 10)") in text
    assert report["pruning_rule"] == {"after": 5, "warmup": 0.25}
    assert yaml.safe_load((out / "baseline" / "best.yaml").read_text())["emu"]["name"] == "none"
    assert isinstance(emu["test_mrr"], float) and isinstance(base["test_hits@1"], float)
    for arm, a in (("emu", emu), ("baseline", base)):  # the time each arm's trials took, summed
        trials = json.loads((out / arm / "trials.json").read_text())["trials"]
        assert a["seconds_trained"] > 0
        assert a["seconds_trained"] == pytest.approx(sum(t["seconds"] or 0 for t in trials), abs=0.05)
    assert (f"EMU's trials took {emu['seconds_trained']:.0f} s and the baseline's "
            f"{base['seconds_trained']:.0f} s") in text


def test_a_comparison_cut_short_says_its_budgets_are_not_equal(tmp_path):
    comparison = compare_emu(_cfg(), tmp_path / "cmp", trials=2, timeout=1e-9)
    assert not comparison.report["equal_budgets"]
    assert "NOT equal yet" in (tmp_path / "cmp" / "report.md").read_text()


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("args, message", [
    (["--compare-emu", "--no-emu"], "Error: emu: --compare-emu tunes EMU against the plain baseline"),
    (["--search", "{search}"], "Error: {search}: search.emu.keep_prob: high 2.0: emu.keep_prob: must be in [0, 1]"),
    (["--search", "{search}", "--keep-prob", "0.5"],
     "Error: {search}: search.emu.keep_prob: fixed by --keep-prob on the command line and searched by the file"),
    (["--trials", "0"], "Error: Invalid value for '--trials'"),
    (["--prune-warmup", "1"], "Error: Invalid value for '--prune-warmup'"),
])
def test_bad_input_is_one_error_line(tmp_path, args, message):
    search = tmp_path / "search.yaml"
    search.write_text("emu.keep_prob: {high: 2}\n")
    args = [a.format(search=search) for a in args]
    result = invoke("tune", *FAST, *args, "--output", tmp_path / "study")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(message.format(search=search)), result.output
    assert sum(line.startswith("Error:") for line in lines) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "study").exists()


def test_a_config_error_of_the_tuner_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing to tune"):
        tune(_cfg(), tmp_path, trials=1, space={})
