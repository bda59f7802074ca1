"""RunConfig in-process: its defaults, how mappings are read (sections, aliases, dotted paths,
layers), access, and the round trips through ``to_dict`` / ``flat`` / YAML."""
from __future__ import annotations

import pytest
import yaml

from dgl_emu.config import ConfigError, RunConfig, load_config

#: the defaults of every section but the optimiser (whose options are torch's signature)
DEFAULTS = {
    "data": {"dataset": "synthetic", "data_dir": None, "train": None, "valid": None, "test": None,
             "drop_unseen": False, "format": "labels", "entity_dict": None, "relation_dict": None,
             "columns": "hrt", "entities": None, "relations": None, "triples": None, "cache": True},
    "model": {"name": "rotate", "dim": 64, "gamma": 12.0},
    "encoder": {"name": "lookup", "sparse": None},
    "regime": {"name": "negative_sampling", "reciprocal": False},
    "sampler": {"name": "uniform", "num_negatives": 64, "exclude_true": False, "chunk_size": None,
                "filtered": False},
    "emu": {"name": "mutation", "keep_prob": 0.39, "negative_label": 0.53, "plain_weight": 0.11,
            "separate_negatives": False},
    "loss": {"name": "ce"},
    "regularizer": {"name": "lp", "weight": 0.0, "p": 3.0},
    "evaluator": {"name": "filtered", "max_scores": 67108864},
    "training": {"steps": 1500, "batch_size": 256, "eval_every": 500, "patience": None,
                 "eval_batch_size": 512, "fanouts": None, "checkpoint_every_seconds": 300.0},
    "seed": 0, "device": "cpu", "output": None, "progress": True,
}
#: the optimiser's wrapper options, the same for every optimiser
WRAPPER = {"switch_to_adam": False, "max_grad_norm": None, "decay_from": None}


def _without_optimizer(d):
    return {k: v for k, v in d.items() if k != "optimizer"}


def test_defaults_of_lookup_tables_are_rotate_and_adagrad_at_0_1():
    d = RunConfig().validate().to_dict()
    assert list(d) == ["data", "model", "encoder", "regime", "sampler", "emu", "loss", "regularizer",
                       "optimizer", "evaluator", "training", "seed", "device", "output", "progress"]
    assert _without_optimizer(d) == DEFAULTS
    opt = d["optimizer"]
    assert (opt["name"], opt["lr"]) == ("adagrad", 0.1)
    assert {k: opt[k] for k in WRAPPER} == WRAPPER
    assert opt["eps"] == 1e-10 and opt["weight_decay"] == 0


@pytest.mark.parametrize("encoder", ["rgcn", "compgcn"])
def test_defaults_of_gnn_encoders_are_distmult_and_adam_at_0_01(encoder):
    d = RunConfig.from_dict({"encoder": encoder}).to_dict()
    assert d["model"] == {"name": "distmult", "dim": 64, "gamma": 12.0}
    assert (d["optimizer"]["name"], d["optimizer"]["lr"]) == ("adam", 0.01)
    assert d["optimizer"]["betas"] == [0.9, 0.999]
    assert {k: d["optimizer"][k] for k in WRAPPER} == WRAPPER
    assert d["sampler"] == DEFAULTS["sampler"] and d["training"] == DEFAULTS["training"]


def test_rgcn_encoder_options_and_their_defaults():
    assert RunConfig(encoder="rgcn").validate().to_dict()["encoder"] == {
        "name": "rgcn", "num_layers": 2, "decomposition": "basis", "num_bases": None, "self_loop": True,
        "dropout": 0.1, "edge_dropout": 0.0, "self_loop_dropout": 0.0}


def test_encoder_defaults_yield_to_given_values():
    cfg = RunConfig.from_dict({"encoder": "rgcn", "model": "complex", "optimizer": "adagrad", "lr": 0.5})
    assert (cfg.model.name, cfg.optimizer.name, cfg.get("optimizer.lr")) == ("complex", "adagrad", 0.5)
    cfg = RunConfig.from_dict({"optimizer": "adam"})  # only the name: lr still from the encoder
    assert (cfg.model.name, cfg.optimizer.name, cfg.get("optimizer.lr")) == ("rotate", "adam", 0.1)


