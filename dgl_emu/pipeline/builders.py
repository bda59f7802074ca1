"""Builders: a :class:`~dgl_emu.config.RunConfig` turned into components, each from its registry.

Only the pipeline (and the CLI) reads configurations and looks names up in registries; every
component it builds takes plain objects and numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..config import COMPONENTS, NONE, ConfigError, RunConfig
from ..data import (SPLITS, KnowledgeGraph, UnseenEntityPolicy, generate_large_kg, load_dataset,
                    with_reciprocal_relations)
from ..data.cache import cached_load
from ..data.datasets import GENERATED
from ..data.inputs import INPUT_FORMATS, InputFiles, load_input
from ..evaluation import EVALUATORS
from ..losses import LOSSES, REGULARIZERS, EMULoss
from ..models import KGEModel
from ..naming import run_name
from ..nn.emu import MUTATIONS
from ..nn.encoders import ENCODERS
from ..nn.encoders.graph_utils import require_graph_device
from ..nn.interactions import INTERACTIONS, Interaction
from ..registry import OptionError
from ..sampling import SAMPLERS, FilteredNegativeSampler, NegativeSampler
from ..training import REGIMES, Regime, BatchStrategy, FullGraphBatches, NeighborSampledBatches, Objective, OptimizerSchedule

__all__ = ["load_graph", "build_regime", "build_interaction", "build_model", "build_sampler", "build_objective",
           "build_schedule", "build_batches", "build_evaluator", "training_graph", "device_of", "default_output", "SEED_OFFSETS"]

#: relations of ``--dataset generated`` unless ``data.relations`` says (``speed scale``'s graphs)
GENERATED_RELATIONS = 200
#: offsets of each component's seed from the run's seed (one stream per component)
SEED_OFFSETS = {"model": 0, "sampler": 1, "emu": 2, "encoder": 3, "interaction": 4, "evaluation": 5}


def _own(cfg: RunConfig, section: str) -> dict:
    """The options of a section that belong to the component itself (not its wrapper)."""
    wrapper = COMPONENTS[section].wrapper
    return {k: v for k, v in cfg.components[section].options.items() if k not in wrapper}


def _make(registry, cfg: RunConfig, section: str, context: dict):
    """Build a section's component; bad values become a :class:`ConfigError` naming the option
    (:meth:`ConfigError.of_component`) or the section."""
    name = cfg.components[section].name
    try:
        return registry.make(name, _own(cfg, section), context, where=section)
    except OptionError as e:
        raise ConfigError(str(e), section) from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError.of_component(section, registry.options(name), e) from None


def load_graph(cfg: RunConfig, *, files: Optional[Dict[str, Path]] = None,
               id_maps: Tuple[Optional[Path], Optional[Path]] = (None, None)) -> KnowledgeGraph:
    """The knowledge graph named by ``cfg`` (files, a registered dataset, or the generated KG),
    with reciprocal relations if ``regime.reciprocal`` is set.

    Parameters
    ----------
    cfg : RunConfig
        Its ``data`` section names the data.
    files : dict of str to Path, optional
        Where the files are (from a run's record, :func:`~dgl_emu.pipeline.datarecord.located`):
        custom files by split, or a registered dataset's files (their folder is read); default:
        where ``cfg`` says.
    id_maps : (Path or None, Path or None)
        ``entities.dict`` and ``relations.dict`` files that fix the ids of custom files' labels
        (a run's recorded id maps: they replace ``data.entity_dict`` / ``data.relation_dict``).

    Custom files are read in ``data.format`` (:data:`~dgl_emu.data.inputs.INPUT_FORMATS`) through
    the binary cache unless ``data.cache`` is false; ``--dataset generated`` is
    :func:`~dgl_emu.data.generate_large_kg` (``data.entities``, ``data.triples`` (default 2E),
    ``data.relations`` (default 200), the run's seed), as ``speed scale`` builds it.
    """
    data = cfg.data
    unseen = UnseenEntityPolicy.DROP if data.drop_unseen else UnseenEntityPolicy.KEEP
    if data.train is not None:
        given = files or {s: Path(p) for s, p in (("train", data.train), ("valid", data.valid), ("test", data.test),
                                                  ("entity_dict", data.entity_dict),
                                                  ("relation_dict", data.relation_dict)) if p is not None}
        inputs = InputFiles({s: given[s] for s in SPLITS if s in given},
                            entities=id_maps[0] or given.get("entity_dict"),
                            relations=id_maps[1] or given.get("relation_dict"),
                            num_entities=data.entities, num_relations=data.relations, columns=data.columns)
        fmt = INPUT_FORMATS.canonical(data.format)
        name = Path(inputs.splits["train"]).parent.name

        def parse() -> KnowledgeGraph:
            return load_input(fmt, inputs, unseen=unseen, name=name)

        options = {"unseen": unseen.value, "columns": data.columns, "entities": data.entities,
                   "relations": data.relations}
        kg = (cached_load(fmt, options, inputs.paths(), parse, name=name)
              if data.cache and INPUT_FORMATS.get(fmt).cacheable else parse())
    elif data.dataset.lower() == GENERATED:
        E = data.entities
        kg = generate_large_kg(E, data.triples or 2 * E, data.relations or GENERATED_RELATIONS, seed=cfg.seed,
                               name=GENERATED)
    else:
        data_dir = Path(files["train"]).parent.parent if files and "train" in files else data.data_dir
        kg = load_dataset(data.dataset, data_dir, unseen=unseen, seed=cfg.seed, cache=data.cache)
    return with_reciprocal_relations(kg) if cfg.regime.options["reciprocal"] else kg


def build_regime(cfg: RunConfig, kg: KnowledgeGraph) -> Regime:
    """The training regime of the ``regime`` section, with the negative sampler of ``kg`` (the
    ``sampler`` section) when the regime draws negatives."""
    context = {"reciprocal": cfg.regime.options["reciprocal"]}
    if REGIMES.get(cfg.regime.name).uses_sampler:
        context["sampler"] = build_sampler(cfg, kg)
    return _make(REGIMES, cfg, "regime", context)


def build_interaction(cfg: RunConfig) -> Interaction:
    """The interaction of the ``model`` section."""
    return _make(INTERACTIONS, cfg, "model", {"seed": cfg.seed + SEED_OFFSETS["interaction"]})


def build_model(cfg: RunConfig, kg: KnowledgeGraph) -> KGEModel:
    """Encoder + interaction, initialised from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed + SEED_OFFSETS["model"])
    interaction = build_interaction(cfg)
    context = {"num_entities": kg.num_entities, "num_relations": kg.num_relations, "interaction": interaction,
               "generator": gen, "seed": cfg.seed + SEED_OFFSETS["encoder"]}
    if REGIMES.get(cfg.regime.name).all_entities and "sparse" in ENCODERS.options(cfg.encoder.name):
        context["sparse"] = False  # every row is updated each step
    encoder = _make(ENCODERS, cfg, "encoder", context)
    offset = kg.num_relations // 2 if cfg.regime.options["reciprocal"] else None
    return KGEModel(encoder, interaction, reciprocal_offset=offset)


def build_sampler(cfg: RunConfig, kg: KnowledgeGraph) -> NegativeSampler:
    """The negative sampler of the ``sampler`` section (seeded ``seed + 1``), filtered if asked."""
    sampler = _make(SAMPLERS, cfg, "sampler", {
        "kg": kg, "num_entities": kg.num_entities, "num_relations": kg.num_relations,
        "seed": cfg.seed + SEED_OFFSETS["sampler"], "progress": cfg.progress})
    if cfg.sampler.options["filtered"]:
        sampler = FilteredNegativeSampler(sampler, kg.filter_index(("train",)))
    return sampler


def build_objective(cfg: RunConfig, model: KGEModel) -> Objective:
    """Loss, EMU layer (seeded ``seed + 2``) and regulariser around ``model``."""
    plain = _make(LOSSES, cfg, "loss", {})
    reg = _make(REGULARIZERS, cfg, "regularizer", {}) if cfg.regularizer.options.get("weight") else None
    if cfg.emu.name == NONE:
        return Objective(model, plain, None, reg)
    mutation = _make(MUTATIONS, cfg, "emu", {"seed": cfg.seed + SEED_OFFSETS["emu"]})
    opts = cfg.emu.options
    return Objective(model, EMULoss(opts["negative_label"], opts["plain_weight"], plain), mutation, reg,
                     separate_negatives=opts["separate_negatives"])


def build_schedule(cfg: RunConfig) -> OptimizerSchedule:
    """The ``optimizer`` section as a schedule (Adam at lr/10 from half-way if asked; a linear
    decay to 0 at the last step from ``decay_from`` if given)."""
    opts = _own(cfg, "optimizer")
    lr = opts.pop("lr")
    steps = cfg.training.steps
    switch = steps // 2 if cfg.optimizer.options["switch_to_adam"] else None
    decay = cfg.optimizer.options["decay_from"]
    return OptimizerSchedule(cfg.optimizer.name, lr, opts, switch_step=switch, decay_start=decay,
                             decay_end=None if decay is None else steps)


def build_evaluator(cfg: RunConfig, kg: KnowledgeGraph):
    """The evaluation protocol of the ``evaluator`` section, filtered by every split of ``kg``."""
    return _make(EVALUATORS, cfg, "evaluator", {"filter_index": kg.filter_index(),
                                                 "batch_size": cfg.training.eval_batch_size,
                                                 "seed": cfg.seed + SEED_OFFSETS["evaluation"]})


def build_batches(cfg: RunConfig, graph) -> BatchStrategy:
    """Full-graph batches over ``graph`` (``None`` for lookup tables), or DGL neighbour sampling
    when ``training.fanouts`` is set."""
    if cfg.training.fanouts:
        return NeighborSampledBatches(graph, cfg.training.fanouts)
    return FullGraphBatches(graph)


def default_output(cfg: RunConfig) -> Path:
    """``runs/<dataset>-[<encoder>-]<model>-<sampler|regime>[-rec]-<emu variant|plain>[-2draws]-d<dim>-s<seed>``
    (an all-entity regime in the sampler's place; ``rec``: reciprocal relations): the run's
    :func:`~dgl_emu.naming.run_name`, the mutation named ``mutation``."""
    return Path("runs") / run_name(cfg, mutation_label="mutation")



def device_of(cfg: RunConfig) -> torch.device:
    """The run's torch device, checked to exist here."""
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise ConfigError(f"device: {cfg.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)",
                          "device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: CUDA was asked for but torch has no CUDA device here", "device")
    return device



def training_graph(model: KGEModel, kg: KnowledgeGraph, device: torch.device):
    """The training graph on ``device`` if the encoder needs one (never valid/test edges)."""
    if not model.encoder.needs_graph:
        return None
    graph = kg.graph("train")
    require_graph_device(graph, device)
    return graph.to(device)
