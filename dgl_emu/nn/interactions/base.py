"""The :class:`Interaction` base: one broadcastable ``forward(h, r, t)`` per scoring function."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ...typing import Target, Tensor, as_count
from ..fused import FusedKind

__all__ = ["Interaction", "BilinearInteraction", "CandidateForm", "candidate_dot", "candidate_distance",
           "candidate_complex_distance", "place_candidates", "embedding_range"]


class CandidateForm(NamedTuple):
    """How an interaction scores candidates against their query, for the fused EMU kernels.

    The score of a candidate ``c`` is ``kernel(c, query)``, or ``bias - kernel(c, query)`` for a
    distance, with ``kernel`` one of :class:`~dgl_emu.nn.fused.FusedKind`.

    Attributes
    ----------
    kind : FusedKind
        The comparison.
    query : Tensor
        ``(B, 1, d)``.
    bias : float
        ``γ`` of distance-based interactions.
    distance : bool
        Whether the score is ``bias - kernel``.
    """

    kind: FusedKind
    query: Tensor
    bias: float = 0.0
    distance: bool = False

    def score(self, raw: Tensor) -> Tensor:
        """Scores from the kernel's values."""
        return self.bias - raw if self.distance else raw


def place_candidates(h: Tensor, r: Tensor, t: Tensor, candidates: Tensor,
                     target: Target) -> Tuple[Tensor, Tensor, Tensor]:
    """Put candidate embeddings in the head or tail slot: the only branch on :class:`Target`.

    Parameters
    ----------
    h, r, t : Tensor
        ``(B, 1, d)`` (the slot named by ``target`` is ignored and may be ``None``).
    candidates : Tensor
        ``(B, K, d)`` or ``(1, E, d)`` embeddings for the ``target`` slot.
    target : Target
        Which slot the candidates fill.

    Returns
    -------
    (Tensor, Tensor, Tensor)
        ``(h, r, t)`` broadcastable to ``(B, K, d)``.

    Examples
    --------
    >>> h, r, t, c = torch.zeros(2, 1, 3), torch.zeros(2, 1, 3), torch.zeros(2, 1, 3), torch.ones(2, 5, 3)
    >>> [x.shape[1] for x in place_candidates(h, r, t, c, Target.HEAD)]
    [5, 1, 1]
    """
    if target is Target.HEAD:
        return candidates, r, t
    return h, r, candidates


def embedding_range(gamma: float, dim: int, epsilon: float = 2.0) -> float:
    """RotatE-family initialisation range ``(gamma + epsilon) / dim`` (Sun et al. 2019)."""
    return (gamma + epsilon) / dim


