"""The columnar readers (pyarrow) against the line-by-line reference readers: the same ids, splits,
reports and error messages on every registered dataset present, on a generated KG written as
labelled TSV, and on every kind of bad file."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from dgl_emu.data import (DATASETS, DataFormatError, KnowledgeGraph, UnseenEntityPolicy, generate_large_kg,
                          read_dict_file, read_id_triples, read_labeled_triples)
from dgl_emu.data.columnar import read_dictionary, read_triple_columns
from dgl_emu.data.datasets import dataset_files, is_present

SPLITS = ("train", "valid", "test")


def reference(paths, unseen=UnseenEntityPolicy.KEEP, entities=None, relations=None):
    """Today's reader: Python lists of label triples, ids from Python sets."""
    ent = read_dict_file(entities) if entities else None
    rel = read_dict_file(relations) if relations else None
    return KnowledgeGraph.from_labeled_triples({s: read_labeled_triples(p) for s, p in paths.items()},
                                               unseen=unseen, entity_to_id=ent, relation_to_id=rel,
                                               sources={s: str(p) for s, p in paths.items()})


def assert_same(new: KnowledgeGraph, old: KnowledgeGraph):
    assert new.entity_labels == old.entity_labels
    assert new.relation_labels == old.relation_labels
    assert dict(new.entity_to_id) == dict(old.entity_to_id)
    assert set(new.splits) == set(old.splits)
    for s in old.splits:
        assert new.splits[s].dtype == torch.long
        assert torch.equal(new.splits[s], old.splits[s]), s
    assert new.load_report() == old.load_report()


def _write(path, text):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _tsv(triples):
    return "".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples)


# ---------------------------------------------------------------------- equivalence on real data
@pytest.mark.parametrize("unseen", list(UnseenEntityPolicy))
@pytest.mark.parametrize("name", DATASETS.names())
def test_same_ids_as_reference_on_registered_dataset(shared_datasets, name, unseen):
    info = DATASETS.get(name)
    if info.format != "tsv":
        pytest.skip(f"{name} is not labelled TSV")
    if not is_present(name, shared_datasets):
        pytest.skip(f"{name} not in {shared_datasets}")
    files = dataset_files(name, shared_datasets)
    paths = {s: files[s] for s in SPLITS}
    new = KnowledgeGraph.from_files(paths["train"], paths["valid"], paths["test"], unseen=unseen)
    assert_same(new, reference(paths, unseen))
    if unseen is UnseenEntityPolicy.KEEP:
        assert new.statistics() == info.counts


@pytest.mark.parametrize("unseen", list(UnseenEntityPolicy))
def test_same_ids_as_reference_on_generated_kg(tmp_path, unseen):
    kg = generate_large_kg(3000, 12000, 17, num_valid=300, num_test=300, seed=3)
    labels = [f"Q{(i * 7919) % 3000}é" for i in range(3000)]  # labels whose order is not the ids'
    rels = [f"P{i}" for i in range(17)]
    paths = {}
    for s, t in kg.splits.items():
        rows = [(labels[h], rels[r], labels[t_]) for h, r, t_ in t.tolist()]
        if s != "train":  # entities and a relation that occur only outside training
            rows += [("only-eval", "P0", labels[0]), (labels[1], "P-eval", labels[2])]
        paths[s] = _write(tmp_path / f"{s}.txt", _tsv(rows))
    new = KnowledgeGraph.from_files(paths["train"], paths["valid"], paths["test"], unseen=unseen)
    old = reference(paths, unseen)
    assert_same(new, old)
    assert new.reports["valid"].unseen_triples == 2
    assert ("only-eval" in new.entity_to_id) == (unseen is UnseenEntityPolicy.KEEP)


def test_header_crlf_gzip_bom_duplicates(tmp_path):
    train = "\ufeffhead\trelation\ttail\r\nb\tr\ta\r\na\tr\tb\r\nb\tr\ta\r\nNew York\tin\t00012"
    _write(tmp_path / "train.txt", train)
    with gzip.open(tmp_path / "valid.txt.gz", "wb") as f:
        f.write(b"a\tr\tz\n")
    paths = {"train": tmp_path / "train.txt", "valid": tmp_path / "valid.txt.gz"}
    new = KnowledgeGraph.from_files(paths["train"], paths["valid"])
    assert_same(new, reference(paths))
    assert new.reports["train"].header == ["head", "relation", "tail"]
    assert new.reports["train"].duplicates == 1
    assert new.entity_labels == ["00012", "New York", "a", "b", "z"]


