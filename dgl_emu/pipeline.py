"""The pipeline: turn a :class:`~dgl_emu.config.RunConfig` into components, train, evaluate, save.

Only this module (and the CLI) reads configs and looks names up in registries; every component
it builds takes plain objects and numbers.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from .config import ConfigError, LossKind, MutationKind, RunConfig, SamplerKind
from .data import KnowledgeGraph, UnseenEntityPolicy, load_dataset
from .evaluation import EvaluationResult, RankBasedEvaluator
from .losses import CrossEntropyLoss, EMULoss, LpRegularizer, MarginRankingLoss, SoftplusLoss
from .models import KGEModel
from .nn.emu import EmbeddingMixup, EmbeddingMutation
from .nn.encoders import ENCODERS, CompGCNEncoder, Decomposition, Encoder, LookupEncoder, RGCNEncoder
from .nn.encoders.graph_utils import require_graph_device
from .nn.interactions import INTERACTIONS, Interaction
from .sampling import (BernoulliNegativeSampler, FilteredNegativeSampler, NegativeSampler,
                       SANSNegativeSampler, UniformNegativeSampler)
from .training import EarlyStopping, JsonLinesLogger, Objective, OptimizerKind, OptimizerSchedule, Trainer
from .training.minibatch import MiniBatchTrainer
from .training.trainer import save_atomic
from .training.callbacks import TensorBoardLogger
from .utils import atomic_write_json, atomic_write_text, tune_cpu_allocator

__all__ = ["load_graph", "build_interaction", "build_model", "build_sampler", "build_objective",
           "evaluate", "run", "RunResult", "load_run", "default_output", "ENCODER_BUILDERS"]

log = logging.getLogger(__name__)

#: name -> ``builder(config, kg, interaction, generator) -> Encoder``; extended by encoder modules
ENCODER_BUILDERS: Dict[str, Callable[..., Encoder]] = {
    "lookup": lambda cfg, kg, inter, gen: LookupEncoder(kg.num_entities, kg.num_relations, inter, gen),
    "rgcn": lambda cfg, kg, inter, gen: RGCNEncoder(
        kg.num_entities, kg.num_relations, inter, num_layers=cfg.encoder_layers,
        decomposition=Decomposition(cfg.decomposition), num_bases=cfg.num_bases,
        dropout=cfg.encoder_dropout, generator=gen, seed=cfg.seed + 3),
    "compgcn": lambda cfg, kg, inter, gen: CompGCNEncoder(
        kg.num_entities, kg.num_relations, inter, num_layers=cfg.encoder_layers,
        composition=cfg.composition, dropout=cfg.encoder_dropout, generator=gen, seed=cfg.seed + 3),
}


def load_graph(cfg: RunConfig) -> KnowledgeGraph:
    """The knowledge graph named by ``cfg`` (files, a registered dataset, or the generated KG)."""
    unseen = UnseenEntityPolicy.DROP if cfg.drop_unseen else UnseenEntityPolicy.KEEP
    if cfg.train is not None:
        return KnowledgeGraph.from_files(cfg.train, cfg.valid, cfg.test, unseen=unseen)
    return load_dataset(cfg.dataset, cfg.data_dir, unseen=unseen, seed=cfg.seed)


def build_interaction(cfg: RunConfig) -> Interaction:
    """The interaction named by ``cfg.model``."""
    cls = INTERACTIONS.get(cfg.model)
    kwargs = {"p": cfg.p_norm} if INTERACTIONS.canonical(cfg.model) == "transe" else {}
    try:
        return cls(dim=cfg.dim, gamma=cfg.gamma, **kwargs)
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None


def build_model(cfg: RunConfig, kg: KnowledgeGraph) -> KGEModel:
    """Encoder + interaction, initialised from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed)
    interaction = build_interaction(cfg)
    name = ENCODERS.canonical(cfg.encoder)
    if name not in ENCODER_BUILDERS:
        raise ConfigError(f"encoder: {cfg.encoder!r} has no builder")
    try:
        encoder = ENCODER_BUILDERS[name](cfg, kg, interaction, gen)
    except ValueError as e:
        raise ConfigError(f"encoder: {e}") from None
    return KGEModel(encoder, interaction)


def build_sampler(cfg: RunConfig, kg: KnowledgeGraph) -> NegativeSampler:
    """The negative sampler of ``cfg`` (seeded ``seed + 1``), filtered if asked."""
    seed, K, E, R = cfg.seed + 1, cfg.num_negatives, kg.num_entities, kg.num_relations
    train = kg.splits["train"]
    builders = {
        SamplerKind.UNIFORM: lambda: UniformNegativeSampler(E, K, R, seed=seed),
        SamplerKind.BERNOULLI: lambda: BernoulliNegativeSampler(train, E, R, K, seed=seed),
        SamplerKind.SANS: lambda: SANSNegativeSampler(kg.graph("train"), K, k=cfg.sans_k,
                                                      num_walks=cfg.sans_walks, num_relations=R,
                                                      seed=seed, progress=cfg.progress),
    }
    sampler = builders[cfg.sampler]()
    if cfg.filtered:
        sampler = FilteredNegativeSampler(sampler, kg.filter_index(("train",)))
    return sampler