class Interaction(nn.Module):
    """A scoring function ``f(h, r, t)`` over broadcastable real tensors; higher is better.

    Subclasses implement :meth:`forward` once; :meth:`score_candidates` and :meth:`score_all`
    derive from it (a subclass may override :meth:`score_all` with an equivalent faster path,
    which the test suite checks against :meth:`forward`).

    Parameters
    ----------
    dim : int
        Embedding dimension ``d`` as users state it (complex models store ``2d`` reals).
    gamma : float
        Margin ``γ`` of distance-based models, also used for the initialisation range.
    """

    #: real coordinates per entity for one unit of ``dim`` (2 for complex models)
    entity_factor: int = 1
    #: real coordinates per relation for one unit of ``dim``
    relation_factor: int = 1
    #: whether :meth:`candidate_form` gives a form (EMU's fused kernels can score its candidates)
    fusable: bool = False
    #: whether a row's query costs far more than scoring a candidate against it (TuckER's core
    #: product): a training step then scores the positive with the negatives, from one query (one
    #: dropout draw and one batch-norm update per row, as the published 1-N scoring), instead of
    #: the positive apart (cheap queries: no copy of the negatives)
    shares_query: bool = False

    def __init__(self, dim: int, gamma: float = 12.0):
        super().__init__()
        self.dim = as_count(dim, "dim")
        self.gamma = float(gamma)

    @property
    def entity_dim(self) -> int:
        """Real coordinates per entity embedding."""
        return self.entity_factor * self.dim

    @property
    def relation_dim(self) -> int:
        """Real coordinates per relation embedding."""
        return self.relation_factor * self.dim

    def init_entities_(self, weight: Tensor, generator: Optional[torch.Generator] = None) -> None:
        """Initialise an ``(E, entity_dim)`` table in place: ``U(-range, range)``."""
        rng = embedding_range(self.gamma, self.dim)
        with torch.no_grad():
            weight.uniform_(-rng, rng, generator=generator)

    def init_relations_(self, weight: Tensor, generator: Optional[torch.Generator] = None) -> None:
        """Initialise an ``(R, relation_dim)`` table in place: ``U(-range, range)``."""
        self.init_entities_(weight, generator)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Scores of broadcastable ``h (*, d_e)``, ``r (*, d_r)``, ``t (*, d_e)``; returns ``(*)``."""
        raise NotImplementedError

    def score_candidates(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor],
                         candidates: Tensor, target: Target) -> Tensor:
        """Scores ``(B, K)`` of candidate embeddings ``(B, K, d)`` placed on ``target``.

        ``h``, ``r``, ``t`` are ``(B, 1, d)``; the one on the ``target`` side is ignored.
        """
        return self(*place_candidates(h, r, t, candidates, target))

    def candidate_form(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor],
                       target: Target) -> Optional[CandidateForm]:
        """The :class:`CandidateForm` of :meth:`score_candidates` (``h``, ``r``, ``t`` as there),
        or ``None`` when the score is not a comparison of the candidate with one query vector
        (then EMU forms its mutated negatives instead of fusing them)."""
        return None

    def score_all(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor], entities: Tensor,
                  target: Target, max_elements: int = 2 ** 25) -> Tensor:
        """Scores ``(B, E)`` of every entity ``entities (E, d)`` on ``target``.

        ``h``, ``r``, ``t`` are ``(B, d)``. The default broadcasts :meth:`forward` over entity
        chunks of at most ``max_elements`` intermediate values.
        """
        B = r.shape[0]
        h, r, t = (x.unsqueeze(1) if x is not None else None for x in (h, r, t))
        step = max(1, max_elements // max(1, B * entities.shape[-1]))
        return torch.cat([self.score_candidates(h, r, t, entities[i:i + step].unsqueeze(0), target)
                          for i in range(0, entities.shape[0], step)], dim=1)


def _one_query_per_row(candidates: Tensor, query: Tensor) -> bool:
    """True for ``(B, K, d)`` candidates with a ``(B, 1, d)`` query of the same dtype: the shapes
    the hand-written backward passes below are written for."""
    return (candidates.dim() == 3 and query.dim() == 3 and query.shape[1] == 1
            and candidates.shape[0] == query.shape[0] and candidates.shape[2] == query.shape[2]
            and candidates.dtype == query.dtype)


class _CandidateDot(torch.autograd.Function):
    """``(B, K, d) x (B, 1, d) -> (B, K)`` dot products with a memory-bound backward pass."""

    @staticmethod
    def forward(ctx, candidates: Tensor, query: Tensor) -> Tensor:
        ctx.save_for_backward(candidates, query)
        return torch.bmm(candidates, query.transpose(1, 2)).squeeze(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        candidates, query = ctx.saved_tensors
        # the candidates' gradient is an outer product: one broadcast multiply, where a
        # bmm with inner size 1 (what autograd does for the forward's bmm) is several times slower
        grad_candidates = grad.unsqueeze(-1) * query if ctx.needs_input_grad[0] else None
        grad_query = torch.bmm(grad.unsqueeze(1), candidates) if ctx.needs_input_grad[1] else None
        return grad_candidates, grad_query


def candidate_dot(candidates: Tensor, query: Tensor) -> Tensor:
    """Dot products of candidates with their query: ``out[b, k] = <candidates[b, k], query[b, 0]>``.

    Parameters
    ----------
    candidates : Tensor
        ``(B, K, d)``, or anything broadcastable against ``query``.
    query : Tensor
        ``(B, 1, d)``.

    Returns
    -------
    Tensor
        ``(B, K)``. For exactly these shapes one ``bmm`` forward and a broadcast-multiply
        backward (first-order gradients only); other broadcastable shapes fall back to
        ``(candidates * query).sum(-1)``.

    Examples
    --------
    >>> c, q = torch.arange(6.).view(1, 3, 2), torch.tensor([[[1., 10.]]])
    >>> candidate_dot(c, q)
    tensor([[10., 32., 54.]])
    """
    if _one_query_per_row(candidates, query):
        return _CandidateDot.apply(candidates, query)
    return (candidates * query).sum(-1)


class _CandidateDistance(torch.autograd.Function):
    """``(B, K, d), (B, 1, d) -> (B, K)`` L1 / L2 distances with a fused backward pass."""

    @staticmethod
    def forward(ctx, candidates: Tensor, query: Tensor, p: int) -> Tensor:
        diff = candidates - query
        out = diff.abs().sum(-1) if p == 1 else torch.linalg.vector_norm(diff, ord=2, dim=-1)
        ctx.save_for_backward(diff, out)
        ctx.p = p
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        diff, out = ctx.saved_tensors
        if ctx.p == 1:   # d|x|/dx = sign(x), 0 at 0 (as autograd's sgn)
            grad_candidates = torch.sign(diff).mul_(grad.unsqueeze(-1))
        else:            # x / |x|, 0 where |x| = 0 (as autograd's norm backward)
            scale = torch.where(out > 0, grad / out.clamp_min(torch.finfo(out.dtype).tiny),
                                torch.zeros_like(out))
            grad_candidates = diff * scale.unsqueeze(-1)
        grad_query = -grad_candidates.sum(1, keepdim=True) if ctx.needs_input_grad[1] else None
        return (grad_candidates if ctx.needs_input_grad[0] else None), grad_query, None


def candidate_distance(candidates: Tensor, query: Tensor, p: int = 1) -> Tensor:
    """Distances of candidates to their query: ``out[b, k] = ||candidates[b, k] - query[b, 0]||_p``.

    Parameters
    ----------
    candidates : Tensor
        ``(B, K, d)``, or anything broadcastable against ``query``.
    query : Tensor
        ``(B, 1, d)``.
    p : int
        1 or 2.

    Returns
    -------
    Tensor
        ``(B, K)``. For exactly these shapes a custom backward pass (first-order gradients
        only) that forms the candidates' gradient in two passes, where autograd's
        ``vector_norm`` backward takes several times longer; other shapes fall back to
        ``torch.linalg.vector_norm``.

    Examples
    --------
    >>> c, q = torch.tensor([[[0., 0.], [3., 4.]]]), torch.zeros(1, 1, 2)
    >>> candidate_distance(c, q, p=1), candidate_distance(c, q, p=2)
    (tensor([[0., 7.]]), tensor([[0., 5.]]))
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    if _one_query_per_row(candidates, query):
        return _CandidateDistance.apply(candidates, query, p)
    return torch.linalg.vector_norm(candidates - query, ord=p, dim=-1)


