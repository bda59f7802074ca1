"""The pipeline: turn a :class:`~dgl_emu.config.RunConfig` into components, train, evaluate, save.

Only this module (and the CLI) reads configs and looks names up in registries; every component
it builds takes plain objects and numbers.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .config import NONE, ConfigError, RunConfig
from .data import KnowledgeGraph, UnseenEntityPolicy, load_dataset
from .evaluation import EvaluationResult, RankBasedEvaluator
from .losses import LOSSES, REGULARIZERS, EMULoss
from .models import KGEModel
from .nn.emu import MUTATIONS
from .nn.encoders import ENCODERS
from .nn.encoders.graph_utils import require_graph_device
from .nn.interactions import INTERACTIONS, Interaction
from .registry import OptionError
from .sampling import SAMPLERS, FilteredNegativeSampler, NegativeSampler
from .training import (BatchStrategy, EarlyStopping, FullGraphBatches, JsonLinesLogger, NeighborSampledBatches,
                       Objective, OptimizerSchedule, Trainer)
from .training.callbacks import TensorBoardLogger
from .training.checkpoint import load_checkpoint, save_atomic
from .utils import atomic_write_json, atomic_write_text, tune_cpu_allocator

__all__ = ["load_graph", "build_interaction", "build_model", "build_sampler", "build_objective",
           "build_schedule", "build_batches", "evaluate", "run", "RunResult", "load_run", "default_output"]

log = logging.getLogger(__name__)

#: offsets of each component's seed from the run's seed (one stream per component)
SEED_OFFSETS = {"model": 0, "sampler": 1, "emu": 2, "encoder": 3, "interaction": 4}


def _own(cfg: RunConfig, section: str) -> dict:
    """The options of a section that belong to the component itself (not its wrapper)."""
    from .config import COMPONENTS
    wrapper = COMPONENTS[section].wrapper
    return {k: v for k, v in cfg.components[section].options.items() if k not in wrapper}


def _make(registry, cfg: RunConfig, section: str, context: dict):
    """Build a section's component; bad values become a :class:`ConfigError` naming the section."""
    try:
        return registry.make(cfg.components[section].name, _own(cfg, section), context, where=section)
    except OptionError as e:
        raise ConfigError(str(e), section) from None
    except (ValueError, KeyError) as e:
        raise ConfigError(f"{section}: {e.args[0] if e.args else e}", section) from None


def load_graph(cfg: RunConfig) -> KnowledgeGraph:
    """The knowledge graph named by ``cfg`` (files, a registered dataset, or the generated KG)."""
    data = cfg.data
    unseen = UnseenEntityPolicy.DROP if data.drop_unseen else UnseenEntityPolicy.KEEP
    if data.train is not None:
        return KnowledgeGraph.from_files(data.train, data.valid, data.test, unseen=unseen)
    return load_dataset(data.dataset, data.data_dir, unseen=unseen, seed=cfg.seed)


def build_interaction(cfg: RunConfig) -> Interaction:
    """The interaction of the ``model`` section."""
    return _make(INTERACTIONS, cfg, "model", {"seed": cfg.seed + SEED_OFFSETS["interaction"]})


