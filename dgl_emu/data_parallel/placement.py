"""The data-parallel placement: one of ``W`` processes on this machine, started by its launcher
(:mod:`dgl_emu.data_parallel.launch`, or ``torchrun``).

Every process builds the whole model and draws every global batch; it trains on its share of
the batch's rows (:class:`~dgl_emu.data_parallel.replicas.DataParallelReplicas`), ranks its share
of each evaluated split, and rank 0 alone writes the run directory.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
import torch.distributed as dist

from ..data import KnowledgeGraph
from ..evaluation import EvaluationResult
from ..models import KGEModel
from ..pipeline import Placement, evaluate
from ..pipeline.setup import Evaluate
from .replicas import DataParallelReplicas

__all__ = ["DataParallelPlacement"]


class DataParallelPlacement(Placement):
    """Rank ``rank`` of ``world_size`` data-parallel processes.

    Parameters
    ----------
    rank, world_size : int
        This process among the processes of the run (a torch.distributed process group of
        ``world_size`` must be initialised when there are several).
    """

    def __init__(self, rank: int, world_size: int):
        super().__init__(DataParallelReplicas(rank, world_size))

    @classmethod
    def from_env(cls, device: torch.device) -> Optional["DataParallelPlacement"]:
        """The placement of a process started by the launcher (``RANK``, ``WORLD_SIZE``), with the
        process group initialised (gloo on CPU, NCCL on CUDA); ``None`` when this process was not
        started as one of several."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return None
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def writes(self) -> bool:
        """Rank 0 writes."""
        return self.replicas.rank == 0

    def evaluation(self, kg: KnowledgeGraph, device: torch.device, graph) -> Evaluate:
        """Each rank ranks its contiguous share of the split; the ranks are gathered (every rank
        returns them all, in the split's order)."""
        def run_evaluation(model: KGEModel, split: str, evaluator, progress: bool = False) -> EvaluationResult:
            triples = kg.splits[split]
            result = evaluate(model, kg, split, device=device, graph=graph, progress=progress, evaluator=evaluator,
                              rows=self.replicas.rows(len(triples)))
            pieces = self.replicas.gather(result.ranks)
            ranks = {t: {p: torch.cat([piece[t][p] for piece in pieces]) for p in result.ranks[t]}
                     for t in result.ranks}
            return EvaluationResult(ranks=ranks, relations=triples[:, 1].cpu(), ks=result.ks, protocol=result.protocol)
        return run_evaluation
