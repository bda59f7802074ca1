"""Shard-set checkpoints of a 2-partition sharded run on two simulated machines (two network
namespaces, one ``/dev/shm`` each, as in ``test_sharded.py``, whose helpers these tests use):
each trainer writes its own rows; one-process readers (``evaluate``, ``predict``, ``export``) give
what the gathered table gives; a run with a killed machine resumes to the uninterrupted result."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dgl_emu.training.checkpoint import load_checkpoint

from .test_sharded import _cli, partition_for_two_machines, run_two_machines, two_machines  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def _gathered_by_hand(run, name):
    """The whole entity table of ``run/NAME.pt``'s shard set, put together with numpy alone from
    its ``.npy`` files (the oracle: what rank 0 gathered into the checkpoint before shard sets)."""
    manifest = torch.load(run / f"{name}.pt", weights_only=True)["shards"]
    folder = run / manifest["folder"]
    table = np.full(manifest["tables"]["entity"]["shape"], np.nan, dtype=np.float32)
    seen = np.zeros(len(table), dtype=np.int64)
    for shard in manifest["shards"]:
        ids = np.load(folder / shard["ids"]["file"], allow_pickle=False)
        table[ids] = np.load(folder / shard["tables"]["entity"]["file"], allow_pickle=False)
        np.add.at(seen, ids, 1)
    assert (seen == 1).all()
    return manifest, table


def _as_gathered_run(run, out, table):
    """A copy of ``run`` whose ``best.pt`` is one file holding the whole ``table`` (the format
    that rank 0's gathering wrote), without the shard sets."""
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("*.shards", "last.pt", "export", "eval-*"))
    state = torch.load(run / "best.pt", weights_only=True)
    state.pop("shards")
    state["model"]["encoder.entity"] = torch.from_numpy(table)
    torch.save(state, out / "best.pt")


def test_a_two_machine_shard_set_reads_in_one_process_as_the_gathered_table(two_machines, tmp_path):  # noqa: F811
    """Each machine's trainer writes its partition's rows (best.pt: the entity table; last.pt: also
    its Adagrad sums). Read in one process, the set is the table assembled from the files by
    hand; ``evaluate`` ranks as the trainers ranked shard-wise, and ``evaluate``, ``predict`` and
    ``export`` of the run give exactly what they give for the same run with a gathered ``best.pt``."""
    part_config, ip = partition_for_two_machines(two_machines, tmp_path)
    run = tmp_path / "run"
    codes, texts = run_two_machines(two_machines, part_config, ip, run)
    assert codes == [0, 0], "\n".join(texts)
    manifest, table = _gathered_by_hand(run, "best")
    assert [(s["rank"], s["partition"]) for s in manifest["shards"]] == [(0, 0), (1, 1)]
    assert all(0 < s["rows"] < len(table) for s in manifest["shards"])
    assert list(manifest["tables"]) == ["entity"]
    last = torch.load(run / "last.pt", weights_only=True)
    assert "encoder.entity" in last["model"] and last["model"]["encoder.entity"] == {"shard_table": "entity"}
    assert sorted(last["shards"]["tables"]) == ["entity", "entity.adagrad.0"] and last["shards"]["step"] == 60
    assert sorted(p.name for p in (run / "last.shards").iterdir()) == ["step-000060"]  # step 30's removed
    assert torch.equal(load_checkpoint(run / "best.pt")["model"]["encoder.entity"], torch.from_numpy(table))

    gathered = tmp_path / "gathered"
    _as_gathered_run(run, gathered, table)
    results = {}
    for name, directory in (("sharded", run), ("gathered", gathered)):
        code, text = _cli(["evaluate", directory, "--split", "test"])
        assert code == 0, text
        code, text = _cli(["export", directory, "--output", tmp_path / f"export-{name}"])
        assert code == 0, text
        labels = (tmp_path / f"export-{name}" / "entities.tsv").read_text().splitlines()[0].split("\t")[1]
        relation = (tmp_path / f"export-{name}" / "relations.tsv").read_text().splitlines()[0].split("\t")[1]
        code, text = _cli(["predict", directory, "--head", labels, "--relation", relation, "--json"])
        assert code == 0, text
        results[name] = {"eval": json.loads((directory / "eval-test.json").read_text())["metrics"],
                         "predict": json.loads(text[text.index("["):])}
    assert results["sharded"] == results["gathered"]
    for kind in ("entities", "relations"):
        a, b = (np.load(tmp_path / f"export-{n}" / f"{kind}.npy") for n in ("sharded", "gathered"))
        assert a.dtype == np.float32 and np.array_equal(a, b)
    assert np.array_equal(np.load(tmp_path / "export-sharded" / "entities.npy"), table)
    ranked = json.loads((run / "metrics.json").read_text())["test"]["both"]["realistic"]
    again = results["sharded"]["eval"]["both"]["realistic"]
    assert again["mrr"] == pytest.approx(ranked["mrr"], abs=1e-9) and again["hits@10"] == ranked["hits@10"]


def test_a_run_with_a_killed_machine_resumes_to_the_uninterrupted_result(two_machines, tmp_path):  # noqa: F811
    """Machine 0's trainer is killed (SIGKILL) after step 40; the checkpoint of step 30 is a shard
    set, one file set per machine; the same commands on both machines resume at step 30, every
    trainer reading its own rows and Adagrad sums, and end with the uninterrupted run's metrics."""
    part_config, ip = partition_for_two_machines(two_machines, tmp_path)
    whole, split = tmp_path / "whole", tmp_path / "split"
    codes, texts = run_two_machines(two_machines, part_config, ip, whole)
    assert codes == [0, 0], "\n".join(texts)
    codes, texts = run_two_machines(two_machines, part_config, ip, split, signal_on=("SIGKILL@40", ""))
    assert codes[1] != 0 and codes[0] != 0 and not (split / "metrics.json").exists(), "\n".join(texts)
    last = torch.load(split / "last.pt", weights_only=True)
    assert last["step"] == 30 and last["shards"]["step"] == 30
    assert [s["rank"] for s in last["shards"]["shards"]] == [0, 1]
    codes, texts = run_two_machines(two_machines, part_config, ip, split)
    assert codes == [0, 0], "\n".join(texts)
    assert f"resumed {split} at step 30 of 60" in texts[0]
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, split))
    assert b["test"] == a["test"] and b["valid"] == a["valid"]
    assert torch.equal(load_checkpoint(split / "best.pt")["model"]["encoder.entity"],
                       load_checkpoint(whole / "best.pt")["model"]["encoder.entity"])
