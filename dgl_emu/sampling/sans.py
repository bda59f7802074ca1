"""SANS: structure-aware negatives from k-hop neighbourhoods (Ahrabian et al., EMNLP 2020)."""
from __future__ import annotations

from typing import Optional, Tuple

import dgl
import torch
from tqdm.auto import tqdm

from ..rng import dgl_single_thread
from ..typing import Target, Tensor, as_count
from .base import NegativeSampler, uniform_ids

__all__ = ["SANSNegativeSampler", "k_hop_neighbourhoods", "walk_bytes", "WALK_BUDGET"]

#: bytes of walk traces held at once: chunks of start nodes shrink below ``chunk_size`` to stay
#: within it (the published k = 3 and 1000 walks keep chunks of 2048 nodes: 64 MiB)
WALK_BUDGET = 256 * 2 ** 20


def walk_bytes(k: int, num_walks: int) -> int:
    """Bytes of the ``(num_walks, k + 1)`` int64 walk traces of one start node.

    Examples
    --------
    >>> walk_bytes(3, 1000)
    32000
    """
    return num_walks * (k + 1) * 8


def k_hop_neighbourhoods(graph: dgl.DGLGraph, k: int, num_walks: int, seed: int = 0,
                         chunk_size: int = 2048, progress: bool = False) -> Tuple[Tensor, Tensor]:
    """Entities reached by random walks of ``k`` steps from each entity, as CSR.

    Runs ``num_walks`` walks of length ``k`` from every node with
    :func:`dgl.sampling.random_walk` (on one thread: see :func:`~dgl_emu.rng.dgl_single_thread`), and records every node visited at steps ``1..k``
    (the start node itself excluded). Nodes are processed in chunks of ``chunk_size`` with a
    dense ``(chunk_size, E)`` visited mask, so memory stays bounded; a chunk holds fewer nodes
    where their walks would pass :data:`WALK_BUDGET` (at least one node: its
    :func:`walk_bytes`).

    Parameters
    ----------
    graph : dgl.DGLGraph
        Homogeneous graph to walk on (usually the training graph with inverse edges).
    k : int
        Walk length (hops).
    num_walks : int
        Walks per entity.
    seed : int
        Seed given to DGL's sampler (``dgl.seed``; DGL's walks take no generator object).
    chunk_size : int
        Start nodes per chunk (at most).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    indptr : Tensor
        ``(E + 1,)`` int64 offsets.
    indices : Tensor
        ``(nnz,)`` int64 neighbour ids, sorted within each entity.
    """
    if k < 1 or num_walks < 1:
        raise ValueError("k and num_walks must be positive")
    E = graph.num_nodes()
    chunk_size = max(1, min(chunk_size, WALK_BUDGET // walk_bytes(k, num_walks)))
    counts, parts = [], []
    with dgl_single_thread(), tqdm(total=E, disable=not progress, desc="SANS walks", unit="entity",
                                   leave=False) as bar:  # DGL's multi-threaded walks (and seeding) vary run to run
        dgl.seed(seed)
        for start in range(0, E, chunk_size):
            nodes = torch.arange(start, min(start + chunk_size, E))
            traces, _ = dgl.sampling.random_walk(graph, nodes.repeat_interleave(num_walks), length=k)
            _record_visits(traces, nodes, E, counts, parts)
            bar.update(len(nodes))
    indptr = torch.zeros(E + 1, dtype=torch.long)
    torch.cumsum(torch.cat(counts), 0, out=indptr[1:])
    return indptr, torch.cat(parts)


def _record_visits(traces: Tensor, nodes: Tensor, E: int, counts: list, parts: list) -> None:
    """Append the sorted distinct nodes visited from each start node (CSR counts and columns)."""
    visited = traces[:, 1:]
    num_walks = len(traces) // len(nodes)
    rows = torch.arange(len(nodes)).repeat_interleave(num_walks).unsqueeze(1).expand_as(visited)
    ok = visited >= 0
    mask = torch.zeros(len(nodes), E, dtype=torch.bool)
    mask[rows[ok], visited[ok]] = True
    mask[torch.arange(len(nodes)), nodes] = False
    r, c = mask.nonzero(as_tuple=True)
    counts.append(torch.bincount(r, minlength=len(nodes)))
    parts.append(c)


class SANSNegativeSampler(NegativeSampler):
    """Negatives drawn from the k-hop neighbourhood of the entity that is kept.

    To corrupt the tail of ``(h, r, t)`` the sampler draws uniformly from the entities within
    ``k`` hops of ``h`` (and vice versa); an entity whose neighbourhood is empty falls back to
    uniform negatives over all entities.

    Parameters
    ----------
    graph : dgl.DGLGraph
        Training graph with inverse edges (:meth:`KnowledgeGraph.graph`); never valid/test.
    num_negatives : int
        ``K``.
    k : int
        Hops (published: 3).
    num_walks : int
        Random walks per entity (published: 1000).
    num_relations : int, optional
        ``R``, to recognise inverse edges in DGL's protocol.
    generator : torch.Generator, optional
        Randomness of the sampling.
    seed : int
        Seed of the walks and of generators created on demand.

    Examples
    --------
    >>> g = dgl.graph((torch.tensor([0, 1, 1, 2]), torch.tensor([1, 0, 2, 1])), num_nodes=5)
    >>> s = SANSNegativeSampler(g, num_negatives=4, k=1, num_walks=20)
    >>> s.neighbours(1).tolist()
    [0, 2]
    >>> sorted(set(s(torch.tensor([[1, 0, 0]]), Target.TAIL).flatten().tolist()))
    [0, 2]
    """

    def __init__(self, graph: dgl.DGLGraph, num_negatives: int, k: int = 3, num_walks: int = 1000,
                 num_relations: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 seed: int = 0, progress: bool = False):
        super().__init__(graph.num_nodes(), num_negatives, num_relations, generator, seed)
        self.k, self.num_walks = as_count(k, "k"), as_count(num_walks, "num_walks")
        self.indptr, self.indices = k_hop_neighbourhoods(graph, k, num_walks, seed, progress=progress)

    @classmethod
    def setup_memory(cls, num_entities: int, k: int = 3, num_walks: int = 1000,
                     **options) -> Optional[Tuple[int, str, str]]:
        """The walks of one start node (:func:`walk_bytes`) and the ``(1, E)`` visited mask: the least
        that :func:`k_hop_neighbourhoods` holds at once.

        Examples
        --------
        >>> SANSNegativeSampler.setup_memory(10, k=3, num_walks=1000)
        (32010, 'sampler.num_walks', '1000 SANS walks of 3 hops per entity')
        """
        option = "sampler.k" if k + 1 > num_walks else "sampler.num_walks"
        return (walk_bytes(k, num_walks) + num_entities, option,
                f"{num_walks} SANS walks of {k} hops per entity")

    @classmethod
    def from_kg(cls, kg, num_negatives: int, k: int = 3, num_walks: int = 1000,
                generator: Optional[torch.Generator] = None, seed: int = 0,
                progress: bool = False) -> "SANSNegativeSampler":
        """Walks on ``kg``'s training graph with inverse edges (never valid/test)."""
        return cls(kg.graph("train"), num_negatives, k=k, num_walks=num_walks,
                   num_relations=kg.num_relations, generator=generator, seed=seed, progress=progress)

    def neighbours(self, entity: int) -> Tensor:
        """Sorted ids within ``k`` hops of ``entity``."""
        return self.indices[self.indptr[entity]:self.indptr[entity + 1]]

    def corrupt(self, hrt: Tensor, target: Target) -> Tensor:
        device = hrt.device
        gen = self.generator(device)
        if self.indptr.device != device:
            self.indptr, self.indices = self.indptr.to(device), self.indices.to(device)
        anchor = hrt[:, target.other.column]
        start = self.indptr[anchor].unsqueeze(1)
        size = (self.indptr[anchor + 1] - self.indptr[anchor]).unsqueeze(1)
        shape = (len(hrt), self.num_negatives)
        u = torch.rand(shape, generator=gen, device=device, dtype=torch.float64)
        offset = (u * size).long().clamp(max=(size - 1).clamp(min=0))
        local = self.indices[(start + offset).clamp(max=max(len(self.indices) - 1, 0))] \
            if len(self.indices) else torch.zeros(shape, dtype=torch.long, device=device)
        fallback = uniform_ids(shape, self.num_entities, gen, device)
        return torch.where(size > 0, local, fallback)
