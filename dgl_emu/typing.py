"""Small shared types: the corrupted side of a triple, shared negatives, tensor aliases, and the
checks of counts, probabilities and id triples that the public constructors share with the
command line."""
from __future__ import annotations

import enum
import math
import numbers
from typing import Any, NamedTuple, Optional

import torch

__all__ = ["Target", "Tensor", "COLUMN", "Sharing", "as_count", "as_probability", "as_id_triples", "INT64_MAX"]

#: the largest value of a count (an int64 on the way to torch)
INT64_MAX = 2 ** 63 - 1

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


def as_count(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as a count of at least ``minimum``: an integer (a float such as ``2.5``, or even
    ``2.0``, a bool or a string is refused, as on the command line).

    Raises
    ------
    TypeError
        Naming ``name`` when ``value`` is not an integer.
    ValueError
        Naming ``name`` and the range when it is below ``minimum`` or above ``2^63 - 1``.

    Examples
    --------
    >>> as_count(3, "num_negatives")
    3
    >>> as_count(2.5, "num_negatives")
    Traceback (most recent call last):
    ...
    TypeError: num_negatives must be an integer, got 2.5 (float)
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value}")
    if value > INT64_MAX:
        raise ValueError(f"{name} must be at most 2^63 - 1 (a 64-bit integer), got {value}")
    return int(value)


def as_probability(value: Any, name: str) -> float:
    """``value`` as a probability: a real number in ``[0, 1]`` (not a bool, not NaN).

    Examples
    --------
    >>> as_probability(0.39, "keep_prob")
    0.39
    >>> as_probability(1.5, "keep_prob")
    Traceback (most recent call last):
    ...
    ValueError: keep_prob must be in [0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r} ({type(value).__name__})")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def as_id_triples(data: Any, name: str, columns: int = 3, num_entities: Optional[int] = None,
                  num_relations: Optional[int] = None) -> Tensor:
    """``data`` (a tensor, array or nested list) as an ``(N, columns)`` int64 tensor of ids.

    Nothing is reshaped, rounded or cut: a float, bool or 1-D input, a wrong number of columns
    or a negative id is refused, naming ``name``; with ``num_entities`` / ``num_relations``, ids
    beyond them too. An empty input is ``(0, columns)``.

    Raises
    ------
    TypeError
        When the values are not integers.
    ValueError
        When the shape is not ``(N, columns)`` or an id is out of range.

    Examples
    --------
    >>> as_id_triples([[0, 1, 2]], "train").shape
    torch.Size([1, 3])
    >>> as_id_triples([[0, 1], [2, 3]], "train")
    Traceback (most recent call last):
    ...
    ValueError: train: expected id triples of shape (N, 3), got shape (2, 2)
    """
    try:
        t = torch.as_tensor(data)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name}: expected id triples of shape (N, {columns}) ({e})") from None
    if t.numel() == 0:
        return torch.empty((0, columns), dtype=torch.long)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name}: id triples must be integers, got {t.dtype}")
    if t.dim() != 2 or t.shape[1] != columns:
        raise ValueError(f"{name}: expected id triples of shape (N, {columns}), got shape {tuple(t.shape)}")
    t = t.long()
    if int(t.min()) < 0:
        raise ValueError(f"{name}: ids must be non-negative, got {int(t.min())}")
    if num_entities is not None and int(t[:, [0, 2]].max()) >= num_entities:
        raise ValueError(f"{name}: entity id {int(t[:, [0, 2]].max())} outside 0..{num_entities - 1}")
    if num_relations is not None and columns == 3 and int(t[:, 1].max()) >= num_relations:
        raise ValueError(f"{name}: relation id {int(t[:, 1].max())} outside 0..{num_relations - 1}")
    return t
