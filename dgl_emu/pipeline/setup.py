"""What a run trains: the components built from a configuration for one process or a
data-parallel rank (:func:`local_setup`), or for a trainer of sharded training
(:meth:`dgl_emu.sharded.context.ShardedContext.setup`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..config import RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..training import BatchStrategy, Objective, OptimizerSchedule
from ..training.distributed import Shard
from ..training.regimes import Regime
from ..typing import Tensor
from .builders import (build_batches, build_model, build_objective, build_regime, build_sampler,
                       build_schedule, training_graph)

__all__ = ["Setup", "local_setup"]


@dataclass
class Setup:
    """The components of a run, ready for a :class:`~dgl_emu.training.Trainer`.

    Attributes
    ----------
    model, objective, regime, sampler, schedule, batches
        As built from the configuration (``sampler`` is ``None`` for all-entity regimes).
    graph
        The training graph the encoder reads (``None`` for lookup tables).
    train : Tensor
        ``(N, 3)`` the triples this process draws its batches from.
    batch_size : int
        Positives per step that this process draws (the global batch in one process or
        data-parallel training, its own share in sharded training).
    seed : int
        Seed of the trainer's data-order generator.
    shard : Shard
        This process among the ranks.
    evaluate : callable
        ``evaluate(model, split, evaluator, progress) -> EvaluationResult`` with every rank's
        ranks gathered.
    """

    model: KGEModel
    graph: object
    batches: BatchStrategy
    objective: Objective
    regime: Regime
    sampler: object
    schedule: OptimizerSchedule
    train: Tensor
    batch_size: int
    seed: int
    shard: Shard
    evaluate: Callable


def local_setup(cfg: RunConfig, kg: KnowledgeGraph, device: torch.device, shard: Shard,
                evaluate: Optional[Callable] = None) -> Setup:
    """One process, or a data-parallel rank: the whole graph, every rank drawing the global batch."""
    from .run import evaluate as evaluate_split
    model = build_model(cfg, kg).to(device)
    graph = training_graph(model, kg, device)
    regime = build_regime(cfg)

    def run_evaluation(m: KGEModel, split: str, evaluator, progress: bool = False):
        return evaluate_split(m, kg, split, device=device, graph=graph, progress=progress, evaluator=evaluator,
                              shard=shard)

    return Setup(model=model, graph=graph, batches=build_batches(cfg, graph), objective=build_objective(cfg, model),
                 regime=regime, sampler=None if regime.all_entities else build_sampler(cfg, kg),
                 schedule=build_schedule(cfg), train=kg.splits["train"], batch_size=cfg.training.batch_size,
                 seed=cfg.seed, shard=shard, evaluate=evaluate or run_evaluation)
