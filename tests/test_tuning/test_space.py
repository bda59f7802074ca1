"""Search spaces: declared next to each component, collected for the chosen ones, overridden from
YAML; bad overrides are errors naming the file and the key. No training here."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from dgl_emu.config import COMPONENTS, ConfigError, RunConfig
from dgl_emu.losses import LpRegularizer, SoftplusLoss, TableLpRegularizer
from dgl_emu.nn.emu import EmbeddingMixup, EmbeddingMutation
from dgl_emu.tuning import (Choice, FloatRange, IntRange, apply_overrides, load_search_space, search_space,
                            space_to_dict)
from dgl_emu.tuning.space import check_space

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_ranges_are_declared_next_to_their_components():
    assert EmbeddingMutation.search_space == {"keep_prob": FloatRange(0.1, 0.9)}
    assert "adversarial_temperature" in SoftplusLoss.search_space
    assert LpRegularizer.search_space["weight"].log and TableLpRegularizer.search_space == LpRegularizer.search_space
    assert not hasattr(EmbeddingMixup, "search_space")
    assert set(COMPONENTS["emu"].search_space) == {"negative_label", "plain_weight"}
    assert COMPONENTS["optimizer"].search_space["lr"].log


@pytest.mark.parametrize("options, section", [({"loss": "softplus"}, "loss"), ({"regularizer": "table"}, "regularizer"),
                                              ({}, "emu"), ({}, "optimizer")])
def test_every_declared_range_is_accepted_by_the_configuration(options, section):
    cfg = RunConfig.from_dict(options)
    space = {k: p for k, p in search_space(cfg).items() if k.startswith(section + ".")}
    assert space
    check_space(space, cfg)  # both ends of every range are valid option values


@pytest.mark.parametrize("options, expected", [
    ({}, {"emu.keep_prob", "emu.negative_label", "emu.plain_weight", "regularizer.weight", "optimizer.lr"}),
    ({"emu": False}, {"regularizer.weight", "optimizer.lr"}),
    ({"emu": False, "loss": "softplus"}, {"loss.adversarial_temperature", "regularizer.weight", "optimizer.lr"}),
    ({"mutation": "mixup"}, {"emu.negative_label", "emu.plain_weight", "regularizer.weight", "optimizer.lr"}),
    ({"regularizer": "table", "optimizer": "adam"}, {"emu.keep_prob", "emu.negative_label", "emu.plain_weight",
                                                     "regularizer.weight", "optimizer.lr"}),
])
def test_only_the_chosen_components_contribute(options, expected):
    assert set(search_space(RunConfig.from_dict(options))) == expected


def test_yaml_overrides_change_add_and_remove_ranges(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("search:\n"
                    "  emu.keep_prob: {low: 0.2, high: 0.6}\n"
                    "  lr: {low: 0.01, high: 0.3, log: true}\n"   # an alias
                    "  emu.plain_weight: {high: 0.5}\n"            # partial: keeps low and log
                    "  regularizer.weight: null\n"                  # removed
                    "  sampler.num_negatives: {low: 8, high: 32}\n"  # added: an integer option
                    "  model.dim: [8, 16]\n")
    space = load_search_space(path, RunConfig())
    assert space == {"emu.keep_prob": FloatRange(0.2, 0.6), "emu.negative_label": FloatRange(0.1, 0.9),
                     "emu.plain_weight": FloatRange(0.01, 0.5, log=True), "optimizer.lr": FloatRange(0.01, 0.3, log=True),
                     "sampler.num_negatives": IntRange(8, 32), "model.dim": Choice((8, 16))}
    cfg = RunConfig()
    # the YAML form written to trials.json reads back to the same space
    assert apply_overrides({}, space_to_dict(space), cfg) == space


@pytest.mark.parametrize("text, key, fragment", [
    ("emu.keep_prop: {low: 0.2, high: 0.6}", "search.emu.keep_prop", "did you mean 'emu.keep_prob'"),
    ("emu.keep_prob: {low: 0.6, high: 0.2}", "search.emu.keep_prob", "need low < high"),
    ("emu.keep_prob: {high: 1.5}", "search.emu.keep_prob", "high 1.5: emu.keep_prob: must be in [0, 1]"),
    ("optimizer.lr: {low: 0, high: 1, log: true}", "search.optimizer.lr", "a log range needs low > 0"),
    ("emu.keep_prob: {low: 0.2, hgih: 0.6}", "search.emu.keep_prob", "unknown key 'hgih'"),
    ("training.steps: {low: 10, high: 100}", "search.training.steps", "not a hyper-parameter"),
    ("model.name: [transe, distmult]", "search.model.name", "not a hyper-parameter"),
    ("loss.adversarial_temperature: {low: 0.5, high: 1}", "search.loss.adversarial_temperature",
     "not an option of this configuration"),
    ("emu.keep_prob: 0.5", "search.emu.keep_prob", "expected {low: .., high: ..[, log: true]}"),
    ("search: [1, 2]", "", "expected a mapping"),
    ("emu.keep_prob: {low: 0.2", None, "YAML syntax error: expected ',' or '}'"),   # at file:line:column
])
def test_bad_overrides_name_the_file_and_the_key(tmp_path, text, key, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_search_space(path, RunConfig())
    message = str(err.value)
    assert message.startswith(f"{path}:2:1: " if key is None else f"{path}: {key}"), message
    assert fragment in message and "\n" not in message, message


def test_the_documented_search_file_and_commands_are_valid():
    from click.testing import CliRunner

    from dgl_emu.cli import main
    space = load_search_space(DOCS / "tuning_search.yaml", RunConfig())
    assert space["sampler.num_negatives"] == Choice((16, 32, 64)) and space["model.dim"] == IntRange(16, 64)
    assert "regularizer.weight" not in space
    lines = [line.split("$ ", 1)[1] for line in (DOCS / "tuning.rst").read_text().splitlines()
             if line.strip().startswith("$ dgl-emu ")]
    assert any(" tune " in line for line in lines) and any("--compare-emu" in line for line in lines)
    for line in lines:  # --help is eager: every option is parsed, nothing runs
        result = CliRunner().invoke(main, shlex.split(line)[1:] + ["--help"])
        assert result.exit_code == 0 and "Usage: " in result.output, (line, result.output)
