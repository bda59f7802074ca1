"""Which engine computes EMU's fused scores on a device.

* CPU: the C++ kernels of :mod:`dgl_emu.nn.fused` (built at first use, cached by torch);
* CUDA: :func:`~dgl_emu.nn.fused_compiled.compiled_scores`, torch operations compiled by Inductor
  into Triton kernels (compiled at the first step, cached by Inductor);
* otherwise, or inside :func:`~dgl_emu.nn.fused.unfused`: none, and EMU forms its mutated
  negatives (the reference path: the same bits, more memory and time).

Every engine takes :func:`~dgl_emu.nn.fused.fused_scores`'s arguments and returns its values.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from ..typing import Tensor
from .fused import FusedKind, fused_scores, kernel_status, kernels, switched_off
from .fused_compiled import compiled_available, compiled_scores, compiled_status

__all__ = ["engine_for", "engine_note", "shared_scores", "FusedScores"]

#: ``(q, p, n, kind, key, row0, keep_prob, with_plain=True, chunk=1, phase=0) -> (emu, plain)``
FusedScores = Callable[..., Tuple[Tensor, Optional[Tensor]]]


def engine_for(device: torch.device) -> Optional[FusedScores]:
    """The fused engine for tensors on ``device``, or ``None`` (form the mutated negatives)."""
    device = torch.device(device)
    if switched_off():
        return None
    if device.type == "cpu":
        return fused_scores if kernels() is not None else None
    return compiled_scores if compiled_available(device) else None


def engine_note(device: torch.device) -> str:
    """One line on the engine of ``device``: loaded (and in how long), or why none is used."""
    device = torch.device(device)
    if device.type == "cpu":
        kernels()
        return f"fused kernels {kernel_status()}"
    if compiled_available(device):
        return f"fused by torch.compile (Inductor, Triton) on {device.type}: {compiled_status()}"
    return (f"no fused engine on {device.type} (torch.compile needs Triton there): EMU runs unfused "
            f"(same bits, slower)")


def shared_scores(q: Tensor, n: Tensor, kind: FusedKind, chunk: int, phase: int = 0) -> Tensor:
    """``(B, K)`` scores of the negatives that chunks of rows share (``n (C, K, d)``, row ``b``
    reads ``n[(b + phase) // chunk]``) against the queries ``q (B, d)``, by the fused engine of
    their device (which must have one): no ``(B, K, d)`` tensor, each set's gradient summed over
    its rows."""
    emu, _ = engine_for(q.device)(q, q.detach(), n, kind, 0, 0, 1.0, with_plain=False, chunk=chunk, phase=phase)
    return emu
