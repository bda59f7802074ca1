"""The pruning rule of a study: Optuna's median rule, with a warm-up.

A trial reports its validation MRR at every validation; the rule stops it when its best value so
far is below the median of the complete trials' values at the same step. Two guards keep the
rule from acting on noise:

* ``after``: no trial is pruned before that many trials are complete (Optuna's
  ``n_startup_trials``);
* ``warmup``: no trial is pruned before that fraction of its steps (Optuna's ``n_warmup_steps``).
  Early validations rank learning rates, not configurations: a trial with a small learning rate
  is far behind at the first validation and may still end among the best, so the default waits
  for a quarter of the steps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict

from ..config import ConfigError

__all__ = ["MedianRule", "TPE_STARTUP"]

#: trials that the TPE sampler draws at random before it models the results (Optuna's default);
#: a study of this many trials or fewer is a random search
TPE_STARTUP = 10


@dataclass(frozen=True)
class MedianRule:
    """Median pruning with ``after`` complete trials and a ``warmup`` fraction of steps first.

    Parameters
    ----------
    after : int
        Complete trials before any trial is pruned (``>= 0``).
    warmup : float
        Fraction of a trial's steps, in ``[0, 1)``, before which it is never pruned.

    Raises
    ------
    ConfigError
        ``after < 0`` (option ``prune_after``) or ``warmup`` outside ``[0, 1)`` (``prune_warmup``).

    Examples
    --------
    >>> rule = MedianRule(after=4, warmup=0.25)
    >>> rule.warmup_steps(2000)
    500
    >>> rule.describe(2000)
    'median of the complete trials at the same step, once 4 trials are complete, never before step 500'
    >>> MedianRule(after=4, warmup=0).describe(2000)
    'median of the complete trials at the same step, once 4 trials are complete, from the first validation'
    """

    after: int = 5
    warmup: float = 0.25

    def __post_init__(self):
        if not (isinstance(self.after, int) and not isinstance(self.after, bool) and self.after >= 0):
            raise ConfigError(f"prune_after: expected an integer >= 0, got {self.after!r}", "prune_after")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise ConfigError(f"prune_warmup: expected a fraction of the steps in [0, 1), got {self.warmup!r}",
                              "prune_warmup")

    def warmup_steps(self, steps: int) -> int:
        """The first step at which a trial of ``steps`` steps may be pruned: ``ceil(warmup · steps)``."""
        return math.ceil(self.warmup * steps)

    def pruner(self, steps: int):
        """The :class:`optuna.pruners.MedianPruner` of this rule for trials of ``steps`` steps."""
        import optuna  # start-up cost: Optuna, imported when a study builds its pruner
        return optuna.pruners.MedianPruner(n_startup_trials=self.after, n_warmup_steps=self.warmup_steps(steps))

    def describe(self, steps: int) -> str:
        """The rule in words, for trials of ``steps`` steps."""
        first = self.warmup_steps(steps)
        return (f"median of the complete trials at the same step, once {self.after} trials are complete, "
                + (f"never before step {first}" if first else "from the first validation"))

    def to_dict(self) -> Dict[str, float]:
        """``{"after": ..., "warmup": ...}``, as a study stores it."""
        return asdict(self)
