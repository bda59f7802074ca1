"""Counter-based random bits: EMU's keep-mask as a pure function of (seed, draw, row, negative, coordinate).

The keep bit of coordinate ``j`` of negative ``k`` of row ``i`` of the ``s``-th draw of a stream
seeded ``seed`` is

.. code-block:: text

   key   = mix64(mix64(seed) + s * G)
   z     = mix64(key + (i << 40 | k << 20 | j // 2) * G)          (G = 0x9E3779B97F4A7C15)
   u     = z >> 32 for even j, z & 0xFFFFFFFF for odd j             (a uniform 32-bit integer)
   keep  = u < floor(p * 2**32)

with ``mix64`` the finaliser of SplitMix64 (Steele, Lea and Flood, OOPSLA 2014), a bijection of
64-bit words with full avalanche; like cuRAND's Philox and JAX's Threefry it is a counter-based
generator: any bit can be computed anywhere, in any order, from its coordinates alone. So a bit
is recomputed instead of stored (the fused EMU kernels of :mod:`dgl_emu.nn.fused` recompute it
in the backward pass), a data-parallel process computes the bits of its own rows of a batch
without drawing the others' (rows are global: ``row0`` is the first row it holds), and a
checkpoint needs only ``(seed, draws)``. ``P(keep) = floor(p 2^32) / 2^32``, within ``2^-32`` of
``p`` (and exact for ``p`` a multiple of ``2^-32``: 0, 1, 0.5, ...).

Limits: rows below ``2^24``, negatives below ``2^20``, coordinates below ``2^21`` per draw.
:func:`counter_mask` computes the bits with torch operations (the reference; it runs on any
device).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch

__all__ = ["GOLDEN", "signed64", "mix64", "draw_key", "keep_threshold", "counter_uniforms", "uniforms_of_rows", "counter_mask",
           "CounterStream",
           "check_counters", "MAX_ROWS", "MAX_NEGATIVES", "MAX_WIDTH"]

#: the odd 64-bit increment of SplitMix64 (2^64 / golden ratio)
GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
#: counter fields: row << 40 | negative << 20 | pair of coordinates
MAX_ROWS, MAX_NEGATIVES, MAX_WIDTH = 1 << 24, 1 << 20, 1 << 21


def signed64(x: int) -> int:
    """A 64-bit word as torch's int64 holds it (two's complement).

    >>> signed64(2 ** 64 - 1), signed64(5)
    (-1, 5)
    """
    return x - (1 << 64) if x >= 1 << 63 else x


def mix64(z: int) -> int:
    """SplitMix64's finaliser of a 64-bit word (Python integers).

    >>> hex(mix64(0)), hex(mix64(1))
    ('0x0', '0x5692161d100b05e5')
    """
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


def draw_key(seed: int, draw: int) -> int:
    """The 64-bit key of draw number ``draw`` of the stream seeded ``seed``."""
    return mix64(mix64(seed) + draw * GOLDEN)


def keep_threshold(p: float) -> int:
    """``floor(p * 2**32)``: a 32-bit uniform below it keeps the coordinate (``2**32`` for ``p = 1``).

    >>> keep_threshold(0.5), keep_threshold(1.0), keep_threshold(0.0)
    (2147483648, 4294967296, 0)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return min(1 << 32, math.floor(p * (1 << 32)))


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 words (torch's shift is arithmetic)."""
    return torch.bitwise_right_shift(x, k) & ((1 << (64 - k)) - 1)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """:func:`mix64` of int64 tensors (multiplication wraps modulo 2^64, as int64 does)."""
    z = (z ^ _srl(z, 30)) * signed64(_C1)
    z = (z ^ _srl(z, 27)) * signed64(_C2)
    return z ^ _srl(z, 31)


def check_counters(row0: int, rows: int, negatives: int, width: int) -> None:
    """Refuse rows, negatives or widths past the counter's fields (:class:`ValueError`)."""
    if row0 < 0 or row0 + rows > MAX_ROWS or negatives > MAX_NEGATIVES or width > MAX_WIDTH:
        raise ValueError(f"counter fields out of range: rows {row0}..{row0 + rows} (< {MAX_ROWS}), "
                         f"{negatives} negatives (<= {MAX_NEGATIVES}), width {width} (<= {MAX_WIDTH})")


def counter_uniforms(key: int, row0: int, shape: Sequence[int],
                     device: Optional[torch.device] = None) -> torch.Tensor:
    """The 32-bit uniforms ``(rows, K, d)`` (as int64 in ``[0, 2^32)``) of rows ``row0 ..`` of a draw.

    Examples
    --------
    >>> u = counter_uniforms(draw_key(0, 0), 0, (2, 3, 5))
    >>> u.shape, bool(((u >= 0) & (u < 2 ** 32)).all())
    (torch.Size([2, 3, 5]), True)
    """
    rows, negatives, width = (int(s) for s in shape)
    check_counters(row0, rows, negatives, width)
    return uniforms_of_rows(torch.arange(row0, row0 + rows, dtype=torch.int64, device=device), signed64(key),
                            negatives, width)


def uniforms_of_rows(rows: torch.Tensor, key, negatives: int, width: int) -> torch.Tensor:
    """:func:`counter_uniforms` of the global rows ``rows (R,)`` (int64), with ``key`` as torch's
    int64 holds it (a Python integer or a 0-dim tensor: compiled code then takes every draw's key
    without compiling again)."""
    pairs = (width + 1) // 2
    k = torch.arange(negatives, dtype=torch.int64, device=rows.device).view(1, -1, 1)
    i = torch.arange(pairs, dtype=torch.int64, device=rows.device).view(1, 1, -1)
    counter = (rows.view(-1, 1, 1) << 40) | (k << 20) | i
    z = _mix64(counter * signed64(GOLDEN) + key)
    u = torch.stack([_srl(z, 32), z & 0xFFFFFFFF], dim=-1).view(len(rows), negatives, 2 * pairs)
    return u[..., :width]


def counter_mask(key: int, row0: int, shape: Sequence[int], p: float, device: Optional[torch.device] = None,
                 dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """EMU's keep-mask ``(rows, K, d)`` of rows ``row0 ..`` of the draw with ``key`` (1 = keep).

    Examples
    --------
    >>> m = counter_mask(draw_key(7, 0), 0, (100, 64, 50), 0.39)
    >>> abs(m.double().mean().item() - 0.39) < 0.005
    True
    >>> torch.equal(counter_mask(draw_key(7, 0), 40, (10, 64, 50), 0.39), m[40:50])   # rows are global
    True
    """
    return (counter_uniforms(key, row0, shape, device) < keep_threshold(p)).to(dtype)


class CounterStream:
    """A counter-based stream: draw ``s`` has the key :func:`draw_key` ``(seed, s)``.

    It follows the :class:`~dgl_emu.rng.GeneratorPool` protocol that checkpoints and
    :func:`~dgl_emu.rng.row_window` use: :meth:`state_dict` / :meth:`load_state_dict` (the
    number of draws made) and ``window`` (the rows of a batch this process holds: their first
    row is the draw's ``row0``).

    Examples
    --------
    >>> s = CounterStream(seed=3)
    >>> s.next_draw() == (draw_key(3, 0), 0), s.state_dict()
    (True, {'draws': 1})
    >>> s.window = (10, slice(4, 8))
    >>> s.next_draw()[1]
    4
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.draws = 0
        #: ``(total, rows)`` while a row window is active (see :func:`dgl_emu.rng.row_window`)
        self.window: Optional[Tuple[int, slice]] = None

    def next_draw(self) -> Tuple[int, int]:
        """``(key, row0)`` of the next draw: its key, and the global row of this process's first row."""
        key = draw_key(self.seed, self.draws)
        self.draws += 1
        return key, (self.window[1].start or 0) if self.window is not None else 0

    def state_dict(self) -> dict:
        """``{"draws": n}``: all a resumed stream needs besides its seed."""
        return {"draws": self.draws}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; a generator state of an older checkpoint restarts the count."""
        self.draws = int(state.get("draws", 0)) if isinstance(state, dict) else 0
