"""RunConfig.validate: types, ranges, component names and options, regime and sampler combinations,
dataset names, and the ``gnn`` capability; each error names the option's dotted path."""
from __future__ import annotations

import pytest

from dgl_emu.config import ConfigError, RunConfig
from dgl_emu.nn.encoders import ENCODERS, LookupEncoder


def _error(data) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    return err.value


@pytest.mark.parametrize("data, path, message", [
    ({"training.steps": 0}, "training.steps", "must be a positive integer, got 0"),
    ({"steps": 0}, "training.steps", "must be a positive integer, got 0"),
    ({"batch_size": -3}, "training.batch_size", "must be a positive integer, got -3"),
    ({"patience": 0}, "training.patience", "must be a positive integer, got 0"),
    ({"num_negatives": -1}, "sampler.num_negatives", "must be a positive integer, got -1"),
    ({"dim": 0}, "model.dim", "must be a positive integer, got 0"),
    ({"sampler": {"name": "sans", "k": 0}}, "sampler.k", "must be a positive integer, got 0"),
    ({"keep_prob": 1.5}, "emu.keep_prob", "must be in [0, 1], got 1.5"),
    ({"negative_label": -0.1}, "emu.negative_label", "must be in [0, 1], got -0.1"),
    ({"plain_weight": -1}, "emu.plain_weight", "must be >= 0, got -1.0"),
    ({"lr": 0}, "optimizer.lr", "must be a positive finite number, got 0.0"),
    ({"max_grad_norm": 0}, "optimizer.max_grad_norm", "must be positive, got 0.0"),
    ({"regularizer_weight": -0.5}, "regularizer.weight", "must be >= 0, got -0.5"),
    ({"encoder": "rgcn", "encoder_dropout": 1.0}, "encoder.dropout", "must be in [0, 1), got 1.0"),
    ({"encoder": "rgcn", "encoder_layers": 0}, "encoder.num_layers", "must be a positive integer, got 0"),
    ({"regime": "1vsall", "emu": False, "label_smoothing": 1.0}, "regime.label_smoothing",
     "must be in [0, 1), got 1.0"),
    ({"decay_from": 1500}, "optimizer.decay_from", "must be a step in [0, training.steps = 1500), got 1500"),
    ({"steps": 10, "decay_from": -1}, "optimizer.decay_from", "must be a step in [0, training.steps = 10), got -1"),
])
def test_out_of_range_values_name_the_option(data, path, message):
    err = _error(data)
    assert str(err) == f"{path}: {message}" and err.path == path


@pytest.mark.parametrize("data, path, message", [
    ({"training": {"steps": "many"}}, "training.steps", "expected an integer, got 'many'"),
    ({"dim": 2.5}, "model.dim", "expected an integer, got 2.5"),
    ({"lr": "abc"}, "optimizer.lr", "expected a number, got 'abc'"),
    ({"keep_prob": float("nan")}, "emu.keep_prob", "expected a finite number, got nan"),
    ({"filtered": "yes"}, "sampler.filtered", "expected true or false, got 'yes'"),
    ({"seed": "x"}, "seed", "expected an integer, got 'x'"),
    ({"progress": 1}, "progress", "expected true or false, got 1"),
    ({"emu": "yes"}, "emu", "expected true or false, got 'yes'"),
    ({"sampler": {"name": 3}}, "sampler.name", "expected a name, got 3"),
])
def test_values_of_the_wrong_type_name_the_option(data, path, message):
    err = _error(data)
    assert str(err) == f"{path}: {message}" and err.path == path


def test_values_are_coerced_to_their_types():
    cfg = RunConfig.from_dict({"lr": 1, "steps": "20", "encoder": "rgcn", "fanouts": "10,5"})
    assert cfg.get("optimizer.lr") == 1.0 and isinstance(cfg.get("optimizer.lr"), float)
    assert cfg.training.steps == 20 and cfg.training.fanouts == [10, 5]


