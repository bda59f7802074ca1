"""Bilinear (tensor-factorisation) interactions: RESCAL, HolE, SimplE, QuatE and CP.

Each is linear in the candidate entity, so each is a
:class:`~dgl_emu.nn.interactions.BilinearInteraction` with a :meth:`query`: the fast candidate
path and the fused EMU kernels (:data:`~dgl_emu.nn.fused.FusedKind.DOT`) come with it. For all of
them **EMU** mutates the whole entity row (every vector the entity carries, as stored in one row
of the entity table) coordinate-wise with one mask, and since the score is a dot product of that
row with a query, the fused kernels score the mutated rows without forming them.
"""
from __future__ import annotations

import torch

from ...typing import Target, Tensor
from .base import BilinearInteraction
from .models import INTERACTIONS

__all__ = ["RESCAL", "HolE", "SimplE", "QuatE", "CP", "circular_correlation", "circular_convolution",
           "hamilton_product"]


@INTERACTIONS.register("RESCAL")
class RESCAL(BilinearInteraction):
    r"""RESCAL (Nickel et al., ICML 2011): :math:`f(h, r, t) = h^\top M_r\, t`, a full matrix per relation.

    Shapes: entities ``(*, d)``; relations ``(*, d²)``, the row-major flattening of
    :math:`M_r \in \mathbb{R}^{d \times d}` (``relation_dim = d * d``). The query is
    :math:`h^\top M_r` for tails and :math:`M_r t` for heads.

    **EMU** mutates the ``d`` entity coordinates with one mask; fused (a dot product with the
    query).

    Examples
    --------
    >>> rescal = RESCAL(dim=2)
    >>> M = torch.tensor([1., 2., 3., 4.])            # [[1, 2], [3, 4]]
    >>> rescal(torch.tensor([1., 0.]), M, torch.tensor([0., 1.]))   # M[0, 1]
    tensor(2.)
    """

    @property
    def relation_dim(self) -> int:
        """``d * d``: one flattened ``d x d`` matrix per relation."""
        return self.dim * self.dim

    def matrix(self, r: Tensor) -> Tensor:
        """``(*, d, d)`` matrices of ``(*, d²)`` relation rows."""
        return r.unflatten(-1, (self.dim, self.dim))

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return torch.einsum("...i,...ij,...j->...", h, self.matrix(r), t)

    def query(self, h, r, t, target):
        if target is Target.TAIL:
            return torch.einsum("...i,...ij->...j", h, self.matrix(r))
        return torch.einsum("...ij,...j->...i", self.matrix(r), t)


def circular_correlation(a: Tensor, b: Tensor) -> Tensor:
    r"""Circular correlation :math:`(a \star b)_k = \sum_i a_i\, b_{(i + k) \bmod d}` by FFT.

    ``a`` and ``b`` broadcast over their leading dimensions; ``(*, d)``.

    Examples
    --------
    >>> circular_correlation(torch.tensor([1., 2., 3.]), torch.tensor([1., 0., 0.]))
    tensor([1., 3., 2.])
    """
    d = a.shape[-1]
    return torch.fft.irfft(torch.conj(torch.fft.rfft(a, dim=-1)) * torch.fft.rfft(b, dim=-1), n=d, dim=-1)


def circular_convolution(a: Tensor, b: Tensor) -> Tensor:
    r"""Circular convolution :math:`(a * b)_k = \sum_i a_i\, b_{(k - i) \bmod d}` by FFT.

    Examples
    --------
    >>> circular_convolution(torch.tensor([1., 2., 3.]), torch.tensor([0., 1., 0.]))
    tensor([3., 1., 2.])
    """
    d = a.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(a, dim=-1) * torch.fft.rfft(b, dim=-1), n=d, dim=-1)


