"""Embedding MUtation (EMU) and its Mixup variant (Takamoto et al., TMLR 2025).

Paper: https://arxiv.org/abs/2504.03327. Both modules are pure: they take the positive's and
the negatives' embeddings and a random stream (a :class:`~dgl_emu.counter_rng.CounterStream`,
or Mixup's :class:`~dgl_emu.rng.GeneratorPool`) and
return mutated negatives. No ids, sides, graphs, ranks or losses: a process that holds some rows
of a batch sets a :func:`~dgl_emu.rng.row_window` on the stream, not on the layer.
"""
from __future__ import annotations

from typing import ClassVar, Dict, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..registry import Registry
from ..counter_rng import CounterStream
from ..rng import GeneratorPool, Stochastic
from .fused import keep_mask
from ..ranges import FloatRange, Param
from ..typing import Tensor, as_probability

__all__ = ["EmbeddingMutation", "EmbeddingMixup", "SoftLabelsOnly", "MUTATIONS", "mutate"]


#: elements per slice of the CPU passes of :func:`_mutate_grads` (4 MB of float32: a slice
#: stays in cache between two passes)
_SLICE = 1 << 20


class _Mutate(torch.autograd.Function):
    """``lerp(pos, neg, mask)`` for a 0/1 mask, with a two-pass backward."""

    @staticmethod
    def forward(ctx, pos: Tensor, neg: Tensor, mask: Tensor) -> Tensor:
        ctx.save_for_backward(mask)
        ctx.pos_shape = pos.shape
        # lerp(pos, neg, m) is exactly neg where m == 1 and exactly pos where m == 0, and
        # several times faster than torch.where with a boolean mask on CPU
        return torch.lerp(pos, neg, mask)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (mask,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, (grad * mask if ctx.needs_input_grad[1] else None), None
        shape = ctx.pos_shape
        if grad.dim() == 3 and tuple(shape) == (grad.shape[0], 1, grad.shape[2]) and mask.shape == grad.shape:
            grad_neg, grad_pos = _mutate_grads(grad.contiguous(), mask.contiguous())
        else:  # autograd's lerp backward forms 1 - mask and a second product: two more passes
            grad_neg = grad * mask
            grad_pos = (grad - grad_neg).sum_to_size(shape)
        return grad_pos, (grad_neg if ctx.needs_input_grad[1] else None), None


def _mutate_grads(grad: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """``grad * mask (B, K, d)`` and ``(grad - grad * mask).sum(1, keepdim=True) (B, 1, d)``.

    The same operations as the plain formula, slice by slice of rows, so the difference lives in
    a cache-sized buffer instead of a ``(B, K, d)`` temporary: bit-identical results
    (``tests/test_nn/test_emu.py``), ~40 % less time for B=10000, K=64, d=100 on 2 cores.
    """
    n, k, d = grad.shape
    grad_neg = torch.empty_like(grad)
    grad_pos = grad.new_empty((n, 1, d))
    rows = max(1, _SLICE // max(1, k * d))
    buf = grad.new_empty((min(rows, n), k, d))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        g, gn, diff = grad[start:stop], grad_neg[start:stop], buf[: stop - start]
        torch.mul(g, mask[start:stop], out=gn)
        torch.sub(g, gn, out=diff)
        torch.sum(diff, 1, keepdim=True, out=grad_pos[start:stop])
    return grad_neg, grad_pos


def mutate(pos: Tensor, neg: Tensor, mask: Tensor) -> Tensor:
    """Coordinate-wise mix ``mask * neg + (1 - mask) * pos`` for a 0/1 ``mask``.

    Parameters
    ----------
    pos : Tensor
        ``(B, 1, d)`` (anything broadcastable to ``neg``).
    neg : Tensor
        ``(B, K, d)``.
    mask : Tensor
        ``(B, K, d)`` of 0. and 1. in ``neg``'s dtype (1 keeps the negative's coordinate).

    Returns
    -------
    Tensor
        ``(B, K, d)``, exactly ``neg`` or ``pos`` in each coordinate. Gradients: ``mask * g`` to
        ``neg`` and the sum of ``(1 - mask) * g`` over the broadcast dimensions to ``pos``
        (first order only); ``mask`` gets none.

    Examples
    --------
    >>> mutate(torch.zeros(1, 1, 3), torch.ones(1, 2, 3), torch.tensor([[[1., 0., 1.], [0., 0., 1.]]]))
    tensor([[[1., 0., 1.],
             [0., 0., 1.]]])
    """
    if mask.requires_grad:
        raise ValueError("mutate: the mask must be a constant 0/1 tensor")
    return _Mutate.apply(pos, neg, mask)


#: EMU variants by name (mutation, mixup); built from the ``emu`` section of a run configuration
MUTATIONS: Registry = Registry("EMU variant", context=("generator", "seed"))


@MUTATIONS.register("mutation")
class EmbeddingMutation(Stochastic, nn.Module):
    r"""EMU: mix each negative coordinate-wise with the positive.

    .. math:: \tilde n = m \odot n + (1 - m) \odot p, \quad m_{bkd} \sim \mathrm{Bernoulli}(q)

    drawn independently per coordinate, per negative and per call, on the embeddings' device
    (``q = keep_prob``, the probability of keeping the negative's coordinate). Gradients flow
    to both inputs. Identity in eval mode.

    The bits come from a counter-based stream (:mod:`dgl_emu.counter_rng`): the bit of coordinate
    ``j`` of negative ``k`` of row ``i`` of call ``s`` is a pure function of ``(seed, s, i, k, j)``,
    so the fused kernels of :mod:`dgl_emu.nn.fused` recompute it instead of storing the mask, a
    data-parallel process computes the bits of its own rows (a :func:`~dgl_emu.rng.row_window`
    gives their first global row), and a checkpoint keeps only the number of calls.
    ``P(keep) = floor(q 2^32) / 2^32``.

    Parameters
    ----------
    keep_prob : float
        ``q`` in ``[0, 1]``; the published runs use 0.39.
    seed : int
        Seed of the stream.

    Notes
    -----
    Shapes:

    - pos: ``(B, 1, d)`` embeddings of the true entity on the corrupted side.
    - neg: ``(B, K, d)`` embeddings of the sampled negatives.
    - output: ``(B, K, d)``.

    Examples
    --------
    >>> emu = EmbeddingMutation(keep_prob=0.0)
    >>> pos, neg = torch.ones(2, 1, 3), torch.zeros(2, 4, 3)
    >>> bool((emu(pos, neg) == 1).all())           # keep nothing: all coordinates from pos
    True
    >>> bool((emu.eval()(pos, neg) == 0).all())    # eval mode: identity
    True
    """

    #: ranges searched by ``dgl-emu tune`` (:mod:`dgl_emu.tuning`)
    search_space: ClassVar[Dict[str, Param]] = {"keep_prob": FloatRange(0.1, 0.9)}

    #: the fused kernels can score this layer's mutation without forming it (:mod:`dgl_emu.nn.fused`)
    fusable: ClassVar[bool] = True

    def __init__(self, keep_prob: float = 0.39, seed: int = 0):
        super().__init__()
        self.keep_prob = as_probability(keep_prob, "keep_prob")
        #: the counter-based stream of the masks (its state: the number of draws)
        self.generators = CounterStream(seed)

    def draw(self) -> Tuple[int, int]:
        """``(key, row0)`` of the next mask: its key and the global row of the first row this
        process holds (``0`` outside a row window); every mask, fused or formed, takes one."""
        return self.generators.next_draw()

    def mask(self, shape: Sequence[int], device: torch.device,
             dtype: torch.dtype = torch.bool) -> Tensor:
        """A fresh keep-mask of ``shape`` ``(rows, K, d)`` on ``device`` (1 = keep the negative's
        coordinate): :func:`~dgl_emu.counter_rng.counter_mask` of the next draw (the compiled
        kernel computes the same bits faster on CPU when it is loaded)."""
        key, row0 = self.draw()
        return keep_mask(key, row0, shape, self.keep_prob, torch.device(device), dtype)

    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        if not self.training:
            return neg
        return mutate(pos, neg, self.mask(neg.shape, neg.device, neg.dtype))

    def mutate(self, pos: Tensor, neg: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Mutated negatives and their soft labels (``None``: use the loss's fixed label)."""
        return self(pos, neg), None

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


@MUTATIONS.register("mixup")
class EmbeddingMixup(Stochastic, nn.Module):
    r"""Mixup variant: :math:`\tilde n = \lambda n + (1 - \lambda) p`, :math:`\lambda \sim \mathrm{Beta}(a, b)`.

    One ``λ`` per negative; the soft label of a mixed negative is ``1 - λ`` unless a fixed
    ``fixed_label`` is given. Identity in eval mode.

    Parameters
    ----------
    alpha, beta : float
        Beta distribution parameters (default ``Beta(2, 1)``).
    fixed_label : float, optional
        Fixed soft label instead of ``1 - λ``.
    generator : torch.Generator, optional
        As for :class:`EmbeddingMutation`.
    seed : int
        Seed of generators created on demand.

    Notes
    -----
    Shapes:

    - pos: ``(B, 1, d)``; neg: ``(B, K, d)``; output ``(B, K, d)`` and labels ``(B, K)``.

    Examples
    --------
    >>> mix = EmbeddingMixup()
    >>> out, labels = mix.mutate(torch.ones(1, 1, 2), torch.zeros(1, 3, 2))
    >>> torch.allclose(out[..., 0], labels)        # mixed value equals 1 - λ here
    True
    """

    #: one λ per negative, not a coordinate mask: the fused kernels do not score it
    fusable: ClassVar[bool] = False

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, fixed_label: Optional[float] = None,
                 generator: Optional[torch.Generator] = None, seed: int = 0):
        super().__init__()
        if alpha <= 0 or beta <= 0:
            raise ValueError("alpha and beta must be positive")
        self.alpha, self.beta = float(alpha), float(beta)
        self.fixed_label = fixed_label
        self.generators = GeneratorPool(seed, generator)

    def sample_lambda(self, shape: Sequence[int], device: torch.device) -> Tensor:
        """``λ ~ Beta(alpha, beta)`` of ``shape`` (rows first), via two Gamma draws from the
        generator."""
        def beta(s, g):
            a = torch._standard_gamma(torch.full(s, self.alpha, device=device), generator=g)
            b = torch._standard_gamma(torch.full(s, self.beta, device=device), generator=g)
            return a / (a + b)
        return self.generators.draw_rows(shape, device, beta)

    def mutate(self, pos: Tensor, neg: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Mixed negatives ``(B, K, d)`` and soft labels ``(B, K)`` (``None`` in eval mode)."""
        if not self.training:
            return neg, None
        lam = self.sample_lambda(neg.shape[:-1], neg.device).to(neg.dtype)
        mixed = lam.unsqueeze(-1) * neg + (1 - lam.unsqueeze(-1)) * pos
        labels = 1 - lam if self.fixed_label is None else torch.full_like(lam, self.fixed_label)
        return mixed, labels

    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return self.mutate(pos, neg)[0]


@MUTATIONS.register("smoothing")
class SoftLabelsOnly(nn.Module):
    r"""The label-smoothing-only control: EMU's loss on the **un-mutated** negatives.

    The negatives pass through unchanged, so the EMU loss becomes
    :math:`\tfrac1K \mathrm{CE}_{soft}(S_{plain}, [1, q, \dots, q]) + c\,\mathrm{CE}(S_{plain}, \mathbf 1_0)`:
    the soft labels without the mutation. Comparing it with EMU tells whether a gain comes from
    the mutated embeddings or from the labels alone (the published code has this ablation).

    Shapes: pos ``(B, 1, d)``, neg ``(B, K, d)``; returns ``neg`` itself.

    Examples
    --------
    >>> neg = torch.zeros(2, 4, 3)
    >>> out, labels = SoftLabelsOnly().mutate(torch.ones(2, 1, 3), neg)
    >>> out is neg, labels
    (True, None)
    """

    #: nothing to fuse: the negatives pass unchanged
    fusable: ClassVar[bool] = False

    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return neg

    def mutate(self, pos: Tensor, neg: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """``neg`` unchanged, and ``None``: the loss's fixed negative label applies."""
        return neg, None
