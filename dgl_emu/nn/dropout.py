"""Dropout with explicit, checkpointable randomness."""
from __future__ import annotations

from torch import nn

from ..rng import GeneratorPool, Stochastic, bernoulli_mask
from ..typing import Tensor

__all__ = ["SeededDropout"]


class SeededDropout(Stochastic, nn.Module):
    """Inverted dropout whose masks come from a :class:`~dgl_emu.rng.GeneratorPool`.

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1)``.
    seed : int
        Seed of the generators.
    """

    def __init__(self, p: float = 0.0, seed: int = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.generators = GeneratorPool(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = bernoulli_mask(x.shape, 1.0 - self.p, self.generators.get(x.device), x.device, x.dtype)
        return x * keep / (1.0 - self.p)