def test_sections_aliases_dotted_paths_and_top_level_keys_mix_in_one_mapping():
    cfg = RunConfig.from_dict({"sampler": {"name": "sans", "k": 2}, "num_negatives": 8, "emu.keep_prob": 0.25,
                               "training": {"steps": 30}, "batch_size": 16, "seed": 7, "device": "cpu"})
    assert cfg.to_dict()["sampler"] == {"name": "sans", "num_negatives": 8, "k": 2, "num_walks": 1000,
                                        "filtered": False}
    assert cfg.get("emu.keep_prob") == 0.25
    assert (cfg.training.steps, cfg.training.batch_size, cfg.seed) == (30, 16, 7)


def test_names_are_canonicalised():
    cfg = RunConfig.from_dict({"model": "DistMult", "sampler": {"name": "SANS"}, "emu": {"name": "None"}})
    assert (cfg.model.name, cfg.sampler.name, cfg.emu.name) == ("distmult", "sans", "none")


def test_later_layers_win():
    cfg = RunConfig.from_dict({"num_negatives": 8, "seed": 1, "training": {"steps": 10}},
                              {"sampler.num_negatives": 16}, {"steps": 20, "seed": 2})
    assert (cfg.get("sampler.num_negatives"), cfg.training.steps, cfg.seed) == (16, 20, 2)
    # the EMU switch across layers: off, then on again (back to the default variant)
    assert RunConfig.from_dict({"emu": False}).emu.name == "none"
    assert RunConfig.from_dict({"emu": False}, {"emu": True}).emu.name == "mutation"
    assert RunConfig.from_dict({"mutation": "mixup"}, {"emu": True}).emu.name == "mixup"


@pytest.mark.parametrize("data, first, second", [
    ({"num_negatives": 8, "sampler": {"num_negatives": 9}}, "num_negatives", "sampler"),
    ({"num_negatives": 8, "sampler.num_negatives": 9}, "num_negatives", "sampler.num_negatives"),
    ({"sampler.k": 2, "sampler": {"name": "sans", "k": 3}}, "sampler.k", "sampler"),
])
def test_a_path_set_twice_in_one_mapping_names_both_spellings(data, first, second):
    path = "sampler.k" if "sampler.k" in data else "sampler.num_negatives"
    with pytest.raises(ConfigError, match=rf"^{path}: set twice \(as {first} and as {second}\)$") as err:
        RunConfig.from_dict(data)
    assert err.value.path == path


@pytest.mark.parametrize("data, message, path", [
    ({"keep_prop": 0.5}, "keep_prop: unknown option; did you mean 'keep_prob'?", "keep_prop"),
    ({"sedd": 1}, "sedd: unknown option; did you mean 'seed'?", "sedd"),
    ({"training": {"stepz": 3}}, "training.stepz: unknown option; did you mean 'steps'?", "training.stepz"),
    ({"foo.bar": 1}, "foo.bar: unknown section", "foo.bar"),
])
def test_unknown_keys_suggest_the_closest(data, message, path):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    assert str(err.value) == message and err.value.path == path


def test_where_prefixes_messages_of_the_first_mapping():
    with pytest.raises(ConfigError, match=r"^f\.yaml: sedd: unknown option") as err:
        RunConfig.from_dict({"sedd": 1}, where="f.yaml: ")
    assert err.value.path == "sedd"


def test_access_get_attributes_and_top_level_assignment():
    cfg = RunConfig(num_negatives=8, seed=3).validate()
    assert cfg.get("sampler.num_negatives") == 8 and cfg.get("sampler.name") == "uniform"
    assert cfg.get("seed") == 3 and cfg.get("sampler.k", "absent") == "absent"
    assert cfg.get("training.nothing", 5) == 5 and cfg.get("nothing", 6) == 6
    assert cfg.data.dataset == "synthetic" and cfg.emu_enabled
    cfg.seed = 9
    cfg.training.steps = 11
    assert (cfg.top["seed"], cfg.to_dict()["training"]["steps"]) == (9, 11)
    with pytest.raises(AttributeError):
        cfg.training.stepz = 1
    with pytest.raises(AttributeError):
        cfg.nothing
    assert repr(cfg) == ("RunConfig(model=rotate, encoder=lookup, regime=negative_sampling, sampler=uniform, "
                         "emu=mutation, loss=ce, regularizer=lp, optimizer=adagrad, evaluator=filtered, seed=9)")


