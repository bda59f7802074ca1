"""KnowledgeGraph: id maps, unseen-entity policy, split reports, RotatE layout, DGL views, filter index."""
from __future__ import annotations

import gzip
import itertools

import dgl
import pytest
import torch

from dgl_emu.data import (DataFormatError, FilterIndex, KnowledgeGraph, SplitReport, UnseenEntityPolicy,
                          generate_cyclic_kg)
from dgl_emu.typing import Target

# A small hand-made KG.  Train covers a, b, c and r1, r2 (one duplicate line).
# valid: one clean triple, one with unseen entity d, one with unseen relation r3.
# test:  one clean triple, one with two unseen entities e, f, one with unseen d.
TRAIN = [("a", "r1", "b"), ("b", "r1", "c"), ("c", "r2", "a"), ("a", "r1", "b")]
VALID = [("a", "r1", "c"), ("d", "r1", "a"), ("b", "r3", "c")]
TEST = [("c", "r2", "b"), ("e", "r2", "f"), ("d", "r1", "b")]
SMALL = {"train": TRAIN, "valid": VALID, "test": TEST}


def _labelled(kg, split):
    ents, rels = kg.entity_labels, kg.relation_labels
    return [(ents[h], rels[r], ents[t]) for h, r, t in kg.splits[split].tolist()]


def _write_split(path, triples, crlf=False):
    nl = "\r\n" if crlf else "\n"
    path.write_text("".join(f"{h}\t{r}\t{t}{nl}" for h, r, t in triples), encoding="utf-8", newline="")


@pytest.fixture(scope="module")
def cyclic():
    return generate_cyclic_kg(num_rings=3, ring_size=6)


# ---------------------------------------------------------------------- id maps and sizes
def test_ids_follow_sorted_labels():
    kg = KnowledgeGraph.from_labeled_triples(
        {"train": [("zeta", "rel_b", "alpha"), ("mid", "rel_a", "zeta")], "test": [("alpha", "rel_b", "beta")]})
    assert kg.entity_to_id == {"alpha": 0, "beta": 1, "mid": 2, "zeta": 3}
    assert kg.relation_to_id == {"rel_a": 0, "rel_b": 1}
    assert kg.entity_labels == ["alpha", "beta", "mid", "zeta"]
    assert kg.relation_labels == ["rel_a", "rel_b"]
    assert kg.splits["train"].tolist() == [[3, 1, 0], [2, 0, 3]]
    assert kg.splits["test"].tolist() == [[0, 1, 1]]
    assert kg.splits["train"].dtype == torch.long
    assert kg.statistics() == {"entities": 4, "relations": 2, "train": 2, "test": 1}


def test_labels_are_strings_not_numbers():
    # WN18RR-style labels with leading zeros must stay distinct strings and sort as strings
    kg = KnowledgeGraph.from_labeled_triples({"train": [("010", "r", "9"), ("9", "r", "0010")]})
    assert kg.entity_labels == ["0010", "010", "9"]


def test_num_entities_not_inferred_from_max_id():
    kg = KnowledgeGraph.from_id_triples({"train": [[0, 0, 1], [1, 1, 2]], "test": [[2, 0, 0]]},
                                        num_entities=10, num_relations=3)
    assert kg.num_entities == 10 and kg.num_relations == 3
    assert kg.entity_labels == [str(i) for i in range(10)]
    assert kg.heterograph().num_nodes() == 10
    assert len(kg.heterograph().canonical_etypes) == 3
    assert kg.graph().num_nodes() == 10
    assert kg.filter_index().num_entities == 10


def test_from_id_triples_labels_and_validation():
    kg = KnowledgeGraph.from_id_triples({"train": torch.tensor([[0, 1, 2]])}, 3, 2,
                                        entity_labels=["x", "y", "z"], relation_labels=["p", "q"])
    assert kg.entity_to_id == {"x": 0, "y": 1, "z": 2} and kg.relation_to_id == {"p": 0, "q": 1}
    with pytest.raises(ValueError, match="label lists"):
        KnowledgeGraph.from_id_triples({"train": [[0, 0, 1]]}, 3, 1, entity_labels=["x", "y"])
    with pytest.raises(ValueError, match="outside"):
        KnowledgeGraph.from_id_triples({"train": [[0, 0, 3]]}, 3, 1)
    with pytest.raises(ValueError, match="outside"):
        KnowledgeGraph.from_id_triples({"train": [[0, 1, 2]]}, 3, 1)
    with pytest.raises(ValueError, match="train"):
        KnowledgeGraph.from_id_triples({"test": [[0, 0, 1]]}, 3, 1)


