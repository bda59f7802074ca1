"""Entity embeddings sharded over DGL's key-value store (:class:`dgl.distributed.DistEmbedding`).

:class:`ShardedEncoder` is a lookup encoder whose entity table lives on the partitions' servers:
a step pulls the rows its batch touches (positives and negatives, each distinct row once), the
EMU layer mutates and the interaction scores them locally, and
:class:`dgl.distributed.optim.SparseAdagrad` (or ``SparseAdam`` after the published switch)
pushes the rows' updates back to the servers that own them. The relation table is an ordinary
parameter on every trainer, kept in step by averaging its gradients over the trainers.

In the store, entities are numbered the partition's way (DGL renumbers them so that each
partition's are contiguous); :meth:`ShardedEncoder.state_dict` gathers the shards into the
dataset's numbering, under the same keys as a :class:`~dgl_emu.nn.encoders.LookupEncoder`, so its
state loads into a one-process model. Checkpoints do not gather: while
:attr:`ShardedEncoder.references` is set (by :class:`~dgl_emu.sharded.checkpoint.StoreTables`),
the state holds a :func:`~dgl_emu.training.shardset.reference` in the place of the entity table
and of the store optimiser's state, and every trainer writes its own rows of them.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
from dgl.distributed.optim import SparseAdagrad, SparseAdam
from torch import nn

from ..nn.encoders.base import Encoder, Representations
from ..nn.interactions import Interaction
from ..training.shardset import reference
from ..typing import Tensor

__all__ = ["ShardedEncoder", "StoreOptimizer", "FixedSparseAdagrad", "GlobalBatchSparseAdam", "zeros_init",
           "CHUNK_ROWS", "pull_rows", "push_rows"]

#: rows moved to or from the store per request when whole tables are read or written
CHUNK_ROWS = 1 << 20


def zeros_init(shape, dtype):
    """The servers' initial rows (picklable: DGL sends it to the servers); rank 0 then writes
    the real initial values (:class:`ShardedEncoder`)."""
    return torch.zeros(shape, dtype=dtype)


def _pull(tensor, num_rows: int) -> Tensor:
    """Every row of a ``DistTensor``, in the store's numbering, pulled in chunks."""
    return pull_rows(tensor, torch.arange(num_rows))


def pull_rows(tensor, ids: Tensor) -> Tensor:
    """``(n, d)`` the rows ``ids (n,)`` (store numbering) of a ``DistTensor``, pulled in chunks."""
    if len(ids) == 0:
        return tensor[ids]
    return torch.cat([tensor[ids[s:s + CHUNK_ROWS]] for s in range(0, len(ids), CHUNK_ROWS)])


def _push(tensor, values: Tensor) -> None:
    """Write ``values`` (store numbering, every row) into a ``DistTensor`` (see :func:`push_rows`)."""
    push_rows(tensor, torch.arange(len(values)), values)


def push_rows(tensor, ids: Tensor, values: Tensor) -> None:
    """Write ``values (n, d)`` into the rows ``ids (n,)`` (store numbering) of a ``DistTensor``, in
    chunks, and return once every server has applied them.

    DGL sends a push to another machine's server without waiting; a pull from the same client
    travels the same connection and is served after it, so one row pulled from every partition
    is the receipt (the trainers' own updates need none: DGL routes each row's update to a
    trainer on the machine that stores it)."""
    for s in range(0, len(ids), CHUNK_ROWS):
        tensor[ids[s:s + CHUNK_ROWS]] = values[s:s + CHUNK_ROWS]
    book = tensor.part_policy.partition_book
    kind = tensor.part_policy.type_name
    firsts = [book.partid2nids(p, kind)[:1] for p in range(book.num_partitions())]
    tensor[torch.cat(firsts).long()]


