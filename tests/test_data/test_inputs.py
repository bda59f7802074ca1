"""Input formats: DGL-KE's udd layout (id triples + dictionaries), the RotatE layout, OGB-style
arrays; every dictionary entity kept, counts never inferred, bad input named by file and line/row."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from dgl_emu.data import DataFormatError, UnseenEntityPolicy, generate_large_kg
from dgl_emu.data.inputs import INPUT_FORMATS, InputFiles, load_input


def _w(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_registry_names():
    assert INPUT_FORMATS.names() == ["labels", "ids", "arrays"]


def test_dglke_udd_layout_with_dictionaries_and_htr_order(tmp_path):
    ent = _w(tmp_path / "entities.dict", "0\tBerlin\n1\tGermany\n2\tParis\n3\tnowhere\n")
    rel = _w(tmp_path / "relations.dict", "0\tcapital_of\n1\tborders\n")
    train = _w(tmp_path / "train.tsv", "0\t1\t0\n2\t1\t1\n")  # head, tail, relation
    test = _w(tmp_path / "test.tsv", "1\t2\t1\n")
    kg = load_input("ids", InputFiles({"train": train, "test": test}, entities=ent, relations=rel, columns="htr"))
    assert kg.entity_labels == ["Berlin", "Germany", "Paris", "nowhere"]  # 'nowhere' is in no triple: kept
    assert kg.relation_labels == ["capital_of", "borders"]
    assert kg.splits["train"].tolist() == [[0, 0, 1], [2, 1, 1]]
    assert kg.splits["test"].tolist() == [[1, 1, 2]]
    assert kg.reports["test"].unseen_triples == 0 and kg.reports["test"].in_train == 0


def test_ids_with_counts_only(tmp_path):
    train = _w(tmp_path / "train.tsv", "h\tr\tt\n0\t0\t1\n0\t0\t1\n")
    kg = load_input("ids", InputFiles({"train": train}, num_entities=4, num_relations=1))
    assert (kg.num_entities, kg.num_relations) == (4, 1)
    assert kg.entity_labels == ["0", "1", "2", "3"]
    assert kg.reports["train"].duplicates == 1 and kg.reports["train"].header == ["h", "r", "t"]


def test_ids_out_of_range_names_file_and_line(tmp_path):
    train = _w(tmp_path / "train.tsv", "head\trelation\ttail\n0\t0\t1\n0\t0\t4\n")
    with pytest.raises(DataFormatError) as e:
        load_input("ids", InputFiles({"train": train}, num_entities=4, num_relations=1))
    assert str(e.value) == f"{train}:3: id out of range (E=4, R=1): [0, 0, 4]"


def test_count_must_match_dictionary(tmp_path):
    ent = _w(tmp_path / "e.dict", "0\ta\n1\tb\n")
    train = _w(tmp_path / "train.tsv", "0\t0\t1\n")
    with pytest.raises(DataFormatError, match="2 entity labels, but data.entities = 3"):
        load_input("ids", InputFiles({"train": train}, entities=ent, num_entities=3, num_relations=1))
    with pytest.raises(DataFormatError, match="number of relation ids is needed"):
        load_input("ids", InputFiles({"train": train}, entities=ent))


def test_rotate_layout_is_labels_with_dictionaries(tmp_path):
    ent = _w(tmp_path / "entities.dict", "0\tb\n1\ta\n2\tc\n")
    rel = _w(tmp_path / "relations.dict", "0\tr\n")
    train = _w(tmp_path / "train.txt", "a\tr\tb\n")
    kg = load_input("labels", InputFiles({"train": train}, entities=ent, relations=rel))
    assert kg.entity_labels == ["b", "a", "c"] and kg.splits["train"].tolist() == [[1, 0, 0]]


def test_npy_and_npz_give_the_same_graph_and_drop_policy(tmp_path):
    t = np.array([[0, 0, 1], [1, 1, 2], [2, 0, 0]])
    v = np.array([[0, 0, 2], [5, 0, 1]])  # entity 5 occurs in no training triple
    np.save(tmp_path / "train.npy", t)
    np.savez(tmp_path / "valid.npz", head=v[:, 0], relation=v[:, 1], tail=v[:, 2])
    files = InputFiles({"train": tmp_path / "train.npy", "valid": tmp_path / "valid.npz"}, num_entities=6,
                       num_relations=2)
    keep = load_input("arrays", files)
    drop = load_input("arrays", files, unseen=UnseenEntityPolicy.DROP)
    assert keep.splits["valid"].tolist() == v.tolist() and drop.splits["valid"].tolist() == [[0, 0, 2]]
    assert keep.num_entities == drop.num_entities == 6  # ids are given: none is removed
    assert drop.reports["valid"].dropped == 1 and keep.reports["valid"].unseen_entities == 1


@pytest.mark.parametrize("bad, needle", [
    (np.array([[0.0, 0.0, 1.0]]), "float64 values, expected integer ids"),
    (np.array([0, 0, 1]), "expected an (N, 3) array"),
    (np.array([[0, 0, 9]]), "row 0: id out of range (E=3, R=1): [0, 0, 9]"),
    (np.array([[0, -1, 1]]), "row 0: id out of range"),
])
def test_bad_arrays(tmp_path, bad, needle):
    np.save(tmp_path / "train.npy", bad)
    with pytest.raises(DataFormatError) as e:
        load_input("arrays", InputFiles({"train": tmp_path / "train.npy"}, num_entities=3, num_relations=1))
    assert needle in str(e.value) and str(tmp_path / "train.npy") in str(e.value)


def test_pickled_arrays_are_refused(tmp_path):
    np.save(tmp_path / "train.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "other.npy").write_bytes(pickle.dumps([1]))
    for name in ("train.npy", "other.npy"):
        with pytest.raises(DataFormatError, match="not a NumPy array file"):
            load_input("arrays", InputFiles({"train": tmp_path / name}, num_entities=3, num_relations=1))


def test_generate_command_writes_generate_large_kg(tmp_path):
    from dgl_emu.cli import main
    from click.testing import CliRunner
    result = CliRunner().invoke(main, ["datasets", "generate", str(tmp_path / "g"), "--entities", "500",
                                       "--relations", "7", "--seed", "3"])
    assert result.exit_code == 0, result.output
    kg = load_input("arrays", InputFiles({s: tmp_path / "g" / f"{s}.npy" for s in ("train", "valid", "test")},
                                         num_entities=500, num_relations=7))
    ref = generate_large_kg(500, 1000, 7, seed=3)
    assert all(torch.equal(kg.splits[s], ref.splits[s]) for s in ref.splits)
    again = CliRunner().invoke(main, ["datasets", "generate", str(tmp_path / "g"), "--entities", "5"])
    assert again.exit_code == 1 and "exists; nothing is overwritten" in again.output
