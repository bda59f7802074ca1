"""Fused EMU scoring by ``torch.compile``: the engine for devices without the C++ kernels (CUDA).

:func:`compiled_scores` is :func:`~dgl_emu.nn.fused.fused_scores` written with torch operations
(the counter bits of :mod:`dgl_emu.counter_rng`, ``torch.where``, the comparison and its sum) and
compiled by Inductor, which fuses the bits, the mutation and the reduction over ``d`` into one
kernel per pass: on CUDA a Triton kernel, on CPU C++ (where the tests compare it with the C++
kernels). The draw's key, first row, keep threshold and chunking are tensors and the shapes are
dynamic, so every step, rank and batch size reuses one compiled graph per comparison (the
plain scores are computed with the mutated ones, from the same reads of the negatives).
Inductor caches what it compiles on disk (its FX graph cache), so a later run loads instead of
compiling; :func:`compiled_status` reports the seconds of the first calls.

Whether Inductor keeps the ``(B, K, d)`` mask out of memory in the backward pass (recomputing the
bits) is its partitioner's choice; the scores and gradients are those of the reference either
way (the tests check both against it).
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

import torch

from ..counter_rng import check_counters, keep_threshold, signed64, uniforms_of_rows
from ..typing import Tensor
from .fused import FusedKind, compare

try:
    from torch.utils._triton import has_triton  # private, but stable since torch 2.1
except ImportError:  # pragma: no cover - a torch without it
    def has_triton() -> bool:
        return False

__all__ = ["compiled_scores", "compiled_available", "compiled_status"]

_STATE = {"fn": None, "status": "not compiled yet", "first": set(), "seconds": 0.0}


def _scores(q: Tensor, p: Tensor, n: Tensor, key: Tensor, row0: Tensor, threshold: Tensor, chunk: Tensor,
            phase: Tensor, kind: FusedKind) -> Tuple[Tensor, Tensor]:
    """The graph that Inductor compiles (torch operations only; every argument but ``kind`` a
    tensor, 0-dim int64 for the counters, so steps, ranks and chunkings share one graph per
    comparison; the plain scores come from the same reads of ``n``)."""
    B, d = q.shape
    rows = torch.arange(B, device=q.device)
    full = n[(rows + phase) // chunk]
    keep = uniforms_of_rows(rows + row0, key, n.shape[1], d) < threshold
    mutated = torch.where(keep, full, p.unsqueeze(1))
    return compare(mutated, q.unsqueeze(1), kind), compare(full, q.unsqueeze(1), kind)


def compiled_available(device: torch.device) -> bool:
    """Whether :func:`compiled_scores` can run on ``device``: Inductor needs Triton for CUDA (and a
    C++ compiler for CPU, which :func:`~dgl_emu.nn.fused.kernels` serves instead)."""
    return torch.device(device).type == "cuda" and bool(has_triton())


def compiled_status() -> str:
    """One line: the first compiled call's seconds (compilation included), or that none ran yet."""
    return _STATE["status"]


def compiled_scores(q: Tensor, p: Tensor, n: Tensor, kind: FusedKind, key: int, row0: int, keep_prob: float,
                    with_plain: bool = True, chunk: int = 1, phase: int = 0) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`~dgl_emu.nn.fused.fused_scores` (same arguments, same bits, same scores) by
    ``torch.compile``, on any device Inductor compiles for; differentiable by autograd.

    Parameters
    ----------
    q, p : Tensor
        ``(B, d)`` query and positive embedding.
    n : Tensor
        ``(C, K, d)`` negatives (row ``b`` uses ``n[(b + phase) // chunk]``).
    kind : FusedKind
        The comparison.
    key, row0 : int
        The draw's key and the global row of the first row.
    keep_prob : float
        ``p`` of EMU.
    with_plain, chunk, phase
        As :func:`~dgl_emu.nn.fused.fused_scores`.

    Returns
    -------
    (Tensor, Tensor or None)
        ``(B, K)`` scores of the mutated negatives, and of the negatives (``None`` without
        ``with_plain``).
    """
    check_counters(row0, q.shape[0], n.shape[1], q.shape[1])
    if _STATE["fn"] is None:  # dynamic shapes: a last, smaller batch does not compile again
        _STATE["fn"] = torch.compile(_scores, dynamic=True)
    counters = (signed64(key), row0, keep_threshold(keep_prob), chunk, phase)
    signature = (q.device.type, q.dtype, int(kind))
    started = time.perf_counter()
    emu, plain = _STATE["fn"](q, p, n, *(torch.tensor(v, dtype=torch.int64, device=q.device) for v in counters),
                              FusedKind(kind))
    if signature not in _STATE["first"]:
        _STATE["first"].add(signature)
        _STATE["seconds"] += time.perf_counter() - started
        _STATE["status"] = (f"{len(_STATE['first'])} graph(s) compiled in {_STATE['seconds']:.1f} s at their first "
                            f"calls (Inductor caches them on disk)")
    return emu, (plain if with_plain else None)