def test_an_unknown_component_name_lists_the_choices():
    err = _error({"sampler": {"name": "unifrom"}})
    assert str(err) == "sampler: 'unifrom' is not one of: uniform, bernoulli, sans; did you mean 'uniform'?"
    assert err.path == "sampler.name"
    err = _error({"model": "distmul"})
    assert str(err) == ("model: 'distmul' is not one of: transe, distmult, complex, rotate, conve, transd, protate, "
                        "tucker, rescal, hole, simple, quate, cp; did you mean 'distmult'?")
    assert err.path == "model.name"
    err = _error({"mutation": "mutate"})  # optional section: none is a choice
    assert str(err).startswith("emu: 'mutate' is not one of: none, mutation, mixup, smoothing")
    assert err.path == "emu.name"


def test_an_option_of_another_component_lists_the_options():
    err = _error({"sampler": {"name": "uniform", "k": 2}})
    assert str(err) == ("sampler.k: not an option of sampler 'uniform' "
                        "(options: num_negatives, exclude_true, chunk_size, filtered)")
    assert err.path == "sampler.k"
    err = _error({"model": {"name": "distmult", "gama": 1.0}})
    assert str(err) == ("model.gama: not an option of interaction 'distmult' (options: dim, gamma); "
                        "did you mean 'gamma'?")
    assert err.path == "model.gama"


@pytest.mark.parametrize("data", [{"emu": False, "keep_prob": 0.5}, {"emu": {"name": "none", "keep_prob": 0.5}},
                                  {"emu.name": "none", "emu.keep_prob": 0.5}])
def test_options_of_a_switched_off_emu_are_refused(data):
    err = _error(data)
    assert str(err) == "emu.keep_prob: given although emu is off (emu: none); remove it"
    assert err.path == "emu.keep_prob"


def test_naming_a_variant_while_switching_emu_off_is_refused():
    err = _error({"emu": False, "mutation": "mixup"})
    assert str(err) == "emu.name: given although EMU is switched off (--no-emu / emu: false)"
    assert err.path == "emu.name"
    cfg = RunConfig.from_dict({"emu": False})
    assert not cfg.emu_enabled and cfg.to_dict()["emu"] == {"name": "none"}


# ---------------------------------------------------------------------- regimes and samplers
def test_all_entity_regime_with_emu_on_is_refused_naming_emu():
    err = _error({"regime": "1vsall"})
    assert str(err) == ("emu: EMU mutates sampled negatives, and regime 1vsall scores every entity instead "
                        "(use --no-emu, or --regime negative_sampling)")
    assert err.path == "emu.name"
    assert _error({"regime": "kvsall", "mutation": "mixup"}).path == "emu.name"
    cfg = RunConfig.from_dict({"regime": "1vsall", "emu": False})
    assert cfg.to_dict()["regime"] == {"name": "1vsall", "label_smoothing": 0.0, "entity_batch_size": None,
                                       "reciprocal": False}


def test_all_entity_regime_refuses_sampler_options_fanouts_and_sparse_tables():
    err = _error({"regime": "1vsall", "emu": False, "num_negatives": 8})
    assert str(err).startswith("sampler.num_negatives: regime 1vsall scores every entity with its own loss; "
                               "the sampler section does not apply")
    assert err.path == "sampler.num_negatives"
    err = _error({"regime": "kvsall", "emu": False, "sampler": "sans"})
    assert str(err).startswith("sampler: sans: regime kvsall scores every entity")
    assert err.path.startswith("sampler")
    err = _error({"regime": "1vsall", "emu": False, "encoder": "rgcn", "fanouts": [5, 5]})
    assert err.path == "training.fanouts" and "regime 1vsall scores every entity" in str(err)
    err = _error({"regime": "1vsall", "emu": False, "encoder.sparse": True})
    assert err.path == "encoder.sparse" and str(err).startswith("encoder.sparse: regime 1vsall updates every row")
    # the sampler's defaults given explicitly are not a change
    RunConfig.from_dict({"regime": "1vsall", "emu": False, "sampler": {"name": "uniform", "num_negatives": 64}})