# ---------------------------------------------------------------------- round trips
CONFIGS = [
    {},
    {"encoder": "rgcn", "fanouts": [10, 5], "num_negatives": 8},
    {"sampler": {"name": "sans", "k": 2}, "emu": False, "seed": 4, "output": "runs/x", "progress": False},
    {"regime": "1vsall", "emu": False, "label_smoothing": 0.1, "model": "complex", "dim": 8},
    {"mutation": "mixup", "optimizer": "sgd", "lr": 0.3, "decay_from": 100, "patience": 3},
]


@pytest.mark.parametrize("data", CONFIGS, ids=range(len(CONFIGS)))
def test_to_dict_flat_and_yaml_round_trip(data, tmp_path):
    cfg = RunConfig.from_dict(data)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig.from_dict(cfg.flat()) == cfg
    assert RunConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    (tmp_path / "c.yaml").write_text(cfg.to_yaml())
    assert load_config(tmp_path / "c.yaml") == cfg
    # defaults are written as their signature has them (torch's ``weight_decay=0``) and read back
    # coerced (``0.0``): the text is a fixed point from the first reading on
    again = load_config(tmp_path / "c.yaml").to_yaml()
    (tmp_path / "d.yaml").write_text(again)
    assert load_config(tmp_path / "d.yaml").to_yaml() == again
    if data:
        assert cfg != RunConfig().validate()  # the comparison can fail


def test_flat_is_to_dict_by_dotted_path():
    cfg = RunConfig.from_dict({"num_negatives": 8})
    flat = cfg.flat()
    assert flat["sampler.num_negatives"] == 8 and flat["sampler.name"] == "uniform"
    assert flat["training.steps"] == 1500 and flat["seed"] == 0 and "sampler" not in flat
    assert len(flat) == sum(len(v) if isinstance(v, dict) else 1 for v in cfg.to_dict().values())


def test_load_config_applies_layers_and_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sampler: {name: sans, k: 2}\nnum_negatives: 8\n")
    cfg = load_config(path, {"sampler.k": 4}, {"seed": 5})
    assert (cfg.sampler.name, cfg.get("sampler.k"), cfg.get("sampler.num_negatives"), cfg.seed) == ("sans", 4, 8, 5)
    path.write_text("num_negatives: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: sampler.num_negatives: must be a positive integer, got 0"
    assert err.value.path == "sampler.num_negatives"
    # an override's own error is not blamed on the file
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=r"^sampler.num_negatives: must be a positive") as err:
        load_config(path, {"num_negatives": 0})
    assert err.value.path == "sampler.num_negatives"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of option: value"):
        load_config(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2:1: YAML syntax error: expected ',' or ']'"):
        load_config(path)


def test_updated_leaves_the_original_unchanged():
    cfg = RunConfig.from_dict({"num_negatives": 8})
    before = cfg.to_dict()
    new = cfg.updated(num_negatives=16, seed=2, **{"sampler.chunk_size": 4})
    assert (new.get("sampler.num_negatives"), new.seed, new.get("sampler.chunk_size")) == (16, 2, 4)
    assert cfg.to_dict() == before and cfg.get("sampler.num_negatives") == 8
    with pytest.raises(ConfigError, match="emu.keep_prob: must be in"):
        cfg.updated(keep_prob=2.0)


def test_copy_is_deep():
    cfg = RunConfig.from_dict({"encoder": "rgcn", "fanouts": [10, 5]})
    dup = cfg.copy()
    assert dup == cfg and dup is not cfg
    dup.sampler.options["num_negatives"] = 3
    dup.training.fanouts.append(1)
    dup.training.steps = 7
    dup.seed = 8
    assert cfg.get("sampler.num_negatives") == 64 and cfg.training.fanouts == [10, 5]
    assert (cfg.training.steps, cfg.seed) == (1500, 0)
    assert dup != cfg
