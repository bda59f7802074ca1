"""Data-parallel training on ``torch.distributed``: each rank takes a part of every global batch.

Every rank draws the same global batch, the same negatives and the same EMU masks (all
generators are seeded alike), keeps its contiguous part of the rows (:meth:`Shard.part`) and
computes ``(W / B) * sum`` of its rows' losses; averaging the gradients over the ``W`` ranks then
gives the gradient of the global batch's mean loss. So a run's numbers do not depend on the number
of processes (up to the rounding of the gradient sums), and a checkpoint resumes in any world
size. Dense parameters are synchronised by :class:`~torch.nn.parallel.DistributedDataParallel`;
DDP's reducer does not take sparse gradients in torch 2.13 (``NotImplementedError: Cannot access
storage of SparseTensorImpl``, measured), so the rows of sparse tables are all-gathered and summed
instead (what a sparse all-reduce does). The cost of the shared draws: every rank generates the
global batch's negatives and masks, not only its own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Shard", "shard_from_env", "DataParallel", "gather_objects"]


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` data-parallel ranks.

    Examples
    --------
    >>> [Shard(r, 3).part(10) for r in range(3)]
    [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    """

    rank: int = 0
    world_size: int = 1
    #: ``True``: every rank draws the global batch and takes its part (data-parallel);
    #: ``False``: every rank draws its own batch from its own triples (sharded training)
    splits_batches: bool = True
    #: the factor of this rank's mean loss in the mean over the ranks: ``W b_r / B`` when rank
    #: ``r`` draws ``b_r`` of a global batch of ``B`` (sharded training, batches in proportion
    #: to the ranks' triples), so that averaging the gradients gives the global batch's mean
    scale: float = 1.0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, logs and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one rank."""
        return self.world_size > 1

    @property
    def shares_batches(self) -> bool:
        """Several ranks take parts of one global batch."""
        return self.distributed and self.splits_batches

    def part(self, n: int) -> slice:
        """The contiguous rows of ``n`` that this rank takes (all of them when batches are not
        shared)."""
        if not self.splits_batches:
            return slice(0, n)
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)

    def weight(self, rows: int, batch: int) -> float:
        """The factor of a rank's mean loss over ``rows`` of a ``batch``: ``rows * W / batch``
        when the ranks share the batch (averaging the gradients then gives the batch's mean),
        else ``rows / batch``; times :attr:`scale`."""
        return rows * (self.world_size if self.shares_batches else 1) / batch * self.scale


def shard_from_env(device: torch.device) -> Shard:
    """The shard of a process started by ``torchrun`` (``RANK``, ``WORLD_SIZE``), with the process
    group initialised (gloo on CPU, NCCL on CUDA); one process without them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Shard(dist.get_rank(), dist.get_world_size())


def gather_objects(obj: Any, shard: Shard) -> List[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not shard.distributed:
        return [obj]
    out: List[Any] = [None] * shard.world_size
    dist.all_gather_object(out, obj)
    return out


class DataParallel:
    """A module whose forward returns a rank's loss, with its gradients averaged over the ranks.

    Parameters
    ----------
    module : nn.Module
        Computes the rank's part of the loss in ``forward``.
    shard : Shard
        This rank.
    sparse : sequence of nn.Parameter
        Parameters with sparse gradients (synchronised by :meth:`synchronize`, not by DDP).
    """

    def __init__(self, module: nn.Module, shard: Shard, sparse: Sequence[nn.Parameter] = ()):
        self.module, self.shard, self.sparse = module, shard, list(sparse)
        ids = {id(p) for p in self.sparse}
        dense = [p for p in module.parameters() if p.requires_grad and id(p) not in ids]
        self.ddp = None
        if shard.distributed and dense:
            from torch.nn.parallel import DistributedDataParallel
            ignored = [n for n, p in module.named_parameters() if id(p) in ids]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
            self.ddp = DistributedDataParallel(module)

    def __call__(self, *args, **kwargs):
        return (self.ddp or self.module)(*args, **kwargs)

    def synchronize(self) -> None:
        """Average the sparse gradients over the ranks (after ``backward``): every rank's rows
        are all-gathered (padded to the longest) and summed."""
        if not self.shard.distributed:
            return
        for p in self.sparse:
            grad = (p.grad.coalesce() if p.grad is not None
                    else torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), p.new_zeros(0, p.shape[1]),
                                                 p.shape))
            rows, values = grad.indices()[0], grad.values()
            sizes = [torch.zeros(1, dtype=torch.long) for _ in range(self.shard.world_size)]
            dist.all_gather(sizes, torch.tensor([len(rows)]))
            longest = int(max(sizes))
            padded_rows = torch.cat([rows, rows.new_zeros(longest - len(rows))])
            padded_values = torch.cat([values, values.new_zeros(longest - len(rows), values.shape[1])])
            all_rows = [torch.empty_like(padded_rows) for _ in sizes]
            all_values = [torch.empty_like(padded_values) for _ in sizes]
            dist.all_gather(all_rows, padded_rows)
            dist.all_gather(all_values, padded_values)
            rows = torch.cat([r[: int(n)] for r, n in zip(all_rows, sizes)])
            values = torch.cat([v[: int(n)] for v, n in zip(all_values, sizes)]) / self.shard.world_size
            p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, p.shape).coalesce()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks."""
        if not self.shard.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.shard.world_size

    def all_finite(self, finite: bool) -> bool:
        """Whether ``finite`` holds on every rank."""
        if not self.shard.distributed:
            return finite
        t = torch.tensor([0.0 if finite else 1.0])
        dist.all_reduce(t)
        return float(t) == 0.0