def test_from_id_triple_files(tmp_path):
    (tmp_path / "train.ids").write_text("0\t0\t1\n1\t1\t4\n")
    (tmp_path / "test.ids").write_text("0\t0\t1\n4\t2\t0\n")
    kg = KnowledgeGraph.from_id_triples({"train": tmp_path / "train.ids", "test": str(tmp_path / "test.ids")},
                                        num_entities=6, num_relations=3)
    assert kg.splits["train"].tolist() == [[0, 0, 1], [1, 1, 4]]
    assert kg.num_entities == 6
    with pytest.raises(DataFormatError) as ei:
        KnowledgeGraph.from_id_triples({"train": tmp_path / "train.ids", "test": tmp_path / "test.ids"},
                                       num_entities=6, num_relations=2)
    assert str(ei.value).startswith(f"{tmp_path / 'test.ids'}:2: ")


# ---------------------------------------------------------------------- unseen entities and reports
def test_keep_policy_reports_and_ids():
    kg = KnowledgeGraph.from_labeled_triples(SMALL)
    assert kg.entity_labels == ["a", "b", "c", "d", "e", "f"]
    assert kg.relation_labels == ["r1", "r2", "r3"]
    assert [kg.splits[s].shape[0] for s in ("train", "valid", "test")] == [4, 3, 3]
    assert _labelled(kg, "valid") == VALID and _labelled(kg, "test") == TEST
    assert _labelled(kg, "train") == TRAIN  # duplicates kept, order kept
    assert kg.reports["train"] == SplitReport(triples=4, duplicates=1)
    assert kg.reports["valid"] == SplitReport(triples=3, duplicates=0, unseen_entities=1, unseen_triples=2,
                                              dropped=0)
    assert kg.reports["test"] == SplitReport(triples=3, duplicates=0, unseen_entities=3, unseen_triples=2,
                                             dropped=0)


def test_drop_policy_removes_triples_and_orphaned_ids():
    kg = KnowledgeGraph.from_labeled_triples(SMALL, unseen=UnseenEntityPolicy.DROP)
    assert kg.entity_labels == ["a", "b", "c"]
    assert kg.relation_labels == ["r1", "r2"]  # r3 occurred only in a dropped triple
    assert _labelled(kg, "valid") == [("a", "r1", "c")]
    assert _labelled(kg, "test") == [("c", "r2", "b")]
    assert _labelled(kg, "train") == TRAIN
    assert kg.reports["valid"] == SplitReport(triples=3, duplicates=0, unseen_entities=1, unseen_triples=2,
                                              dropped=2)
    assert kg.reports["test"] == SplitReport(triples=3, duplicates=0, unseen_entities=3, unseen_triples=2,
                                             dropped=2)
    assert kg.reports["train"].dropped == 0


def test_duplicates_counted_per_split():
    splits = {"train": [("a", "r", "b")] * 3 + [("b", "r", "a")],
              "test": [("a", "r", "b"), ("a", "r", "b")]}  # a repeat of train is not a test duplicate twice
    kg = KnowledgeGraph.from_labeled_triples(splits)
    assert kg.reports["train"].duplicates == 2
    assert kg.reports["test"].duplicates == 1
    assert kg.splits["train"].shape[0] == 4


def test_directory_with_drop_policy_and_gzip(tmp_path):
    _write_split(tmp_path / "train.txt", TRAIN, crlf=True)
    with gzip.open(tmp_path / "valid.txt.gz", "wt", encoding="utf-8") as f:
        f.write("".join(f"{h}\t{r}\t{t}\n" for h, r, t in VALID))
    _write_split(tmp_path / "test.txt", TEST)
    kg = KnowledgeGraph.from_directory(tmp_path, unseen=UnseenEntityPolicy.DROP)
    assert kg.name == tmp_path.name
    assert kg.statistics() == {"entities": 3, "relations": 2, "train": 4, "valid": 1, "test": 1}
    keep = KnowledgeGraph.from_directory(tmp_path)
    assert keep.statistics() == {"entities": 6, "relations": 3, "train": 4, "valid": 3, "test": 3}


