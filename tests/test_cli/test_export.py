"""``dgl-emu export`` and :class:`~dgl_emu.pipeline.TrainedRun`: a run's embeddings without its checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dgl_emu.pipeline import TrainedRun, load_run
from dgl_emu.training import load_checkpoint

from .clihelp import TINY, invoke


@pytest.fixture(scope="module")
def exported(base_run, tmp_path_factory):
    run_dir, _ = base_run
    out = tmp_path_factory.mktemp("export") / "emb"
    result = invoke("export", run_dir, "--output", out, "--format", "npy", "--format", "tsv", "--format", "parquet")
    assert result.exit_code == 0, result.output
    return run_dir, out, result


def test_tables_are_the_best_checkpoints_rows_in_id_order(exported):
    run_dir, out, result = exported
    best = load_checkpoint(run_dir / "best.pt")["model"]
    entities, relations = np.load(out / "entities.npy"), np.load(out / "relations.npy")
    assert np.array_equal(entities, best["encoder.entity"].numpy())
    assert np.array_equal(relations, best["encoder.relation"].numpy())
    _, kg, _, _ = load_run(run_dir)
    ids = [line.split("\t") for line in (out / "entities.tsv").read_text().splitlines()]
    assert [(int(i), label) for i, label in ids] == sorted((i, label) for label, i in kg.entity_to_id.items())
    rel = [line.split("\t") for line in (out / "relations.tsv").read_text().splitlines()]
    assert [label for _, label in rel] == kg.relation_labels
    emb = (out / "entities.emb.tsv").read_text().splitlines()
    label, *values = emb[5].split("\t")
    assert label == kg.entity_labels[5] and np.allclose([float(v) for v in values], entities[5], rtol=1e-7)
    table = pq.read_table(out / "entities.parquet").to_pydict()
    assert table["id"][:3] == [0, 1, 2] and table["label"][7] == kg.entity_labels[7]
    assert np.array_equal(np.asarray(table["embedding"][7], dtype=np.float32), entities[7])
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["entities"] == list(entities.shape) and manifest["formats"] == ["npy", "tsv", "parquet"]
    assert set(manifest["files"]) == {p.name for p in out.iterdir()}
    assert result.output.splitlines()[-1] == str(out / "export.json")


def test_an_export_overwrites_its_own_files_and_no_others(exported, tmp_path):
    run_dir, out, _ = exported
    again = invoke("export", run_dir, "--output", out)        # npy only now: its own files
    assert again.exit_code == 0, again.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "entities.npy").write_bytes(b"a user's file")
    refused = invoke("export", run_dir, "--output", foreign)
    assert refused.exit_code == 2
    assert "holds entities.npy, which no dgl-emu export wrote" in refused.output
    assert (foreign / "entities.npy").read_bytes() == b"a user's file"
    assert invoke("export", run_dir, "--format", "hdf5").exit_code == 2


def test_trained_run_scores_and_predicts_as_the_model_and_the_cli(base_run):
    run_dir, _ = base_run
    trained = TrainedRun.load(run_dir)
    _, kg, model, _ = load_run(run_dir)
    hrt = kg.splits["test"][:7]
    with torch.no_grad():
        assert torch.equal(trained.score(hrt), model.score_hrt(model.encode(), hrt))
    labelled = [(kg.entity_labels[h], kg.relation_labels[r], kg.entity_labels[t]) for h, r, t in hrt.tolist()]
    assert torch.equal(trained.score(labelled), trained.score(hrt))
    head, relation = labelled[0][0], labelled[0][1]
    cli = invoke("predict", run_dir, "--head", head, "--relation", relation, "--top-k", "5", "--json")
    assert cli.exit_code == 0, cli.output
    want = json.loads(cli.output)
    got = trained.predict(head=head, relation=relation, k=5)
    assert [(p["rank"], p["entity"]) for p in got] == [(p["rank"], p["entity"]) for p in want]
    assert [p["score"] for p in got] == pytest.approx([p["score"] for p in want], rel=1e-6)
    with pytest.raises(KeyError, match="unknown entity 'nobody'"):
        trained.score([("nobody", relation, head)])


def test_export_of_a_sparse_run(tmp_path):
    run_dir = tmp_path / "sparse"
    result = invoke("run", *TINY, "--set", "encoder.sparse=true", "--output", run_dir)
    assert result.exit_code == 0, result.output
    assert invoke("export", run_dir).exit_code == 0
    best = load_checkpoint(run_dir / "best.pt")["model"]
    assert np.array_equal(np.load(run_dir / "export" / "entities.npy"), best["encoder.entity"].numpy())