class _CandidateComplexDistance(torch.autograd.Function):
    """``sum_i |c_i - q_i|`` over complex coordinates ``[re | im]``, with a fused backward."""

    @staticmethod
    def forward(ctx, candidates: Tensor, query: Tensor) -> Tensor:
        diff = candidates - query
        modulus = torch.hypot(*complex_parts(diff))
        ctx.save_for_backward(diff, modulus)
        return modulus.sum(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        diff, modulus = ctx.saved_tensors
        # d|z|/dz = z / |z| (0 where z = 0) per complex coordinate, written into both halves
        scale = grad.unsqueeze(-1) / modulus
        scale = scale.masked_fill_(modulus == 0, 0.0)
        grad_candidates = torch.empty_like(diff)
        d = modulus.shape[-1]
        torch.mul(diff[..., :d], scale, out=grad_candidates[..., :d])
        torch.mul(diff[..., d:], scale, out=grad_candidates[..., d:])
        grad_query = -grad_candidates.sum(1, keepdim=True) if ctx.needs_input_grad[1] else None
        return (grad_candidates if ctx.needs_input_grad[0] else None), grad_query


def candidate_complex_distance(candidates: Tensor, query: Tensor) -> Tensor:
    """Sum of complex moduli ``out[b, k] = sum_i |candidates[b, k, i] - query[b, 0, i]|``.

    Complex vectors are stored as ``2d`` reals ``[real | imaginary]`` (RotatE's distance).

    Parameters
    ----------
    candidates : Tensor
        ``(B, K, 2d)``, or anything broadcastable against ``query``.
    query : Tensor
        ``(B, 1, 2d)``.

    Returns
    -------
    Tensor
        ``(B, K)``. For exactly these shapes a custom backward pass (first-order gradients
        only; the gradient of ``|z|`` is taken as 0 at ``z = 0``, where autograd gives NaN);
        other shapes fall back to broadcasting with autograd.

    Examples
    --------
    >>> c = torch.tensor([[[3., 0., 4., 1.]]])     # 3 + 4i, 0 + 1i
    >>> candidate_complex_distance(c, torch.zeros(1, 1, 4))
    tensor([[6.]])
    """
    if _one_query_per_row(candidates, query):
        return _CandidateComplexDistance.apply(candidates, query)
    return torch.hypot(*complex_parts(candidates - query)).sum(-1)


class BilinearInteraction(Interaction):
    r"""An interaction linear in the candidate: :math:`f = \langle q(\text{anchor}, r), c \rangle`.

    Subclasses give :meth:`query`, the vector that the candidate's embedding is dotted with;
    scoring ``K`` candidates per query is then one batched matrix product and scoring all
    entities one ``(B, d) @ (d, E)`` product. Both also have a cheap backward pass: the
    candidates' gradient is one outer product, where broadcasting :meth:`forward` would
    materialise and reduce ``(B, K, d)`` temporaries (DistMult's EMU training step on CPU,
    ``python -m benchmarks speed train-step``, spends most of its time there).

    Examples
    --------
    A scaled DistMult, written once as ``forward`` and once as a query:

    >>> class Scaled(BilinearInteraction):
    ...     def forward(self, h, r, t):
    ...         return 2 * (h * r * t).sum(-1)
    ...     def query(self, h, r, t, target):
    ...         return 2 * (h * r if target is Target.TAIL else r * t)
    >>> f = Scaled(dim=3)
    >>> g = torch.Generator().manual_seed(0)
    >>> h, r, t = (torch.randn(2, 1, 3, generator=g) for _ in range(3))
    >>> cand = torch.randn(2, 5, 3, generator=g)
    >>> fast = f.score_candidates(h, r, None, cand, Target.TAIL)   # (2, 5), one bmm
    >>> torch.allclose(fast, f(h, r, cand))
    True
    """

    def query(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor], target: Target) -> Tensor:
        """``q`` of shape ``(*, entity_dim)`` with ``f(h, r, t) = <q, candidate>`` on ``target``.

        Only the slot opposite ``target`` is read (``t`` for HEAD, ``h`` for TAIL).
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def score_candidates(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor],
                         candidates: Tensor, target: Target) -> Tensor:
        return candidate_dot(candidates, self.query(h, r, t, target))

    fusable = True

    def candidate_form(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor],
                       target: Target) -> Optional[CandidateForm]:
        return CandidateForm(FusedKind.DOT, self.query(h, r, t, target))

    def score_all(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor], entities: Tensor,
                  target: Target, max_elements: int = 2 ** 25) -> Tensor:
        return self.query(h, r, t, target) @ entities.T


def complex_parts(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Split ``(..., 2d)`` reals into real and imaginary halves ``(..., d)``."""
    return x.chunk(2, dim=-1)


def phase(r: Tensor, gamma: float, dim: int) -> Tensor:
    """RotatE phase ``r / (range / π)`` of raw relation values."""
    return r / (embedding_range(gamma, dim) / math.pi)