def test_directory_only_train_required(tmp_path):
    _write_split(tmp_path / "train.txt", TRAIN)
    kg = KnowledgeGraph.from_directory(tmp_path, name="tiny")
    assert set(kg.splits) == {"train"} and kg.name == "tiny"
    with pytest.raises(DataFormatError, match="does not exist"):
        KnowledgeGraph.from_directory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no train.txt") as ei:
        KnowledgeGraph.from_directory(tmp_path / "empty")
    assert str(ei.value).startswith(f"{tmp_path / 'empty'}: ")


# ---------------------------------------------------------------------- RotatE layout (.dict id maps)
def _rotate_dir(tmp_path, test_triples=None):
    (tmp_path / "entities.dict").write_text("0\tc\n1\ta\n2\tb\n3\tunused\n")
    (tmp_path / "relations.dict").write_text("0\tr2\n1\tr1\n")
    _write_split(tmp_path / "train.txt", [("a", "r1", "b"), ("b", "r2", "c")])
    _write_split(tmp_path / "valid.txt", [("c", "r1", "a")])
    _write_split(tmp_path / "test.txt", test_triples or [("b", "r1", "a")])
    return tmp_path


def test_rotate_dicts_fix_the_ids(tmp_path):
    kg = KnowledgeGraph.from_directory(_rotate_dir(tmp_path))
    assert kg.entity_to_id == {"c": 0, "a": 1, "b": 2, "unused": 3}
    assert kg.relation_to_id == {"r2": 0, "r1": 1}
    assert kg.num_entities == 4  # includes an entity that occurs in no split
    assert kg.splits["train"].tolist() == [[1, 1, 2], [2, 0, 0]]
    assert kg.splits["valid"].tolist() == [[0, 1, 1]]
    assert kg.splits["test"].tolist() == [[2, 1, 1]]


def test_rotate_unknown_entity_names_file_and_line(tmp_path):
    d = _rotate_dir(tmp_path, test_triples=[("b", "r1", "a"), ("a", "r2", "zz")])
    with pytest.raises(DataFormatError) as ei:
        KnowledgeGraph.from_directory(d)
    msg = str(ei.value)
    assert msg.startswith(f"{d / 'test.txt'}:2: ")
    assert "unknown entity 'zz'" in msg


def test_rotate_unknown_relation_names_file_and_line(tmp_path):
    d = _rotate_dir(tmp_path)
    _write_split(d / "train.txt", [("a", "r1", "b"), ("b", "r2", "c"), ("c", "r9", "a")])
    with pytest.raises(DataFormatError) as ei:
        KnowledgeGraph.from_directory(d)
    msg = str(ei.value)
    assert msg.startswith(f"{d / 'train.txt'}:3: ")
    assert "unknown relation 'r9'" in msg


# ---------------------------------------------------------------------- from_dgl
def test_from_dgl_heterograph():
    g = dgl.heterograph({("entity", "likes", "entity"): (torch.tensor([0, 1]), torch.tensor([1, 2])),
                         ("entity", "knows", "entity"): (torch.tensor([3]), torch.tensor([0]))},
                        num_nodes_dict={"entity": 6})
    kg = KnowledgeGraph.from_dgl(g, name="g")
    assert kg.num_entities == 6  # from the graph, not from the max id (3)
    assert sorted(kg.relation_labels) == ["knows", "likes"]
    got = sorted(_labelled(kg, "train"))
    assert got == sorted([("0", "likes", "1"), ("1", "likes", "2"), ("3", "knows", "0")])


def test_from_dgl_single_etype_heterograph_keeps_relation_name():
    g = dgl.heterograph({("entity", "likes", "entity"): (torch.tensor([0, 1]), torch.tensor([1, 2]))})
    kg = KnowledgeGraph.from_dgl(g)
    assert kg.relation_labels == ["likes"]
    assert kg.splits["train"].tolist() == [[0, 0, 1], [1, 0, 2]]


def test_from_dgl_tuple_and_homogeneous_graph():
    src, dst, et = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 0]), torch.tensor([1, 0, 2])
    kg = KnowledgeGraph.from_dgl((src, dst, et), splits={"test": torch.tensor([[1, 2, 4]])})
    assert kg.num_entities == 5 and kg.num_relations == 3
    assert kg.splits["train"].tolist() == [[0, 1, 1], [2, 0, 3], [4, 2, 0]]
    assert kg.splits["test"].tolist() == [[1, 2, 4]]
    g = dgl.graph((src, dst), num_nodes=7)
    g.edata[dgl.ETYPE] = et
    kg2 = KnowledgeGraph.from_dgl(g)
    assert kg2.num_entities == 7
    assert torch.equal(kg2.splits["train"], kg.splits["train"])
    plain = KnowledgeGraph.from_dgl(dgl.graph((src, dst)))
    assert plain.relation_labels == ["0"] and plain.splits["train"][:, 1].tolist() == [0, 0, 0]


