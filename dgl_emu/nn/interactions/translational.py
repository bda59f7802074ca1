"""TransD and pRotatE: the two interactions of the EMU reference code beyond Sun et al.'s four."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...typing import Target, Tensor
from .base import Interaction, candidate_distance, embedding_range, phase
from .models import INTERACTIONS

__all__ = ["TransD", "PRotatE"]


@INTERACTIONS.register("TransD")
class TransD(Interaction):
    r"""TransD (Ji et al., ACL 2015): entities and relations each carry a projection vector.

    .. math::

        f(h, r, t) = \gamma - \lVert h_\perp + r - t_\perp \rVert_p, \qquad
        e_\perp = \mathrm{n}\big((r_p e_p^\top + I)\, e\big) = \mathrm{n}\big(e + (e_p^\top e)\, r_p\big)

    with :math:`\mathrm{n}(x) = x / \lVert x \rVert_2` when ``normalize`` (the default) and the
    identity otherwise. Entity and relation spaces have the same dimension ``d`` (the square
    case of the paper, where ``I`` is the identity).

    The variant is the EMU paper's code (Takamoto et al., TMLR 2025): the projected entities are
    renormalised to unit L2 norm and the distance is the **L1 norm** (``p_norm = 1``), the
    convention of its TransE; tables are initialised ``U(-range, range)``, ``range = (γ + 2) / d``,
    projections included. The paper's norm constraints (``‖e‖ <= 1`` and so on, enforced by
    projection after each step) are not applied. ``normalize=False, p_norm=2`` gives the
    unconstrained formula of the paper. (The reference code sums its ``e_p^T e`` over the
    candidates' axis of its ``(B, K, d)`` tensors instead of the coordinates; dgl-emu implements
    the formula.)

    Shapes: entity rows are ``[e | e_p]``, ``2d`` reals (``entity_factor = 2``); relation rows
    ``[r | r_p]``, ``2d`` reals (``relation_factor = 2``).

    **EMU** mutates the whole entity row ``[e | e_p]``, all ``2d`` coordinates with one mask: each
    coordinate of a negative's row is kept with probability ``p`` and otherwise taken from the
    positive's row, so a mutated negative may carry parts of the positive's projection vector.
    (The reference code keeps projections in their own table and mutates the embedding ``e``
    only.) The score is not a comparison of the candidate with one query vector (the candidate
    is projected by the relation), so EMU forms its mutated negatives; there is no fused kernel.

    Parameters
    ----------
    dim : int
        ``d``.
    gamma : float
        Margin ``γ``.
    p_norm : int
        1 (default, the EMU code) or 2.
    normalize : bool
        Renormalise the projected entities to unit L2 norm (default, the EMU code).

    Examples
    --------
    With ``e_p = 0`` nothing is projected: TransE on normalised vectors.

    >>> transd = TransD(dim=2, gamma=3.0)
    >>> h = torch.tensor([3., 4., 0., 0.])      # e = (3, 4), e_p = 0 -> e_perp = (0.6, 0.8)
    >>> r = torch.tensor([0.4, 0.2, 1., 1.])
    >>> t = torch.tensor([1., 0., 0., 0.])      # t_perp = (1, 0)
    >>> transd(h, r, t)                         # 3 - |0.6 + 0.4 - 1| - |0.8 + 0.2 - 0|
    tensor(2.)
    """

    entity_factor = 2
    relation_factor = 2

    def __init__(self, dim: int, gamma: float = 12.0, p_norm: int = 1, normalize: bool = True):
        super().__init__(dim, gamma)
        if p_norm not in (1, 2):
            raise ValueError(f"p_norm must be 1 or 2, got {p_norm}")
        self.p, self.normalize = p_norm, bool(normalize)

    def project(self, e: Tensor, r: Tensor) -> Tensor:
        """``e_perp (*, d)`` of entity rows ``e (*, 2d)`` under relation rows ``r (*, 2d)``
        (broadcastable)."""
        vec, proj = e.chunk(2, dim=-1)
        out = vec + (proj * vec).sum(-1, keepdim=True) * r[..., self.dim:]
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        diff = self.project(h, r) + r[..., :self.dim] - self.project(t, r)
        return self.gamma - torch.linalg.vector_norm(diff, ord=self.p, dim=-1)

    def query(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor], target: Target) -> Tensor:
        """What the projected candidate is compared with: ``h_perp + r`` for tails, ``t_perp - r``
        for heads (``||h_perp + r - t_perp|| = ||c_perp - query||`` either way)."""
        if target is Target.TAIL:
            return self.project(h, r) + r[..., :self.dim]
        return self.project(t, r) - r[..., :self.dim]

    def score_candidates(self, h, r, t, candidates, target):
        # project every candidate (no way around it), compare with the anchor's query once
        projected = self.project(candidates, r)
        return self.gamma - candidate_distance(projected, self.query(h, r, t, target), self.p)


@INTERACTIONS.register("pRotatE")
class PRotatE(Interaction):
    r"""pRotatE (Sun et al., ICLR 2019): RotatE with phases only and one learnt modulus.

    .. math::

        f(h, r, t) = \gamma - C \sum_i \lvert \sin(\theta_{h,i} + \theta_{r,i} - \theta_{t,i}) \rvert

    with phases :math:`\theta = x / (\mathrm{range} / \pi)` of the raw values
    (``range = (γ + 2) / d``, as RotatE's relation phases) and the modulus :math:`C`, a trainable
    scalar initialised to ``0.5 * range``. This is the variant of Sun et al.'s code and of the
    EMU paper's code (``half_angle=False``): the sine of the whole phase difference. The
    appendix of Sun et al. writes the distance of unit-modulus RotatE,
    :math:`2C \sum_i |\sin((\theta_h + \theta_r - \theta_t) / 2)|`; ``half_angle=True`` gives
    :math:`\gamma - C \sum_i |\sin((\theta_h + \theta_r - \theta_t) / 2)|`, which equals RotatE
    with entities of modulus ``C / 2`` exactly (the test suite checks both relations).

    Shapes: entities and relations are ``d`` raw phases each (``entity_factor = 1``).

    **EMU** mutates the ``d`` entity phases coordinate-wise with one mask (a mutated coordinate
    takes the positive's phase). The score is not a comparison with one query vector under a
    fused kernel's norm, so EMU forms its mutated negatives.

    Parameters
    ----------
    dim : int
        ``d``.
    gamma : float
        Margin ``γ``; also sets the phase scale ``range``.
    modulus : float, optional
        Initial ``C`` (default ``0.5 * range``, the reference codes' value).
    learn_modulus : bool
        Whether ``C`` is trained (default, as in the reference codes).
    half_angle : bool
        Use ``sin(Δ / 2)`` (the paper's unit-modulus RotatE distance) instead of ``sin(Δ)`` (the
        codes').

    Examples
    --------
    >>> prot = PRotatE(dim=2, gamma=6.0, modulus=1.0)     # range = 4: phase = x * pi / 4
    >>> h, r, t = torch.tensor([2., 0.]), torch.tensor([0., 1.]), torch.tensor([0., 0.])
    >>> prot(h, r, t)                                     # 6 - |sin(pi / 2)| - |sin(pi / 4)|
    tensor(4.2929, grad_fn=<RsubBackward1>)
    """

    def __init__(self, dim: int, gamma: float = 12.0, modulus: Optional[float] = None, learn_modulus: bool = True,
                 half_angle: bool = False):
        super().__init__(dim, gamma)
        initial = 0.5 * embedding_range(self.gamma, dim) if modulus is None else float(modulus)
        self.modulus = nn.Parameter(torch.tensor(initial), requires_grad=bool(learn_modulus))
        self.half_angle = bool(half_angle)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        delta = phase(h, self.gamma, self.dim) + phase(r, self.gamma, self.dim) - phase(t, self.gamma, self.dim)
        if self.half_angle:
            delta = delta / 2
        return self.gamma - self.modulus * torch.sin(delta).abs().sum(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, gamma={self.gamma}, half_angle={self.half_angle}"
