"""The binary cache of parsed datasets: a hit gives the same graph without parsing, a changed file
is parsed again (and its old entry removed), entries appear atomically, and nothing dgl-emu did not
write is read, replaced or removed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgl_emu.data import KnowledgeGraph, load_dataset
from dgl_emu.data.cache import MARKER, cached_load, entries, remove_entry

TRAIN = "a\tr\tb\nb\tr\tc\nc\ts\ta\n"


class Parser:
    """``KnowledgeGraph.from_files`` counting its calls."""

    def __init__(self, path):
        self.path, self.calls = path, 0

    def __call__(self):
        self.calls += 1
        return KnowledgeGraph.from_files(self.path)


def _load(tmp_path, parse, root):
    return cached_load("labels", {"columns": "hrt"}, {"train": parse.path}, parse, name="kg", root=root)


def _same(a, b):
    assert a.entity_labels == b.entity_labels and a.relation_labels == b.relation_labels
    assert all(torch.equal(a.splits[s], b.splits[s]) for s in a.splits) and set(a.splits) == set(b.splits)
    assert a.load_report() == b.load_report()


def test_second_load_reads_the_cache(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    parse, root = Parser(tmp_path / "train.txt"), tmp_path / "cache"
    first = _load(tmp_path, parse, root)
    second = _load(tmp_path, parse, root)
    assert parse.calls == 1
    assert first.origin.startswith("parsed and cached in") and second.origin.startswith("read from the cache")
    _same(first, second)
    assert second.splits["train"].tolist() == [[0, 0, 1], [1, 0, 2], [2, 1, 0]]
    assert [p.name for p in root.iterdir()] == [entries(root)[0].path.name]  # no temporary folder left
    # copy-on-write mapping: changing the loaded ids leaves the cached file as it was
    second.splits["train"][0, 0] = 2
    assert np.load(entries(root)[0].path / "train.npy").tolist()[0] == [0, 0, 1]


def test_changed_file_is_parsed_again_and_replaces_its_entry(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text(TRAIN)
    parse, root = Parser(train), tmp_path / "cache"
    _load(tmp_path, parse, root)
    old = entries(root)[0].path
    train.write_text(TRAIN + "c\tr\td\n")
    kg = _load(tmp_path, parse, root)
    assert parse.calls == 2 and kg.num_entities == 4 and kg.origin.startswith("parsed")
    assert [e.path for e in entries(root)] != [old] and len(entries(root)) == 1 and not old.exists()
    assert _load(tmp_path, parse, root).num_entities == 4 and parse.calls == 2


def test_foreign_folder_is_never_touched(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    parse, root = Parser(tmp_path / "train.txt"), tmp_path / "cache"
    _load(tmp_path, parse, root)
    folder = entries(root)[0].path
    (folder / MARKER).write_text(json.dumps({"written_by": "someone else"}))
    (folder / "notes.txt").write_text("mine")
    kg = _load(tmp_path, parse, root)
    assert parse.calls == 2 and "not dgl-emu's" in kg.origin
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "train.npy").exists()
    assert not remove_entry(folder)  # not ours: nothing removed
    assert (folder / "train.npy").exists()


def test_remove_entry_removes_only_its_own_files(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    root = tmp_path / "cache"
    _load(tmp_path, Parser(tmp_path / "train.txt"), root)
    folder = entries(root)[0].path
    (folder / "extra.bin").write_bytes(b"x")
    assert not remove_entry(folder)  # the folder stays for the file dgl-emu did not write
    assert [p.name for p in folder.iterdir()] == ["extra.bin"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "train.txt").write_text(TRAIN)
    root = tmp_path / "cache"

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    kg = _load(tmp_path, Parser(tmp_path / "train.txt"), root)
    assert kg.num_entities == 3 and "not cached" in kg.origin
    assert list(root.iterdir()) == []


def test_registered_dataset_through_the_cache(shared_datasets, require_dataset, tmp_path, monkeypatch):
    require_dataset("umls")
    monkeypatch.setenv("DGL_EMU_CACHE", str(tmp_path))
    plain = load_dataset("umls", shared_datasets)
    parsed = load_dataset("umls", shared_datasets, cache=True)
    cached = load_dataset("umls", shared_datasets, cache=True)
    assert parsed.origin.startswith("parsed and cached") and cached.origin.startswith("read from the cache")
    _same(plain, cached)
    assert cached.name == "umls"


@pytest.mark.parametrize("labels", ["generated", "dict"])
def test_generated_and_dictionary_labels_round_trip(tmp_path, labels):
    from dgl_emu.data.inputs import InputFiles, load_input
    np.save(tmp_path / "train.npy", np.array([[0, 0, 1], [2, 1, 3]]))
    files = {"train": tmp_path / "train.npy"}
    if labels == "dict":
        (tmp_path / "e.dict").write_text("0\tw\n1\tx\n2\ty\n3\tz\n4\tlonely\n")
        files["entity_dict"] = tmp_path / "e.dict"
    inp = InputFiles({"train": files["train"]}, entities=files.get("entity_dict"),
                     num_entities=None if labels == "dict" else 5, num_relations=2)
    first = cached_load("arrays", {}, files, lambda: load_input("arrays", inp), name="g", root=tmp_path / "c")
    second = cached_load("arrays", {}, files, lambda: load_input("arrays", inp), name="g", root=tmp_path / "c")
    assert second.origin.startswith("read from the cache")
    _same(first, second)
    assert second.num_entities == 5