def test_from_dgl_round_trip_of_heterograph(cyclic):
    kg = KnowledgeGraph.from_dgl(cyclic.heterograph())
    assert kg.num_entities == cyclic.num_entities
    assert sorted(kg.relation_labels) == sorted(cyclic.relation_labels)
    rel = cyclic.relation_labels
    back = kg.relation_labels
    assert sorted((h, rel[r], t) for h, r, t in cyclic.splits["train"].tolist()) == \
        sorted((h, back[r], t) for h, r, t in kg.splits["train"].tolist())


def test_from_dgl_rejects_several_node_types():
    g = dgl.heterograph({("user", "likes", "item"): (torch.tensor([0]), torch.tensor([0]))})
    with pytest.raises(ValueError, match="node type"):
        KnowledgeGraph.from_dgl(g)


# ---------------------------------------------------------------------- DGL views
def test_heterograph_one_etype_per_relation_including_empty():
    kg = KnowledgeGraph.from_labeled_triples(SMALL)  # r3 has no train edge
    g = kg.heterograph()
    assert g.ntypes == ["entity"]
    assert g.num_nodes("entity") == 6
    assert sorted(g.canonical_etypes) == [("entity", r, "entity") for r in ("r1", "r2", "r3")]
    assert g.num_edges(("entity", "r3", "entity")) == 0
    assert g.num_edges(("entity", "r1", "entity")) == 3  # duplicate kept
    assert g.num_edges() == 4
    assert g.edges[("entity", "r3", "entity")].data["relation"].shape == (0,)


def test_heterograph_edges_equal_train_split_per_relation(cyclic):
    g = cyclic.heterograph()
    train = cyclic.splits["train"]
    assert len(g.canonical_etypes) == cyclic.num_relations
    assert g.num_edges() == train.shape[0]
    assert g.num_nodes() == cyclic.num_entities
    for label, rid in cyclic.relation_to_id.items():
        cet = ("entity", label, "entity")
        src, dst = g.edges(etype=cet)
        got = sorted(zip(src.tolist(), dst.tolist()))
        want = sorted((h, t) for h, r, t in train.tolist() if r == rid)
        assert got == want and len(want) > 0
        rel = g.edges[cet].data["relation"]
        assert rel.dtype == torch.long and rel.tolist() == [rid] * len(want)


def test_heterograph_of_other_split(cyclic):
    g = cyclic.heterograph("test")
    assert g.num_edges() == cyclic.splits["test"].shape[0]
    assert len(g.canonical_etypes) == cyclic.num_relations


def test_graph_inverse_edges(cyclic):
    E, R = cyclic.num_entities, cyclic.num_relations
    train = cyclic.splits["train"]
    g = cyclic.graph("train", add_inverse=True)
    assert g.num_nodes() == E and g.num_edges() == 2 * train.shape[0]
    src, dst = g.edges()
    et = g.edata[dgl.ETYPE]
    got = sorted(zip(src.tolist(), et.tolist(), dst.tolist()))
    want = sorted([(h, r, t) for h, r, t in train.tolist()] + [(t, r + R, h) for h, r, t in train.tolist()])
    assert got == want
    assert int(et.min()) >= 0 and int(et.max()) <= 2 * R - 1
    plain = cyclic.graph("train", add_inverse=False)
    s, d = plain.edges()
    assert torch.equal(torch.stack([s, plain.edata[dgl.ETYPE], d], 1), train)


def test_train_graph_holds_no_valid_or_test_edge(cyclic):
    R = cyclic.num_relations
    g = cyclic.graph("train", add_inverse=True)
    src, dst = g.edges()
    edges = set(zip(src.tolist(), g.edata[dgl.ETYPE].tolist(), dst.tolist()))
    held_out = torch.cat([cyclic.splits["valid"], cyclic.splits["test"]]).tolist()
    assert len(held_out) > 0
    for h, r, t in held_out:
        assert (h, r, t) not in edges
        assert (t, r + R, h) not in edges
    hg = cyclic.heterograph("train")
    for h, r, t in held_out:
        assert not hg.has_edges_between(h, t, etype=("entity", cyclic.relation_labels[r], "entity"))


