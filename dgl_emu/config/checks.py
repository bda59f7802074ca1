"""Validation of a :class:`~dgl_emu.config.RunConfig` against the registries and value ranges."""
from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any, Dict

from ..registry import OptionError, coerce, did_you_mean
from .errors import Component, ConfigError
from .sections import COMPONENTS, NONE, PLAIN, TOP_LEVEL, registry_of

if TYPE_CHECKING:  # pragma: no cover
    from .run_config import RunConfig

__all__ = ["check_config", "resolved_options"]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def resolved_options(section: str, comp: Component) -> Dict[str, Any]:
    """Every option of ``comp`` (given or default), as plain YAML-ready values."""
    spec = COMPONENTS[section]
    if comp.name in (None, NONE):
        return {}
    out = {}
    for key, opt in spec.options(comp.name).items():
        if key in comp.options:
            out[key] = _plain(comp.options[key])
        elif not opt.required:
            out[key] = _plain(opt.default)
    return out


def _check_name(cfg: "RunConfig", section: str) -> None:
    spec, comp = COMPONENTS[section], cfg.components[section]
    if spec.optional and str(comp.name).lower() == NONE:
        comp.name = NONE
        return
    registry = spec.registry()
    if not isinstance(comp.name, str) or comp.name not in registry:
        names = spec.names()
        raise ConfigError(f"{section}: {comp.name!r} is not one of: {', '.join(names)}"
                          f"{did_you_mean(str(comp.name), names)}", f"{section}.name")
    comp.name = registry.canonical(comp.name)


def _check_options(cfg: "RunConfig", section: str) -> None:
    spec, comp = COMPONENTS[section], cfg.components[section]
    known = spec.options(comp.name)
    lenient = cfg.lenient.get(section, set())
    checked = {}
    for key, value in comp.options.items():
        if key not in known:
            if key in lenient:  # an option of another component, in a dgl-emu 0.1 file
                continue
            if comp.name == NONE:
                raise ConfigError(f"{section}.{key}: given although {section} is off ({section}: none); "
                                  f"remove it", f"{section}.{key}")
            family = spec.registry().family
            raise ConfigError(f"{section}.{key}: not an option of {family} {comp.name!r} (options: "
                              f"{', '.join(known) or 'none'}){did_you_mean(key, list(known))}",
                              f"{section}.{key}")
        try:
            checked[key] = coerce(value, known[key].hint, f"{section}.{key}")
        except OptionError as e:
            raise ConfigError(str(e), f"{section}.{key}") from None
    for key, value in spec.defaults.items():
        if key in known and key not in checked:
            checked[key] = value
    if comp.name != NONE:
        for key, opt in spec.wrapper.items():
            checked.setdefault(key, opt.default)
    comp.options = checked


def _encoder_defaults(cfg: "RunConfig") -> None:
    """RotatE and Adagrad at 0.1 on lookup tables (the paper's); DistMult and Adam at 0.01 on GNN
    encoders (R-GCN with two tanh layers does not train with Adagrad at 0.1)."""
    gnn = cfg.gnn
    if cfg.model.name is None:
        cfg.model.name = "distmult" if gnn else "rotate"
    if cfg.optimizer.name is None:
        cfg.optimizer.name = "adam" if gnn else "adagrad"
    if cfg.optimizer.options.get("lr") is None:
        cfg.optimizer.options["lr"] = 0.01 if gnn else 0.1


def _positive(v) -> bool:
    return v >= 1


