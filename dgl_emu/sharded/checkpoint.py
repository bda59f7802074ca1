"""What a sharded trainer writes into a checkpoint: its own rows of the entity store.

Each trainer's checkpoint shard (:mod:`dgl_emu.training.shardset`) holds the rows it ranks
against in evaluation (:meth:`~dgl_emu.sharded.ShardedPlacement.own_rows`: its share of its
machine's partition, every row once over the trainers) of the entity table and of the store
optimiser's state, in the dataset's numbering, so no trainer gathers the table. Resuming, every
trainer reads the rows it owns from the set (its own files when the partitioning is the same)
and writes them into the store; a reader in one process assembles the tables.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.distributed as dist

from ..training.shardset import ShardedTables, ShardSet
from ..typing import Tensor
from .encoder import ShardedEncoder, pull_rows, push_rows

__all__ = ["StoreTables"]


class StoreTables(ShardedTables):
    """The entity store's tables, as one trainer holds them in a checkpoint.

    Parameters
    ----------
    encoder : ShardedEncoder
        The store's encoder (its row optimisers hold the optimiser state).
    own : Tensor
        ``(n,)`` the store ids of this trainer's rows (distinct; the trainers' together: every
        row once).
    rank : int
        This trainer's rank.
    partition : int
        Its machine's partition (recorded in the manifest).
    """

    def __init__(self, encoder: ShardedEncoder, own: Tensor, rank: int, partition: int):
        self.encoder, self.own, self.rank, self.partition = encoder, own.to(torch.long), rank, partition

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        """References in the place of the store's tables in state dicts, within."""
        self.encoder.references = True
        try:
            yield
        finally:
            self.encoder.references = False

    def ids(self) -> Tensor:
        """``(n,)`` the dataset's entity ids of this trainer's rows."""
        return self.encoder.new_to_orig[self.own]

    def _tensor(self, name: str):
        """The ``DistTensor`` of the table ``name`` (``entity`` or ``entity.KIND.i``)."""
        if name == ShardedEncoder.TABLE:
            return self.encoder.store._tensor
        for optimizer in self.encoder._row_optimizers.values():
            if name in optimizer.names():
                return optimizer.tensors()[optimizer.names().index(name)]
        raise KeyError(f"the entity store has no table {name!r} (its optimiser is not built)")

    def shard(self, name: str) -> Tensor:
        """``(n, d)`` this trainer's rows of ``name``, pulled from its machine's server."""
        return pull_rows(self._tensor(name), self.own)

    def describe(self) -> dict:
        return {"partition": self.partition}

    def load(self, shards: ShardSet, names: Sequence[str]) -> None:
        """Every trainer writes its own rows of ``names`` from ``shards`` into the store (read from
        its own files when they hold exactly these rows); all wait."""
        ids = self.ids()
        for name in names:
            push_rows(self._tensor(name), self.own, shards.rows(name, ids, prefer=self.rank))
        if dist.is_initialized():
            dist.barrier()
