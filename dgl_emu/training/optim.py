"""Optimisers by name, and the published two-phase schedule (Adagrad, then Adam at lr/10)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional

import torch

from ..registry import Registry

__all__ = ["OPTIMIZERS", "OptimizerSchedule"]

#: implementation switches of torch's optimisers that do not change the maths; not user options
_KNOBS = ("foreach", "fused", "differentiable", "capturable", "maximize")

#: torch optimisers by name; options are their keyword arguments (``lr``, ``weight_decay``, ...)
OPTIMIZERS: Registry = Registry("optimizer", context=("params",))
OPTIMIZERS.register("adagrad", exclude=_KNOBS)(torch.optim.Adagrad)
OPTIMIZERS.register("adam", exclude=_KNOBS)(torch.optim.Adam)
OPTIMIZERS.register("sgd", exclude=_KNOBS)(torch.optim.SGD)


@dataclass(frozen=True)
class OptimizerSchedule:
    """An optimiser, optionally switched to another at a given step.

    The EMU paper trains with Adagrad and switches to Adam at a tenth of the learning rate after
    half the steps: ``OptimizerSchedule("adagrad", 0.1, switch_step=num_steps // 2)``.

    Parameters
    ----------
    name : str
        Optimiser of the first phase, a name in :data:`OPTIMIZERS`.
    lr : float
        Learning rate of the first phase.
    options : dict
        Other keyword arguments of the first phase's optimiser (``weight_decay``, ...).
    switch_step : int, optional
        Step at which the second phase starts (``None``: never).
    switch_name : str
        Optimiser of the second phase (its defaults, at ``lr * switch_lr_factor``).
    switch_lr_factor : float
        Second-phase learning rate as a fraction of ``lr``.

    Examples
    --------
    >>> s = OptimizerSchedule("adagrad", 0.1, switch_step=50)
    >>> s.phase(49), s.phase(50), round(s.lr_at(50), 6)
    (0, 1, 0.01)
    >>> type(s.build([torch.zeros(1, requires_grad=True)], 50)).__name__
    'Adam'
    """

    name: str = "adagrad"
    lr: float = 0.1
    options: Dict[str, Any] = field(default_factory=dict)
    switch_step: Optional[int] = None
    switch_name: str = "adam"
    switch_lr_factor: float = 0.1

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        OPTIMIZERS.get(self.name)
        OPTIMIZERS.get(self.switch_name)

    def phase(self, step: int) -> int:
        """0 before ``switch_step``, 1 from it on."""
        return int(self.switch_step is not None and step >= self.switch_step)

    def lr_at(self, step: int) -> float:
        """Learning rate in force at ``step``."""
        return self.lr * (self.switch_lr_factor if self.phase(step) else 1.0)

    def build(self, params: Iterable[torch.nn.Parameter], step: int) -> torch.optim.Optimizer:
        """The optimiser of the phase that ``step`` is in."""
        if self.phase(step):
            return OPTIMIZERS.make(self.switch_name, {"lr": self.lr_at(step)}, {"params": params})
        return OPTIMIZERS.make(self.name, {**self.options, "lr": self.lr}, {"params": params})