#: dotted path -> (test, what is expected); checked when the option exists
RANGES: Dict[str, tuple] = {
    "seed": (lambda v: 0 <= v <= 2 ** 62, "an integer in [0, 2^62] (each component's seed adds a small "
             "offset to it, and torch's seeds are 64-bit)"),
    "training.steps": (_positive, "a positive integer"),
    "training.batch_size": (_positive, "a positive integer"),
    "training.eval_every": (_positive, "a positive integer"),
    "training.eval_batch_size": (_positive, "a positive integer"),
    "training.patience": (_positive, "a positive integer"),
    "training.checkpoint_every_seconds": (lambda v: v > 0, "a positive number of seconds (null: checkpoint at "
                                           "validations only)"),
    "model.dim": (_positive, "a positive integer"),
    "sampler.num_negatives": (_positive, "a positive integer"),
    "sampler.k": (_positive, "a positive integer"),
    "sampler.num_walks": (_positive, "a positive integer"),
    "encoder.num_layers": (_positive, "a positive integer"),
    "emu.keep_prob": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "emu.negative_label": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "emu.plain_weight": (lambda v: v >= 0, ">= 0"),
    "encoder.dropout": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optimizer.lr": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                     and math.isfinite(v) and v > 0, "a positive finite number"),
    "regularizer.weight": (lambda v: v >= 0, ">= 0"),
    "optimizer.max_grad_norm": (lambda v: v > 0, "positive"),
    "regime.label_smoothing": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "regime.entity_batch_size": (_positive, "a positive integer"),
    "sampler.chunk_size": (_positive, "a positive integer"),
    "evaluator.num_negatives": (_positive, "a positive integer"),
    "evaluator.max_scores": (_positive, "a positive integer"),
}


def _check_ranges(cfg: "RunConfig") -> None:
    for path, (ok, what) in RANGES.items():
        value = cfg.get(path)
        if value is not None and not ok(value):
            raise ConfigError(f"{path}: must be {what}, got {value}", path)
    fanouts, layers = cfg.training.fanouts, resolved_options("encoder", cfg.encoder).get("num_layers")
    if fanouts is not None:
        if not cfg.gnn:
            raise ConfigError("training.fanouts: neighbour sampling needs a GNN encoder "
                              "(--encoder rgcn|compgcn)", "training.fanouts")
        if len(fanouts) != layers or any(f == 0 or f < -1 for f in fanouts):
            raise ConfigError(f"training.fanouts: need one positive count (or -1 = all) per encoder "
                              f"layer ({layers}), got {fanouts}", "training.fanouts")
    decay = cfg.get("optimizer.decay_from")
    if decay is not None and not 0 <= decay < cfg.training.steps:
        raise ConfigError(f"optimizer.decay_from: must be a step in [0, training.steps = "
                          f"{cfg.training.steps}), got {decay}", "optimizer.decay_from")
    data = cfg.plain["data"]
    if data["train"] is None and (data["valid"] or data["test"]):
        raise ConfigError("data.valid: given without data.train", "data.valid")


def _check_required(cfg: "RunConfig") -> None:
    """Every option a component needs (one without a default, e.g. ``evaluator.num_negatives``
    of the sampled protocol) is given."""
    for section, comp in cfg.components.items():
        if comp.name in (None, NONE):
            continue
        spec = COMPONENTS[section]
        for key, opt in spec.options(comp.name).items():
            if opt.required and comp.options.get(key) is None:
                raise ConfigError(f"{section}: {spec.registry().family} {comp.name!r} needs {section}.{key} (set "
                                  f"it with --set {section}.{key}=VALUE)", f"{section}.{key}")


def _check_sparse(cfg: "RunConfig") -> None:
    """What sparse tables cannot do, when ``encoder.sparse`` asks for them (when it is left to the
    table's size, the run checks the same once the data are loaded)."""
    if not cfg.get("encoder.sparse"):
        return
    if cfg.get("optimizer.max_grad_norm") is not None:
        raise ConfigError("optimizer.max_grad_norm: gradient clipping needs dense gradients, and encoder.sparse "
                          "asks for sparse tables (drop one of them)", "optimizer.max_grad_norm")
    if cfg.get("regularizer.weight") and registry_of("regularizer").get(cfg.regularizer.name).whole_tables:
        raise ConfigError(f"regularizer: {cfg.regularizer.name!r} changes every row of the tables each step, and "
                          f"encoder.sparse asks for sparse tables (use --regularizer lp, or drop encoder.sparse)",
                          "regularizer.name")


