"""Options a run chooses from its data (``encoder.sparse: null``: sparse tables by size) are
printed once, recorded in ``config.yaml`` and ``metrics.json``, checked against what they rule
out (after the load, before anything is written) and against the run's record on resume."""
from __future__ import annotations

import json
import sys

import pytest
import yaml

from dgl_emu.config import RunConfig, same_setting
from dgl_emu.pipeline.rundir import config_differences

from .clihelp import TINY, invoke


def _errors(result):
    assert "Traceback" not in result.output, result.output
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


@pytest.fixture
def sparse_from_100(monkeypatch):
    """Lookup tables are sparse from 100 entities on: the generated KG's 384 make them sparse."""
    monkeypatch.setattr(sys.modules["dgl_emu.nn.encoders.base"], "SPARSE_FROM_ENTITIES", 100)
    monkeypatch.setattr(sys.modules["dgl_emu.pipeline.choices"], "SPARSE_FROM_ENTITIES", 100)


def test_the_choice_by_size_is_printed_once_and_recorded(base_run):
    out, result = base_run
    lines = [x for x in result.output.splitlines() if x.startswith("lookup tables:")]
    assert lines == ["lookup tables: dense gradients, chosen by size: 384 entities < 100,000 "
                     "(--set encoder.sparse=true for sparse ones)"]
    assert yaml.safe_load((out / "config.yaml").read_text())["encoder"] == {"name": "lookup", "sparse": False}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["encoder"]["sparse"] is False
    assert metrics["chosen"] == {"encoder.sparse": {"value": False, "by_data": True,
                                                    "reason": "chosen by size: 384 entities < 100,000"}}


def test_a_sparse_choice_is_recorded_and_the_same_command_resumes_it(tmp_path, sparse_from_100):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--output", out)
    assert result.exit_code == 0 and not _errors(result), result.output
    assert "lookup tables: sparse (row) gradients, chosen by size: 384 entities >= 100 " in result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["encoder"]["sparse"] is True
    assert json.loads((out / "metrics.json").read_text())["chosen"]["encoder.sparse"]["value"] is True
    again = invoke("run", *TINY, "--output", out)   # null on the command line matches the recorded true
    assert again.exit_code == 0 and not _errors(again), again.output
    forced = invoke("run", *TINY, "--set", "encoder.sparse=false", "--output", out)   # a forced other choice
    assert forced.exit_code == 2 and "encoder.sparse: True -> False" in _errors(forced)[0], forced.output


def test_what_sparse_tables_rule_out_is_refused_after_the_load_and_before_any_write(tmp_path, sparse_from_100):
    for args, needles in ((["--max-grad-norm", "1"], ["--max-grad-norm", "gradient clipping needs dense"]),
                          (["--regularizer", "table", "--regularizer-weight", "0.1"], ["--regularizer", "'table'"])):
        result = invoke("run", *TINY, *args, "--output", tmp_path / "run")
        errors = _errors(result)
        assert result.exit_code == 2 and len(errors) == 1, result.output
        for needle in [*needles, "sparse (chosen by size: 384 entities >= 100)", "--set encoder.sparse=false"]:
            assert needle in errors[0], (needle, errors[0])
        assert not (tmp_path / "run").exists()


def test_a_forced_choice_is_not_resumed_by_a_run_that_leaves_it_to_the_data(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", *TINY, "--set", "encoder.sparse=true", "--output", out).exit_code == 0
    result = invoke("run", *TINY, "--output", out)
    errors = _errors(result)
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert errors[0].startswith(f"Error: encoder.sparse: the run in {out} trained with encoder.sparse = True"), errors
    assert "this run would use False (chosen by size: 384 entities < 100,000)" in errors[0]
    assert "pass --set encoder.sparse=true to resume it" in errors[0]


def test_null_matches_a_recorded_choice_and_nothing_else():
    recorded = RunConfig.from_dict({"encoder.sparse": True}).to_dict()
    assert config_differences(recorded, RunConfig.from_dict({})) == []
    assert config_differences(recorded, RunConfig.from_dict({"encoder.sparse": False})) == \
        ["encoder.sparse: True -> False"]
    assert config_differences(recorded, RunConfig.from_dict({"dim": 8})) == ["model.dim: 64 -> 8"]
    assert same_setting("encoder.sparse", None, False) and not same_setting("model.dim", None, 64)
