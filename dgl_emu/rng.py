"""Explicit random-number generators: one ``torch.Generator`` per device, from one seed."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

__all__ = ["GeneratorPool", "Stochastic", "rng_states", "load_rng_states", "dgl_single_thread"]


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
        """Restore states saved by :meth:`state_dict` (generators created since are dropped, so the
        next use on their device starts again from ``seed``, as it did then)."""
        for k in [k for k in self._gens if k not in state]:
            del self._gens[k]
        for k, s in state.items():
            self.get(torch.device(k)).set_state(s)


class Stochastic:
    """Mixin of components that draw random numbers from a :class:`GeneratorPool` ``generators``.

    It gives them the explicit state interface that checkpoints use: :meth:`rng_state` and
    :meth:`load_rng_state`. The trainer saves exactly the states of the :class:`Stochastic`
    components it was given (the sampler, and those inside the objective: see
    :func:`rng_states`), nothing found by attribute look-ups.
    """

    generators: GeneratorPool

    def rng_state(self) -> dict:
        """Generator states by device type."""
        return self.generators.state_dict()

    def load_rng_state(self, state: dict) -> None:
        """Restore :meth:`rng_state`."""
        self.generators.load_state_dict(state)


def rng_states(module) -> dict:
    """``{submodule name: rng_state()}`` of every :class:`Stochastic` module inside ``module``."""
    return {name: m.rng_state() for name, m in module.named_modules() if isinstance(m, Stochastic)}


def load_rng_states(module, states: dict) -> None:
    """Restore :func:`rng_states` into ``module`` (names must exist)."""
    modules = dict(module.named_modules())
    for name, state in states.items():
        if name not in modules or not isinstance(modules[name], Stochastic):
            raise KeyError(f"no random component named {name!r} in {type(module).__name__}")
        modules[name].load_rng_state(state)


@contextlib.contextmanager
def dgl_single_thread():
    """Run DGL's samplers on one OpenMP thread, then restore the thread counts.

    DGL's random walks and neighbour sampling draw from per-thread generators under dynamic
    OpenMP scheduling, so with several threads the same ``dgl.seed`` gives different samples
    from run to run (measured: random walks on the generated KG hash differently between two
    identical 2-thread runs, and identically on one thread). DGL and torch share the OpenMP
    runtime, so torch's intra-op thread count is restored as well.
    """
    from dgl.utils import internal
    torch_threads = torch.get_num_threads()
    dgl_threads = internal.get_num_threads()
    internal.set_num_threads(1)
    try:
        yield
    finally:
        internal.set_num_threads(dgl_threads)
        torch.set_num_threads(torch_threads)
