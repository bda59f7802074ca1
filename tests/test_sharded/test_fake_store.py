"""ShardedEncoder in-process against a fake of the parts of ``dgl.distributed.DistEmbedding`` it uses:
no server, no process group (``torch.distributed`` is not initialised, so the encoder does not
wait at barriers). The store holds the entity rows in its own numbering; ``new_to_orig`` maps
them back to the dataset's."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from dgl_emu.models import KGEModel
from dgl_emu.nn.encoders import LookupEncoder
from dgl_emu.nn.encoders.base import Representations
from dgl_emu.nn.interactions import DistMult
from dgl_emu.sharded.encoder import ShardedEncoder
from dgl_emu.typing import Target

E, R, DIM, SEED = 7, 3, 4, 11
#: the dataset's id of each store row: a permutation without a fixed point
NEW_TO_ORIG = torch.tensor([3, 6, 0, 5, 1, 4, 2])
#: the store's id of each dataset entity
ORIG_TO_NEW = torch.argsort(NEW_TO_ORIG)
KIND = "node~_N"


class FakeBook:
    """Two partitions, each a contiguous range of store ids."""

    ranges = [(0, 4), (4, E)]

    def num_partitions(self):
        return len(self.ranges)

    def partid2nids(self, part, kind):
        assert kind == KIND
        return torch.arange(*self.ranges[part])


class FakePolicy:
    type_name = KIND
    partition_book = FakeBook()


class FakeTensor:
    """``DistTensor``: rows read and written by id tensors; ``data`` is what the servers hold."""

    def __init__(self, rows, dim):
        self.data = torch.zeros(rows, dim)  # the servers' zeros_init
        self.part_policy = FakePolicy()

    def __getitem__(self, ids):
        return self.data[ids].clone()

    def __setitem__(self, ids, values):
        self.data[ids] = values


class FakeStore:
    """``DistEmbedding``: calling it pulls rows of store ids."""

    name = "entity"

    def __init__(self, rows, dim):
        self._tensor = FakeTensor(rows, dim)

    def __call__(self, ids, device=torch.device("cpu")):
        return self._tensor[ids].to(device)


@pytest.fixture(autouse=True)
def _no_process_group():
    assert not (dist.is_available() and dist.is_initialized())


def _generator(seed=SEED):
    return torch.Generator().manual_seed(seed)


def _sharded(interaction, rank=0, seed=SEED):
    store = FakeStore(E, interaction.entity_dim)
    return ShardedEncoder(E, R, interaction, store, NEW_TO_ORIG, _generator(seed), rank), store


def _lookup(interaction, seed=SEED, sparse=None):
    return LookupEncoder(E, R, interaction, _generator(seed), sparse=sparse)


def test_the_fake_permutation_is_not_the_identity():
    assert sorted(NEW_TO_ORIG.tolist()) == list(range(E))
    assert not torch.equal(NEW_TO_ORIG, torch.arange(E))
    assert torch.equal(NEW_TO_ORIG[ORIG_TO_NEW], torch.arange(E))


def test_initial_rows_are_the_lookup_encoders_draws_in_the_stores_numbering():
    interaction = DistMult(dim=DIM)
    enc, store = _sharded(interaction)
    local = _lookup(interaction)
    raw = store._tensor.data
    assert raw.shape == (E, DIM)
    back = torch.empty_like(raw)
    back[NEW_TO_ORIG] = raw  # store row i is dataset entity NEW_TO_ORIG[i]
    assert torch.equal(back, local.entity.detach())
    assert not torch.equal(raw, local.entity.detach())  # the numbering matters
    assert torch.equal(enc.relation.detach(), local.relation.detach())
    assert torch.equal(enc.entity_table(), local.entity.detach())
    assert enc.num_entities == E and enc.sparse and enc.sparse_parameters() == [enc.relation]


def test_a_trainer_other_than_rank_0_draws_alike_and_writes_nothing():
    interaction = DistMult(dim=DIM)
    enc, store = _sharded(interaction, rank=1)
    assert torch.equal(store._tensor.data, torch.zeros(E, DIM))
    assert torch.equal(enc.relation.detach(), _lookup(interaction).relation.detach())
    enc.load_state_dict(_lookup(interaction, seed=5).state_dict())
    assert torch.equal(store._tensor.data, torch.zeros(E, DIM))


def test_state_dict_has_the_lookup_encoders_keys_and_values():
    interaction = DistMult(dim=DIM)
    enc, _ = _sharded(interaction)
    local = _lookup(interaction)
    state, expected = enc.state_dict(), local.state_dict()
    assert sorted(state) == sorted(expected) == ["entity", "relation"]
    for key in expected:
        assert torch.equal(state[key], expected[key]), key
    # the whole model's checkpoint loads into a one-process model (as sharded evaluation does)
    one = KGEModel(_lookup(interaction, seed=5), interaction)
    one.load_state_dict(KGEModel(enc, interaction).state_dict())
    assert torch.equal(one.encoder.entity.detach(), local.entity.detach())
    assert torch.equal(one.encoder.relation.detach(), local.relation.detach())


def test_load_state_dict_writes_the_entity_table_into_the_store_in_its_numbering():
    interaction = DistMult(dim=DIM)
    enc, store = _sharded(interaction)
    other = _lookup(interaction, seed=SEED + 1)
    state = other.state_dict()
    assert not torch.equal(state["entity"], enc.entity_table())
    enc.load_state_dict(state)  # strict: every key is taken
    assert "entity" in state  # the caller's checkpoint keeps its entity table
    assert torch.equal(store._tensor.data, other.entity.detach()[NEW_TO_ORIG])
    assert torch.equal(store._tensor.data[ORIG_TO_NEW], other.entity.detach())
    assert torch.equal(enc.relation.detach(), other.relation.detach())
    assert torch.equal(enc.state_dict()["entity"], other.entity.detach())
    # through a KGEModel: the hooks see the prefix
    third = _lookup(interaction, seed=SEED + 2)
    KGEModel(enc, interaction).load_state_dict(KGEModel(third, interaction).state_dict())
    assert torch.equal(store._tensor.data, third.entity.detach()[NEW_TO_ORIG])


def test_entity_rows_are_the_store_rows_of_store_ids():
    interaction = DistMult(dim=DIM)
    enc, store = _sharded(interaction)
    local = _lookup(interaction)
    unique = torch.tensor([0, 2, 5, 6])
    rows = enc.entity_rows(unique)
    assert torch.equal(rows, store._tensor.data[unique])
    assert torch.equal(rows, local.entity.detach()[NEW_TO_ORIG[unique]])
    reps = enc()
    assert reps.entity is None and reps.relation is enc.relation
    with pytest.raises(ValueError, match="regularizer: lp"):
        enc.tables()


#: a batch in the dataset's numbering: (h, r, t) and K = 3 negatives per positive
HRT = torch.tensor([[0, 0, 1], [3, 2, 6], [5, 1, 5], [2, 1, 4]])
NEGATIVES = torch.tensor([[2, 3, 6], [0, 0, 4], [1, 6, 3], [5, 2, 0]])


def _to_store(hrt):
    return torch.stack([ORIG_TO_NEW[hrt[:, 0]], hrt[:, 1], ORIG_TO_NEW[hrt[:, 2]]], 1)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
def test_the_sharded_batch_path_scores_as_the_one_process_model(target, sparse):
    """Training: the sharded model gathers the batch's rows from the store (store ids); the
    one-process model looks the same triples up in its table (dataset ids)."""
    interaction = DistMult(dim=DIM)
    sharded = KGEModel(_sharded(interaction)[0], interaction)
    local = KGEModel(_lookup(interaction, sparse=sparse), interaction)
    assert local.encoder.sparse is sparse
    expected = local.score_plain(local.gather(local.encode(), HRT, NEGATIVES, target), target)
    got = sharded.score_plain(sharded.gather(sharded.encode(), _to_store(HRT), ORIG_TO_NEW[NEGATIVES], target),
                              target)
    assert got.shape == (4, 4)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # column 0 is the positive triple's score (a head query multiplies in another order: rounding)
    torch.testing.assert_close(got[:, 0], local.score_hrt(local.encode(), HRT))


@pytest.mark.parametrize("target", [Target.HEAD, Target.TAIL])
def test_the_gathered_table_scores_every_entity_as_the_one_process_model(target):
    """Evaluation: the entity table gathered from the shards, in the dataset's numbering."""
    interaction = DistMult(dim=DIM)
    enc, _ = _sharded(interaction)
    sharded, local = KGEModel(enc, interaction), KGEModel(_lookup(interaction), interaction)
    reps = Representations(enc.entity_table(), enc.relation)
    with torch.no_grad():
        got = sharded.score_all(reps, HRT, target)
        expected = local.score_all(local.encode(), HRT, target)
    assert got.shape == (4, E)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(sharded.score_hrt(reps, HRT), local.score_hrt(local.encode(), HRT), rtol=0, atol=0)


