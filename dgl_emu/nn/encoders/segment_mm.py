"""A segment matmul, ``Y[start:stop] = X[start:stop] @ W[r]``, with its own backward.

Used by :class:`~dgl_emu.nn.encoders.relgraphconv.RelationalGraphConv` for rows sorted by
relation; ``W[r]`` is ``(d_in, d_out)`` or block-diagonal ``(B, d_in/B, d_out/B)``.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

Tensor = torch.Tensor

__all__ = ["segment_matmul"]


def _block_mm(x: Tensor, w: Tensor, out: Tensor) -> None:
    """``out = x @ w``; ``w (si, so)`` dense or ``(B, si, so)`` block-diagonal (``x (n, B*si)``)."""
    if w.dim() == 2:
        torch.mm(x, w, out=out)
    else:
        n, (nb, si, so) = x.shape[0], w.shape
        blocks = torch.bmm(x.reshape(n, nb, si).transpose(0, 1), w)  # (B, n, so)
        out.view(n, nb, so).copy_(blocks.transpose(0, 1))


class _SegmentMatmul(torch.autograd.Function):
    """``Y[start:stop] = X[start:stop] @ W[r]`` for each ``(r, start, stop)`` segment."""

    @staticmethod
    def forward(ctx, x, weight, segments, d_out):
        ctx.save_for_backward(x, weight)
        ctx.segments = segments
        out = x.new_empty(x.shape[0], d_out)  # the segments cover every row
        for r, start, stop in segments:
            _block_mm(x[start:stop], weight[r], out[start:stop])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        for r, start, stop in ctx.segments:
            gy, w = grad_out[start:stop], weight[r]
            if grad_x is not None:
                _block_mm(gy, w.transpose(-1, -2), grad_x[start:stop])
            if grad_w is not None:
                xs = x[start:stop]
                if w.dim() == 2:
                    torch.mm(xs.t(), gy, out=grad_w[r])
                else:
                    nb, si, so = w.shape
                    grad_w[r] = torch.bmm(xs.reshape(-1, nb, si).permute(1, 2, 0),
                                          gy.reshape(-1, nb, so).transpose(0, 1))
        return grad_x, grad_w, None, None


def segment_matmul(x: Tensor, weight: Tensor, segments, d_out: int) -> Tensor:
    """``(n, d_out)``: rows ``start:stop`` of ``x (n, d_in)`` times ``weight[r]`` for each segment.

    ``segments`` is a sequence of ``(r, start, stop)`` covering every row of ``x``; ``weight`` is
    ``(R, d_in, d_out)`` or ``(R, B, d_in/B, d_out/B)`` (block-diagonal). Differentiable in ``x``
    and ``weight``.

    Examples
    --------
    >>> x, w = torch.ones(3, 2), torch.stack([torch.eye(2), 2 * torch.eye(2)])
    >>> segment_matmul(x, w, ((0, 0, 1), (1, 1, 3)), 2)
    tensor([[1., 1.],
            [2., 2.],
            [2., 2.]])
    """
    return _SegmentMatmul.apply(x, weight, segments, d_out)
