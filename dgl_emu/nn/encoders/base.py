"""The encoder interface and the shallow lookup-table encoder."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
from torch import nn

from ...typing import Tensor
from ..interactions.base import Interaction
from ..rows import gather_rows

__all__ = ["Representations", "Encoder", "LookupEncoder", "SPARSE_FROM_ENTITIES"]

#: lookup tables with at least this many entities default to sparse gradients
SPARSE_FROM_ENTITIES = 100_000


class Representations(NamedTuple):
    """Encoder output: ``entity (E, d_e)`` and ``relation (R', d_r)`` representation tables."""

    entity: Tensor
    relation: Tensor


class Encoder(nn.Module):
    """Maps the training graph to entity and relation representations.

    Subclasses implement ``forward(graph, features=None, norms=None) -> Representations``.
    ``graph`` is the homogeneous training graph with ``edata[dgl.ETYPE]`` (inverse relations
    ``r + R``), or a list of DGL blocks with their input ``features``; lookup tables ignore it.
    GNN encoders take their edge normalisation explicitly: ``norms`` holds one ``(E_l, 1)``
    tensor per layer from :meth:`edge_norm`, computed by whoever owns the graph (and computed
    on the fly when omitted). An encoder never writes into the graph it is given.
    ``needs_graph`` tells the pipeline whether to build and move a graph at all.
    """

    needs_graph: bool = False

    @property
    def num_layers(self) -> int:
        """Message-passing layers (0 for lookup tables)."""
        layers = self._modules.get("layers")
        return len(layers) if layers is not None else 0

    #: whether :meth:`KGEModel.gather <dgl_emu.models.KGEModel.gather>` gives the tables row
    #: (sparse) gradients: only tables that are themselves the representations can
    sparse: bool = False

    def sparse_parameters(self) -> list:
        """The parameters that receive sparse (row) gradients (empty unless :attr:`sparse`)."""
        return []

    @property
    def num_entities(self) -> int:
        """``E``."""
        return self.entity.shape[0]

    def entity_rows(self, unique: Tensor) -> Tensor:
        """``(U, d)`` rows ``unique`` (sorted, distinct) of the entity table with a sparse gradient
        of those rows (the sparse path of :meth:`KGEModel.gather <dgl_emu.models.KGEModel.gather>`)."""
        return gather_rows(self.entity, unique)

    def tables(self) -> list:
        """The embedding tables: entity ``(E, d)`` and relation ``(R', d_r)`` (a GNN's input
        embeddings), as whole-table regularisers see them."""
        return [self.entity, self.relation]

    def forward(self, graph=None, features: Optional[Tensor] = None,
                norms: Optional[Sequence[Tensor]] = None) -> Representations:  # pragma: no cover
        raise NotImplementedError

    def inference(self, graph=None, batch_size: int = 16384) -> Representations:
        """Representations for evaluation (eval mode, no gradients). GNN encoders compute them
        layer by layer over batches of ``batch_size`` nodes to bound memory; the default is
        :meth:`forward`."""
        with torch.no_grad():
            return self(graph)

    def edge_norm(self, graph, in_degrees: Optional[Tensor] = None) -> Optional[Tensor]:
        """``(E, 1)`` edge normalisation of ``graph`` (a full graph or a block) for one layer.

        ``in_degrees`` are the full graph's in-degrees (``(V,)``), which blocks need for norms
        that depend on degrees outside the block. ``None`` for encoders without message passing.
        """
        return None


class LookupEncoder(Encoder):
    """Shallow embeddings: one trainable vector per entity and per relation.

    Parameters
    ----------
    num_entities : int
        ``E``.
    num_relations : int
        ``R``.
    interaction : Interaction
        Gives the table widths and the initialisation.
    generator : torch.Generator, optional
        Randomness for the initialisation.
    sparse : bool, optional
        Row (sparse) gradients: a step then costs the same at any number of entities, and the
        optimisers update only the rows a batch touched (:mod:`dgl_emu.training.optim`). Default
        (``None``): sparse from :data:`SPARSE_FROM_ENTITIES` entities on, dense below, where the
        dense update is as fast and keeps the published Adam.

    Examples
    --------
    >>> from dgl_emu.nn.interactions import ComplEx
    >>> enc = LookupEncoder(5, 2, ComplEx(dim=3))
    >>> [tuple(x.shape) for x in enc()]
    [(5, 6), (2, 6)]
    """

    def __init__(self, num_entities: int, num_relations: int, interaction: Interaction,
                 generator: Optional[torch.Generator] = None, sparse: Optional[bool] = None):
        super().__init__()
        if num_entities < 1 or num_relations < 1:
            raise ValueError("need at least one entity and one relation")
        self.sparse = bool(sparse) if sparse is not None else num_entities >= SPARSE_FROM_ENTITIES
        self.entity = nn.Parameter(torch.empty(num_entities, interaction.entity_dim))
        self.relation = nn.Parameter(torch.empty(num_relations, interaction.relation_dim))
        interaction.init_entities_(self.entity, generator)
        interaction.init_relations_(self.relation, generator)

    def forward(self, graph=None, features: Optional[Tensor] = None, norms=None) -> Representations:
        return Representations(self.entity, self.relation)

    def sparse_parameters(self) -> list:
        return [self.entity, self.relation] if self.sparse else []

    def extra_repr(self) -> str:
        return f"entities={self.entity.shape[0]}, relations={self.relation.shape[0]}, sparse={self.sparse}"
