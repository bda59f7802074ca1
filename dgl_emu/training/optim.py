"""Optimisers and the published two-phase schedule (Adagrad, then Adam at lr/10)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

__all__ = ["OptimizerKind", "OptimizerSchedule"]


class OptimizerKind(enum.Enum):
    """Supported optimisers."""

    ADAGRAD = "adagrad"
    ADAM = "adam"
    SGD = "sgd"

    def build(self, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """A fresh optimiser of this kind over ``params``."""
        cls = {OptimizerKind.ADAGRAD: torch.optim.Adagrad, OptimizerKind.ADAM: torch.optim.Adam,
               OptimizerKind.SGD: torch.optim.SGD}[self]
        return cls(params, lr=lr)


@dataclass(frozen=True)
class OptimizerSchedule:
    """An optimiser, optionally switched to another at a given step.

    The EMU paper trains with Adagrad and switches to Adam at a tenth of the learning rate after
    half the steps: ``OptimizerSchedule(ADAGRAD, 0.1, switch_step=num_steps // 2)``.

    Parameters
    ----------
    kind : OptimizerKind
        Optimiser of the first phase.
    lr : float
        Learning rate of the first phase.
    switch_step : int, optional
        Step at which the second phase starts (``None``: never).
    switch_kind : OptimizerKind
        Optimiser of the second phase.
    switch_lr_factor : float
        Second-phase learning rate as a fraction of ``lr``.

    Examples
    --------
    >>> s = OptimizerSchedule(OptimizerKind.ADAGRAD, 0.1, switch_step=50)
    >>> s.phase(49), s.phase(50), round(s.lr_at(50), 6)
    (0, 1, 0.01)
    """

    kind: OptimizerKind = OptimizerKind.ADAGRAD
    lr: float = 0.1
    switch_step: Optional[int] = None
    switch_kind: OptimizerKind = OptimizerKind.ADAM
    switch_lr_factor: float = 0.1

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def phase(self, step: int) -> int:
        """0 before ``switch_step``, 1 from it on."""
        return int(self.switch_step is not None and step >= self.switch_step)

    def lr_at(self, step: int) -> float:
        """Learning rate in force at ``step``."""
        return self.lr * (self.switch_lr_factor if self.phase(step) else 1.0)

    def build(self, params: Iterable[torch.nn.Parameter], step: int) -> torch.optim.Optimizer:
        """The optimiser of the phase that ``step`` is in."""
        kind = self.switch_kind if self.phase(step) else self.kind
        return kind.build(params, self.lr_at(step))
