"""Losses over one layout: scores ``(B, 1 + K)`` with the positive in column 0."""
from __future__ import annotations

from typing import ClassVar, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Registry
from .ranges import FloatRange, Param
from .typing import Tensor

__all__ = ["LOSSES", "REGULARIZERS", "Loss", "SoftplusLoss", "BCELoss", "MarginRankingLoss", "CrossEntropyLoss",
           "EMULoss", "soft_cross_entropy", "LpRegularizer", "TableLpRegularizer"]

#: plain losses by name (softplus, bce, margin, ce); the EMU loss wraps one of them
LOSSES: Registry = Registry("loss")
#: regularisers by name (lp: the batch's embeddings; table: whole tables)
REGULARIZERS: Registry = Registry("regularizer")


class Loss(nn.Module):
    """A loss of ``scores (B, 1 + K)`` (column 0 the positive); returns a scalar."""

    def forward(self, scores: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@LOSSES.register("softplus")
class SoftplusLoss(Loss):
    r"""Logistic loss with optional self-adversarial weighting (Sun et al. 2019).

    .. math:: L = \tfrac12\big(-\log\sigma(s_0) - \textstyle\sum_k w_k \log\sigma(-s_k)\big)

    with :math:`w = \mathrm{softmax}(\alpha s_{1..K})` detached when ``adversarial_temperature``
    :math:`\alpha` is given, else :math:`w_k = 1/K`; averaged over the batch.

    Examples
    --------
    >>> s = torch.tensor([[0., 0., 0.]])
    >>> round(SoftplusLoss()(s).item(), 4)          # log 2
    0.6931
    """

    #: ranges searched by ``dgl-emu tune`` (:mod:`dgl_emu.tuning`)
    search_space: ClassVar[Dict[str, Param]] = {"adversarial_temperature": FloatRange(0.5, 2.0)}

    def __init__(self, adversarial_temperature: Optional[float] = None):
        super().__init__()
        self.adversarial_temperature = adversarial_temperature

    def negative_weights(self, neg_scores: Tensor) -> Tensor:
        """``(B, K)`` weights of the negatives, summing to 1 per row."""
        if self.adversarial_temperature is None:
            return torch.full_like(neg_scores, 1.0 / neg_scores.shape[1])
        return torch.softmax(self.adversarial_temperature * neg_scores.detach(), dim=1)

    def forward(self, scores: Tensor) -> Tensor:
        pos, neg = scores[:, 0], scores[:, 1:]
        neg_term = (self.negative_weights(neg) * F.softplus(neg)).sum(1)
        return 0.5 * (F.softplus(-pos) + neg_term).mean()


@LOSSES.register("bce")
class BCELoss(Loss):
    r"""Binary cross-entropy averaged over **every** score, the R-GCN paper's loss.

    .. math:: L = \frac{1}{B(1+K)} \sum_{b=1}^{B}\Big(\log\big(1 + e^{-s_{b0}}\big)
              + \sum_{k=1}^{K} \log\big(1 + e^{s_{bk}}\big)\Big)

    The positive of a row weighs ``1/(1+K)`` of it and the negatives ``K/(1+K)``, where
    :class:`SoftplusLoss` gives each side one half. Scores are ``(B, 1 + K)``, column 0 the
    positive (label 1), the rest label 0.

    Examples
    --------
    >>> s = torch.tensor([[0., 0., 0.]])
    >>> round(BCELoss()(s).item(), 4)          # log 2
    0.6931
    >>> round(BCELoss()(torch.tensor([[2., 0.]])).item(), 4)   # (log(1+e^-2) + log 2) / 2
    0.41
    """

    def forward(self, scores: Tensor) -> Tensor:
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        return F.binary_cross_entropy_with_logits(scores, labels)


@LOSSES.register("margin")
class MarginRankingLoss(Loss):
    r"""Pairwise hinge: :math:`\mathrm{mean}_{b,k}\max(0, \mathrm{margin} - s_0 + s_k)`.

    Examples
    --------
    >>> MarginRankingLoss(margin=1.0)(torch.tensor([[2., 1.5, 0.]]))
    tensor(0.2500)
    """

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, scores: Tensor) -> Tensor:
        return F.relu(self.margin - scores[:, :1] + scores[:, 1:]).mean()


@LOSSES.register("ce")
class CrossEntropyLoss(Loss):
    r"""Softmax cross-entropy with the positive as class 0.

    Examples
    --------
    >>> round(CrossEntropyLoss()(torch.zeros(1, 4)).item(), 4)   # log 4
    1.3863
    """

    def forward(self, scores: Tensor) -> Tensor:
        return F.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long, device=scores.device))


def soft_cross_entropy(scores: Tensor, labels: Tensor) -> Tensor:
    r"""``mean_b( -Σ_j y_bj log softmax(S_b)_j )`` for unnormalised soft labels.

    Parameters
    ----------
    scores : Tensor
        ``(B, C)``.
    labels : Tensor
        ``(B, C)`` or broadcastable (e.g. ``(C,)``).

    Examples
    --------
    >>> round(soft_cross_entropy(torch.zeros(1, 2), torch.tensor([1., 0.5])).item(), 4)  # 1.5 log 2
    1.0397
    """
    return -(labels * torch.log_softmax(scores, dim=-1)).sum(-1).mean()