class ShardedEncoder(Encoder):
    """Lookup tables with the entity table sharded over DGL's distributed key-value store.

    Parameters
    ----------
    num_entities, num_relations : int
        ``E`` and ``R``.
    interaction : Interaction
        Gives the embedding widths and the initialisation (the same draws as
        :class:`~dgl_emu.nn.encoders.LookupEncoder` with the same ``generator``).
    store : dgl.distributed.DistEmbedding
        ``(E, d)`` entity rows in the partitions' numbering.
    new_to_orig : Tensor
        ``(E,)`` the dataset's id of each store row.
    generator : torch.Generator, optional
        Initialisation randomness.
    rank : int
        This trainer's rank: rank 0 writes the initial rows and loaded checkpoints into the store.

    Notes
    -----
    Shapes: :meth:`entity_rows` maps ``(U,)`` store ids to ``(U, d)`` rows that record their
    gradient for the store's optimiser; ``relation`` is ``(R, d_r)``.
    """

    sparse = True

    def __init__(self, num_entities: int, num_relations: int, interaction: Interaction, store,
                 new_to_orig: Tensor, generator: Optional[torch.Generator] = None, rank: int = 0):
        super().__init__()
        self._attach(store, new_to_orig, rank, num_entities)
        initial = torch.empty(num_entities, interaction.entity_dim)
        interaction.init_entities_(initial, generator)  # the draws of a LookupEncoder, in this order
        self.relation = nn.Parameter(torch.empty(num_relations, interaction.relation_dim))
        interaction.init_relations_(self.relation, generator)
        self._write(initial)
        self._register_state_dict_hook(ShardedEncoder._add_entity)
        self._register_load_state_dict_pre_hook(self._take_entity)

    #: the entity table's name in a checkpoint's shard set (its optimiser's: ``entity.KIND.i``)
    TABLE = "entity"

    def _attach(self, store, new_to_orig: Tensor, rank: int, num_entities: int) -> None:
        self.store, self.rank = store, rank
        #: while true, state dicts hold references in the place of the store's tables (checkpoints)
        self.references = False
        self._row_optimizers: dict = {}
        self.register_buffer("new_to_orig", new_to_orig.to(torch.long), persistent=False)
        self._num_entities = int(num_entities)

    @property
    def num_entities(self) -> int:
        return self._num_entities

    def _write(self, table: Tensor) -> None:
        """Rank 0 writes ``table`` (the dataset's numbering) into the store; all ranks wait, before
        (every machine's server must know the tensor, which its own trainers register) and after."""
        if dist.is_initialized():
            dist.barrier()
        if self.rank == 0:
            _push(self.store._tensor, table[self.new_to_orig])
        if dist.is_initialized():
            dist.barrier()

    def entity_table(self) -> Tensor:
        """The whole ``(E, d)`` entity table, gathered from the shards, in the dataset's numbering."""
        rows = _pull(self.store._tensor, self._num_entities)
        table = torch.empty_like(rows)
        table[self.new_to_orig] = rows
        return table

    def _entity_state(self):
        """The entity table's value in a state dict: gathered, or a reference (see :attr:`references`)."""
        return reference(self.TABLE) if self.references else self.entity_table()

    @staticmethod
    def _add_entity(module, state, prefix, local_metadata):
        state[prefix + "entity"] = module._entity_state()
        return state

    def _take_entity(self, state, prefix, *args):
        table = state.pop(prefix + "entity", None)
        if isinstance(table, torch.Tensor):  # a reference: the trainers read their rows from the shard set
            self._write(table)

    def forward(self, graph=None, features: Optional[Tensor] = None, norms=None) -> Representations:
        return Representations(None, self.relation)

    def entity_rows(self, unique: Tensor) -> Tensor:
        """``(U, d)`` rows of the store ids ``unique``, pulled from their servers."""
        return self.store(unique)

    def sparse_parameters(self) -> list:
        return [self.relation]

    def tables(self) -> list:
        raise ValueError("a whole-table regulariser would pull every shard each step; use the batch "
                         "regulariser (regularizer: lp) with sharded embeddings")

    def row_optimizer(self, name: str, lr: float) -> "StoreOptimizer":
        """The store's optimiser for the phase optimiser ``name`` (``adagrad`` or ``adam``)."""
        kinds = {"adagrad": FixedSparseAdagrad, "adam": GlobalBatchSparseAdam}
        if name not in kinds:
            raise ValueError(f"sharded entity embeddings are trained with adagrad or adam (DGL's sparse "
                             f"optimisers), not {name}")
        if name not in self._row_optimizers:  # one per kind: its state tensors are named in the store
            self._row_optimizers[name] = StoreOptimizer(kinds[name]([self.store], lr=lr), self, name)
        optimizer = self._row_optimizers[name]
        optimizer.optimizer._lr = lr
        return optimizer

    def extra_repr(self) -> str:
        return f"entities={self._num_entities} (sharded), relations={self.relation.shape[0]}"