@pytest.mark.parametrize("encoder", ["rgcn", "compgcn"])
def test_reciprocal_relations_with_a_gnn_encoder_are_refused(encoder):
    err = _error({"reciprocal": True, "encoder": encoder})
    assert str(err).startswith("regime.reciprocal: reciprocal relations are for lookup tables; a GNN encoder "
                               "already passes messages along inverse edges")
    assert err.path == "regime.reciprocal"


def test_reciprocal_relations_with_the_bernoulli_sampler_are_refused():
    err = _error({"reciprocal": True, "sampler": "bernoulli"})
    assert str(err) == ("sampler: bernoulli chooses which side to corrupt, but with reciprocal relations "
                        "every query is a tail query (use --sampler uniform or sans)")
    assert err.path == "sampler.name"
    for sampler in ("uniform", "sans"):
        assert RunConfig.from_dict({"reciprocal": True, "sampler": sampler}).get("regime.reciprocal") is True
    RunConfig.from_dict({"sampler": "bernoulli"})  # bernoulli alone is fine


def test_fanouts_need_a_gnn_encoder_and_one_count_per_layer():
    err = _error({"fanouts": [10, 10]})
    assert str(err) == "training.fanouts: neighbour sampling needs a GNN encoder (--encoder rgcn|compgcn)"
    assert err.path == "training.fanouts"
    err = _error({"encoder": "rgcn", "fanouts": [10]})
    assert str(err) == "training.fanouts: need one positive count (or -1 = all) per encoder layer (2), got [10]"
    assert _error({"encoder": "rgcn", "fanouts": [10, 0]}).path == "training.fanouts"
    assert _error({"encoder": "rgcn", "fanouts": [10, -2]}).path == "training.fanouts"
    assert RunConfig.from_dict({"encoder": "rgcn", "fanouts": [-1, 3]}).training.fanouts == [-1, 3]
    assert RunConfig.from_dict({"encoder": "rgcn", "encoder_layers": 1, "fanouts": [4]}).training.fanouts == [4]


# ---------------------------------------------------------------------- data
def test_dataset_names_are_checked_with_a_suggestion():
    err = _error({"dataset": "fb15k-238"})
    assert str(err).startswith("data.dataset: 'fb15k-238' is not one of: synthetic, generated, fb15k-237, wn18rr, umls")
    assert str(err).endswith("; did you mean 'fb15k-237'?")
    assert err.path == "data.dataset"
    assert "did you mean" not in str(_error({"dataset": "nosuch"}))
    assert RunConfig.from_dict({"dataset": "umls"}).data.dataset == "umls"  # a name; no file is read
    assert RunConfig.from_dict({"dataset": "Synthetic"}).data.dataset == "Synthetic"
    # with files, the name is only a label
    assert RunConfig.from_dict({"train": "t.tsv", "dataset": "mine"}).data.train == "t.tsv"


def test_valid_without_train_is_refused():
    err = _error({"valid": "v.tsv"})
    assert str(err) == "data.valid: given without data.train" and err.path == "data.valid"


# ---------------------------------------------------------------------- gnn
@pytest.mark.parametrize("encoder, gnn", [("lookup", False), ("rgcn", True), ("compgcn", True)])
def test_gnn_is_the_encoders_needs_graph(encoder, gnn):
    assert RunConfig(encoder=encoder).gnn is gnn
    assert RunConfig.from_dict({"encoder": encoder}).gnn is gnn
    assert ENCODERS.get(encoder).needs_graph is gnn


def test_gnn_reads_the_capability_of_the_registered_class(monkeypatch):
    assert ENCODERS.get("lookup") is LookupEncoder
    monkeypatch.setattr(LookupEncoder, "needs_graph", True)
    cfg = RunConfig.from_dict({})
    assert cfg.gnn is True  # and the encoder-dependent defaults follow
    assert (cfg.model.name, cfg.optimizer.name, cfg.get("optimizer.lr")) == ("distmult", "adam", 0.01)
