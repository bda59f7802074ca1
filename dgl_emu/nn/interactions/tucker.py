"""TuckER (Balažević et al., EMNLP 2019): a shared core tensor, with its batch norms and dropouts."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ...typing import Target, Tensor
from ..dropout import SeededDropout
from ..fused import FusedKind
from .base import BilinearInteraction, CandidateForm, Interaction, candidate_dot
from .models import INTERACTIONS

__all__ = ["TuckER"]


@INTERACTIONS.register("TuckER")
class TuckER(BilinearInteraction):
    r"""TuckER: :math:`f(h, r, t) = \langle \mathrm{bn}_1(\mathcal{W} \times_1 \mathrm{bn}_0(h) \times_2 r), t \rangle`.

    :math:`\mathcal{W} \in \mathbb{R}^{d_e \times d_r \times d_e}` is a core tensor shared by all
    relations: :math:`(\mathcal{W} \times_1 x \times_2 r)_k = \sum_{i,j} \mathcal{W}_{ijk}\, x_i r_j`.
    As in the published model, the head passes a batch norm and the input dropout, the relation's
    matrix :math:`\mathcal{W} \times_2 r` the first hidden dropout, and the product a second batch
    norm and the second hidden dropout; the core starts ``U(-1, 1)``. Batch norms and dropouts are
    modules of the interaction: dropout is active in train mode only, batch norm uses the batch's
    statistics in train mode and its running statistics in eval mode. The dropout masks come from
    one seeded stream (:class:`~dgl_emu.nn.dropout.SeededDropout`). Without batch norm and
    dropout the score is trilinear: :math:`\sum_{ijk} \mathcal{W}_{ijk} h_i r_j t_k`.

    Shapes: entities ``(*, d_e)`` (``dim``), relations ``(*, d_r)`` (``relation_dim``), the core
    ``(d_e, d_r, d_e)`` (:attr:`core`, a view of the parameter :attr:`weight`, stored ``(d_r, d_e, d_e)``). Batch norm normalises over every leading position of the head tensor it
    is given; one scoring call computes the tail query once per ``(h, r)`` row (one batch-norm
    update, one dropout draw, shared by the row's candidates, as in the published 1-N scoring).
    The all-entity regimes replay one draw for all of a part's calls; with sampled negatives the
    positive is scored with the negatives, from one query (:attr:`shares_query`; with shared
    negatives, ``--chunk-size``, the positive's is a second call).

    Sides. The score is linear in the tail: the tail query is the hidden vector above (fast
    candidate path, fused EMU). In the head it is affine in eval mode (the batch norms use fixed
    statistics: :math:`f = \langle q, h \rangle + b`, which :meth:`score_candidates` and
    :meth:`score_all` use), linear without batch norm, and neither in train mode with batch norm
    or dropout, where head candidates are scored by :meth:`forward` (each candidate through the
    core: ``O(K d_e^2)`` per row, batch norm over the candidates). The published model predicts
    heads as tails of reciprocal relations (``--reciprocal``), which keeps every part on the fast
    path.

    **EMU** mutates the ``d_e`` entity coordinates with one mask. For tail candidates (and head
    candidates without batch norm or dropout) EMU is fused (a dot product with the query);
    otherwise it forms its mutated negatives. EMU needs sampled negatives: with 1vsAll or KvsAll
    (the published regime) there is nothing to mutate.

    Parameters
    ----------
    dim : int
        ``d_e``.
    gamma : float
        Only sets the initialisation range ``(γ + 2) / d_e`` of the embedding tables.
    relation_dim : int, optional
        ``d_r`` (default ``d_e``).
    input_dropout, hidden_dropout1, hidden_dropout2 : float
        Dropout on the normalised head, on the relation's ``d_e x d_e`` matrix, and on the
        normalised product (published FB15k-237 settings: 0.3, 0.4, 0.5).
    batch_norm : bool
        The two batch norms of the published model (default on).
    seed : int
        Seed of the core's initialisation and of the dropout masks.

    Examples
    --------
    A diagonal core (``d_e = d_r``, :math:`\mathcal{W}_{iii} = 1`) without batch norm is DistMult:

    >>> tucker = TuckER(dim=2, batch_norm=False)
    >>> with torch.no_grad():
    ...     _ = tucker.core.zero_()
    ...     tucker.core[0, 0, 0] = tucker.core[1, 1, 1] = 1.0
    >>> tucker(torch.tensor([1., 2.]), torch.tensor([3., 4.]), torch.tensor([5., 6.]))   # 15 + 48
    tensor(63., grad_fn=<SumBackward1>)
    """

    shares_query = True

    def __init__(self, dim: int, gamma: float = 12.0, relation_dim: Optional[int] = None, input_dropout: float = 0.0,
                 hidden_dropout1: float = 0.0, hidden_dropout2: float = 0.0, batch_norm: bool = True, seed: int = 0):
        super().__init__(dim, gamma)
        self.d_r = dim if relation_dim is None else int(relation_dim)
        if self.d_r < 1:
            raise ValueError(f"relation_dim must be positive, got {relation_dim}")
        core = torch.empty(dim, self.d_r, dim).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(seed))
        #: the core stored relation-first, ``(d_r, d_e, d_e)`` (the published ``W``), so that a batch of
        #: relation matrices is one matrix product with no copy of the core; :attr:`core` views it
        self.weight = nn.Parameter(core.permute(1, 0, 2).contiguous())
        self.batch_norm = bool(batch_norm)
        self.bn0 = nn.BatchNorm1d(dim) if self.batch_norm else None
        self.bn1 = nn.BatchNorm1d(dim) if self.batch_norm else None
        self.input_dropout = SeededDropout(input_dropout, seed)
        self.hidden_dropout1 = SeededDropout(hidden_dropout1, seed)
        self.hidden_dropout2 = SeededDropout(hidden_dropout2, seed)
        # one stream for the three masks, drawn in order (three pools of one seed would repeat it)
        self.hidden_dropout1.generators = self.hidden_dropout2.generators = self.input_dropout.generators

    @property
    def relation_dim(self) -> int:
        """``d_r``."""
        return self.d_r

    # ------------------------------------------------------------------ the tail query
    def _norm(self, bn: Optional[nn.BatchNorm1d], x: Tensor) -> Tensor:
        """Batch norm over every leading position of ``x (*, d_e)``."""
        return x if bn is None else bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the core was stored relation-first hold ``core`` (d_e, d_r, d_e)
        if prefix + "core" in state_dict and prefix + "weight" not in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "core").permute(1, 0, 2).contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def core(self) -> Tensor:
        r""":math:`\mathcal{W}`, ``(d_e, d_r, d_e)``: a view of :attr:`weight` (in-place writes reach it)."""
        return self.weight.permute(1, 0, 2)

    def relation_matrix(self, r: Tensor) -> Tensor:
        r""":math:`\mathcal{W} \times_2 r`: ``(*, d_e, d_e)`` matrices of relations ``(*, d_r)``."""
        d = self.dim
        return (r.reshape(-1, self.d_r) @ self.weight.reshape(self.d_r, d * d)).reshape(*r.shape[:-1], d, d)

    def hidden(self, h: Tensor, r: Tensor) -> Tensor:
        """The ``(h, r)`` part, the vector tails are dotted with: ``(*, d_e)``."""
        x = self.input_dropout(self._norm(self.bn0, h))
        x = torch.einsum("...i,...ik->...k", x, self.hidden_dropout1(self.relation_matrix(r)))
        return self.hidden_dropout2(self._norm(self.bn1, x))

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (self.hidden(h, r) * t).sum(-1)

    # ------------------------------------------------------------------ the head side
    @staticmethod
    def _affine(bn: Optional[nn.BatchNorm1d]) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """``(scale, shift)`` of a batch norm with its running statistics (eval mode)."""
        if bn is None:
            return None, None
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return scale, bn.bias - bn.running_mean * scale

    def _dropout_off(self) -> bool:
        return not self.training or all(m.p == 0.0 for m in (self.input_dropout, self.hidden_dropout1,
                                                              self.hidden_dropout2))

    def _head_affine(self, r: Tensor, t: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """``(q, b)`` with ``f(h, r, t) = <q, h> + b`` (``b`` is ``None`` without batch norm)."""
        s0, c0 = self._affine(self.bn0)
        s1, c1 = self._affine(self.bn1)
        u = t if s1 is None else s1 * t                                    # weights of the product's coordinates
        wu = torch.einsum("...ik,...k->...i", self.relation_matrix(r), u)  # (*, d_e)
        if s0 is None:
            return wu, None
        return s0 * wu, (c0 * wu).sum(-1) + (c1 * t).sum(-1)

    def query_with_bias(self, h: Optional[Tensor], r: Tensor, t: Optional[Tensor],
                        target: Target) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
        """``(q, b)`` with ``f = <q, candidate> + b`` on ``target`` (``b`` ``(*)`` or ``None`` for
        0), or ``None`` where the score is not affine in the candidate (heads in train mode with
        batch norm or dropout)."""
        if target is Target.TAIL:
            return self.hidden(h, r), None
        if not self._dropout_off() or (self.training and self.batch_norm):
            return None
        return self._head_affine(r, t)

    def query(self, h, r, t, target):
        form = self.query_with_bias(h, r, t, target)
        if form is None or form[1] is not None:
            raise ValueError("TuckER's score is linear in the head only without batch norm (and, in train mode, "
                             "without dropout): score heads with score_candidates, or use reciprocal relations")
        return form[0]

    def candidate_form(self, h, r, t, target) -> Optional[CandidateForm]:
        form = self.query_with_bias(h, r, t, target)
        if form is None or form[1] is not None:
            return None
        return CandidateForm(FusedKind.DOT, form[0])

    def score_candidates(self, h, r, t, candidates, target):
        form = self.query_with_bias(h, r, t, target)
        if form is None:
            return Interaction.score_candidates(self, h, r, t, candidates, target)
        q, b = form
        scores = candidate_dot(candidates, q)
        return scores if b is None else scores + b

    def score_all(self, h, r, t, entities, target, max_elements=2 ** 25):
        h2, r2, t2 = (x.unsqueeze(1) if x is not None else None for x in (h, r, t))
        form = self.query_with_bias(h2, r2, t2, target)
        if form is None:
            return Interaction.score_all(self, h, r, t, entities, target, max_elements)
        q, b = form
        scores = q[:, 0] @ entities.T
        return scores if b is None else scores + b

    def extra_repr(self) -> str:
        return f"d_e={self.dim}, d_r={self.d_r}, batch_norm={self.batch_norm}"
