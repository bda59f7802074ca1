"""Rank computation from score matrices, with filtering and three tie policies."""
from __future__ import annotations

import enum
from typing import Dict, Optional, Tuple

import torch

from ..typing import Tensor

__all__ = ["TiePolicy", "count_greater_equal", "ranks_from_counts", "compute_ranks"]


class TiePolicy(enum.Enum):
    """How to rank a true entity that ties with others.

    ``OPTIMISTIC`` puts it first among ties, ``PESSIMISTIC`` last, ``REALISTIC`` (the headline)
    in the middle: the expected rank under random tie-breaking.
    """

    OPTIMISTIC = "optimistic"
    PESSIMISTIC = "pessimistic"
    REALISTIC = "realistic"


def count_greater_equal(scores: Tensor, true_scores: Tensor,
                        exclude: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tensor]:
    """Count candidates scoring strictly above and equal to the true score, row by row.

    Parameters
    ----------
    scores : Tensor
        ``(B, C)`` candidate scores. Modified in place where ``exclude`` points.
    true_scores : Tensor
        ``(B,)`` score of each row's true entity.
    exclude : (Tensor, Tensor), optional
        COO ``(rows, cols)`` of entries to leave out (the true entity itself and filtered known
        positives); they are set to NaN, which compares false with everything.

    Returns
    -------
    greater, equal : Tensor
        ``(B,)`` int64 counts.

    Examples
    --------
    >>> s = torch.tensor([[3., 1., 3., 2.]])
    >>> count_greater_equal(s, torch.tensor([2.]), (torch.tensor([0]), torch.tensor([3])))
    (tensor([2]), tensor([0]))
    """
    if exclude is not None:
        scores[exclude[0], exclude[1]] = float("nan")
    t = true_scores.unsqueeze(1)
    return (scores > t).sum(1), (scores == t).sum(1)


def ranks_from_counts(greater: Tensor, equal: Tensor) -> Dict[TiePolicy, Tensor]:
    """1-based ranks of each tie policy from the counts of :func:`count_greater_equal`.

    The true entity itself is not among ``equal``. Returns float64 ``(B,)`` per policy.

    Examples
    --------
    >>> r = ranks_from_counts(torch.tensor([2]), torch.tensor([3]))
    >>> [r[p].item() for p in TiePolicy]
    [3.0, 6.0, 4.5]
    """
    greater, equal = greater.double(), equal.double()
    return {TiePolicy.OPTIMISTIC: greater + 1,
            TiePolicy.PESSIMISTIC: greater + equal + 1,
            TiePolicy.REALISTIC: greater + equal / 2 + 1}


def compute_ranks(scores: Tensor, true_ids: Tensor,
                  filtered: Optional[Tuple[Tensor, Tensor]] = None) -> Dict[TiePolicy, Tensor]:
    """Ranks of the true entities in a full ``(B, E)`` score matrix.

    The true score is read from the same matrix, so no second scoring path can disagree with it.

    Parameters
    ----------
    scores : Tensor
        ``(B, E)`` scores; higher is better; ``-inf`` allowed. Modified in place.
    true_ids : Tensor
        ``(B,)`` column of each row's true entity.
    filtered : (Tensor, Tensor), optional
        COO ``(rows, cols)`` of known positives to filter out (the true entity may be among them).

    Returns
    -------
    dict of TiePolicy to Tensor
        ``(B,)`` float64 ranks in ``1..E``.

    Raises
    ------
    ValueError
        If a true score is NaN.

    Examples
    --------
    >>> s = torch.tensor([[0.5, 0.9, 0.5, 0.1], [float("-inf"), 1., float("-inf"), 0.]])
    >>> r = compute_ranks(s, torch.tensor([0, 2]))
    >>> r[TiePolicy.OPTIMISTIC].tolist(), r[TiePolicy.PESSIMISTIC].tolist()
    ([2.0, 3.0], [3.0, 4.0])
    """
    rows = torch.arange(scores.shape[0], device=scores.device)
    true_ids = true_ids.to(scores.device)
    true_scores = scores[rows, true_ids].clone()
    if torch.isnan(true_scores).any():
        raise ValueError("a true score is NaN; the model produced invalid scores")
    ex_rows, ex_cols = rows, true_ids
    if filtered is not None:
        ex_rows = torch.cat([rows, filtered[0].to(scores.device)])
        ex_cols = torch.cat([true_ids, filtered[1].to(scores.device)])
    return ranks_from_counts(*count_greater_equal(scores, true_scores, (ex_rows, ex_cols)))