@INTERACTIONS.register("HolE")
class HolE(BilinearInteraction):
    r"""HolE (Nickel et al., AAAI 2016): :math:`f(h, r, t) = \langle r, h \star t \rangle`.

    :math:`(h \star t)_k = \sum_i h_i t_{(i + k) \bmod d}` is the circular correlation, computed
    with real FFTs (:func:`circular_correlation`) in ``O(d log d)``. The score is linear in ``t``
    with query :math:`r * h` (circular convolution) and linear in ``h`` with query
    :math:`r \star t`. The original's entity norm constraint is not applied.

    Hayashi & Shimbo (ACL 2017) showed HolE equivalent to ComplEx: with :math:`\mathcal{F}` the
    discrete Fourier transform, :math:`f_\mathrm{HolE}(h, r, t) = \frac{1}{d}
    \mathrm{Re}\sum_\omega \mathcal{F}(h)_\omega \mathcal{F}(r)_\omega
    \overline{\mathcal{F}(t)_\omega}`, the ComplEx score of the transformed embeddings over
    all ``d`` frequencies, divided by ``d`` (the test suite checks this).

    Shapes: entities and relations ``(*, d)``.

    **EMU** mutates the ``d`` entity coordinates with one mask; fused (a dot product with the
    query).

    Examples
    --------
    >>> hole = HolE(dim=3)
    >>> h, t = torch.tensor([1., 2., 3.]), torch.tensor([1., 0., 0.])   # h * t = (1, 3, 2)
    >>> hole(h, torch.tensor([0., 1., 0.]), t)
    tensor(3.)
    """

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (r * circular_correlation(h, t)).sum(-1)

    def query(self, h, r, t, target):
        # sum_k r_k sum_i h_i t_{i+k} = sum_j t_j (r * h)_j = sum_i h_i (r star t)_i
        if target is Target.TAIL:
            return circular_convolution(r, h)
        return circular_correlation(r, t)


@INTERACTIONS.register("SimplE")
class SimplE(BilinearInteraction):
    r"""SimplE (Kazemi & Poole, NeurIPS 2018): CP with inverse relations, averaged.

    .. math::

        f(h, r, t) = \tfrac12 \big(\langle h^{H}, r, t^{T}\rangle + \langle t^{H}, r^{-1}, h^{T}\rangle\big)

    with :math:`\langle a, b, c \rangle = \sum_i a_i b_i c_i`, each entity's head-role and
    tail-role embeddings :math:`e^H, e^T` and each relation's embedding and inverse embedding
    :math:`r, r^{-1}`. The original code's clipping of scores to ``[-20, 20]`` is left out (it
    would make the score non-linear in the candidate).

    Shapes: entity rows ``[e^H | e^T]``, ``2d`` reals (``entity_factor = 2``); relation rows
    ``[r | r^{-1}]``, ``2d`` reals (``relation_factor = 2``). Queries:
    ``½ [r^{-1} h^T | h^H r]`` for tails, ``½ [r t^T | t^H r^{-1}]`` for heads.

    **EMU** mutates the whole entity row ``[e^H | e^T]`` (both role embeddings) coordinate-wise
    with one mask; fused (a dot product of the row with the query).

    Examples
    --------
    >>> simple = SimplE(dim=1)
    >>> h, r, t = torch.tensor([1., 2.]), torch.tensor([3., 5.]), torch.tensor([7., 11.])
    >>> simple(h, r, t)                     # (1 * 3 * 11 + 7 * 5 * 2) / 2
    tensor(51.5000)
    """

    entity_factor = 2
    relation_factor = 2

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        (hh, ht), (tt_h, tt_t), (rf, ri) = h.chunk(2, -1), t.chunk(2, -1), r.chunk(2, -1)
        return 0.5 * ((hh * rf * tt_t).sum(-1) + (tt_h * ri * ht).sum(-1))

    def query(self, h, r, t, target):
        rf, ri = r.chunk(2, -1)
        if target is Target.TAIL:
            hh, ht = h.chunk(2, -1)
            return 0.5 * torch.cat([ri * ht, hh * rf], dim=-1)
        th, tt = t.chunk(2, -1)
        return 0.5 * torch.cat([rf * tt, th * ri], dim=-1)


def hamilton_product(p: Tensor, q: Tensor) -> Tensor:
    r"""Hamilton products of quaternion vectors stored as ``[a | b | c | d]`` (``(*, 4d)`` reals,
    :math:`a + b\,i + c\,j + d\,k` per coordinate), broadcast over leading dimensions.

    Examples
    --------
    >>> i, j = torch.tensor([0., 1., 0., 0.]), torch.tensor([0., 0., 1., 0.])
    >>> hamilton_product(i, j)                   # i j = k
    tensor([0., 0., 0., 1.])
    """
    a1, b1, c1, d1 = p.chunk(4, -1)
    a2, b2, c2, d2 = q.chunk(4, -1)
    return torch.cat([a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
                      a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                      a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
                      a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2], dim=-1)


