"""Typed ranges of hyper-parameters: what ``dgl-emu tune`` may draw for one option.

Components declare the ranges of their own options next to themselves (a ``search_space``
class attribute), so this module sits on the ground floor: it imports nothing of dgl-emu, and
neither Optuna (a range only calls the ``trial`` it is given). :mod:`dgl_emu.tuning.space`
collects and overrides the ranges of a configuration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Tuple, Union

__all__ = ["FloatRange", "IntRange", "Choice", "Param", "finite_number"]


def finite_number(value: Any, what: str) -> float:
    """``value`` when it is a finite int or float (not a bool); else a :class:`ValueError` naming
    ``what``.

    >>> finite_number(0.5, "low")
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class FloatRange:
    """A float drawn from ``[low, high]``, uniformly or (``log=True``) log-uniformly.

    Examples
    --------
    >>> import optuna
    >>> trial = optuna.trial.FixedTrial({"optimizer.lr": 0.05})
    >>> FloatRange(1e-3, 1.0, log=True).suggest(trial, "optimizer.lr")
    0.05
    >>> FloatRange(1e-3, 1.0, log=True).describe()
    'float in [0.001, 1] (log)'
    >>> FloatRange(0.0, 1.0, log=True)
    Traceback (most recent call last):
    ...
    ValueError: a log range needs low > 0, got 0.0
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        finite_number(self.low, "low"), finite_number(self.high, "high")
        if not self.low < self.high:
            raise ValueError(f"need low < high, got low {self.low} and high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")

    def suggest(self, trial, name: str) -> float:
        """The trial's value of ``name`` (``trial.suggest_float``)."""
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def bounds(self) -> Tuple[float, ...]:
        """The extreme values (checked against the configuration before a study starts)."""
        return float(self.low), float(self.high)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a number in ``[low, high]``.

        >>> FloatRange(1e-3, 1.0).contains(0.5), FloatRange(1e-3, 1.0).contains(2), FloatRange(0, 1).contains(True)
        (True, False, False)
        """
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def describe(self) -> str:
        """One line for reports."""
        return f"float in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")

    def to_dict(self) -> Dict[str, Any]:
        """The YAML/JSON form that :func:`~dgl_emu.tuning.apply_overrides` reads back."""
        return {"low": float(self.low), "high": float(self.high), "log": self.log}


@dataclass(frozen=True)
class IntRange:
    """An integer drawn from ``[low, high]`` (both included), optionally log-uniformly.

    Examples
    --------
    >>> import optuna
    >>> IntRange(1, 4).suggest(optuna.trial.FixedTrial({"encoder.num_layers": 2}), "encoder.num_layers")
    2
    >>> IntRange(16, 256, log=True).to_dict()
    {'low': 16, 'high': 256, 'log': True}
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self):
        for what in ("low", "high"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{what} must be an integer, got {value!r}")
        if not self.low < self.high:
            raise ValueError(f"need low < high, got low {self.low} and high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")

    def suggest(self, trial, name: str) -> int:
        """The trial's value of ``name`` (``trial.suggest_int``)."""
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def bounds(self) -> Tuple[int, ...]:
        """The extreme values."""
        return self.low, self.high

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is an integer in ``[low, high]``.

        >>> IntRange(1, 4).contains(4), IntRange(1, 4).contains(2.5)
        (True, False)
        """
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def describe(self) -> str:
        """One line for reports."""
        return f"integer in [{self.low}, {self.high}]" + (" (log)" if self.log else "")

    def to_dict(self) -> Dict[str, Any]:
        """The YAML/JSON form that :func:`~dgl_emu.tuning.apply_overrides` reads back."""
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, names, booleans).

    Examples
    --------
    >>> import optuna
    >>> Choice(("softplus", "ce")).suggest(optuna.trial.FixedTrial({"x": "ce"}), "x")
    'ce'
    >>> Choice((16, 32)).describe()
    'one of 16, 32'
    """

    values: Tuple[Any, ...]

    def __post_init__(self):
        if len(self.values) < 2:
            raise ValueError(f"a choice needs at least two values, got {list(self.values)}")
        for v in self.values:
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise ValueError(f"choices must be numbers, names or booleans, got {v!r}")

    def suggest(self, trial, name: str) -> Any:
        """The trial's value of ``name`` (``trial.suggest_categorical``)."""
        return trial.suggest_categorical(name, list(self.values))

    def bounds(self) -> Tuple[Any, ...]:
        """Every value."""
        return tuple(self.values)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the values (``True`` is not ``1``).

        >>> Choice((16, 32)).contains(32), Choice((0, 1)).contains(True)
        (True, False)
        """
        return any(type(v) is type(value) and v == value for v in self.values)

    def describe(self) -> str:
        """One line for reports."""
        return "one of " + ", ".join(str(v) for v in self.values)

    def to_dict(self) -> Dict[str, Any]:
        """The YAML/JSON form that :func:`~dgl_emu.tuning.apply_overrides` reads back."""
        return {"choices": list(self.values)}


#: a parameter's range
Param = Union[FloatRange, IntRange, Choice]
