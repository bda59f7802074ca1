"""What "the same budget" means when EMU and its baseline are tuned side by side.

:class:`EqualTrials` gives both arms the same number of trials (each of the same steps);
:class:`EqualTime` gives both the same wall time of trials on the same machine, so an arm whose
steps are cheaper runs more trials. In both, the arm that has used less of its budget runs the
next trial, so the two alternate and any change in the machine's load falls on both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

__all__ = ["ArmUse", "EqualTrials", "EqualTime", "Budget"]


@dataclass(frozen=True)
class ArmUse:
    """What one arm has used: its finished trials and their wall time (seconds, summed)."""

    trials: int
    seconds: float


@dataclass(frozen=True)
class EqualTrials:
    """``trials`` finished trials per arm.

    Examples
    --------
    >>> b = EqualTrials(3)
    >>> b.open(ArmUse(2, 90.0)), b.open(ArmUse(3, 10.0)), b.used(ArmUse(2, 90.0))
    (True, False, 2)
    """

    trials: int

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError(f"trials must be positive, got {self.trials}")

    def open(self, use: ArmUse) -> bool:
        """Whether the arm may start another trial."""
        return use.trials < self.trials

    def used(self, use: ArmUse) -> float:
        """How much of the budget the arm has used (the next trial goes to the arm with least)."""
        return use.trials

    def target(self, use: ArmUse) -> int:
        """The trials the arm's study holds in the end (its reports' target)."""
        return self.trials

    def describe(self) -> str:
        """The budget in words."""
        return f"{self.trials} trials per arm"

    #: the unit of :attr:`per_arm` (for progress bars)
    unit = "trial"

    @property
    def per_arm(self) -> float:
        """Each arm's budget in :attr:`unit`."""
        return self.trials

    def to_dict(self) -> Dict[str, Any]:
        """The report's record of the budget."""
        return {"kind": "equal-trials", "trials": self.trials}

    def statement(self, arms: Mapping[str, Mapping[str, Any]], per_trial: str) -> str:
        """What both arms got, for the report (``arms``: the report's per-arm records)."""
        return f"both arms ran {self.trials} trials {per_trial}"

    def caveat(self, arms: Mapping[str, Mapping[str, Any]]) -> str:
        """What the budget does not make equal."""
        return (f"Equal trials are not equal time: EMU's trials took {arms['emu']['seconds_trained']:.0f} s and "
                f"the baseline's {arms['baseline']['seconds_trained']:.0f} s (wall time of every trial on the "
                f"machine that ran it, set-up and evaluation included).")


@dataclass(frozen=True)
class EqualTime:
    """``seconds`` of trial wall time per arm (set-up, training and evaluation of every trial).

    An arm starts a trial while it has used less than ``seconds``, so it may run past them by
    at most one trial; the report states each arm's seconds. ``max_trials`` caps the trials of
    an arm (``None``: no cap).

    Examples
    --------
    >>> b = EqualTime(600.0)
    >>> b.open(ArmUse(4, 599.0)), b.open(ArmUse(1, 600.0)), b.used(ArmUse(4, 599.0))
    (True, False, 599.0)
    """

    seconds: float
    max_trials: Optional[int] = None

    def __post_init__(self):
        if not self.seconds > 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.max_trials is not None and self.max_trials < 1:
            raise ValueError(f"max_trials must be positive, got {self.max_trials}")

    def open(self, use: ArmUse) -> bool:
        return use.seconds < self.seconds and (self.max_trials is None or use.trials < self.max_trials)

    def used(self, use: ArmUse) -> float:
        return use.seconds

    def target(self, use: ArmUse) -> int:
        return use.trials if not self.open(use) else use.trials + 1

    def describe(self) -> str:
        cap = f", at most {self.max_trials} trials" if self.max_trials is not None else ""
        return f"{self.seconds:g} s of trial wall time per arm{cap}"

    unit = "s"

    @property
    def per_arm(self) -> float:
        return self.seconds

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": "equal-time", "seconds": self.seconds, "max_trials": self.max_trials}

    def statement(self, arms: Mapping[str, Mapping[str, Any]], per_trial: str) -> str:
        emu, base = arms["emu"], arms["baseline"]
        return (f"both arms had {self.describe()} on the same machine, the next trial always going to the arm "
                f"that had used less (so they alternated): EMU ran {emu['trials_finished']} trials in "
                f"{emu['seconds_trained']:.0f} s, the baseline {base['trials_finished']} in "
                f"{base['seconds_trained']:.0f} s (an arm may run past its time by its last trial); trials "
                f"{per_trial}")

    def caveat(self, arms: Mapping[str, Mapping[str, Any]]) -> str:
        return (f"Equal time is not equal trials: EMU ran {arms['emu']['trials_finished']} trials and the "
                f"baseline {arms['baseline']['trials_finished']} (wall time of every trial on the machine that "
                f"ran it, set-up and evaluation included).")


#: a comparison's budget
Budget = Union[EqualTrials, EqualTime]
