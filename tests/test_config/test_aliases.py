"""Flat aliases (``num_negatives`` for ``sampler.num_negatives``), their flags, the aliased view of a
configuration, and the lenient reading of dgl-emu 0.1's complete flat files."""
from __future__ import annotations

import pytest

from dgl_emu.config import ALIASES, COMPONENTS, PLAIN, TOP_LEVEL, ConfigError, RunConfig, alias_of, flag_of
from dgl_emu.config.aliases import EMU_SWITCH, LEGACY_FIELDS, is_legacy


def test_every_alias_names_an_existing_option():
    for name, alias in ALIASES.items():
        if name == EMU_SWITCH:
            assert alias.path == ""
            continue
        section, _, key = alias.path.partition(".")
        if not key:
            assert section in TOP_LEVEL, name
        elif section in PLAIN:
            assert key in PLAIN[section], name
        else:
            spec = COMPONENTS[section]
            known = {k for n in spec.registry().names() for k in spec.options(n)}
            assert key == "name" or key in known, name


@pytest.mark.parametrize("alias, value", [
    ("num_negatives", 8), ("keep_prob", 0.25), ("steps", 30), ("seed", 4), ("dim", 16), ("lr", 0.5),
    ("regularizer_weight", 0.01), ("separate_negatives", True), ("drop_unseen", True)])
def test_an_alias_sets_its_path(alias, value):
    cfg = RunConfig.from_dict({alias: value})
    assert cfg.get(ALIASES[alias].path) == value
    assert cfg == RunConfig.from_dict({ALIASES[alias].path: value})


def test_aliases_of_component_names_choose_the_component():
    cfg = RunConfig.from_dict({"sampler": "sans", "sans_k": 2, "sans_walks": 10, "mutation": "smoothing",
                               "encoder": "rgcn", "encoder_layers": 1, "num_bases": 4, "decomposition": "bdd"})
    assert cfg.to_dict()["sampler"] == {"name": "sans", "num_negatives": 64, "k": 2, "num_walks": 10,
                                        "filtered": False}
    assert cfg.emu.name == "smoothing"
    # enums are held as enums and written as their values
    assert (cfg.get("encoder.num_layers"), cfg.get("encoder.num_bases"), cfg.get("encoder.decomposition").value) == (
        1, 4, "bdd")
    assert cfg.to_dict()["encoder"]["decomposition"] == "bdd"


def test_flags_and_alias_lookup():
    assert flag_of("sampler.num_negatives") == "--num-negatives"
    assert flag_of("emu.keep_prob") == "--keep-prob"
    assert flag_of("sampler.exclude_true") == "--set sampler.exclude_true"
    assert alias_of("sampler.k") == "sans_k" and alias_of("training.steps") == "steps"
    assert alias_of("sampler.exclude_true") == ""
    assert ALIASES["num_negatives"].old_flags == ("--negatives",)
    assert ALIASES["regularizer_weight"].flag("regularizer_weight") == "--regularizer-weight"


def test_aliased_view_of_a_run():
    a = RunConfig.from_dict({"num_negatives": 8, "keep_prob": 0.2}).aliased()
    assert (a["emu"], a["mutation"], a["keep_prob"], a["num_negatives"]) == (True, "mutation", 0.2, 8)
    assert (a["model"], a["optimizer"], a["lr"], a["steps"], a["seed"]) == ("rotate", "adagrad", 0.1, 1500, 0)
    # options of components the run does not use are left out
    assert "sans_k" not in a and "encoder_layers" not in a and "margin" not in a
    assert set(a) <= set(ALIASES)
    sans = RunConfig.from_dict({"sampler": "sans"}).aliased()
    assert (sans["sans_k"], sans["sans_walks"]) == (3, 1000) and "chunk_size" not in sans


def test_aliased_view_without_emu_records_the_default_variant():
    """A baseline and its EMU run differ only in ``emu`` (as dgl-emu 0.1 recorded them)."""
    plain = RunConfig.from_dict({"emu": False, "num_negatives": 8}).aliased()
    emu = RunConfig.from_dict({"num_negatives": 8}).aliased()
    assert plain["emu"] is False and emu["emu"] is True
    assert (plain["mutation"], plain["keep_prob"], plain["negative_label"], plain["plain_weight"]) == (
        "mutation", 0.39, 0.53, 0.11)
    assert {k for k in emu if emu[k] != plain[k]} == {"emu"}


#: a complete flat configuration as dgl-emu 0.1 wrote it (benchmarks/results/*/metrics.json), for a
#: uniform R-GCN run: it holds sans_k, composition, p_norm and margin, which that run did not use
LEGACY = {"dataset": "fb15k-237", "data_dir": None, "train": None, "valid": None, "test": None,
          "drop_unseen": False, "model": "distmult", "encoder": "rgcn", "dim": 100, "gamma": 12.0, "p_norm": 1,
          "encoder_layers": 2, "encoder_dropout": 0.1, "num_bases": None, "decomposition": "basis",
          "composition": "mult", "fanouts": [10, 10], "sampler": "uniform", "num_negatives": 64, "sans_k": 3,
          "sans_walks": 1000, "filtered": False, "emu": False, "mutation": "mutation", "keep_prob": 0.39,
          "negative_label": 0.53, "plain_weight": 0.11, "loss": "ce", "adversarial_temperature": None,
          "margin": 1.0, "regularizer_weight": 0.0, "regularizer_p": 3.0, "steps": 150, "batch_size": 1000,
          "optimizer": "adam", "lr": 0.01, "switch_to_adam": False, "eval_every": 50, "patience": None,
          "eval_batch_size": 1000, "device": "cpu", "seed": 0, "output": None, "progress": False}


def test_a_dgl_emu_0_1_flat_file_is_read_leniently():
    assert is_legacy(LEGACY) and LEGACY_FIELDS <= set(LEGACY)
    cfg = RunConfig.from_dict(LEGACY)
    d = cfg.to_dict()
    # the unused options are dropped; the switched-off EMU keeps none of its options
    assert d["model"] == {"name": "distmult", "dim": 100, "gamma": 12.0}
    assert d["sampler"] == {"name": "uniform", "num_negatives": 64, "exclude_true": False, "chunk_size": None,
                            "filtered": False}
    assert d["encoder"]["name"] == "rgcn" and "composition" not in d["encoder"]
    assert d["emu"] == {"name": "none"} and d["loss"] == {"name": "ce"}
    assert (d["training"]["steps"], d["training"]["fanouts"], d["progress"]) == (150, [10, 10], False)
    # and the resolved form reads strictly, to the same configuration
    assert RunConfig.from_dict(d) == cfg
    # not lenient: an incomplete flat file, a file with sections, or a later layer
    incomplete = {k: v for k, v in LEGACY.items() if k != "switch_to_adam"}
    assert not is_legacy(incomplete) and not is_legacy({**LEGACY, "training": {"steps": 3}})
    for attempt in (lambda: RunConfig.from_dict(incomplete), lambda: RunConfig.from_dict({}, LEGACY)):
        with pytest.raises(ConfigError) as err:
            attempt()
        assert str(err.value) == "emu.name: given although EMU is switched off (--no-emu / emu: false)"
        assert err.value.path == "emu.name"
    with pytest.raises(ConfigError) as err:  # strictly, with EMU on: the first unused option
        RunConfig.from_dict({**incomplete, "emu": True})
    assert str(err.value) == "model.p_norm: not an option of interaction 'distmult' (options: dim, gamma)"
    assert err.value.path == "model.p_norm"
