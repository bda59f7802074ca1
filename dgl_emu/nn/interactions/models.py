"""TransE, DistMult, ComplEx and RotatE interactions."""
from __future__ import annotations

import torch

from ...registry import Registry
from ...typing import Target, Tensor
from ..fused import FusedKind
from .base import (BilinearInteraction, CandidateForm, Interaction, candidate_complex_distance, candidate_distance,
                   complex_parts, phase)

__all__ = ["INTERACTIONS", "TransE", "DistMult", "ComplEx", "RotatE"]

#: interaction classes by name (transe, distmult, complex, rotate here; conve, transd, protate, tucker, rescal,
#: hole, simple, quate, cp in the modules next to this one)
INTERACTIONS: Registry = Registry("interaction", context=("seed",))


@INTERACTIONS.register("TransE")
class TransE(Interaction):
    r"""TransE (Bordes et al. 2013): :math:`f(h, r, t) = \gamma - \lVert h + r - t \rVert_p`.

    Parameters
    ----------
    dim : int
        ``d``; entities and relations are ``(*, d)``.
    gamma : float
        Margin ``γ``.
    p_norm : int
        Norm order, 1 (default, as in the EMU paper) or 2.

    Examples
    --------
    >>> TransE(dim=2, gamma=5.0)(torch.tensor([1., 2.]), torch.tensor([1., 0.]), torch.tensor([0., 0.]))
    tensor(1.)
    """

    def __init__(self, dim: int, gamma: float = 12.0, p_norm: int = 1):
        super().__init__(dim, gamma)
        if p_norm not in (1, 2):
            raise ValueError(f"p_norm must be 1 or 2, got {p_norm}")
        self.p = p_norm

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.gamma - torch.linalg.vector_norm(h + r - t, ord=self.p, dim=-1)

    def score_candidates(self, h, r, t, candidates, target):
        # ||h + r - t|| = ||candidate - query|| with query h + r (tails) or t - r (heads)
        query = h + r if target is Target.TAIL else t - r
        return self.gamma - candidate_distance(candidates, query, self.p)

    fusable = True

    def candidate_form(self, h, r, t, target):
        query = h + r if target is Target.TAIL else t - r
        return CandidateForm(FusedKind.L1 if self.p == 1 else FusedKind.L2, query, self.gamma, distance=True)

    def score_all(self, h, r, t, entities, target, max_elements=2 ** 25):
        query = h + r if target is Target.TAIL else t - r
        # no matmul shortcut for p = 2: |q|^2 + |e|^2 - 2 q.e loses precision (~1e-3 in float32)
        return self.gamma - torch.cdist(query, entities, p=float(self.p),
                                        compute_mode="donot_use_mm_for_euclid_dist")


@INTERACTIONS.register("DistMult")
class DistMult(BilinearInteraction):
    r"""DistMult (Yang et al. 2015): :math:`f(h, r, t) = \sum_i h_i r_i t_i`.

    Examples
    --------
    >>> DistMult(dim=2)(torch.tensor([1., 2.]), torch.tensor([3., 4.]), torch.tensor([5., 6.]))
    tensor(63.)
    """

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return torch.einsum("...d,...d,...d->...", h, r, t)

    def query(self, h, r, t, target):
        return h * r if target is Target.TAIL else r * t


@INTERACTIONS.register("ComplEx")
class ComplEx(BilinearInteraction):
    r"""ComplEx (Trouillon et al. 2016): :math:`f = \mathrm{Re}\langle h, r, \bar t\rangle`.

    Entities and relations are stored as ``2d`` reals ``[real | imaginary]``.

    Examples
    --------
    >>> one = torch.tensor([1., 0.])          # 1 + 0i
    >>> i = torch.tensor([0., 1.])            # 0 + 1i
    >>> ComplEx(dim=1)(i, i, one)             # Re(i * i * 1) = -1
    tensor(-1.)
    """

    entity_factor = 2
    relation_factor = 2

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        (hr, hi), (rr, ri) = complex_parts(h), complex_parts(r)
        # Re<h, r, conj(t)> = <Re(h r), Re(t)> + <Im(h r), Im(t)>
        hr_ = torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)
        return torch.einsum("...d,...d->...", hr_, t)

    def query(self, h, r, t, target):
        rr, ri = complex_parts(r)
        if target is Target.TAIL:
            hr, hi = complex_parts(h)
            return torch.cat([hr * rr - hi * ri, hr * ri + hi * rr], dim=-1)   # h * r
        tr, ti = complex_parts(t)
        return torch.cat([rr * tr + ri * ti, rr * ti - ri * tr], dim=-1)       # r * conj(t), conj'd


@INTERACTIONS.register("RotatE")
class RotatE(Interaction):
    r"""RotatE (Sun et al. 2019): :math:`f = \gamma - \sum_i |h_i r_i - t_i|`, :math:`|r_i| = 1`.

    Entities are ``2d`` reals ``[real | imaginary]``; relations are ``d`` raw values turned into
    phases ``r / (range / π)`` with ``range = (γ + 2) / d``.

    Examples
    --------
    >>> rot = RotatE(dim=1, gamma=0.0)
    >>> r = torch.tensor([rot.embedding_range / 2])          # phase π/2: multiply by i
    >>> rot(torch.tensor([1., 0.]), r, torch.tensor([0., 1.])).abs() < 1e-6   # i * 1 == i
    tensor(True)
    """

    entity_factor = 2
    relation_factor = 1

    @property
    def embedding_range(self) -> float:
        """Initialisation range ``(γ + 2) / d``."""
        return (self.gamma + 2.0) / self.dim

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        (hr, hi), (tr, ti) = complex_parts(h), complex_parts(t)
        theta = phase(r, self.gamma, self.dim)
        cr, ci = torch.cos(theta), torch.sin(theta)
        re, im = hr * cr - hi * ci - tr, hr * ci + hi * cr - ti
        return self.gamma - torch.sqrt(re * re + im * im).sum(-1)

    def query(self, h, r, t, target):
        """The rotated anchor that candidates are compared with: ``h r`` for tails; for heads
        ``t conj(r)``, since ``|h r - t| = |h - t conj(r)|`` when ``|r| = 1``."""
        theta = phase(r, self.gamma, self.dim)
        cr, ci = torch.cos(theta), torch.sin(theta)
        if target is Target.TAIL:
            ar, ai = complex_parts(h)
            return torch.cat([ar * cr - ai * ci, ar * ci + ai * cr], dim=-1)
        ar, ai = complex_parts(t)
        return torch.cat([ar * cr + ai * ci, ai * cr - ar * ci], dim=-1)

    def score_candidates(self, h, r, t, candidates, target):
        # rotate the anchor, not the candidates: one (B, K, d) difference either way
        return self.gamma - candidate_complex_distance(candidates, self.query(h, r, t, target))

    fusable = True

    def candidate_form(self, h, r, t, target):
        return CandidateForm(FusedKind.COMPLEX, self.query(h, r, t, target), self.gamma, distance=True)
