"""Explicit random-number generators: one ``torch.Generator`` per device, from one seed, and the
exact Bernoulli masks that EMU and the seeded dropouts draw from them."""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch

__all__ = ["GeneratorPool", "Stochastic", "rng_states", "load_rng_states", "row_window", "dgl_single_thread",
           "bernoulli_mask"]

#: ``draw(shape, generator) -> Tensor``: a random tensor of ``shape`` from ``generator``
Draw = Callable[[Tuple[int, ...], torch.Generator], torch.Tensor]


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
        #: ``(total, rows)`` while :func:`row_window` is active: :meth:`draw_rows` draws for
        #: ``total`` rows and keeps ``rows``
        self.window: Optional[Tuple[int, slice]] = None
        if generator is not None:
            self._gens[torch.device(generator.device).type] = generator

    def get(self, device: torch.device) -> torch.Generator:
        """The generator for ``device`` (created on first use)."""
        key = torch.device(device).type
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

    def draw_rows(self, shape: Sequence[int], device: torch.device, draw: Draw) -> torch.Tensor:
        """``draw(shape, generator)`` for a tensor whose first dimension is rows of a batch.

        While a :func:`row_window` ``(total, rows)`` is active the draw is made for all
        ``total`` rows and the window's ``rows`` are returned, so a process that holds some rows of
        a batch gets exactly the numbers one process holding the whole batch gets for them.

        Examples
        --------
        >>> pool = GeneratorPool(seed=3)
        >>> whole = pool.draw_rows((4, 2), torch.device("cpu"), lambda s, g: torch.rand(s, generator=g))
        >>> pool = GeneratorPool(seed=3)
        >>> pool.window = (4, slice(2, 4))
        >>> part = pool.draw_rows((2, 2), torch.device("cpu"), lambda s, g: torch.rand(s, generator=g))
        >>> torch.equal(part, whole[2:])
        True
        """
        generator = self.get(device)
        if self.window is None:
            return draw(tuple(shape), generator)
        total, rows = self.window
        return draw((total, *shape[1:]), generator)[rows]

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
def row_window(module, total: int, rows: slice) -> Iterator[None]:
    """Within the block, the row draws (:meth:`GeneratorPool.draw_rows`) of every
    :class:`Stochastic` module inside ``module`` are made for a ``total``-row batch, of which the
    caller holds ``rows``. Draws of other shapes (dropout masks, graph edges) are unaffected.

    A data-parallel process scores its share of each global batch inside such a window, so that
    EMU's masks of its rows equal one process's (:mod:`dgl_emu.data_parallel`).
    """
    pools = [m.generators for _, m in module.named_modules() if isinstance(m, Stochastic)]
    for pool in pools:
        pool.window = (total, rows)
    try:
        yield
    finally:
        for pool in pools:
            pool.window = None


@contextlib.contextmanager
def dgl_single_thread():
    """Run DGL's samplers on one OpenMP thread, then restore the thread counts.

    DGL's random walks and neighbour sampling draw from per-thread generators under dynamic
    OpenMP scheduling, so with several threads the same ``dgl.seed`` gives different samples
    from run to run (measured: random walks on the generated KG hash differently between two
    identical 2-thread runs, and identically on one thread). DGL and torch share the OpenMP
    runtime, so torch's intra-op thread count is restored as well.
    """
    from dgl.utils import internal  # start-up cost: this ground-floor module does not import DGL
    torch_threads = torch.get_num_threads()
    dgl_threads = internal.get_num_threads()
    internal.set_num_threads(1)
    try:
        yield
    finally:
        internal.set_num_threads(dgl_threads)
        torch.set_num_threads(torch_threads)


#: elements per slice of the CPU passes of :func:`bernoulli_mask`
#: (4 MB of float32: a slice stays in cache between two passes)
_SLICE = 1 << 20


def bernoulli_mask(shape: Sequence[int], p: float, generator: torch.Generator,
                   device: Optional[torch.device] = None, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """An exact ``Bernoulli(p)`` mask drawn from random bytes.

    Each element takes one uniformly random byte ``b``: ``b < floor(256 p)`` gives 1,
    ``b > floor(256 p)`` gives 0, and the ``1/256`` of elements with ``b == floor(256 p)``
    draw a uniform float against the fractional part, so ``P(1) = p`` exactly (to float
    precision, like ``torch.rand(shape) < p``) at a fraction of its cost.

    Parameters
    ----------
    shape : sequence of int
        Mask shape.
    p : float
        Probability of 1 in ``[0, 1]``.
    generator : torch.Generator
        Source of randomness, on ``device``.
    device : torch.device, optional
        Defaults to the generator's device.
    dtype : torch.dtype
        ``torch.bool`` or a floating type (values 0. and 1.).

    Returns
    -------
    Tensor
        Mask of ``shape``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> m = bernoulli_mask((200, 1000), 0.39, g)
    >>> abs(m.double().mean().item() - 0.39) < 0.005
    True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    device = torch.device(device) if device is not None else torch.device(generator.device)
    n = math.prod(shape)
    if p == 1.0:
        return torch.ones(tuple(shape), dtype=dtype, device=device)
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=device)
    words.random_(-2 ** 63, None, generator=generator)  # all 64 bits uniform
    byte = words.view(torch.uint8)[:n]
    scaled = p * 256.0
    threshold = int(math.floor(scaled))
    # compare straight into the output dtype: a bool mask and then .to(float) is a second pass
    # (whole float mask of 51M elements, one thread: median 0.27 s against 0.34 s)
    mask = torch.empty(n, dtype=dtype, device=device)
    frac = scaled - threshold
    # on CPU, slices of 1M bytes: both passes over a slice read it from cache (~10 % faster at
    # 64M elements); one pass on accelerators (nonzero synchronises). Same ties, same order.
    step = _SLICE if device.type == "cpu" else max(n, 1)
    parts = []
    for start in range(0, n, step):
        piece = byte[start:start + step]
        torch.lt(piece, threshold, out=mask[start:start + step])
        if frac > 0:
            parts.append((piece == threshold).nonzero().squeeze(1) + start)
    ties = torch.cat(parts) if len(parts) > 1 else (parts[0] if parts else None)
    if ties is not None and len(ties):
        mask[ties] = (torch.rand(len(ties), generator=generator, device=device) < frac).to(dtype)
    return mask.view(tuple(shape))