def _global_batch_gradient(idx: Tensor, grad: Tensor, world_size: int):
    """``(rows, values)``: each row's gradient of the global batch, from the rows ``idx (n,)`` and
    gradients ``grad (n, d)`` the trainers sent to this one.

    Every trainer's loss is the mean over its ``B / W`` positives, so the global batch's gradient
    of a row is the sum of the trainers' gradients divided by ``W``. (DGL divides by the number of
    trainers that sent the row instead, which makes a row drawn by one trainer take ``W`` times
    the step; with ``W = 1`` the two rules agree.)
    """
    rows, inverse = torch.unique(idx, return_inverse=True)
    values = torch.zeros(len(rows), grad.shape[1], dtype=grad.dtype).index_add_(0, inverse, grad)
    return rows, values / world_size


class FixedSparseAdagrad(SparseAdagrad):
    """:class:`dgl.distributed.optim.SparseAdagrad` with its state kept as the sum of squares, on
    the global batch's gradient (:func:`_global_batch_gradient`).

    DGL 1.1.3's ``SparseAdagrad.update`` stores ``sqrt(state) + eps`` back as the state when the
    state and the gradients are on the same device: ``grad_state.to("cpu")`` is then the same
    tensor, and the ``grad_state.sqrt_().add_(eps)`` that follows changes it in place before it
    is written back. On CPU every step after the first then divides by a far larger number than
    Adagrad's (measured here: sharded UMLS DistMult barely trained, test MRR 0.06 against 0.64
    for one process after 60 steps). This subclass keeps DGL's exchange of gradients (its
    ``step``) and redoes the row update as torch's Adagrad does it.
    """

    def update(self, idx, grad, emb):
        rows, values = _global_batch_gradient(idx, grad, self._world_size)
        state = self._state[emb.name][rows] + values * values
        self._state[emb.name][rows] = state
        emb._tensor[rows] -= self._lr * values / (state.sqrt() + self._eps)


class GlobalBatchSparseAdam(SparseAdam):
    """:class:`dgl.distributed.optim.SparseAdam` (lazy Adam) on the global batch's gradient
    (:func:`_global_batch_gradient`): each row arrives once, so DGL's own averaging is the
    identity."""

    def update(self, idx, grad, emb):
        rows, values = _global_batch_gradient(idx, grad, self._world_size)
        super().update(rows, values, emb)


class StoreOptimizer:
    """DGL's sparse optimiser of the entity store, shaped like a torch optimiser for the trainer
    (:class:`~dgl_emu.training.CombinedOptimizer`); its state is saved in the dataset's
    numbering, like the weights, or referred to by the names :meth:`names` in a shard set.

    Parameters
    ----------
    optimizer : dgl.distributed.optim.SparseAdagrad or SparseAdam
        Of ``encoder.store``.
    encoder : ShardedEncoder
        The store's encoder.
    kind : str
        The optimiser's name (``adagrad`` or ``adam``).
    """

    def __init__(self, optimizer, encoder: ShardedEncoder, kind: str = "adagrad"):
        self.optimizer, self.encoder, self.kind = optimizer, encoder, kind
        self.param_groups: list = []

    def tensors(self) -> tuple:
        """The optimiser's state tables, ``DistTensor`` s of ``(E, d)`` (Adagrad's sums; Adam's
        moments and step counts)."""
        state = self.optimizer._state[self.encoder.store.name]
        return state if isinstance(state, tuple) else (state,)

    def names(self) -> list:
        """The names of :meth:`tensors` in a checkpoint's shard set."""
        return [f"{ShardedEncoder.TABLE}.{self.kind}.{i}" for i in range(len(self.tensors()))]

    def step(self) -> None:
        """Push the traced rows' gradients to their owners and update them (a collective call)."""
        self.optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the rows traced so far (at the next :meth:`step`)."""
        self.optimizer.zero_grad()

    def state_dict(self) -> dict:
        """The optimiser's state tensors in the dataset's numbering (references while the
        encoder's :attr:`~ShardedEncoder.references` is set)."""
        if self.encoder.references:
            return {"store": [reference(name) for name in self.names()]}
        order = self.encoder.new_to_orig
        out = []
        for t in self.tensors():
            rows = _pull(t, self.encoder.num_entities)
            table = torch.empty_like(rows)
            table[order] = rows
            out.append(table)
        return {"store": out}

    def load_state_dict(self, state: dict) -> None:
        """Rank 0 writes the saved state back into the store (references: each trainer reads its
        rows from the shard set instead); all ranks wait."""
        if self.encoder.rank == 0:
            for t, table in zip(self.tensors(), state["store"], strict=True):
                if isinstance(table, torch.Tensor):
                    _push(t, table[self.encoder.new_to_orig])
        if dist.is_initialized():
            dist.barrier()
