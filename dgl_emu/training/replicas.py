"""How the processes of a run share its training steps: :class:`Replicas`, here for one process.

A :class:`~dgl_emu.training.Trainer` is given the replicas of the placement its run lives in
(:class:`dgl_emu.pipeline.Placement`). It asks them which rows of each part of a global batch
this process scores and with what weight, runs its step loss through them (which synchronises the
gradients), and hands them its checkpoint state to gather. The trainer never asks how many
processes there are or which one it is: one process, data-parallel processes
(:mod:`dgl_emu.data_parallel`) and sharded trainers (:mod:`dgl_emu.sharded`) each answer in
their own implementation.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, List, Optional, Sequence

from torch import nn

__all__ = ["Replicas", "ReplicatedStep"]


class ReplicatedStep:
    """A step module as the replicas run it; in one process, the module itself.

    Parameters
    ----------
    module : nn.Module
        Computes this process's loss in ``forward``.
    """

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def synchronize(self) -> None:
        """Combine the gradients of the processes after ``backward`` (nothing to combine here)."""

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes."""
        return value


class Replicas:
    """One process: it scores every row of every batch.

    Examples
    --------
    >>> r = Replicas()
    >>> r.rows(10), r.weight(10, 10), r.gather("x")
    (slice(0, 10, None), 1.0, ['x'])
    """

    #: processes that train together
    world_size: int = 1
    #: this process among them (``0 .. world_size - 1``)
    rank: int = 0

    def rows(self, n: int) -> slice:
        """The rows of an ``n``-row part of a batch that this process scores."""
        return slice(0, n)

    def weight(self, rows: int, batch: int) -> float:
        """The factor of this process's mean loss over ``rows`` of a ``batch``-row batch, such
        that the processes' averaged gradients are the gradient of the batch's mean loss."""
        return rows / batch

    def drawing(self, module: nn.Module, total: int, rows: slice) -> ContextManager:
        """The random draws of ``module`` while it scores ``rows`` of a ``total``-row part: in one
        process the part is whole, so nothing changes."""
        return contextlib.nullcontext()

    def wrap(self, module: nn.Module, sparse: Sequence[nn.Parameter] = ()) -> ReplicatedStep:
        """``module`` (the step loss) as these replicas run it; ``sparse`` lists the parameters
        with sparse gradients."""
        return ReplicatedStep(module)

    def gather(self, obj: Any) -> List[Any]:
        """Every process's ``obj``, in process order."""
        return [obj]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true in any process (every process calls it, and all get the same
        answer: e.g. whether one of them was asked to stop)."""
        return bool(flag)

    def agree(self, flags: Sequence[bool]) -> List[bool]:
        """Each of ``flags``: whether it is true in any process (every process calls it with as
        many flags, and all get the same answer, in one exchange: e.g. whether one of them was
        asked to stop, whether one of them finds a checkpoint due)."""
        return [bool(f) for f in flags]

    def gather_state(self, state: dict) -> Optional[list]:
        """What a checkpoint keeps of each process's own state (its random streams and data
        order), gathered from every process; ``None`` when the checkpoint's own state is every
        process's (one process, or data-parallel processes that draw alike)."""
        return None

    def own_state(self, state: dict) -> dict:
        """The part of a checkpoint ``state`` that this process resumes from."""
        return state