def test_small_kg_graph_matches_docstring():
    kg = KnowledgeGraph.from_labeled_triples({"train": [("a", "r", "b"), ("b", "r", "c")]})
    g = kg.graph()
    assert g.edges()[0].tolist() == [0, 1, 1, 2] and g.edges()[1].tolist() == [1, 2, 0, 1]
    assert g.edata[dgl.ETYPE].tolist() == [0, 0, 1, 1]


# ---------------------------------------------------------------------- filter index
def _brute_force(triples, E, R):
    known = set(map(tuple, triples.tolist()))
    tails = {(h, r): {t for (hh, rr, t) in known if hh == h and rr == r} for h in range(E) for r in range(R)}
    heads = {(r, t): {h for (h, rr, tt) in known if tt == t and rr == r} for t in range(E) for r in range(R)}
    return known, tails, heads


@pytest.mark.parametrize("splits", [("train", "valid", "test"), ("train",), ("valid", "test")])
def test_filter_index_matches_brute_force(cyclic, splits):
    E, R = cyclic.num_entities, cyclic.num_relations
    idx = cyclic.filter_index(splits)
    triples = torch.cat([cyclic.splits[s] for s in splits])
    known, tails, heads = _brute_force(triples, E, R)
    assert idx.num_triples == len(known)
    # every (anchor, relation) pair as a query; the target column is junk (must be ignored)
    anchors, rels = torch.meshgrid(torch.arange(E), torch.arange(R), indexing="ij")
    anchors, rels = anchors.reshape(-1), rels.reshape(-1)
    junk = torch.randint(0, E, anchors.shape, generator=torch.Generator().manual_seed(0))
    tail_q = torch.stack([anchors, rels, junk], 1)
    rows, cols = idx.known(tail_q, Target.TAIL)
    got = {}
    for i, c in zip(rows.tolist(), cols.tolist()):
        got.setdefault(i, []).append(c)
    for i, (h, r) in enumerate(zip(anchors.tolist(), rels.tolist())):
        assert sorted(got.get(i, [])) == sorted(tails[h, r])
        assert len(got.get(i, [])) == len(set(got.get(i, [])))  # no duplicate answers
    head_q = torch.stack([junk, rels, anchors], 1)
    rows, cols = idx.known(head_q, Target.HEAD)
    got = {}
    for i, c in zip(rows.tolist(), cols.tolist()):
        got.setdefault(i, []).append(c)
    for i, (t, r) in enumerate(zip(anchors.tolist(), rels.tolist())):
        assert sorted(got.get(i, [])) == sorted(heads[r, t])
    # contains() on every possible triple
    allt = torch.tensor(list(itertools.product(range(E), range(R), range(E))))
    want = torch.tensor([tuple(x) in known for x in allt.tolist()])
    assert torch.equal(idx.contains(allt), want)
    assert torch.equal(idx.contains(allt.reshape(E, R * E, 3)), want.reshape(E, R * E))


def test_filter_index_rows_are_sorted_by_query_and_handles_duplicates():
    idx = FilterIndex(torch.tensor([[0, 0, 2], [0, 0, 1], [0, 0, 2], [3, 1, 0]]), 4, 2)
    assert idx.num_triples == 3
    rows, cols = idx.known(torch.tensor([[3, 1, 0], [0, 0, 0], [0, 1, 0]]), Target.TAIL)
    assert rows.tolist() == [0, 1, 1] and cols.tolist() == [0, 1, 2]
    rows, cols = idx.known(torch.tensor([[0, 0, 2], [0, 0, 0]]), Target.HEAD)
    assert rows.tolist() == [0] and cols.tolist() == [0]


def test_filter_index_empty():
    kg = KnowledgeGraph.from_labeled_triples(SMALL)
    idx = kg.filter_index(())
    assert idx.num_triples == 0
    rows, cols = idx.known(torch.tensor([[0, 0, 1]]), Target.TAIL)
    assert rows.numel() == 0 and cols.numel() == 0
    assert idx.contains(torch.tensor([[0, 0, 1]])).tolist() == [False]


def test_filter_index_is_cached_per_split_set(cyclic):
    assert cyclic.filter_index() is cyclic.filter_index(("train", "valid", "test"))
    assert cyclic.filter_index(("train",)) is not cyclic.filter_index()