def build_model(cfg: RunConfig, kg: KnowledgeGraph) -> KGEModel:
    """Encoder + interaction, initialised from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed + SEED_OFFSETS["model"])
    interaction = build_interaction(cfg)
    encoder = _make(ENCODERS, cfg, "encoder", {
        "num_entities": kg.num_entities, "num_relations": kg.num_relations, "interaction": interaction,
        "generator": gen, "seed": cfg.seed + SEED_OFFSETS["encoder"]})
    return KGEModel(encoder, interaction)


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
    return Objective(model, EMULoss(opts["negative_label"], opts["plain_weight"], plain), mutation, reg)


def build_schedule(cfg: RunConfig) -> OptimizerSchedule:
    """The ``optimizer`` section as a schedule (Adam at lr/10 from half-way if asked)."""
    opts = _own(cfg, "optimizer")
    lr = opts.pop("lr")
    switch = cfg.training.steps // 2 if cfg.optimizer.options["switch_to_adam"] else None
    return OptimizerSchedule(cfg.optimizer.name, lr, opts, switch_step=switch)


def build_batches(cfg: RunConfig, graph) -> BatchStrategy:
    """Full-graph batches over ``graph`` (``None`` for lookup tables), or DGL neighbour sampling
    when ``training.fanouts`` is set."""
    if cfg.training.fanouts:
        return NeighborSampledBatches(graph, cfg.training.fanouts)
    return FullGraphBatches(graph)


def evaluate(model: KGEModel, kg: KnowledgeGraph, split: str, *, batch_size: int = 512,
             device: torch.device = torch.device("cpu"), graph=None,
             progress: bool = False) -> EvaluationResult:
    """Filtered (train + valid + test) ranks of ``split``, both sides."""
    evaluator = RankBasedEvaluator(kg.filter_index(), batch_size=batch_size)
    model.eval()
    with torch.no_grad():
        result = evaluator.evaluate(model.scorer(graph), kg.splits[split], device=device,
                                    progress=progress)
    return result


def default_output(cfg: RunConfig) -> Path:
    """``runs/<dataset>-[<encoder>-]<model>-<sampler>-<emu variant|plain>-d<dim>-s<seed>``."""
    name = Path(cfg.data.train).parent.name if cfg.data.train else cfg.data.dataset
    enc = "" if cfg.encoder.name == "lookup" else f"{cfg.encoder.name}-"
    emu = "plain" if cfg.emu.name == NONE else cfg.emu.name
    dim = cfg.model.options["dim"]
    return Path("runs") / f"{name}-{enc}{cfg.model.name}-{cfg.sampler.name}-{emu}-d{dim}-s{cfg.seed}"


@dataclass
class RunResult:
    """What :func:`run` produced: the run directory and the metrics written to it."""

    run_dir: Path
    metrics: dict


def _device(cfg: RunConfig) -> torch.device:
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise ConfigError(f"device: {cfg.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)",
                          "device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: CUDA was asked for but torch has no CUDA device here", "device")
    return device


def run(cfg: RunConfig, *, resume: bool = True) -> RunResult:
    """Train and evaluate ``cfg``; write the run directory; resume an unfinished run.

    The run directory holds ``config.yaml`` (resolved), ``log.jsonl`` (per step),
    ``best.pt`` (best validation MRR), ``last.pt`` (resumable), ``metrics.json`` and
    ``curve.png``.
    """
    cfg.validate()
    tune_cpu_allocator()
    device = _device(cfg)
    out = Path(cfg.output) if cfg.output else default_output(cfg)
    config_path = out / "config.yaml"
    if config_path.exists() and resume and not _same_run(config_path.read_text(), cfg):
        raise ConfigError(f"output: {out} holds a run with another configuration; choose another "
                          f"--output or pass --fresh", "output")
    started = time.perf_counter()
    kg = load_graph(cfg)
    model = build_model(cfg, kg).to(device)
    graph = _graph_for(model, kg, device)
    batches = build_batches(cfg, graph)
    objective = build_objective(cfg, model)
    sampler = build_sampler(cfg, kg)
    schedule = build_schedule(cfg)
    valid = "valid" if "valid" in kg.splits else None
    batch_size = cfg.training.eval_batch_size

    def validate(m: KGEModel) -> float:
        return evaluate(m, kg, valid, batch_size=batch_size, device=device, graph=graph).get("mrr")

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, cfg.to_yaml())
    callbacks = [JsonLinesLogger(out / "log.jsonl"), TensorBoardLogger(out / "tensorboard")]
    if cfg.training.patience:
        callbacks.append(EarlyStopping(cfg.training.patience))
    trainer = Trainer(objective, sampler, kg.splits["train"], num_steps=cfg.training.steps,
                      batch_size=cfg.training.batch_size, optimizer=schedule, batches=batches,
                      device=device, seed=cfg.seed, validate=validate if valid else None,
                      eval_every=cfg.training.eval_every, run_dir=out,  # checkpoints even with no valid split
                      callbacks=callbacks, progress=cfg.progress)
    if resume and trainer.resume():
        log.info("resumed %s at step %d", out, trainer.step)
    elif not resume and (out / "last.pt").exists():
        (out / "last.pt").unlink()
    trainer.fit()
    if trainer.best_step is None:  # no validation split: keep the final weights as "best"
        save_atomic(out / "best.pt", {"model": model.state_dict(), "step": trainer.step, "valid_mrr": None})
    best = load_checkpoint(out / "best.pt", device)
    model.load_state_dict(best["model"])
    metrics = {"config": cfg.to_dict(), "steps": trainer.step, "best_step": best["step"],
               "best_valid_mrr": best["valid_mrr"], "train_seconds": trainer.train_seconds,
               "wall_seconds": time.perf_counter() - started,
               "stop_reason": trainer.stop_reason, "validations": trainer.validations,
               "dataset": kg.statistics()}
    for split in ("valid", "test"):
        if split in kg.splits:
            res = evaluate(model, kg, split, batch_size=batch_size, device=device, graph=graph,
                           progress=cfg.progress)
            metrics[split] = res.metrics()
    atomic_write_json(out / "metrics.json", metrics)
    from .plotting import plot_training_curve
    plot_training_curve(out / "log.jsonl", out / "curve.png", title=out.name)
    return RunResult(out, metrics)


def _same_run(saved: str, cfg: RunConfig) -> bool:
    """Whether a saved ``config.yaml`` describes the run ``cfg`` (progress bars do not count)."""
    import yaml
    try:
        old = RunConfig.from_dict(yaml.safe_load(saved) or {}).to_dict()
    except (ConfigError, yaml.YAMLError):
        return False
    new = cfg.to_dict()
    old.pop("progress", None)
    new.pop("progress", None)
    return old == new


def load_run(run_dir: Path, device: Optional[str] = None):
    """Rebuild ``(config, kg, model, graph)`` of a finished run with its best weights."""
    from .config import load_config
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "best.pt").exists():
        raise ConfigError(f"{run_dir}: not a run directory (needs config.yaml and best.pt)")
    cfg = load_config(run_dir / "config.yaml")
    if device is not None:
        cfg = cfg.updated(device=device)
    dev = _device(cfg)
    kg = load_graph(cfg)
    model = build_model(cfg, kg).to(dev)
    state = load_checkpoint(run_dir / "best.pt", dev)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, kg, model, _graph_for(model, kg, dev)


def _graph_for(model: KGEModel, kg: KnowledgeGraph, device: torch.device):
    """The training graph on ``device`` if the encoder needs one (never valid/test edges)."""
    if not model.encoder.needs_graph:
        return None
    graph = kg.graph("train")
    require_graph_device(graph, device)
    return graph.to(device)
