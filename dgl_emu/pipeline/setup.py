"""What a run trains: the components a :class:`~dgl_emu.pipeline.placement.Placement` built from a
configuration, for this process."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..config import RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..training import BatchStrategy, Objective, OptimizerSchedule, Regime, Replicas
from ..training.shardset import ShardedTables
from ..typing import Tensor
from .builders import build_batches, build_model, build_objective, build_regime, build_schedule, training_graph

__all__ = ["Setup", "Evaluate", "local_setup"]

#: ``evaluate(model, split, evaluator, progress=False) -> EvaluationResult``, every process's ranks
Evaluate = Callable[..., object]


@dataclass
class Setup:
    """The components of a run, ready for a :class:`~dgl_emu.training.Trainer`.

    Attributes
    ----------
    model, objective, regime, schedule, batches
        As built from the configuration (the regime holds the negative sampler when it draws
        negatives).
    graph
        The training graph the encoder reads (``None`` for lookup tables).
    train : Tensor
        ``(N, 3)`` the triples this process draws its batches from.
    batch_size : int
        Positives per step that this process draws (the global batch in one process or
        data-parallel training, its own share in sharded training).
    seed : int
        Seed of the trainer's data-order generator.
    replicas : Replicas
        The processes this one trains with.
    evaluate : callable
        ``evaluate(model, split, evaluator, progress) -> EvaluationResult`` with every
        process's ranks combined (:data:`Evaluate`).
    tables : ShardedTables, optional
        The model's tables that the processes hold in shards, written and read shard by shard
        in checkpoints (``None``: every table whole in each process).
    """

    model: KGEModel
    graph: object
    batches: BatchStrategy
    objective: Objective
    regime: Regime
    schedule: OptimizerSchedule
    train: Tensor
    batch_size: int
    seed: int
    replicas: Replicas
    evaluate: Evaluate
    tables: Optional[ShardedTables] = None


def local_setup(cfg: RunConfig, kg: KnowledgeGraph, device: torch.device, replicas: Replicas,
                evaluation: Callable[[KGEModel, object], Evaluate]) -> Setup:
    """The whole graph in this process, which draws every global batch (one process, or a
    data-parallel rank). ``evaluation(model, graph)`` makes the setup's :data:`Evaluate`."""
    model = build_model(cfg, kg).to(device)
    graph = training_graph(model, kg, device)
    return Setup(model=model, graph=graph, batches=build_batches(cfg, graph), objective=build_objective(cfg, model),
                 regime=build_regime(cfg, kg), schedule=build_schedule(cfg), train=kg.splits["train"],
                 batch_size=cfg.training.batch_size, seed=cfg.seed, replicas=replicas,
                 evaluate=evaluation(model, graph))
