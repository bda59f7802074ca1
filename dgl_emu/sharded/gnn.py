"""GNN encoders (R-GCN, CompGCN) over sharded entity embeddings.

A sharded GNN trains by neighbour sampling: each step samples the blocks of its seeds (anchors,
true entities, negatives) from the partitioned training graph (:class:`dgl.distributed.DistGraph`,
with the inverse edges the encoders pass messages along), pulls the input rows of the blocks'
source nodes from the entity store, and encodes them with the GNN's layers. The layer weights and
the relation table are dense parameters on every trainer, kept in step by
:class:`~torch.nn.parallel.DistributedDataParallel`; the entity rows are updated by the store's
optimiser, as for lookup tables (:class:`~dgl_emu.sharded.encoder.ShardedEncoder`).

The GNN is built exactly as in one process (same generator, same draws); its entity table is
then written into the store by rank 0 and dropped from the trainer, and checkpoints hold the
one-process encoder's keys, so ``dgl-emu evaluate`` loads them into an ordinary GNN encoder.
"""
from __future__ import annotations

from typing import Optional, Sequence

import dgl
import torch

from ..nn.encoders.base import Encoder, Representations
from ..training.batching import NeighborSampledBatches
from ..typing import Tensor
from .encoder import ShardedEncoder

__all__ = ["ShardedGNNEncoder", "DistNeighborBatches"]


class ShardedGNNEncoder(ShardedEncoder):
    """A GNN encoder whose input entity table is the sharded store.

    Parameters
    ----------
    gnn : Encoder
        An R-GCN or CompGCN encoder built as in one process; its ``entity`` table ``(E, d)`` is
        written into ``store`` (by rank 0) and removed from it.
    store : dgl.distributed.DistEmbedding
        ``(E, d)`` entity rows in the partitions' numbering.
    new_to_orig : Tensor
        ``(E,)`` the dataset's id of each store row.
    rank : int
        This trainer's rank.

    Notes
    -----
    Only blocks are encoded (``forward(blocks, features, norms)`` with ``features (N_src, d)``
    pulled through :meth:`entity_rows`); the full graph is encoded only by the one-process model
    that evaluation gathers.
    """

    needs_graph = True

    def __init__(self, gnn: Encoder, store, new_to_orig: Tensor, rank: int = 0):
        Encoder.__init__(self)
        self._attach(store, new_to_orig, rank, gnn.num_entities)
        initial = gnn._parameters.pop("entity").detach()
        gnn.entity = None  # blocks bring their own input rows
        self.gnn = gnn
        self._write(initial)
        self._register_state_dict_hook(ShardedGNNEncoder._as_one_process)
        self._register_load_state_dict_pre_hook(self._from_one_process)

    @property
    def relation(self) -> Tensor:
        return self.gnn.relation

    @property
    def num_layers(self) -> int:
        return self.gnn.num_layers

    @staticmethod
    def _as_one_process(module, state, prefix, local_metadata):
        """The one-process encoder's keys: the GNN's own, and the gathered ``entity`` table."""
        inner = prefix + "gnn."
        for key in [k for k in state if k.startswith(inner)]:
            state[prefix + key[len(inner):]] = state.pop(key)
        state[prefix + "entity"] = module._entity_state()
        return state

    def _from_one_process(self, state, prefix, *args):
        self._take_entity(state, prefix)
        own = {name for name, _ in self.gnn.named_parameters()} | {name for name, _ in self.gnn.named_buffers()}
        for name in own:
            if prefix + name in state:
                state[prefix + "gnn." + name] = state.pop(prefix + name)

    def forward(self, graph=None, features: Optional[Tensor] = None,
                norms: Optional[Sequence[Tensor]] = None) -> Representations:
        if not isinstance(graph, (list, tuple)) or features is None:
            raise ValueError("a sharded GNN encodes sampled blocks with their input rows (--fanouts)")
        return self.gnn(graph, features, norms)

    def edge_norm(self, graph, in_degrees: Optional[Tensor] = None) -> Optional[Tensor]:
        return self.gnn.edge_norm(graph, in_degrees)

    def sparse_parameters(self) -> list:
        return []

    def extra_repr(self) -> str:
        return f"entities={self._num_entities} (sharded)"


class DistNeighborBatches(NeighborSampledBatches):
    """Neighbour-sampled blocks from the partitioned graph, with input rows from the store.

    Parameters
    ----------
    graph : dgl.distributed.DistGraph
        The partitioned training graph with inverse edges (``edata["relation"]`` in
        ``0..2R-1``), in the store's entity numbering.
    fanouts : sequence of int
        Neighbours per layer (``-1``: all).
    """

    def __init__(self, graph, fanouts: Sequence[int]):
        super().__init__(graph, fanouts)
        self.in_degrees = graph.in_degrees(torch.arange(graph.num_nodes()))

    def sample(self, hrt: Tensor, negatives: Tensor, target, generator: torch.Generator):
        input_nodes, pos, neg, blocks = super().sample(hrt, negatives, target, generator)
        relation = self.graph.edata["relation"]
        for block in blocks:  # DistGraph's samples carry the edge ids, not the edge features
            block.edata[dgl.ETYPE] = relation[block.edata[dgl.EID]].long()
        return input_nodes, pos, neg, blocks

    def features(self, encoder: Encoder, input_nodes: Tensor) -> Tensor:
        return encoder.entity_rows(input_nodes)
