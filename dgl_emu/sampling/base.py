"""The :class:`NegativeSampler` base: ``sampler(hrt, target)`` and DGL's ``sampler(g, eids)``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Tuple

import dgl
import torch

from ..rng import GeneratorPool, Stochastic
from ..typing import Target, Tensor, as_count

__all__ = ["NegativeSampler"]


class NegativeSampler(Stochastic):
    """Draws ``K`` corrupted entity ids per positive triple.

    Two calling conventions:

    * ``sampler(hrt, target)`` with ``hrt (B, 3)`` and a :class:`~dgl_emu.typing.Target`
      returns ``(B, K)`` entity ids for the ``target`` slot;
    * DGL's negative-sampler protocol ``sampler(g, eids)`` returns ``(src, dst)`` of
      ``len(eids) * K`` negative edges (a dict of them for a dict of ``eids``), so a sampler
      plugs into :func:`dgl.dataloading.as_edge_prediction_sampler`. Destinations are
      corrupted; an inverse edge (relation id ``>= R`` in ``edata[dgl.ETYPE]``) is the KG triple
      read backwards, so its destination is the triple's head.

    Parameters
    ----------
    num_entities : int
        ``E``: ids are drawn from ``0..E-1``.
    num_negatives : int
        ``K``.
    num_relations : int, optional
        ``R``, needed to recognise inverse edges in DGL graphs.
    generator : torch.Generator, optional
        Randomness on its device; other devices get generators seeded with ``seed``.
    seed : int
        Seed for generators created on demand.
    """

    def __init__(self, num_entities: int, num_negatives: int, num_relations: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, seed: int = 0):
        self.num_entities = as_count(num_entities, "num_entities", minimum=2)
        self.num_negatives = as_count(num_negatives, "num_negatives")
        self.num_relations = None if num_relations is None else as_count(num_relations, "num_relations")
        self.generators = GeneratorPool(seed, generator)

    # ------------------------------------------------------------------ the sampler API
    def corrupt(self, hrt: Tensor, target: Target) -> Tensor:  # pragma: no cover - abstract
        """``(B, K)`` negative ids for the ``target`` slot of ``hrt (B, 3)``."""
        raise NotImplementedError

    @classmethod
    def setup_memory(cls, num_entities: int, **options) -> Optional[Tuple[int, str, str]]:
        """What building a sampler of ``options`` certainly allocates on the CPU, before the first
        batch: ``(bytes, option, how)`` with the dotted option that sizes it, or ``None`` (the
        default: nothing worth checking)."""
        return None

    @property
    def shared_rows(self) -> Optional[int]:
        """Rows of a batch that share one draw of negatives (``chunk_size``), or ``None``: every
        row draws its own. Gathers then look each shared set up once."""
        return None

    def head_probability(self, hrt: Tensor) -> Optional[Tensor]:
        """Per-triple probability ``(B,)`` of corrupting the head, or ``None``.

        ``None`` (the default) means the trainer chooses the side (alternating batches). The
        Bernoulli sampler returns the per-relation ``tph / (tph + hpt)``.
        """
        return None

    def generator(self, device: torch.device) -> torch.Generator:
        """This sampler's generator on ``device``."""
        return self.generators.get(device)

    def __call__(self, hrt_or_graph, target_or_eids):
        if isinstance(hrt_or_graph, dgl.DGLGraph):
            return self.dgl_negatives(hrt_or_graph, target_or_eids)
        if not isinstance(target_or_eids, Target):
            raise TypeError(f"expected a Target, got {target_or_eids!r}")
        return self.corrupt(hrt_or_graph, target_or_eids)

    # ------------------------------------------------------------------ DGL protocol
    def dgl_negatives(self, g: dgl.DGLGraph, eids):
        """DGL's protocol: ``(src, dst)`` negative edges, ``K`` per edge in ``eids``."""
        if isinstance(eids, Mapping):
            return {etype: self._dgl_one(g, e, g.to_canonical_etype(etype)) for etype, e in eids.items()}
        return self._dgl_one(g, eids, g.canonical_etypes[0])

    def _dgl_one(self, g: dgl.DGLGraph, eids: Tensor, etype) -> Tuple[Tensor, Tensor]:
        src, dst = g.find_edges(eids, etype=etype)
        rel = self._edge_relations(g, eids, etype)
        K = self.num_negatives
        inverse = rel >= self.num_relations if self.num_relations is not None else torch.zeros_like(rel, dtype=torch.bool)
        neg = torch.empty(len(src), K, dtype=torch.long, device=src.device)
        for side, rows in ((Target.TAIL, ~inverse), (Target.HEAD, inverse)):
            if rows.any():
                s, r, d = src[rows], rel[rows], dst[rows]
                if side is Target.HEAD:  # inverse edge t -(r+R)-> h is the triple (h, r, t)
                    s, r, d = d, r - self.num_relations, s
                neg[rows] = self.corrupt(torch.stack([s, r, d], 1), side)
        return src.repeat_interleave(K), neg.reshape(-1).to(src.dtype)  # int32 graphs need int32

    @staticmethod
    def _edge_relations(g: dgl.DGLGraph, eids: Tensor, etype) -> Tensor:
        data = g.edges[etype].data
        if "relation" in data:
            return data["relation"][eids]
        if dgl.ETYPE in data:
            return data[dgl.ETYPE][eids].long()
        return torch.full_like(eids, g.canonical_etypes.index(etype), dtype=torch.long)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_entities={self.num_entities}, num_negatives={self.num_negatives})"


def uniform_ids(shape: Tuple[int, ...], num_entities: int, generator: torch.Generator,
                device: torch.device) -> Tensor:
    """Uniform entity ids of ``shape`` in ``0..E-1``."""
    return torch.randint(0, num_entities, shape, generator=generator, device=device)


