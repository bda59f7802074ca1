"""CSR indices of known triples, used to filter evaluation ranks and negative samples."""
from __future__ import annotations

from typing import Tuple

import torch

from ..typing import Target, Tensor, as_count, as_id_triples

__all__ = ["FilterIndex"]


class FilterIndex:
    """Known triples indexed for ``(h, r) -> tails`` and ``(r, t) -> heads`` look-ups.

    Each side is a CSR structure: the sorted unique query keys (``h * R + r`` for tail
    queries, ``t * R + r`` for head queries), an ``indptr`` into a column array of answer ids.
    Look-ups are vectorised with :func:`torch.searchsorted`.

    Parameters
    ----------
    triples : Tensor
        ``(N, 3)`` int64 known triples (duplicates allowed).
    num_entities : int
        ``E``.
    num_relations : int
        ``R``.

    Examples
    --------
    >>> idx = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 2]]), 4, 1)
    >>> rows, cols = idx.known(torch.tensor([[0, 0, 0], [1, 0, 0], [3, 0, 0]]), Target.TAIL)
    >>> rows.tolist(), cols.tolist()   # query 0 = (0, r0, ?) -> 1, 2; query 1 has none
    ([0, 0, 2], [1, 2, 2])
    >>> idx.contains(torch.tensor([[0, 0, 2], [1, 0, 2]])).tolist()
    [True, False]
    """

    def __init__(self, triples: Tensor, num_entities: int, num_relations: int):
        self.num_entities = as_count(num_entities, "num_entities")
        self.num_relations = as_count(num_relations, "num_relations")
        triples = as_id_triples(triples, "FilterIndex triples", num_entities=self.num_entities,
                                num_relations=self.num_relations)
        self._csr = {side: self._build(triples, side) for side in Target}
        E, R = self.num_entities, self.num_relations
        self._codes = torch.unique((triples[:, 0] * R + triples[:, 1]) * E + triples[:, 2])

    def _key(self, hrt: Tensor, target: Target) -> Tensor:
        anchor = hrt[:, target.other.column]
        return anchor * self.num_relations + hrt[:, 1]

    def _build(self, triples: Tensor, target: Target) -> Tuple[Tensor, Tensor, Tensor]:
        keys = self._key(triples, target)
        answers = triples[:, target.column]
        pair = torch.unique(keys * self.num_entities + answers)  # sorted, deduplicated
        keys, answers = pair // self.num_entities, pair % self.num_entities
        uniq, counts = torch.unique_consecutive(keys, return_counts=True)
        indptr = torch.zeros(len(uniq) + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=indptr[1:])
        return uniq, indptr, answers

    def to(self, device: torch.device) -> "FilterIndex":
        """Move the index tensors to ``device`` (in place); returns ``self``."""
        self._csr = {s: tuple(x.to(device) for x in v) for s, v in self._csr.items()}
        self._codes = self._codes.to(device)
        return self

    @property
    def num_triples(self) -> int:
        """Number of distinct known triples."""
        return int(self._codes.numel())

    def known(self, hrt: Tensor, target: Target) -> Tuple[Tensor, Tensor]:
        """All known answers of a batch of queries, as COO coordinates.

        Parameters
        ----------
        hrt : Tensor
            ``(B, 3)`` query triples; only the non-target columns are read.
        target : Target
            Side being predicted.

        Returns
        -------
        rows : Tensor
            ``(M,)`` query index in ``0..B-1`` of each known answer.
        cols : Tensor
            ``(M,)`` entity id of each known answer.
        """
        uniq, indptr, answers = self._csr[target]
        key = self._key(hrt.to(uniq.device), target)
        if len(uniq) == 0:  # no known triple: indptr[pos + 1] below would be out of range
            return key.new_empty(0), key.new_empty(0)
        pos = torch.searchsorted(uniq, key).clamp(max=max(len(uniq) - 1, 0))
        found = uniq[pos] == key if len(uniq) else torch.zeros_like(key, dtype=torch.bool)
        start = indptr[pos]
        length = torch.where(found, indptr[pos + 1] - start, torch.zeros_like(start))
        rows = torch.repeat_interleave(torch.arange(len(key), device=key.device), length)
        offsets = torch.arange(len(rows), device=key.device) - torch.repeat_interleave(
            torch.cumsum(length, 0) - length, length)
        cols = answers[start[rows] + offsets]
        return rows, cols

    def contains(self, hrt: Tensor) -> Tensor:
        """Whether each triple of ``hrt`` (shape ``(..., 3)``) is known; returns a bool ``(...)``."""
        E, R = self.num_entities, self.num_relations
        code = (hrt[..., 0] * R + hrt[..., 1]) * E + hrt[..., 2]
        codes = self._codes.to(code.device)
        if codes.numel() == 0:
            return torch.zeros_like(code, dtype=torch.bool)
        pos = torch.searchsorted(codes, code.reshape(-1)).clamp(max=len(codes) - 1)
        return (codes[pos] == code.reshape(-1)).reshape(code.shape)
