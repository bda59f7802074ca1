"""Rows of an entity table with a sparse gradient: each distinct row looked up once.

The sparse path of :meth:`KGEModel.gather <dgl_emu.models.KGEModel.gather>` and of
:meth:`Encoder.entity_rows <dgl_emu.nn.encoders.Encoder.entity_rows>`.
"""
from __future__ import annotations

from typing import Tuple

import torch

from ..typing import Tensor

__all__ = ["distinct_rows", "gather_rows"]


def distinct_rows(ids: Tensor, num_rows: int) -> Tuple[Tensor, Tensor]:
    """``(unique, inverse)``: the sorted distinct ``ids`` and each id's position among them.

    Marks the ids in a ``num_rows`` boolean array instead of sorting them: ``O(len(ids))`` work
    plus a scan of one byte per row (5 MB at 5M rows), far cheaper than a sort of the batch's ids.

    Examples
    --------
    >>> distinct_rows(torch.tensor([4, 1, 4, 0]), 6)
    (tensor([0, 1, 4]), tensor([2, 1, 2, 0]))
    """
    mark = torch.zeros(num_rows, dtype=torch.bool, device=ids.device)
    mark[ids] = True
    unique = mark.nonzero().squeeze(1)
    slot = torch.empty(num_rows, dtype=torch.long, device=ids.device)
    slot[unique] = torch.arange(len(unique), device=ids.device)
    return unique, slot[ids]


class _GatherRows(torch.autograd.Function):
    """``table[unique]`` for sorted distinct ``unique``, whose gradient is a sparse tensor of
    those rows (built coalesced; autograd's accumulation drops the flag, so an optimiser's
    ``coalesce`` still sorts the ``U`` indices once)."""

    @staticmethod
    def forward(ctx, table: Tensor, unique: Tensor) -> Tensor:
        ctx.save_for_backward(unique)
        ctx.shape = table.shape
        return table[unique]

    @staticmethod
    def backward(ctx, grad: Tensor):
        (unique,) = ctx.saved_tensors
        sparse = torch.sparse_coo_tensor(unique.unsqueeze(0), grad.contiguous(), ctx.shape, is_coalesced=True)
        return sparse, None


def gather_rows(table: Tensor, unique: Tensor) -> Tensor:
    """Rows ``unique`` (sorted, distinct) of ``table`` with a sparse gradient of those rows.

    Examples
    --------
    >>> t = torch.nn.Parameter(torch.ones(5, 2))
    >>> gather_rows(t, torch.tensor([1, 3])).sum().backward()
    >>> t.grad.is_sparse, t.grad.to_dense()[:, 0].tolist()
    (True, [0.0, 1.0, 0.0, 1.0, 0.0])
    """
    return _GatherRows.apply(table, unique)
