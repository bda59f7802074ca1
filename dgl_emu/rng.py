"""Explicit random-number generators: one ``torch.Generator`` per device, from one seed."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["GeneratorPool"]


class GeneratorPool:
    """One ``torch.Generator`` per device, all derived from one seed.

    A module that draws randomness on whatever device its inputs live on keeps a pool, so a
    CPU and a CUDA run are each deterministic from the same seed.

    Parameters
    ----------
    seed : int
        Seed of the generators.
    generator : torch.Generator, optional
        Use this generator for its own device instead of a new one.
    """

    def __init__(self, seed: int = 0, generator: Optional[torch.Generator] = None):
        self.seed = seed
        self._gens = {}
        if generator is not None:
            self._gens[torch.device(generator.device).type] = generator

    def get(self, device: torch.device) -> torch.Generator:
        """The generator for ``device`` (created on first use)."""
        key = torch.device(device).type
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

    def state_dict(self) -> dict:
        """Generator states by device type (for checkpoints)."""
        return {k: g.get_state() for k, g in self._gens.items()}

    def load_state_dict(self, state: dict) -> None:
        """Restore states saved by :meth:`state_dict`."""
        for k, s in state.items():
            self.get(torch.device(k)).set_state(s)
