"""``dgl-emu tune --config-first``: a new study's first trial is the configuration's own values."""
from __future__ import annotations

import json

import pytest

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.tuning.study import Tuner
from test_cli.clihelp import invoke

FAST = ["--model", "distmult", "--dim", "16", "--negatives", "16", "--batch-size", "128", "--no-progress"]
#: searched options in the file, so they are the study's start (options on the command line are fixed)
START = "emu: {keep_prob: 0.45}\nregularizer: {weight: 0.001}\noptimizer: {lr: 0.3}\n"


def _trials(out):
    return json.loads((out / "trials.json").read_text())["trials"]


def test_the_first_trial_is_the_configuration_and_trains_as_dgl_emu_run_does(tmp_path):
    config = tmp_path / "start.yaml"
    config.write_text(START)
    budget = ["--steps", "40", "--eval-every", "20"]
    result = invoke("tune", "--config", config, *FAST, *budget, "--trials", "2", "--config-first",
                    "--output", tmp_path / "study")
    assert result.exit_code == 0, result.output
    first, second = _trials(tmp_path / "study")
    # the file's values, and the defaults of what it does not set (negative label, plain weight)
    assert first["params"] == {"emu.keep_prob": 0.45, "emu.negative_label": 0.53, "emu.plain_weight": 0.11,
                               "regularizer.weight": 0.001, "optimizer.lr": 0.3}
    assert first["note"] == "the configuration's own values" and second["note"] == ""
    assert second["params"] != first["params"]  # the sampler's from the second trial on
    # the first trial is the run of that configuration: the same validation MRR, bit for bit
    run = invoke("run", "--config", config, *FAST, *budget, "--output", tmp_path / "run")
    assert run.exit_code == 0, run.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["best_valid_mrr"] == first["best_valid_mrr"]


def test_a_comparison_starts_each_arm_from_its_own_configuration(tmp_path):
    config = tmp_path / "start.yaml"
    config.write_text(START)
    out = tmp_path / "cmp"
    result = invoke("tune", "--config", config, *FAST, "--steps", "20", "--eval-every", "20", "--trials", "1",
                    "--compare-emu", "--config-first", "--output", out)
    assert result.exit_code == 0, result.output
    assert _trials(out / "emu")[0]["params"]["emu.keep_prob"] == 0.45
    assert _trials(out / "baseline")[0]["params"] == {"regularizer.weight": 0.001, "optimizer.lr": 0.3}
    assert "each arm's first trial is its configuration's own values" in (out / "report.md").read_text()


def test_an_interrupted_first_trial_resumes_as_the_configuration(tmp_path, monkeypatch):
    config = tmp_path / "start.yaml"
    config.write_text(START)
    args = ["tune", "--config", config, *FAST, "--steps", "40", "--eval-every", "10", "--trials", "1",
            "--config-first", "--output", tmp_path / "study"]
    monkeypatch.setenv("DGL_EMU_TEST_SIGNAL", "SIGINT@15")
    assert invoke(*args).exit_code == 130
    monkeypatch.delenv("DGL_EMU_TEST_SIGNAL")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    killed, resumed = _trials(tmp_path / "study")
    assert killed["state"] == "FAIL" and resumed["params"] == killed["params"]
    assert resumed["note"] == "the configuration's own values; resumes the run of trial 0 from step 15"


def test_a_value_outside_its_range_is_one_error_line_and_no_study(tmp_path):
    # the default regulariser weight, 0, lies outside the searched log range
    result = invoke("tune", *FAST, "--trials", "1", "--config-first", "--output", tmp_path / "study")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1] == ("Error: search.regularizer.weight: the configuration's value 0.0 is outside the searched "
                         "range (float in [1e-06, 0.1] (log)), so the first trial cannot start from it; set it "
                         "inside the range, fix it on the command line or change the range with --search")
    assert sum(line.startswith("Error:") for line in lines) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "study").exists()
    # nor does a comparison open a study
    assert invoke("tune", *FAST, "--trials", "1", "--config-first", "--compare-emu",
                  "--output", tmp_path / "cmp").exit_code == 2
    assert not (tmp_path / "cmp").exists()


def test_a_study_keeps_its_start(tmp_path):
    cfg = RunConfig.from_dict({"model": "distmult", "dim": 16, "steps": 20, "regularizer": {"weight": 0.001},
                               "progress": False})
    with Tuner(cfg, tmp_path):
        pass
    with pytest.raises(ConfigError, match=r"another configuration \(start.config_first: False -> True\)"):
        Tuner(cfg, tmp_path, config_first=True).__enter__()
    assert not (tmp_path / "tune.lock").exists()
