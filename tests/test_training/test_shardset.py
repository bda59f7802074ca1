"""Shard sets in one process: two simulated processes write their rows, the writer commits, and
every reader gets the whole tables back exactly; damaged sets are refused, naming the file."""
from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch

from dgl_emu.training.checkpoint import CheckpointError, load_checkpoint, save_atomic
from dgl_emu.training.shardset import (MANIFEST, ShardedTables, ShardSet, commit, reference, references,
                                       remove_shard_folder, shard_folder, write_shard)

E, D = 11, 3
#: the rows of two processes: an uneven, interleaved split
OWN = [torch.tensor([7, 0, 3, 9, 4]), torch.tensor([1, 10, 2, 8, 6, 5])]


class Tables(ShardedTables):
    """Process ``rank``'s rows of whole in-memory tables."""

    def __init__(self, tables: dict, rank: int):
        self.tables, self.rank = tables, rank
        self.inside = False

    @contextlib.contextmanager
    def excluded(self):
        self.inside = True
        yield
        self.inside = False

    def ids(self):
        return OWN[self.rank]

    def shard(self, name):
        return self.tables[name][OWN[self.rank]]

    def describe(self):
        return {"partition": self.rank}

    def load(self, shards, names):
        for name in names:
            self.tables[name][OWN[self.rank]] = shards.rows(name, OWN[self.rank], prefer=self.rank)


def _tables(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"entity": torch.randn(E, D, generator=g), "entity.adagrad.0": torch.rand(E, D, generator=g)}


def _write(path, tables, step=30, names=("entity", "entity.adagrad.0")):
    state = {"model": {"encoder.entity": reference("entity"), "encoder.relation": torch.ones(2, D)},
             "optimizer": {"parts": [{}, {"store": [reference(n) for n in names if n != "entity"]}]}, "step": step}
    records = [write_shard(shard_folder(path, step), rank, Tables(tables, rank), references(state))
               for rank in range(2)]
    return commit(path, state, step, records, save_atomic)


def test_a_shard_set_assembles_to_the_whole_tables(tmp_path):
    tables = _tables()
    manifest = _write(tmp_path / "last.pt", tables)
    folder = tmp_path / "last.shards" / "step-000030"
    assert sorted(p.name for p in folder.iterdir()) == [
        MANIFEST, "rank-00000.entity.adagrad.0.npy", "rank-00000.entity.npy", "rank-00000.ids.npy",
        "rank-00001.entity.adagrad.0.npy", "rank-00001.entity.npy", "rank-00001.ids.npy"]
    assert json.loads((folder / MANIFEST).read_text()) == manifest
    assert manifest["tables"] == {"entity": {"shape": [E, D], "dtype": "float32"},
                                  "entity.adagrad.0": {"shape": [E, D], "dtype": "float32"}}
    assert [(s["rank"], s["partition"], s["rows"]) for s in manifest["shards"]] == [(0, 0, 5), (1, 1, 6)]
    assert manifest["shards"][1]["tables"]["entity"]["shape"] == [6, D]
    # each file is a plain .npy (no pickle) of the process's rows in its id order
    assert np.array_equal(np.load(folder / "rank-00001.ids.npy", allow_pickle=False), OWN[1].numpy())
    assert np.array_equal(np.load(folder / "rank-00001.entity.npy", allow_pickle=False), tables["entity"][OWN[1]])
    whole = load_checkpoint(tmp_path / "last.pt")
    assert "shards" not in whole and whole["step"] == 30
    assert torch.equal(whole["model"]["encoder.entity"], tables["entity"])
    assert torch.equal(whole["optimizer"]["parts"][1]["store"][0], tables["entity.adagrad.0"])
    assert torch.equal(whole["model"]["encoder.relation"], torch.ones(2, D))


def test_each_process_reads_its_rows_back(tmp_path):
    tables = _tables()
    _write(tmp_path / "last.pt", tables)
    state = load_checkpoint(tmp_path / "last.pt", assemble=False)
    assert isinstance(state["shards"], ShardSet) and state["model"]["encoder.entity"] == reference("entity")
    restored = {name: torch.zeros(E, D) for name in tables}
    for rank in range(2):
        Tables(restored, rank).load(state["shards"], references([state["model"], state["optimizer"]]))
    assert all(torch.equal(restored[n], tables[n]) for n in tables)
    # rows of any ids, across the shards (another partitioning reads what it owns)
    ids = torch.tensor([5, 0, 10, 3])
    assert torch.equal(state["shards"].rows("entity", ids), tables["entity"][ids])