def _check_fanouts(cfg: "RunConfig") -> None:
    """Edge and self-loop dropout act on the full graph, which neighbour sampling never builds."""
    if not cfg.training.fanouts:
        return
    for key in ("edge_dropout", "self_loop_dropout"):
        if cfg.get(f"encoder.{key}"):
            raise ConfigError(f"encoder.{key}: drops edges of the full graph, and --fanouts trains on sampled "
                              f"neighbourhoods (drop one of them)", f"encoder.{key}")


def _check_regime(cfg: "RunConfig") -> None:
    """Combinations a regime does not support are refused, naming the option to change."""
    regime, reciprocal = cfg.regime.name, cfg.regime.options["reciprocal"]
    if reciprocal and cfg.gnn:
        raise ConfigError("regime.reciprocal: reciprocal relations are for lookup tables; a GNN encoder "
                          "already passes messages along inverse edges (use --encoder lookup or drop "
                          "--reciprocal)", "regime.reciprocal")
    if reciprocal and cfg.sampler.name == "bernoulli":
        raise ConfigError("sampler: bernoulli chooses which side to corrupt, but with reciprocal "
                          "relations every query is a tail query (use --sampler uniform or sans)", "sampler.name")
    if not registry_of("regime").get(regime).all_entities:
        return
    if cfg.emu.name != NONE:
        raise ConfigError(f"emu: EMU mutates sampled negatives, and regime {regime} scores every entity "
                          f"instead (use --no-emu, or --regime negative_sampling)", "emu.name")
    if cfg.training.fanouts:
        raise ConfigError(f"training.fanouts: regime {regime} scores every entity, which needs every "
                          f"entity's representation (full-graph batches): drop --fanouts", "training.fanouts")
    if cfg.get("encoder.sparse"):
        raise ConfigError(f"encoder.sparse: regime {regime} updates every row each step; sparse tables "
                          f"bring nothing (set encoder.sparse to false)", "encoder.sparse")
    for section in ("sampler", "loss"):
        spec, comp = COMPONENTS[section], cfg.components[section]
        given = {k: v for k, v in resolved_options(section, comp).items()}
        default = resolved_options(section, Component(spec.default_name, dict(spec.defaults)))
        if comp.name != spec.default_name or given != default:
            changed = sorted(k for k in set(given) | set(default) if given.get(k) != default.get(k))
            what = f"{section}: {comp.name}" if comp.name != spec.default_name else f"{section}.{changed[0]}"
            raise ConfigError(f"{what}: regime {regime} scores every entity with its own loss; the "
                              f"{section} section does not apply (remove it, or use --regime "
                              f"negative_sampling)", what.split(":")[0])


def _check_dataset(cfg: "RunConfig") -> None:
    from ..data.datasets import DATASETS, GENERATED, SYNTHETIC  # start-up cost: the configuration imports no torch
    name, data = cfg.data.dataset, cfg.plain["data"]
    if cfg.data.train is None and name.lower() not in (SYNTHETIC, GENERATED) and name not in DATASETS:
        names = [SYNTHETIC, GENERATED] + DATASETS.names()
        raise ConfigError(f"data.dataset: {name!r} is not one of: {', '.join(names)}"
                          f"{did_you_mean(name, names)}", "data.dataset")
    for key in ("entities", "relations", "triples"):
        if data[key] is not None and data[key] < 1:
            raise ConfigError(f"data.{key}: must be a positive count, got {data[key]}", f"data.{key}")
    if cfg.data.train is None:
        for key in ("entity_dict", "relation_dict"):
            if data[key] is not None:
                raise ConfigError(f"data.{key}: an id map of custom files, given without data.train", f"data.{key}")
        if name.lower() == GENERATED:
            if data["entities"] is None or data["entities"] < 2:
                raise ConfigError("data.entities: the generated graph needs its number of entities (at least 2), "
                                  "e.g. --set data.entities=5000000", "data.entities")
        else:
            for key in ("entities", "relations", "triples"):
                if data[key] is not None:
                    raise ConfigError(f"data.{key}: a count for the generated graph or for id files without "
                                      f"dictionaries; dataset {name!r} has its own", f"data.{key}")
        return
    from ..data.columnar import COLUMN_ORDERS  # start-up cost, as above
    from ..data.inputs import INPUT_FORMATS  # start-up cost, as above
    if data["format"] not in INPUT_FORMATS:
        raise ConfigError(f"data.format: {data['format']!r} is not one of: {', '.join(INPUT_FORMATS.names())}"
                          f"{did_you_mean(data['format'], INPUT_FORMATS.names())}", "data.format")
    if data["columns"] not in COLUMN_ORDERS:
        raise ConfigError(f"data.columns: the order of the fields, one of {', '.join(COLUMN_ORDERS)}; got "
                          f"{data['columns']!r}", "data.columns")
    fmt = INPUT_FORMATS.canonical(data["format"])
    if fmt != "labels":
        for what, key, count in (("entity", "entity_dict", "entities"), ("relation", "relation_dict", "relations")):
            if data[key] is None and data[count] is None:
                raise ConfigError(f"data.{count}: input format {fmt} holds no labels: give the {what} dictionary "
                                  f"(--{key.replace('_', '-')}) or the number of {what} ids (--set data.{count}=N)",
                                  f"data.{count}")
    elif data["entities"] is not None or data["relations"] is not None:
        key = "entities" if data["entities"] is not None else "relations"
        raise ConfigError(f"data.{key}: labelled triples count their own labels (to keep labels that occur in no "
                          f"triple, give --entity-dict / --relation-dict)", f"data.{key}")
    if data["triples"] is not None:
        raise ConfigError("data.triples: the size of the generated graph (--dataset generated)", "data.triples")


