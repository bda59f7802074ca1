"""ConvE (Dettmers et al., AAAI 2018) as an interaction, e.g. as CompGCN's decoder."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...typing import Target, Tensor
from ..dropout import SeededDropout
from .base import Interaction
from .models import INTERACTIONS

__all__ = ["ConvE"]


@INTERACTIONS.register("ConvE")
class ConvE(Interaction):
    r"""ConvE: :math:`f(h, r, t) = \langle g(\mathrm{vec}(g([\bar h; \bar r] * \omega)) W), t \rangle`.

    ``h`` and ``r`` are reshaped to ``height x (d / height)`` images, stacked, convolved with
    ``num_filters`` ``kernel x kernel`` filters, flattened and projected back to ``d`` by a linear
    layer; ``g`` is batch norm followed by ReLU. The entity bias of the original is left out.
    Dropout masks are seeded (:class:`~dgl_emu.nn.dropout.SeededDropout`).

    Parameters
    ----------
    dim : int
        ``d``, divisible by ``height``.
    gamma : float
        Only used for the RotatE-family initialisation range of the embeddings.
    height : int, optional
        Image height of one embedding; default the largest divisor of ``d`` not above
        ``sqrt(d)`` (10 for d=100, 8 for d=64).
    num_filters : int
        Convolution channels.
    kernel : int
        Square kernel size (at most ``height`` and ``d / height``).
    dropout : float
        Dropout on the input image, the feature maps and the hidden vector.
    seed : int
        Seed of the weight initialisation and of the dropout masks.

    Notes
    -----
    Scoring a tail candidate set costs one convolution per ``(h, r)`` pair; candidates on the
    *head* side (head corruption, head prediction) need one convolution per candidate.

    Examples
    --------
    >>> conve = ConvE(dim=8, height=2, num_filters=3, kernel=2).eval()
    >>> conve(torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)).shape
    torch.Size([5])
    """

    def __init__(self, dim: int, gamma: float = 12.0, height: Optional[int] = None,
                 num_filters: int = 32, kernel: int = 3, dropout: float = 0.0, seed: int = 0):
        super().__init__(dim, gamma)
        if height is None:
            height = max(k for k in range(1, int(math.isqrt(dim)) + 1) if dim % k == 0)
        if dim % height:
            raise ValueError(f"ConvE needs dim divisible by height: {dim} % {height} != 0")
        self.height, self.width = height, dim // height
        if kernel > min(2 * self.height, self.width):
            raise ValueError(f"kernel {kernel} larger than the {2 * self.height}x{self.width} image")
        self.conv = nn.Conv2d(1, num_filters, kernel)
        self.bn_input = nn.BatchNorm2d(1)
        self.bn_conv = nn.BatchNorm2d(num_filters)
        self.bn_hidden = nn.BatchNorm1d(dim)
        flat = num_filters * (2 * self.height - kernel + 1) * (self.width - kernel + 1)
        self.fc = nn.Linear(flat, dim)
        self.dropout = SeededDropout(dropout, seed)
        self._init_parameters(torch.Generator().manual_seed(seed))

    def _init_parameters(self, generator: torch.Generator) -> None:
        """torch's default distributions for the convolution and the linear layer, drawn from
        ``generator`` instead of the global RNG."""
        with torch.no_grad():
            for layer in (self.conv, self.fc):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(layer.weight[0].numel())
                layer.bias.uniform_(-bound, bound, generator=generator)

    def query(self, h: Tensor, r: Tensor) -> Tensor:
        """The ``(h, r)`` part: broadcastable ``(*, d)`` inputs to ``(*, d)`` query vectors."""
        h, r = torch.broadcast_tensors(h, r)
        shape = h.shape
        x = torch.cat([h.reshape(-1, 1, self.height, self.width),
                       r.reshape(-1, 1, self.height, self.width)], dim=2)
        x = self.dropout(self.bn_input(x))
        x = self.dropout(F.relu(self.bn_conv(self.conv(x))))
        x = self.fc(x.flatten(1))
        x = F.relu(self.bn_hidden(self.dropout(x)))
        return x.reshape(shape)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (self.query(h, r) * t).sum(-1)

    def score_all(self, h, r, t, entities, target, max_elements=2 ** 25):
        if target is Target.TAIL:
            return self.query(h, r) @ entities.T
        return super().score_all(h, r, t, entities, target, max_elements)
