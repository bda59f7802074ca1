"""YAGO3-10, Wikidata5M and ogbl-wikikg2: loaders on small fabricated files in their real formats,
downloads from fabricated archives, checksums recorded on first download; the generated large KG."""
from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from dgl_emu.data import (DATASETS, ChecksumError, generate_large_kg, load_dataset, verify)
from dgl_emu.data.download import download
from dgl_emu.typing import Target

TRIPLES = {"train": ["Q1\tP31\tQ5", "Q2\tP31\tQ5", "Q1\tP17\tQ2", "Q3\tP17\tQ2"],
           "valid": ["Q3\tP31\tQ5"], "test": ["Q2\tP17\tQ1"]}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Recorded checksums go to a cache of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _tar(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _serve(url_to_bytes):
    def fetch(url):
        if url not in url_to_bytes:
            raise OSError(f"404 {url}")
        return url_to_bytes[url]
    return fetch


@pytest.mark.parametrize("name", ["yago3-10", "wikidata5m"])
def test_labelled_archive_downloads_records_checksums_and_loads(tmp_path, name):
    info = DATASETS.get(name)
    members = {m: ("\n".join(TRIPLES[split]) + "\n").encode() for split, m in info.source["members"].items()}
    fetch = _serve({info.source["archive"]: _tar(members)})
    assert info.checksums == "recorded at first download"
    directory = download(name, tmp_path, fetch=fetch)
    kg = load_dataset(name, tmp_path)
    assert (kg.num_entities, kg.num_relations) == (4, 2)   # Q1, Q2, Q3, Q5; P31, P17
    assert {s: len(t) for s, t in kg.splits.items()} == {"train": 4, "valid": 1, "test": 1}
    # the first download's digests are recorded: a changed file no longer loads
    train = directory / next(iter(info.files["train"]))
    train.write_text(train.read_text() + "Q9\tP31\tQ5\n")
    with pytest.raises(ChecksumError, match="changed"):
        load_dataset(name, tmp_path)
    # and a download whose files differ from the recorded ones is refused
    members = {m: data + b"Q8\tP31\tQ5\n" for m, data in members.items()}
    with pytest.raises(ChecksumError, match="matches no registered checksum"):
        download(name, tmp_path, fetch=_serve({info.source["archive"]: _tar(members)}))


def _ogb_split(n, num_entities, num_relations, seed, negatives=False):
    rng = np.random.default_rng(seed)
    out = {"head": rng.integers(0, num_entities, n), "relation": rng.integers(0, num_relations, n),
           "tail": rng.integers(0, num_entities, n)}
    if negatives:
        out["head_neg"] = rng.integers(0, num_entities, (n, 7))
        out["tail_neg"] = rng.integers(0, num_entities, (n, 7))
    buf = io.BytesIO()
    torch.save(out, buf)
    return out, buf.getvalue()


def test_ogbl_wikikg2_format_with_given_negatives(tmp_path):
    info = DATASETS.get("ogbl-wikikg2")
    arrays, files = {}, {}
    for split, n in (("train", 40), ("valid", 6), ("test", 5)):
        arrays[split], files[f"wikikg-v2/split/time/{split}.pt"] = _ogb_split(n, 30, 4, len(files),
                                                                              negatives=split != "train")
    files["wikikg-v2/raw/num-node-list.csv.gz"] = gzip.compress(b"30\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    download("ogbl-wikikg2", tmp_path, fetch=_serve({info.source["archive"]: buf.getvalue()}))
    kg = load_dataset("ogbl-wikikg2", tmp_path)
    assert kg.num_entities == 30 and kg.num_relations == info.counts["relations"]
    for split in ("train", "valid", "test"):
        assert kg.splits[split][:, 0].tolist() == arrays[split]["head"].tolist()
        assert kg.splits[split][:, 1].tolist() == arrays[split]["relation"].tolist()
    assert set(kg.negatives) == {"valid", "test"}
    assert kg.negatives["test"][Target.TAIL].tolist() == arrays["test"]["tail_neg"].tolist()
    assert verify("ogbl-wikikg2", tmp_path) == {"train": "train.pt", "valid": "valid.pt", "test": "test.pt"}


def test_ogb_split_files_only_unpickle_arrays(tmp_path):
    """A split file holding anything but arrays is refused, not executed."""
    info = DATASETS.get("ogbl-wikikg2")
    directory = tmp_path / "ogbl-wikikg2"
    directory.mkdir()
    (directory / "num-node-list.csv.gz").write_bytes(gzip.compress(b"30\n"))
    for split in ("train", "valid", "test"):
        torch.save({"head": np.zeros(2, dtype=np.int64), "relation": np.zeros(2, dtype=np.int64),
                    "tail": np.zeros(2, dtype=np.int64), "evil": print}, directory / f"{split}.pt")
    from dgl_emu.data import DataFormatError
    with pytest.raises(DataFormatError, match="not an OGB split file"):
        load_dataset("ogbl-wikikg2", tmp_path)
    assert info.format == "ogbl-wikikg2"


# --------------------------------------------------------------------------- generated large KG
def test_generated_large_kg_is_reproducible_skewed_and_sized():
    a = generate_large_kg(20000, 100000, 50, num_valid=300, num_test=300, seed=1)
    b = generate_large_kg(20000, 100000, 50, num_valid=300, num_test=300, seed=1)
    c = generate_large_kg(20000, 100000, 50, num_valid=300, num_test=300, seed=2)
    assert a.statistics() == {"entities": 20000, "relations": 50, "train": 100000, "valid": 300, "test": 300}
    assert all(torch.equal(a.splits[s], b.splits[s]) for s in a.splits)
    assert not torch.equal(a.splits["train"], c.splits["train"])
    ends = torch.cat([a.splits["train"][:, 0], a.splits["train"][:, 2]])
    degree = torch.bincount(ends, minlength=20000).sort(descending=True).values
    assert degree[:200].sum() / degree.sum() > 0.3        # the top 1% of entities: >30% of the ends
    uniform = generate_large_kg(20000, 100000, 50, skew=0.0, seed=1)
    flat = torch.bincount(torch.cat([uniform.splits["train"][:, 0], uniform.splits["train"][:, 2]]),
                          minlength=20000).sort(descending=True).values
    assert flat[:200].sum() / flat.sum() < 0.03
    seen = torch.zeros(20000, dtype=torch.bool)
    seen[ends] = True
    for split in ("valid", "test"):
        assert seen[a.splits[split][:, 0]].all() and seen[a.splits[split][:, 2]].all()
    assert a.entity_to_id["e19999"] == 19999 and len(a.entity_to_id) == 20000
