"""Where a run lives: the :class:`Placement` seam, and the one-process placement.

A placement builds the run's :class:`~dgl_emu.pipeline.setup.Setup` (its model, regime,
triples, batch size, replicas and evaluation) for this process, says whether this process
writes the run directory, and passes values between the processes. It is chosen once, by the
CLI or the Python caller, and handed to :func:`dgl_emu.pipeline.run`; nothing below it asks where
it runs. This module holds the interface and the default, one process; data-parallel training
(:class:`dgl_emu.data_parallel.DataParallelPlacement`) and sharded embeddings
(:class:`dgl_emu.sharded.ShardedPlacement`) provide the others.
"""
from __future__ import annotations

from typing import Any

import torch

from ..config import RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..training import Replicas
from .evaluate import evaluate
from .setup import Evaluate, Setup, local_setup

__all__ = ["Placement"]


class Placement:
    """One process: the whole graph, every batch, the run directory.

    Subclasses override :attr:`replicas`, :attr:`writes`, :meth:`setup` and :meth:`evaluation`
    as they need.

    Examples
    --------
    >>> p = Placement()
    >>> p.writes, p.world_size, p.follow("resume")
    (True, 1, 'resume')
    """

    def __init__(self, replicas: Replicas = None):
        #: the processes this one trains with (see :mod:`dgl_emu.training.replicas`)
        self.replicas = replicas if replicas is not None else Replicas()

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (logs, checkpoints, metrics): exactly
        one process of a run does."""
        return True

    @property
    def world_size(self) -> int:
        """Processes that train together."""
        return self.replicas.world_size

    def follow(self, value: Any) -> Any:
        """The writing process's ``value``, on every process (which waits for it)."""
        return self.replicas.gather(value)[0]

    def setup(self, cfg: RunConfig, kg: KnowledgeGraph, device: torch.device) -> Setup:
        """The components this process trains."""
        return local_setup(cfg, kg, device, self.replicas, lambda model, graph: self.evaluation(kg, device, graph))

    def evaluation(self, kg: KnowledgeGraph, device: torch.device, graph) -> Evaluate:
        """How the setup's model is evaluated: here, every triple of the split in this process."""
        def run_evaluation(model: KGEModel, split: str, evaluator, progress: bool = False):
            return evaluate(model, kg, split, device=device, graph=graph, progress=progress, evaluator=evaluator)
        return run_evaluation
