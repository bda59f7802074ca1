"""Optimisers by name, the published two-phase schedule (Adagrad, then Adam at lr/10) and a
linear learning-rate decay over the last steps.

Sparse (row) gradients from lookup tables (:attr:`LookupEncoder.sparse
<dgl_emu.nn.encoders.LookupEncoder>`) are updated row by row: torch's Adagrad and SGD do that
themselves (row-wise Adagrad is exact: a zero gradient row changes neither its state nor its
row, so it gives the dense numbers); Adam cannot, so sparse tables get
:class:`torch.optim.SparseAdam` ("lazy Adam": moments and bias correction advance only for the
rows a batch touched, which differs from dense Adam) and every other parameter dense Adam,
stepped together by a :class:`CombinedOptimizer`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

import torch

from ..registry import Registry

__all__ = ["OPTIMIZERS", "OptimizerSchedule", "CombinedOptimizer", "LAZY"]

#: implementation switches of torch's optimisers that do not change the maths; not user options
_KNOBS = ("foreach", "fused", "differentiable", "capturable", "maximize")

#: torch optimisers by name; options are their keyword arguments (``lr``, ``weight_decay``, ...)
OPTIMIZERS: Registry = Registry("optimizer", context=("params",))
OPTIMIZERS.register("adagrad", exclude=_KNOBS)(torch.optim.Adagrad)
OPTIMIZERS.register("adam", exclude=_KNOBS)(torch.optim.Adam)
OPTIMIZERS.register("sgd", exclude=_KNOBS)(torch.optim.SGD)


#: optimisers that cannot take sparse gradients -> the row-wise ("lazy") optimiser used for them
LAZY = {"adam": torch.optim.SparseAdam}


class CombinedOptimizer:
    """Several optimisers over disjoint parameters, stepped, zeroed and saved together.

    Parameters
    ----------
    optimizers : sequence of torch.optim.Optimizer
        E.g. :class:`torch.optim.SparseAdam` for sparse tables and :class:`torch.optim.Adam` for
        the rest.

    Examples
    --------
    >>> a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    >>> opt = CombinedOptimizer([torch.optim.SGD([a], lr=1.0), torch.optim.SGD([b], lr=0.5)])
    >>> (a.sum() + b.sum()).backward(); opt.step()
    >>> a.tolist(), b.tolist()
    ([0.0, 0.0], [0.5, 0.5])
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> List[dict]:
        """The parameter groups of every part, in order."""
        return [g for o in self.optimizers for g in o.param_groups]

    def step(self) -> None:
        """Step every part."""
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) every part's gradients."""
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """``{"parts": [state_dict, ...]}``."""
        return {"parts": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        for o, s in zip(self.optimizers, state["parts"]):
            o.load_state_dict(s)


@dataclass(frozen=True)
class OptimizerSchedule:
    """An optimiser, optionally switched to another at a given step, and its learning rate.

    The EMU paper trains with Adagrad and switches to Adam at a tenth of the learning rate after
    half the steps: ``OptimizerSchedule("adagrad", 0.1, switch_step=num_steps // 2)``.

    With ``decay_start`` and ``decay_end`` the learning rate of step ``t`` (0-based) is multiplied
    by ``(decay_end - t) / (decay_end - decay_start)`` for ``decay_start <= t < decay_end``: it
    stays constant until ``decay_start`` and falls linearly towards 0, the last step
    (``decay_end - 1``) taking ``1 / (decay_end - decay_start)`` of it. The rate is a function of
    the step alone, so a resumed run takes the same steps.

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
    decay_start : int, optional
        First step of the linear decay (``None``: no decay).
    decay_end : int, optional
        Step at which the decayed rate would reach 0 (the number of steps); needed with
        ``decay_start``.

    Examples
    --------
    >>> s = OptimizerSchedule("adagrad", 0.1, switch_step=50)
    >>> s.phase(49), s.phase(50), round(s.lr_at(50), 6)
    (0, 1, 0.01)
    >>> type(s.build([torch.zeros(1, requires_grad=True)], 50)).__name__
    'Adam'
    >>> d = OptimizerSchedule("adam", 0.01, decay_start=6, decay_end=10)
    >>> [round(d.lr_at(t), 6) for t in (0, 5, 6, 7, 9)]
    [0.01, 0.01, 0.01, 0.0075, 0.0025]
    """

    name: str = "adagrad"
    lr: float = 0.1
    options: Dict[str, Any] = field(default_factory=dict)
    switch_step: Optional[int] = None
    switch_name: str = "adam"
    switch_lr_factor: float = 0.1
    decay_start: Optional[int] = None
    decay_end: Optional[int] = None

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if (self.decay_start is None) != (self.decay_end is None):
            raise ValueError("decay_start and decay_end go together")
        if self.decays and not 0 <= self.decay_start < self.decay_end:
            raise ValueError(f"need 0 <= decay_start < decay_end, got {self.decay_start}, {self.decay_end}")
        OPTIMIZERS.get(self.name)
        OPTIMIZERS.get(self.switch_name)

    def phase(self, step: int) -> int:
        """0 before ``switch_step``, 1 from it on."""
        return int(self.switch_step is not None and step >= self.switch_step)

    @property
    def decays(self) -> bool:
        """Whether the learning rate decays (then it is set before every step)."""
        return self.decay_start is not None

    def lr_at(self, step: int) -> float:
        """Learning rate in force at ``step`` (0-based)."""
        lr = self.lr * (self.switch_lr_factor if self.phase(step) else 1.0)
        if self.decays and step >= self.decay_start:
            lr *= max(self.decay_end - step, 0) / (self.decay_end - self.decay_start)
        return lr

    def build(self, params: Iterable[torch.nn.Parameter], step: int,
              sparse: Sequence[torch.nn.Parameter] = ()):
        """The optimiser of the phase that ``step`` is in.

        ``sparse`` lists the parameters with sparse gradients (among ``params``); with an
        optimiser that cannot take them (:data:`LAZY`) they get its row-wise version.
        """
        name, options = (self.switch_name, {}) if self.phase(step) else (self.name, dict(self.options))
        options["lr"] = self.lr_at(step)
        params = list(params)
        if not sparse or name not in LAZY:
            return OPTIMIZERS.make(name, options, {"params": params})
        ids = {id(p) for p in sparse}
        dense = [p for p in params if id(p) not in ids]
        lazy_options = {k: v for k, v in options.items() if k in ("lr", "betas", "eps")}
        parts = [LAZY[name](list(sparse), **lazy_options)]
        if dense:
            parts.append(OPTIMIZERS.make(name, options, {"params": dense}))
        return CombinedOptimizer(parts)
