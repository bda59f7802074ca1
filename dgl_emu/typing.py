"""Small shared types: the corrupted side of a triple, shared negatives, tensor aliases."""
from __future__ import annotations

import enum
from typing import NamedTuple

import torch

__all__ = ["Target", "Tensor", "COLUMN", "Sharing"]

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


class Sharing(NamedTuple):
    """How consecutive rows of a batch share negatives: chunks of ``chunk`` rows draw one set of
    ``K`` (DGL-KE's chunked negatives); ``phase`` is the first row's place in its chunk (a
    data-parallel process's share of a batch may start inside a chunk). ``Sharing()``: every
    row its own.

    Examples
    --------
    >>> s = Sharing(chunk=4, phase=3)
    >>> s.sets(6), s.first_rows(6).tolist(), s.set_of(6).tolist()
    (3, [0, 1, 5], [0, 1, 1, 1, 1, 2])
    >>> s.take(slice(2, 6))
    Sharing(chunk=4, phase=1)
    """

    chunk: int = 1
    phase: int = 0

    def sets(self, rows: int) -> int:
        """How many sets of negatives ``rows`` rows use."""
        return -(-(rows + self.phase) // self.chunk)

    def first_rows(self, rows: int) -> torch.Tensor:
        """``(sets,)`` the first row of each set."""
        starts = torch.arange(self.sets(rows)) * self.chunk - self.phase
        return starts.clamp_min(0)

    def set_of(self, rows: int) -> torch.Tensor:
        """``(rows,)`` the set each row uses."""
        return (torch.arange(rows) + self.phase) // self.chunk

    def take(self, rows: slice) -> "Sharing":
        """The sharing of the rows ``rows`` (a slice starting at ``rows.start``)."""
        return Sharing(self.chunk, (self.phase + (rows.start or 0)) % self.chunk)