def test_a_process_with_the_same_rows_reads_only_its_own_files(tmp_path):
    tables = _tables()
    _write(tmp_path / "last.pt", tables)
    for name in ("rank-00001.ids.npy", "rank-00001.entity.npy"):  # another machine's disk
        (tmp_path / "last.shards" / "step-000030" / name).unlink()
    shards = load_checkpoint(tmp_path / "last.pt", assemble=False)["shards"]
    assert torch.equal(shards.rows("entity", OWN[0], prefer=0), tables["entity"][OWN[0]])
    with pytest.raises(Exception, match="rank-00001.ids.npy: missing"):
        shards.rows("entity", OWN[1], prefer=1)


def test_an_altered_or_missing_file_is_refused_naming_it(tmp_path):
    _write(tmp_path / "last.pt", _tables())
    path = tmp_path / "last.shards" / "step-000030" / "rank-00001.entity.npy"
    np.save(path, np.zeros((6, D), dtype=np.float32))
    with pytest.raises(CheckpointError, match="rank-00001.entity.npy: its SHA-256 differs"):
        load_checkpoint(tmp_path / "last.pt")
    path.unlink()
    with pytest.raises(CheckpointError, match="rank-00001.entity.npy: missing"):
        load_checkpoint(tmp_path / "last.pt")


def test_shards_that_do_not_cover_every_row_once_are_refused(tmp_path):
    tables = _tables()
    state = {"model": {"encoder.entity": reference("entity")}, "step": 1}
    records = [write_shard(shard_folder(tmp_path / "best.pt", 1), r, Tables(tables, 0), ["entity"]) for r in range(2)]
    commit(tmp_path / "best.pt", state, 1, records, save_atomic)  # both wrote rank 0's rows
    with pytest.raises(CheckpointError, match="times, not once"):
        load_checkpoint(tmp_path / "best.pt")


def test_a_new_checkpoint_removes_the_older_step_folders_and_only_dgl_emus_files(tmp_path):
    path = tmp_path / "last.pt"
    _write(path, _tables(0), step=30)
    (tmp_path / "last.shards" / "step-000030" / "notes.txt").write_text("mine")
    _write(path, _tables(1), step=60)
    assert sorted(p.name for p in (tmp_path / "last.shards").iterdir()) == ["step-000030", "step-000060"]
    assert [p.name for p in (tmp_path / "last.shards" / "step-000030").iterdir()] == ["notes.txt"]
    (tmp_path / "last.shards" / "step-000030" / "notes.txt").unlink()
    _write(path, _tables(2), step=90)
    assert [p.name for p in (tmp_path / "last.shards").iterdir()] == ["step-000090"]
    assert torch.equal(load_checkpoint(path)["model"]["encoder.entity"], _tables(2)["entity"])
    (tmp_path / "last.shards" / "keep.txt").write_text("mine")
    assert not remove_shard_folder(tmp_path / "last.shards")
    assert [p.name for p in (tmp_path / "last.shards").iterdir()] == ["keep.txt"]


def test_a_killed_commit_leaves_the_previous_checkpoint_whole(tmp_path):
    """Shards of step 60 written, the process killed before the commit: ``last.pt`` still
    refers to step 30, whose files are all there."""
    path = tmp_path / "last.pt"
    _write(path, _tables(0), step=30)
    write_shard(shard_folder(path, 60), 0, Tables(_tables(1), 0), ["entity"])
    state = load_checkpoint(path)
    assert state["step"] == 30 and torch.equal(state["model"]["encoder.entity"], _tables(0)["entity"])


def test_a_fresh_run_removes_the_previous_runs_shard_sets_but_no_foreign_file(tmp_path):
    """``--fresh`` deletes the previous run once the new one has a checkpoint: its shard sets go
    file by file, and a file dgl-emu did not write inside them stays (with its folders)."""
    from dgl_emu.config import RunConfig
    from dgl_emu.pipeline.rundir import RunDirectory, owned
    out = tmp_path / "run"
    cfg = RunConfig(model="distmult", dim=8, steps=2, output=str(out), progress=False)
    rundir = RunDirectory(out)
    rundir.prepare(cfg, fresh=False)
    _write(out / "last.pt", _tables())
    (out / "last.shards" / "step-000030" / "notes.txt").write_text("mine")
    rundir.release()
    assert owned("last.shards") and owned("best.shards")
    rundir = RunDirectory(out)
    assert rundir.prepare(cfg, fresh=True) == "aside"
    rundir.checkpoint_written()
    rundir.release()
    aside = tmp_path / ".run.previous"
    assert sorted(str(p.relative_to(aside)) for p in aside.rglob("*")) == [
        "last.shards", "last.shards/step-000030", "last.shards/step-000030/notes.txt"]
