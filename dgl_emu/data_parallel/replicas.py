"""Data-parallel replicas on ``torch.distributed``: each rank takes a part of every global batch.

Every rank draws the same global batch, the same negatives and the same EMU masks (all
generators are seeded alike; the masks of a rank's rows are cut from the global batch's draw by
a :func:`~dgl_emu.rng.row_window`), keeps its contiguous part of the rows
(:meth:`DataParallelReplicas.rows`) and
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

from typing import Any, ContextManager, List, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..rng import row_window
from ..training.replicas import Replicas, ReplicatedStep

__all__ = ["DataParallelReplicas", "DataParallelStep", "gather_objects"]


def gather_objects(obj: Any, world_size: int) -> List[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if world_size <= 1:
        return [obj]
    out: List[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


class DataParallelReplicas(Replicas):
    """Rank ``rank`` of ``world_size`` processes that share every global batch.

    Examples
    --------
    >>> [DataParallelReplicas(r, 3).rows(10) for r in range(3)]
    [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    >>> DataParallelReplicas(0, 2).weight(5, 10)
    1.0
    """

    def __init__(self, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of 0..{world_size - 1}")
        self.rank, self.world_size = rank, world_size

    def rows(self, n: int) -> slice:
        """This rank's contiguous rows of ``n``."""
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)

    def weight(self, rows: int, batch: int) -> float:
        """``rows * W / batch``: averaging the ranks' gradients then gives the batch's mean."""
        return rows * self.world_size / batch

    def drawing(self, module: nn.Module, total: int, rows: slice) -> ContextManager:
        """The row draws of ``module`` (EMU's masks) made for the whole part and cut to ``rows``."""
        return row_window(module, total, rows)

    def wrap(self, module: nn.Module, sparse: Sequence[nn.Parameter] = ()) -> "DataParallelStep":
        return DataParallelStep(module, self.world_size, sparse)

    def gather(self, obj: Any) -> List[Any]:
        return gather_objects(obj, self.world_size)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (an all-reduce of one byte)."""
        if self.world_size <= 1:
            return bool(flag)
        return self.agree([flag])[0]

    def agree(self, flags: Sequence[bool]) -> List[bool]:
        """Each flag: whether it is true on any rank (one all-reduce of ``len(flags)`` bytes)."""
        if self.world_size <= 1:
            return [bool(f) for f in flags]
        t = torch.tensor([int(bool(f)) for f in flags], dtype=torch.uint8)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(x) for x in t.tolist()]


class DataParallelStep(ReplicatedStep):
    """A module whose forward returns a rank's loss, with its gradients averaged over the ranks.

    Dense parameters are synchronised by :class:`~torch.nn.parallel.DistributedDataParallel`,
    sparse ones by :meth:`synchronize`.

    Parameters
    ----------
    module : nn.Module
        Computes the rank's part of the loss in ``forward``.
    world_size : int
        Ranks.
    sparse : sequence of nn.Parameter
        Parameters with sparse gradients (synchronised by :meth:`synchronize`, not by DDP).
    """

    def __init__(self, module: nn.Module, world_size: int, sparse: Sequence[nn.Parameter] = ()):
        super().__init__(module)
        self.world_size, self.sparse = world_size, list(sparse)
        ids = {id(p) for p in self.sparse}
        dense = [p for p in module.parameters() if p.requires_grad and id(p) not in ids]
        self.ddp = None
        if world_size > 1 and dense:
            ignored = [n for n, p in module.named_parameters() if id(p) in ids]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
            self.ddp = DistributedDataParallel(module)

    def __call__(self, *args, **kwargs):
        return (self.ddp or self.module)(*args, **kwargs)

    def synchronize(self) -> None:
        """Average the sparse gradients over the ranks (after ``backward``): every rank's rows
        are all-gathered (padded to the longest) and summed."""
        if self.world_size <= 1:
            return
        for p in self.sparse:
            grad = (p.grad.coalesce() if p.grad is not None
                    else torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), p.new_zeros(0, p.shape[1]),
                                                 p.shape))
            rows, values = grad.indices()[0], grad.values()
            sizes = [torch.zeros(1, dtype=torch.long) for _ in range(self.world_size)]
            dist.all_gather(sizes, torch.tensor([len(rows)]))
            longest = int(max(sizes))
            padded_rows = torch.cat([rows, rows.new_zeros(longest - len(rows))])
            padded_values = torch.cat([values, values.new_zeros(longest - len(rows), values.shape[1])])
            all_rows = [torch.empty_like(padded_rows) for _ in sizes]
            all_values = [torch.empty_like(padded_values) for _ in sizes]
            dist.all_gather(all_rows, padded_rows)
            dist.all_gather(all_values, padded_values)
            rows = torch.cat([r[: int(n)] for r, n in zip(all_rows, sizes)])
            values = torch.cat([v[: int(n)] for v, n in zip(all_values, sizes)]) / self.world_size
            p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, p.shape).coalesce()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks."""
        if self.world_size <= 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.world_size