class EMULoss(nn.Module):
    r"""The EMU soft-label loss (Takamoto et al. 2025).

    .. math:: L = \frac{1}{K}\,\mathrm{CE}_{soft}(S_{emu}, y) + c \cdot L_{plain}(S_{plain}),
              \qquad y = [1, q, \dots, q]

    Parameters
    ----------
    negative_label : float
        ``q``, the soft label of mutated negatives (published: 0.53). A per-negative label
        tensor passed to :meth:`forward` (Mixup) overrides it.
    plain_weight : float
        ``c``, the weight of the plain loss (published: 0.11).
    plain_loss : Loss, optional
        Loss of the un-mutated scores; default cross-entropy as in the paper. A
        :class:`SoftplusLoss` with a temperature gives EMU with self-adversarial weighting.

    Notes
    -----
    Shapes:

    - emu_scores, plain_scores: ``(B, 1 + K)``, column 0 the positive.
    - labels (optional): ``(B, K)`` soft labels of the mutated negatives.

    Examples
    --------
    >>> loss = EMULoss(negative_label=0.5, plain_weight=0.0)
    >>> round(loss(torch.zeros(1, 3), torch.zeros(1, 3)).item(), 4)   # (2 log 3) / 2
    1.0986
    """

    def __init__(self, negative_label: float = 0.53, plain_weight: float = 0.11,
                 plain_loss: Optional[Loss] = None):
        super().__init__()
        if plain_weight < 0:
            raise ValueError("plain_weight must be non-negative")
        self.negative_label = float(negative_label)
        self.plain_weight = float(plain_weight)
        self.plain_loss = plain_loss if plain_loss is not None else CrossEntropyLoss()

    def soft_labels(self, num_negatives: int, like: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """``y``: ``(1 + K,)`` with a fixed label, or ``(B, 1 + K)`` from per-negative labels."""
        if labels is None:
            y = torch.full((1 + num_negatives,), self.negative_label, dtype=like.dtype, device=like.device)
            y[0] = 1.0
            return y
        return torch.cat([torch.ones_like(labels[:, :1]), labels.to(like.dtype)], dim=1)

    def forward(self, emu_scores: Tensor, plain_scores: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        K = emu_scores.shape[1] - 1
        y = self.soft_labels(K, emu_scores, labels)
        loss = soft_cross_entropy(emu_scores, y) / K
        if self.plain_weight:
            loss = loss + self.plain_weight * self.plain_loss(plain_scores)
        return loss


@REGULARIZERS.register("lp")
class LpRegularizer(nn.Module):
    r"""``weight * Σ_x mean_b ‖x_b‖_p^p`` over the batch's embeddings given (N3 for ``p = 3``):
    each step, the positives' anchor, relation and true entity.

    Examples
    --------
    >>> LpRegularizer(weight=0.5, p=3)(torch.tensor([[1., -2.]]))
    tensor(4.5000)
    """

    #: applied to the batch's embeddings (``False``) or once per step to whole tables (``True``)
    whole_tables = False
    #: ranges searched by ``dgl-emu tune`` (:mod:`dgl_emu.tuning`); a log range, so never 0 (off)
    search_space: ClassVar[Dict[str, Param]] = {"weight": FloatRange(1e-6, 1e-1, log=True)}

    def __init__(self, weight: float = 0.0, p: float = 3.0):
        super().__init__()
        self.weight, self.p = float(weight), float(p)

    def forward(self, *embeddings: Tensor) -> Tensor:
        total = sum(x.abs().pow(self.p).reshape(x.shape[0], -1).sum(1).mean() for x in embeddings)
        return self.weight * total


@REGULARIZERS.register("table")
class TableLpRegularizer(LpRegularizer):
    r"""The published baselines' penalty: ``weight * Σ_T Σ_ij |T_ij|^p`` over the **whole**
    entity and relation tables ``T``, once per step (``r (‖E‖_3^3 + ‖R‖_3^3)`` for ``p = 3``;
    the paper uses ``r = 1e-5`` for DistMult and ComplEx, ``1e-3`` for TransE and RotatE, and no
    penalty with EMU). Complex tables are penalised on their real coordinates.

    Unlike :class:`LpRegularizer` it does not depend on the batch: every row is shrunk at every
    step, including entities the batch did not touch (so it needs dense tables).

    Examples
    --------
    >>> E, R = torch.tensor([[1., -2.], [0., 1.]]), torch.tensor([[2., 0.]])
    >>> TableLpRegularizer(weight=0.5, p=3)(E, R)      # 0.5 * ((1 + 8 + 0 + 1) + 8)
    tensor(9.)
    """

    whole_tables = True

    def forward(self, *tables: Tensor) -> Tensor:
        return self.weight * sum(t.abs().pow(self.p).sum() for t in tables)