def _conjugate(q: Tensor) -> Tensor:
    a, rest = q.split([q.shape[-1] // 4, 3 * q.shape[-1] // 4], dim=-1)
    return torch.cat([a, -rest], dim=-1)


@INTERACTIONS.register("QuatE")
class QuatE(BilinearInteraction):
    r"""QuatE (Zhang et al., NeurIPS 2019): :math:`f(h, r, t) = \langle h \otimes \hat r, t \rangle`.

    Embeddings are vectors of ``d`` quaternions; :math:`\otimes` is the coordinate-wise Hamilton
    product (:func:`hamilton_product`), :math:`\hat r_i = r_i / |r_i|` the relation's
    quaternions normalised to unit norm, and :math:`\langle\cdot,\cdot\rangle` the sum of the
    products of all four components. Since :math:`\langle p \otimes q, s\rangle = \langle p, s
    \otimes \bar q\rangle`, the query is :math:`h \otimes \hat r` for tails and
    :math:`t \otimes \bar{\hat r}` for heads. The published model's quaternion initialisation and
    its regulariser are not part of the interaction (tables start ``U(-range, range)``).

    Shapes: entity and relation rows ``[a | b | c | d]``, ``4d`` reals (``entity_factor =
    relation_factor = 4``).

    **EMU** mutates the whole entity row, all four components of every quaternion,
    coordinate-wise with one mask (a mutated negative may mix components of its quaternions
    with the positive's); fused (a dot product with the query).

    Examples
    --------
    >>> quate = QuatE(dim=1)
    >>> one, i = torch.tensor([1., 0., 0., 0.]), torch.tensor([0., 1., 0., 0.])
    >>> quate(i, torch.tensor([0., 0., 3., 0.]), torch.tensor([0., 0., 0., 1.]))   # i (j) = k
    tensor(1.)
    """

    entity_factor = 4
    relation_factor = 4

    def unit(self, r: Tensor) -> Tensor:
        """Relation quaternions scaled to unit norm, coordinate by coordinate."""
        parts = r.chunk(4, -1)
        norm = torch.sqrt(sum(x * x for x in parts))
        return torch.cat([x / norm for x in parts], dim=-1)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (hamilton_product(h, self.unit(r)) * t).sum(-1)

    def query(self, h, r, t, target):
        if target is Target.TAIL:
            return hamilton_product(h, self.unit(r))
        return hamilton_product(t, _conjugate(self.unit(r)))


@INTERACTIONS.register("CP")
class CP(BilinearInteraction):
    r"""CP, the canonical polyadic decomposition (Hitchcock 1927; Lacroix et al., ICML 2018):
    :math:`f(h, r, t) = \sum_i h^{H}_i r_i t^{T}_i`.

    Each entity has a head-role embedding :math:`e^H` and a tail-role embedding :math:`e^T`
    (DistMult ties the two). The queries are ``[0 | h^H r]`` for tails and ``[r t^T | 0]`` for
    heads: a candidate's other role does not enter its score.

    Shapes: entity rows ``[e^H | e^T]``, ``2d`` reals (``entity_factor = 2``); relations ``(*, d)``.

    **EMU** mutates the whole entity row ``[e^H | e^T]`` coordinate-wise with one mask; only the
    role the candidate plays changes its score. Fused (a dot product with the query).

    Examples
    --------
    >>> cp = CP(dim=2)
    >>> h, t = torch.tensor([1., 2., 9., 9.]), torch.tensor([9., 9., 3., 4.])   # roles: h^H, t^T
    >>> cp(h, torch.tensor([5., 6.]), t)                                         # 1*5*3 + 2*6*4
    tensor(63.)
    """

    entity_factor = 2

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h[..., :self.dim] * r * t[..., self.dim:]).sum(-1)

    def query(self, h, r, t, target):
        if target is Target.TAIL:
            hr = h[..., :self.dim] * r
            return torch.cat([torch.zeros_like(hr), hr], dim=-1)
        rt = r * t[..., self.dim:]
        return torch.cat([rt, torch.zeros_like(rt)], dim=-1)