def test_column_order(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tb\tlikes\nb\tc\tlikes\n")  # DGL-KE's htr
    f = read_triple_columns(p, columns="htr")
    assert f.table.column_names == ["head", "relation", "tail"]
    assert f.table.column("relation").to_pylist() == ["likes", "likes"]
    assert f.table.column("tail").to_pylist() == ["b", "c"]
    with pytest.raises(ValueError, match="permutation|one of"):
        read_triple_columns(p, columns="hrr")


# ---------------------------------------------------------------------- every dictionary entity kept
def test_dictionary_keeps_entities_in_no_triple(tmp_path):
    _write(tmp_path / "train.txt", "a\tr\tb\n")
    _write(tmp_path / "test.txt", "b\tr\tc\n")
    _write(tmp_path / "entities.dict", "0\tc\n1\tisolated\n2\tb\n3\ta\n")
    _write(tmp_path / "relations.dict", "0\ts\n1\tr\n")
    kg = KnowledgeGraph.from_files(tmp_path / "train.txt", test=tmp_path / "test.txt",
                                   entities=tmp_path / "entities.dict", relations=tmp_path / "relations.dict")
    assert kg.entity_labels == ["c", "isolated", "b", "a"]  # the dictionary's ids, all four kept
    assert kg.relation_labels == ["s", "r"]
    assert kg.splits["train"].tolist() == [[3, 1, 2]]
    assert kg.splits["test"].tolist() == [[2, 1, 0]]
    old = reference({"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"},
                    entities=tmp_path / "entities.dict", relations=tmp_path / "relations.dict")
    assert_same(kg, old)


def test_eval_only_entities_kept_by_default(tmp_path):
    _write(tmp_path / "train.txt", "a\tr\tb\n")
    _write(tmp_path / "valid.txt", "a\tr\tonly-valid\n")
    _write(tmp_path / "test.txt", "only-test\tr\tb\n")
    kg = KnowledgeGraph.from_files(tmp_path / "train.txt", tmp_path / "valid.txt", tmp_path / "test.txt")
    assert kg.entity_labels == ["a", "b", "only-test", "only-valid"]
    assert kg.splits["valid"].tolist() == [[0, 0, 3]] and kg.splits["test"].tolist() == [[2, 0, 1]]


def test_unknown_label_names_file_and_line(tmp_path):
    _write(tmp_path / "train.txt", "head\trelation\ttail\na\tr\tb\nb\tr\tnew\n")
    _write(tmp_path / "entities.dict", "0\ta\n1\tb\n")
    with pytest.raises(DataFormatError) as new:
        KnowledgeGraph.from_files(tmp_path / "train.txt", entities=tmp_path / "entities.dict")
    assert str(new.value) == f"{tmp_path / 'train.txt'}:3: unknown entity 'new' (not in the entity id file)"


# ---------------------------------------------------------------------- bad files: the reference's words
BAD_TRIPLES = {
    "trailing space": "a\tr\tb\nb \tr\tc\n",
    "leading nbsp": "a\tr\tb\n\u00a0b\tr\tc\n",
    "em space at end": "a\tr\tb\nb\tr\tc\u2003\n",
    "missing field": "a\tr\tb\na\tr\n",
    "too many fields": "a\tr\tb\tc\n",
    "empty field": "a\tr\tb\nb\t\tc\n",
    "whitespace field": "a\tr\tb\nb\t \tc\n",
    "blank line": "a\tr\tb\n\nb\tr\tc\n",
    "final blank line": "a\tr\tb\n\n",
    "not UTF-8": b"a\tr\tb\n\xff\xfe\tr\ta\n",
    "surrogate": b"a\tr\tb\nx\xed\xa0\x80\tr\ta\n",
    "empty": "",
    "header only": "head\trelation\ttail\n",
    "lone CR": "a\tr\tb\rc\tr\td\n",
    "CR inside label": "a\tr\tb\na\rx\tr\tc\n",
    "CR CR LF": "a\tr\tb\r\r\n",
}


def assert_same_error(reference, reader, path) -> str:
    """Both readers refuse ``path`` with the same message; the message."""
    with pytest.raises(DataFormatError) as old:
        reference(path)
    with pytest.raises(DataFormatError) as new:
        reader(path)
    assert str(new.value) == str(old.value)
    return str(old.value)


@pytest.mark.parametrize("row", list(BAD_TRIPLES))
def test_bad_triple_file_same_error_as_reference(tmp_path, row):
    p = _write(tmp_path / "train.txt", BAD_TRIPLES[row])
    assert assert_same_error(read_labeled_triples, read_triple_columns, p).startswith(str(p))


def test_gzip_errors(tmp_path):
    bad = _write(tmp_path / "train.txt.gz", b"not gzip")
    with pytest.raises(DataFormatError, match="not a readable gzip"):
        read_triple_columns(bad)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_triple_columns(tmp_path / "missing.txt")


GOOD_IDS = "head_id\trelation_id\ttail_id\n0\t1\t2\n00\t0\t3\n"
BAD_IDS = {"plus": "0\t+1\t2\n", "underscore": "0\t1_0\t2\n", "negative": "0\t1\t-2\n",
           "arabic digit": "0\t\u0661\t2\n", "letter": "0\tx\t2\n", "space": "0\t1 \t2\n", "empty": ""}


def test_id_triples_same_as_reference(tmp_path):
    p = _write(tmp_path / "train.tsv", GOOD_IDS)
    f = read_triple_columns(p, ids=True)
    assert np.stack([f.table.column(c).to_numpy() for c in ("head", "relation", "tail")], 1).tolist() == \
        [list(t) for t in read_id_triples(p)] == [[0, 1, 2], [0, 0, 3]]
    assert f.header == ("head_id", "relation_id", "tail_id")


@pytest.mark.parametrize("row", list(BAD_IDS))
def test_bad_id_file_same_error_as_reference(tmp_path, row):
    p = _write(tmp_path / "train.tsv", BAD_IDS[row])
    assert_same_error(read_id_triples, lambda q: read_triple_columns(q, ids=True), p)


BAD_DICTS = {"duplicate label": "0\ta\n1\ta\n", "duplicate id": "0\ta\n0\tb\n", "gap": "0\ta\n2\tb\n",
             "not integer": "0\ta\nx\tb\n", "three fields": "0\ta\tb\n", "empty": "", "space": "0\ta \n"}


def test_dictionary_same_as_reference(tmp_path):
    p = _write(tmp_path / "entities.dict", "2\tc\n0\ta b\n1\té\n")
    ref = read_dict_file(p)
    got = read_dictionary(p)
    assert dict(got) == ref and list(got) == ["a b", "é", "c"]


@pytest.mark.parametrize("row", list(BAD_DICTS))
def test_bad_dictionary_same_error_as_reference(tmp_path, row):
    p = _write(tmp_path / "entities.dict", BAD_DICTS[row])
    assert_same_error(read_dict_file, read_dictionary, p)


def test_one_dictionary_over_many_chunks_and_columns_is_the_sorted_labels():
    """The codes of columns given in several chunks each are positions in the sorted set of every
    label (Python's ``sorted`` on str, non-ASCII included), whatever the chunking."""
    import pyarrow as pa

    from dgl_emu.data.encoding import _sorted_codes
    heads = pa.chunked_array([["b", "é", "a"], ["zz", "b"], []], type=pa.string())
    tails = pa.chunked_array([["ä"], ["a", "c", "é", "B"]], type=pa.string())
    dictionary, (h, t) = _sorted_codes([heads, tails])
    labels = sorted(set(heads.to_pylist()) | set(tails.to_pylist()))
    assert dictionary.to_pylist() == labels
    assert [labels[i] for i in h] == heads.to_pylist() and [labels[i] for i in t] == tails.to_pylist()
    empty, codes = _sorted_codes([pa.chunked_array([], type=pa.string())])
    assert len(empty) == 0 and [len(c) for c in codes] == [0]