def _dry_build(cfg: "RunConfig") -> None:
    """Build the components whose checks need no data, so their own range checks run now (on
    PyTorch's ``meta`` device: shapes only, so a huge ``dim`` allocates nothing here). The
    encoder is built for a graph of one entity and one relation: what it checks of its options
    and its interaction (R-GCN's ``num_bases`` dividing the width, CompGCN's equal widths)."""
    import torch  # start-up cost: the configuration imports no torch until it is checked
    from ..losses import EMULoss  # start-up cost, as above
    built = {}
    for section, context in (("model", {"seed": 0}), ("encoder", {}), ("loss", {}), ("regularizer", {}),
                             ("emu", {"seed": 0}),
                             ("optimizer", {"params": [torch.zeros(1, requires_grad=True)]})):
        comp = cfg.components[section]
        if comp.name == NONE:
            continue
        if section == "encoder":
            context = {"num_entities": 1, "num_relations": 1, "interaction": built["model"],
                       "generator": torch.Generator(), "seed": 0}
        spec = COMPONENTS[section]
        own = {k: v for k, v in comp.options.items() if k not in spec.wrapper}
        try:
            with torch.device("meta"):
                built[section] = spec.registry().make(comp.name, own, context, where=section)
            if section == "emu":
                EMULoss(comp.options["negative_label"], comp.options["plain_weight"])
        except (ValueError, TypeError) as e:
            raise ConfigError.of_component(section, spec.registry().options(comp.name), e) from None


def _check_plain(cfg: "RunConfig") -> None:
    for section, fields in PLAIN.items():
        for key, (hint, _) in fields.items():
            try:
                cfg.plain[section][key] = coerce(cfg.plain[section][key], hint, f"{section}.{key}")
            except OptionError as e:
                raise ConfigError(str(e), f"{section}.{key}") from None
    for key, (hint, _) in TOP_LEVEL.items():
        try:
            cfg.top[key] = coerce(cfg.top[key], hint, key)
        except OptionError as e:
            raise ConfigError(str(e), key) from None


def check_config(cfg: "RunConfig") -> None:
    """Everything :meth:`RunConfig.validate` promises, in order."""
    _check_name(cfg, "encoder")
    _encoder_defaults(cfg)
    for section in COMPONENTS:
        _check_name(cfg, section)
        _check_options(cfg, section)
    _check_plain(cfg)
    _check_required(cfg)
    _check_ranges(cfg)
    _check_regime(cfg)
    _check_sparse(cfg)
    _check_fanouts(cfg)
    _check_dataset(cfg)
    _dry_build(cfg)
