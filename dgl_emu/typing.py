"""Small shared types: the corrupted side of a triple and tensor aliases."""
from __future__ import annotations

import enum

import torch

__all__ = ["Target", "Tensor", "COLUMN"]

Tensor = torch.Tensor


class Target(enum.Enum):
    """The side of a ``(head, relation, tail)`` triple that is corrupted or predicted.

    Examples
    --------
    >>> Target.HEAD.column, Target.TAIL.column
    (0, 2)
    >>> Target.TAIL.other is Target.HEAD
    True
    """

    HEAD = "head"
    TAIL = "tail"

    @property
    def column(self) -> int:
        """Column of this side in an ``(N, 3)`` triple tensor."""
        return COLUMN[self]

    @property
    def other(self) -> "Target":
        """The opposite side."""
        return Target.TAIL if self is Target.HEAD else Target.HEAD


COLUMN = {Target.HEAD: 0, Target.TAIL: 2}