def test_a_checkpoint_shard_set_holds_each_trainers_rows_and_assembles_to_the_gathered_table(tmp_path):
    """Two trainers, each with its partition's store rows (``FakeBook``): inside ``excluded`` the
    model's state refers to the table instead of gathering it; their shards, committed, read in
    one process give the gathered table, and read back by each trainer into another store give
    the same store rows."""
    from dgl_emu.sharded.checkpoint import StoreTables
    from dgl_emu.training.checkpoint import load_checkpoint, save_atomic
    from dgl_emu.training.shardset import commit, reference, references, shard_folder, write_shard
    interaction = DistMult(dim=DIM)
    enc, store = _sharded(interaction)
    model = KGEModel(enc, interaction)
    trainers = [StoreTables(enc, torch.arange(*FakeBook.ranges[r]), r, r) for r in range(2)]
    assert torch.equal(trainers[1].ids(), NEW_TO_ORIG[4:])
    with trainers[0].excluded():
        state = {"model": model.state_dict(), "step": 5}
    assert state["model"]["encoder.entity"] == reference("entity") and not enc.references
    assert torch.equal(state["model"]["encoder.relation"], enc.relation.detach())
    path = tmp_path / "best.pt"
    records = [write_shard(shard_folder(path, 5), r, t, references(state)) for r, t in enumerate(trainers)]
    assert [r["rows"] for r in records] == [4, 3]
    commit(path, state, 5, records, save_atomic)
    whole = load_checkpoint(path)
    assert torch.equal(whole["model"]["encoder.entity"], enc.entity_table())
    assert torch.equal(whole["model"]["encoder.entity"], _lookup(interaction).entity.detach())
    one = KGEModel(_lookup(interaction, seed=5), interaction)
    one.load_state_dict(whole["model"])  # a one-process model takes it
    assert torch.equal(one.encoder.entity.detach(), enc.entity_table())
    other, other_store = _sharded(interaction, seed=SEED + 3)
    assert not torch.equal(other_store._tensor.data, store._tensor.data)
    read = load_checkpoint(path, assemble=False)
    KGEModel(other, interaction).load_state_dict(read["model"])  # the reference is not written
    assert not torch.equal(other_store._tensor.data, store._tensor.data)
    for r in range(2):
        StoreTables(other, torch.arange(*FakeBook.ranges[r]), r, r).load(read["shards"], ["entity"])
    assert torch.equal(other_store._tensor.data, store._tensor.data)
