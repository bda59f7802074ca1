"""Fused EMU scoring: the scores of mutated negatives without the ``(B, K, d)`` mutated tensor.

For a query ``q (B, d)`` (the interaction's vector that candidates are compared with), the
positive's embedding ``p (B, d)`` and the negatives ``n (C, K, d)`` (``C = B``, or one set shared
by each chunk of rows: row ``b`` uses ``n[(b + phase) // chunk]``), the mutated negatives are
``m[b, k, j] = n[., k, j] if keep(b, k, j) else p[b, j]`` with the counter-based bits of
:mod:`dgl_emu.counter_rng`, and

* :data:`FusedKind.DOT`: ``<q, m>`` (DistMult, ComplEx: linear in the candidate),
* :data:`FusedKind.L1` / :data:`FusedKind.L2`: ``||m - q||`` (TransE),
* :data:`FusedKind.COMPLEX`: ``sum_i |m_i - q_i|`` over complex coordinates (RotatE).

:func:`fused_scores` computes them (and the plain scores of ``n``, read in the same pass) in a C++
kernel that never forms ``m``; its backward pass recomputes the bits and writes the gradients of
``q``, ``p`` and ``n`` directly. The kernel is compiled with ``torch.utils.cpp_extension`` at first
use (about 40 s with two cores, once per machine and source: the build is cached in torch's
extension directory) and runs on CPU. :func:`reference_scores` is the same computation with torch
operations (the mutated tensor formed, the bits from :func:`~dgl_emu.counter_rng.counter_mask`):
the oracle of the tests and the path taken where the kernel is not available (no compiler, CUDA
tensors), with one log line saying so.
"""
from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch

from ..counter_rng import check_counters, counter_mask, keep_threshold, signed64
from ..typing import Tensor

__all__ = ["FusedKind", "fused_scores", "reference_scores", "shared_rows", "keep_mask", "compare", "kernels",
           "kernel_status", "unfused", "switched_off", "SOURCE"]

log = logging.getLogger(__name__)

#: the C++ source of the kernels
SOURCE = Path(__file__).with_name("csrc") / "fused_emu.cpp"


class FusedKind(enum.IntEnum):
    """How a candidate is compared with the query (the kernel's ``kind``)."""

    DOT = 0
    L1 = 1
    L2 = 2
    COMPLEX = 3


#: compiler flags: the machine's own vector instructions; sqrt without errno, so it vectorises
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno")

_STATE = {"loaded": False, "module": None, "status": "not loaded", "off": 0}


@contextlib.contextmanager
def unfused() -> Iterator[None]:
    """Within the block, :func:`kernels` answers ``None``: EMU forms its mutated negatives (the
    reference path, for comparisons of the two; the bits are the same)."""
    _STATE["off"] += 1
    try:
        yield
    finally:
        _STATE["off"] -= 1


def switched_off() -> bool:
    """Whether the calling code is inside :func:`unfused` (every fused engine answers ``None``)."""
    return bool(_STATE["off"])


def _build_name() -> str:
    """The extension's name: the source's and the CPU's digest, so a build for other CPU kernels
    (``-march=native``) or an edited source is never reused."""
    cpu = torch.backends.cpu.get_cpu_capability()
    flags = ""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    # the source's path too: torch rebuilds an extension whose sources moved (another checkout)
    digest = hashlib.sha256(SOURCE.read_bytes() + str(SOURCE.resolve()).encode() + " ".join(CFLAGS).encode()
                            + cpu.encode() + flags.encode() + torch.__version__.encode())
    return f"dgl_emu_fused_{digest.hexdigest()[:16]}"


def kernels():
    """The compiled kernels (compiled and loaded on first call), or ``None`` where they cannot be
    built, or inside :func:`unfused`; :func:`kernel_status` says which and why."""
    if _STATE["off"]:
        return None
    if _STATE["loaded"]:
        return _STATE["module"]
    _STATE["loaded"] = True
    started = time.perf_counter()
    try:
        from torch.utils import cpp_extension  # start-up cost: imports setuptools; only when EMU trains
        module = cpp_extension.load(name=_build_name(), sources=[str(SOURCE)], verbose=False,
                                    extra_cflags=list(CFLAGS), extra_ldflags=["-fopenmp"])
    except Exception as e:  # no compiler, no ninja, a failed build: the torch path works everywhere
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        _STATE["status"] = f"unavailable ({first[:200]}): EMU runs unfused (same bits, slower)"
        log.warning("fused EMU kernels %s", _STATE["status"])
        return None
    _STATE["module"] = module
    _STATE["status"] = f"loaded in {time.perf_counter() - started:.1f} s (built once, then cached)"
    log.info("fused EMU kernels %s", _STATE["status"])
    return module


def kernel_status() -> str:
    """One line: whether the kernels are loaded (and how long that took) or why not."""
    return _STATE["status"]