def build_objective(cfg: RunConfig, model: KGEModel) -> Objective:
    """Loss, EMU layer (seeded ``seed + 2``) and regulariser around ``model``."""
    plain = {LossKind.CE: lambda: CrossEntropyLoss(),
             LossKind.SOFTPLUS: lambda: SoftplusLoss(cfg.adversarial_temperature),
             LossKind.MARGIN: lambda: MarginRankingLoss(cfg.margin)}[cfg.loss]()
    reg = LpRegularizer(cfg.regularizer_weight, cfg.regularizer_p) if cfg.regularizer_weight else None
    if not cfg.emu:
        return Objective(model, plain, None, reg)
    mutation = {MutationKind.MUTATION: lambda: EmbeddingMutation(cfg.keep_prob, seed=cfg.seed + 2),
                MutationKind.MIXUP: lambda: EmbeddingMixup(seed=cfg.seed + 2)}[cfg.mutation]()
    return Objective(model, EMULoss(cfg.negative_label, cfg.plain_weight, plain), mutation, reg)


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
    """``runs/<dataset>-<encoder>-<model>-<sampler>-<emu|plain>-d<dim>-s<seed>``."""
    name = Path(cfg.train).parent.name if cfg.train else cfg.dataset
    enc = "" if cfg.encoder == "lookup" else f"{cfg.encoder}-"
    emu = cfg.mutation.value if cfg.emu else "plain"
    return Path("runs") / f"{name}-{enc}{cfg.model}-{cfg.sampler.value}-{emu}-d{cfg.dim}-s{cfg.seed}"


@dataclass
class RunResult:
    """What :func:`run` produced: the run directory and the metrics written to it."""

    run_dir: Path
    metrics: dict


def _device(cfg: RunConfig) -> torch.device:
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise ConfigError(f"device: {cfg.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: CUDA was asked for but torch has no CUDA device here")
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
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.yaml"
    if config_path.exists() and resume and not _same_run(config_path.read_text(), cfg):
        raise ConfigError(f"output: {out} holds a run with another configuration; choose another "
                          f"--output or pass --fresh")
    atomic_write_text(config_path, cfg.to_yaml())
    started = time.perf_counter()
    kg = load_graph(cfg)
    model = build_model(cfg, kg).to(device)
    graph = _graph_for(model, kg, device)
    objective = build_objective(cfg, model)
    sampler = build_sampler(cfg, kg)
    valid = "valid" if "valid" in kg.splits else None

    def validate(m: KGEModel) -> float:
        return evaluate(m, kg, valid, batch_size=cfg.eval_batch_size, device=device, graph=graph).get("mrr")

    callbacks = [JsonLinesLogger(out / "log.jsonl"), TensorBoardLogger(out / "tensorboard")]
    if cfg.patience:
        callbacks.append(EarlyStopping(cfg.patience))
    schedule = OptimizerSchedule(OptimizerKind(cfg.optimizer), cfg.lr,
                                 switch_step=cfg.steps // 2 if cfg.switch_to_adam else None)
    extra = {"fanouts": cfg.fanouts, "num_relations": kg.num_relations} if cfg.fanouts else {}
    trainer_cls = MiniBatchTrainer if cfg.fanouts else Trainer
    trainer = trainer_cls(objective, sampler, kg.splits["train"], num_steps=cfg.steps,
                      batch_size=cfg.batch_size, optimizer=schedule, graph=graph, device=device,
                      seed=cfg.seed, validate=validate if valid else None,
                      eval_every=cfg.eval_every, run_dir=out,  # checkpoints even with no valid split
                      callbacks=callbacks, progress=cfg.progress, **extra)
    if resume and trainer.resume():
        log.info("resumed %s at step %d", out, trainer.step)
    elif not resume and (out / "last.pt").exists():
        (out / "last.pt").unlink()
    trainer.fit()
    if trainer.best_step is None:  # no validation split: keep the final weights as "best"
        save_atomic(out / "best.pt", {"model": model.state_dict(), "step": trainer.step, "valid_mrr": None})
    best = torch.load(out / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    metrics = {"config": cfg.to_dict(), "steps": trainer.step, "best_step": best["step"],
               "best_valid_mrr": best["valid_mrr"], "train_seconds": trainer.train_seconds,
               "wall_seconds": time.perf_counter() - started,
               "stop_reason": trainer.stop_reason, "validations": trainer.validations,
               "dataset": kg.statistics()}
    for split in ("valid", "test"):
        if split in kg.splits:
            res = evaluate(model, kg, split, batch_size=cfg.eval_batch_size, device=device, graph=graph,
                           progress=cfg.progress)
            metrics[split] = res.metrics()
    atomic_write_json(out / "metrics.json", metrics)
    from .plotting import plot_training_curve
    plot_training_curve(out / "log.jsonl", out / "curve.png", title=out.name)
    return RunResult(out, metrics)


def _same_run(saved: str, cfg: RunConfig) -> bool:
    """Whether a saved ``config.yaml`` describes the run ``cfg`` (progress bars do not count)."""
    import yaml
    old, new = yaml.safe_load(saved) or {}, cfg.to_dict()
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
    state = torch.load(run_dir / "best.pt", map_location=dev, weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, kg, model, _graph_for(model, kg, dev)


def _graph_for(model: KGEModel, kg: KnowledgeGraph, device: torch.device):
    """The training graph on ``device`` if the encoder needs one (never valid/test edges)."""
    if not getattr(model.encoder, "needs_graph", False):
        return None
    graph = kg.graph("train")
    require_graph_device(graph, device)
    return graph.to(device)