class _FusedEMU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, p, n, kind: int, key: int, row0: int, threshold: int, with_plain: bool, chunk: int,
                phase: int):
        q, p, n = q.contiguous(), p.contiguous(), n.contiguous()
        emu, plain = kernels().forward(q, p, n, kind, signed64(key), row0, threshold, with_plain, chunk, phase)
        ctx.save_for_backward(q, p, n, emu, plain if with_plain else emu)
        ctx.args = (kind, signed64(key), row0, threshold, chunk, phase, with_plain)
        if not with_plain:
            plain = emu.new_empty(0)
            ctx.mark_non_differentiable(plain)
        return emu, plain

    @staticmethod
    def backward(ctx, g_emu, g_plain):
        q, p, n, emu, plain = ctx.saved_tensors
        kind, key, row0, threshold, chunk, phase, with_plain = ctx.args
        if g_emu is None:
            g_emu = torch.zeros_like(emu)
        if not with_plain or g_plain is None or g_plain.numel() == 0:
            g_plain = torch.empty(0, dtype=q.dtype)
        gq, gp, gn = kernels().backward(q, p, n, g_emu, g_plain, emu, plain, kind, key, row0, threshold, chunk, phase)
        return gq, gp, gn, None, None, None, None, None, None, None


def fused_scores(q: Tensor, p: Tensor, n: Tensor, kind: FusedKind, key: int, row0: int, keep_prob: float,
                 with_plain: bool = True, chunk: int = 1, phase: int = 0) -> Tuple[Tensor, Optional[Tensor]]:
    """Scores of the mutated negatives ``(B, K)``, and of the negatives themselves (``None`` without
    ``with_plain``), by the compiled kernel (CPU; :func:`kernels` must not be ``None``).

    Parameters
    ----------
    q, p : Tensor
        ``(B, d)`` query and positive embedding.
    n : Tensor
        ``(C, K, d)`` negatives, ``C = ceil((B + phase) / chunk)``: row ``b`` uses
        ``n[(b + phase) // chunk]``.
    kind : FusedKind
        The comparison.
    key, row0 : int
        The draw's key and the global row of ``q``'s first row (:meth:`CounterStream.next_draw
        <dgl_emu.counter_rng.CounterStream.next_draw>`).
    keep_prob : float
        ``p`` of EMU.
    with_plain : bool
        Also return ``kernel(n, q)``, read in the same pass.
    chunk : int
        Rows that share one set of negatives.
    phase : int
        The first row's place in its chunk (``0 <= phase < chunk``).
    """
    check_counters(row0, q.shape[0], n.shape[1], q.shape[1])
    emu, plain = _FusedEMU.apply(q, p, n, int(kind), key, row0, keep_threshold(keep_prob), with_plain, chunk,
                                 phase)
    return emu, (plain if with_plain else None)


def keep_mask(key: int, row0: int, shape, keep_prob: float, device: torch.device,
              dtype: torch.dtype = torch.bool) -> Tensor:
    """:func:`~dgl_emu.counter_rng.counter_mask`, by the compiled kernel on CPU when it is loaded
    (the same bits; a floating ``dtype`` is written in one pass)."""
    module = None if _STATE["off"] else _STATE["module"]
    if module is not None and device.type == "cpu" and dtype.is_floating_point:
        rows, negatives, width = (int(s) for s in shape)
        check_counters(row0, rows, negatives, width)
        return module.mask(signed64(key), row0, rows, negatives, width, keep_threshold(keep_prob), dtype)
    return counter_mask(key, row0, shape, keep_prob, device=device, dtype=dtype)


def shared_rows(n: Tensor, rows: int, chunk: int = 1, phase: int = 0) -> Tensor:
    """``(rows, K, d)``: the negatives of every row from the ``(C, K, d)`` sets its chunks share
    (row ``b`` has ``n[(b + phase) // chunk]``); ``n`` itself when ``chunk`` is 1.

    >>> shared_rows(torch.arange(3.).view(3, 1, 1), 5, chunk=2, phase=1).flatten().tolist()
    [0.0, 1.0, 1.0, 2.0, 2.0]
    """
    if chunk == 1:
        return n
    return n[(torch.arange(rows, device=n.device) + phase) // chunk]


def compare(candidates: Tensor, q: Tensor, kind: FusedKind) -> Tensor:
    """``kernel(candidates (B, K, d), q (B, 1, d)) -> (B, K)`` with torch operations."""
    if kind is FusedKind.DOT:
        return (candidates * q).sum(-1)
    diff = candidates - q
    if kind is FusedKind.L1:
        return diff.abs().sum(-1)
    if kind is FusedKind.L2:
        return torch.linalg.vector_norm(diff, ord=2, dim=-1)
    re, im = diff.chunk(2, dim=-1)
    return torch.sqrt(re * re + im * im).sum(-1)


def reference_scores(q: Tensor, p: Tensor, n: Tensor, kind: FusedKind, key: int, row0: int, keep_prob: float,
                     with_plain: bool = True, chunk: int = 1, phase: int = 0) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`fused_scores` with torch operations and autograd: the mutated negatives formed
    (``torch.where`` with the counter mask), then compared. Any device, any differentiable order.
    """
    B, K, d = q.shape[0], n.shape[1], q.shape[1]
    full = shared_rows(n, B, chunk, phase)
    keep = counter_mask(key, row0, (B, K, d), keep_prob, device=q.device)
    mutated = torch.where(keep, full, p.unsqueeze(1))
    emu = compare(mutated, q.unsqueeze(1), kind)
    return emu, (compare(full, q.unsqueeze(1), kind) if with_plain else None)
