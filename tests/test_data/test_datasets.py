"""The dataset registry: real benchmark counts, checksums, directory resolution, downloads.

Tests on real data use the offline copies in ``../shared/datasets`` and skip when it is absent.
Downloads are served from 127.0.0.1 by an in-process HTTP server; no internet is needed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import functools
import hashlib
import http.server
import io
import shutil
import tarfile
import threading

import pytest
import torch

from dgl_emu.data import (DATASETS, ChecksumError, DatasetNotFoundError, KnowledgeGraph, UnseenEntityPolicy,
                          data_root, dataset_dir, download, generate_cyclic_kg, load_dataset, verify)
from dgl_emu.registry import normalize_name

SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Make sure urllib talks to 127.0.0.1 directly, whatever the environment says."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class _Cache:
    """Loads each (dataset, policy) at most once per session."""

    def __init__(self, root):
        self.root = root
        self._kgs = {}

    def get(self, name, unseen=UnseenEntityPolicy.KEEP):
        if not (self.root / name).is_dir():
            pytest.skip(f"{name} not in {self.root}")
        key = (name, unseen)
        if key not in self._kgs:
            self._kgs[key] = load_dataset(name, self.root, unseen=unseen)
        return self._kgs[key]


@pytest.fixture(scope="session")
def shared_kgs(shared_datasets):
    return _Cache(shared_datasets)


@pytest.fixture(scope="session")
def fb15k237(shared_kgs):
    return shared_kgs.get("fb15k-237")


@pytest.fixture(scope="session")
def fb15k237_drop(shared_kgs):
    return shared_kgs.get("fb15k-237", UnseenEntityPolicy.DROP)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def serve(directory):
    """Serve ``directory`` over HTTP on 127.0.0.1 (random port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def shared_mirror(shared_datasets):
    with serve(shared_datasets) as url:
        yield url


def _copy_dataset(src_root, name, dst_root):
    shutil.copytree(src_root / name, dst_root / name)
    for p in (dst_root / name).iterdir():
        p.chmod(0o644)  # the shared copy is read-only
    return dst_root / name


def _patch_source(monkeypatch, name, **source):
    info = DATASETS.get(name)
    monkeypatch.setitem(DATASETS._items, normalize_name(name), dataclasses.replace(info, source=source))


def _files_in(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------------- real benchmarks
@pytest.mark.parametrize("name", DATASETS.names())
def test_registered_dataset_loads_with_registered_counts(shared_kgs, name):
    kg = shared_kgs.get(name)
    counts = DATASETS.get(name).counts
    assert kg.statistics() == {k: counts[k] for k in ("entities", "relations", "train", "valid", "test")}
    assert kg.name == DATASETS.canonical(name)
    for split in SPLITS:
        t = kg.splits[split]
        assert t.dtype == torch.long and t.shape[1] == 3
        assert int(t[:, [0, 2]].max()) < kg.num_entities and int(t[:, 1].max()) < kg.num_relations


def test_fb15k237_literal_counts(fb15k237):
    assert fb15k237.num_entities == 14541
    assert fb15k237.num_relations == 237
    assert [fb15k237.splits[s].shape[0] for s in SPLITS] == [272115, 17535, 20466]
    g = fb15k237.heterograph()
    assert len(g.canonical_etypes) == 237
    assert g.num_edges() == 272115
    assert g.num_nodes() == 14541
    # README: 36 entities never occur in train; 9 valid and 28 test triples hold one
    assert fb15k237.reports["valid"].unseen_entities == 8 and fb15k237.reports["valid"].unseen_triples == 9
    assert fb15k237.reports["test"].unseen_entities == 29 and fb15k237.reports["test"].unseen_triples == 28
    assert all(fb15k237.reports[s].duplicates == 0 for s in SPLITS)
    train_ents = torch.unique(fb15k237.splits["train"][:, [0, 2]])
    assert train_ents.numel() == 14505


def test_fb15k237_drop_policy_matches_pykeen(fb15k237_drop):
    kg = fb15k237_drop
    assert kg.num_entities == 14505
    assert kg.num_relations == 237
    assert [kg.splits[s].shape[0] for s in SPLITS] == [272115, 17526, 20438]
    assert kg.reports["valid"].dropped == 9 and kg.reports["test"].dropped == 28
    assert torch.unique(kg.splits["train"][:, [0, 2]]).numel() == 14505


def test_fb15k237_labels(fb15k237):
    assert all(e.startswith("/m/") for e in fb15k237.entity_labels[:50])
    assert "/location/country/form_of_government" in fb15k237.relation_to_id
    assert fb15k237.entity_labels == sorted(fb15k237.entity_labels)


@pytest.mark.parametrize("name", DATASETS.names())
def test_verify_shared_files(shared_datasets, name):
    if not (shared_datasets / name).is_dir():
        pytest.skip(f"{name} not present")
    out = verify(name, shared_datasets)
    assert set(out) == set(SPLITS)
    for split, fname in out.items():
        assert (shared_datasets / name / fname).is_file()
        assert fname.startswith(split + ".txt")
    if name == "fb15k-237":
        assert out == {s: f"{s}.txt.gz" for s in SPLITS}


def test_corrupted_copy_fails_verification(shared_datasets, require_dataset, tmp_path):
    require_dataset("umls")
    d = _copy_dataset(shared_datasets, "umls", tmp_path)
    assert verify("umls", tmp_path) == {s: f"{s}.txt" for s in SPLITS}
    data = bytearray((d / "valid.txt").read_bytes())
    i = next(i for i in range(100, len(data)) if chr(data[i]).isalpha())
    data[i] = ord(chr(data[i]).swapcase())  # still three fields per line, one byte changed
    (d / "valid.txt").write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as ei:
        verify("umls", tmp_path)
    assert str(d / "valid.txt") in str(ei.value)
    with pytest.raises(ChecksumError, match="valid.txt"):
        load_dataset("umls", tmp_path, check=True)
    load_dataset("umls", tmp_path, check=False)  # without check the (still parseable) copy loads


def test_load_with_check(shared_kgs, shared_datasets, require_dataset):
    require_dataset("nations")
    kg = load_dataset("Nations", shared_datasets, check=True)  # names are normalised
    assert kg.statistics() == shared_kgs.get("nations").statistics()


def test_synthetic_needs_no_files(tmp_path):
    kg = load_dataset("synthetic", tmp_path / "nothing", seed=3)
    ref = generate_cyclic_kg(seed=3)
    assert all(torch.equal(kg.splits[s], ref.splits[s]) for s in SPLITS)
    assert kg.num_entities == 384


# ---------------------------------------------------------------------- resolution order
def _fake_dataset(root, name="nations"):
    """A directory that dataset_dir() accepts (files need only exist)."""
    d = root / name
    d.mkdir(parents=True)
    for s in SPLITS:
        (d / f"{s}.txt").write_text("a\tr\tb\n")
    return d


def test_resolution_order(tmp_path, monkeypatch):
    explicit, env, xdg, home = (tmp_path / n for n in ("explicit", "env", "xdg", "home"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DGL_EMU_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_root() == home / ".cache" / "dgl-emu" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    assert data_root() == xdg / "dgl-emu" / "datasets"
    monkeypatch.setenv("DGL_EMU_DATA", str(env))
    assert data_root() == env
    assert data_root(explicit) == explicit
    assert data_root(str(explicit)) == explicit
    monkeypatch.setenv("DGL_EMU_DATA", "")  # empty counts as unset
    assert data_root() == xdg / "dgl-emu" / "datasets"


def test_dataset_dir_follows_resolution_order(tmp_path, monkeypatch):
    e = _fake_dataset(tmp_path / "explicit")
    v = _fake_dataset(tmp_path / "env")
    c = _fake_dataset(tmp_path / "xdg" / "dgl-emu" / "datasets")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DGL_EMU_DATA", raising=False)
    assert dataset_dir("nations") == c
    monkeypatch.setenv("DGL_EMU_DATA", str(tmp_path / "env"))
    assert dataset_dir("nations") == v
    assert dataset_dir("nations", tmp_path / "explicit") == e


def test_load_via_env_variable(shared_datasets, require_dataset, tmp_path, monkeypatch):
    require_dataset("nations")
    _copy_dataset(shared_datasets, "nations", tmp_path)
    monkeypatch.setenv("DGL_EMU_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nothing"))
    kg = load_dataset("nations")
    assert kg.statistics()["train"] == DATASETS.get("nations").counts["train"]


def test_dataset_not_found_message(tmp_path, monkeypatch):
    monkeypatch.delenv("DGL_EMU_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("umls")
    msg = str(ei.value)
    assert str(tmp_path / "cache" / "dgl-emu" / "datasets" / "umls") in msg
    assert "dgl-emu datasets download umls" in msg
    assert isinstance(ei.value, FileNotFoundError)
    # one split missing: still not found, and the message names what is missing
    d = _fake_dataset(tmp_path / "root", "umls")
    (d / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="test.txt") as ei:
        dataset_dir("umls", tmp_path / "root")
    assert str(d) in str(ei.value)


def test_unknown_dataset_name():
    with pytest.raises(KeyError, match="fb15k-237"):
        DATASETS.get("fb15k-238")


# ---------------------------------------------------------------------- downloads
def test_download_from_mirror(shared_datasets, shared_mirror, require_dataset, tmp_path):
    require_dataset("umls")
    d = download("umls", tmp_path, mirror=shared_mirror)
    assert d == tmp_path / "umls"
    assert _files_in(d) == ["test.txt", "train.txt", "valid.txt"]
    assert verify("umls", tmp_path) == {s: f"{s}.txt" for s in SPLITS}
    kg = load_dataset("umls", tmp_path)
    counts = DATASETS.get("umls").counts
    assert kg.statistics() == {k: counts[k] for k in ("entities", "relations", "train", "valid", "test")}


def test_download_fb15k237_gz_from_mirror(shared_datasets, shared_mirror, require_dataset, tmp_path):
    require_dataset("fb15k-237")
    d = download("fb15k-237", tmp_path, mirror=shared_mirror + "/")  # trailing slash tolerated
    assert _files_in(d) == ["test.txt.gz", "train.txt.gz", "valid.txt.gz"]
    assert verify("fb15k-237", tmp_path) == {s: f"{s}.txt.gz" for s in SPLITS}
    for s in SPLITS:  # byte-identical to the shared copy (the registered sha256 also says so)
        assert filecmp.cmp(d / f"{s}.txt.gz", shared_datasets / "fb15k-237" / f"{s}.txt.gz", shallow=False)
    # loading is checked on the (small) valid split; the full load of the same bytes is tested above
    kg = KnowledgeGraph.from_files(d / "valid.txt.gz")
    assert kg.splits["train"].shape[0] == 17535


def test_download_from_base_url(shared_datasets, shared_mirror, require_dataset, tmp_path, monkeypatch):
    require_dataset("nations")
    _patch_source(monkeypatch, "nations", base_url=f"{shared_mirror}/nations")
    d = download("nations", tmp_path)
    assert _files_in(d) == ["test.txt", "train.txt", "valid.txt"]
    assert load_dataset("nations", tmp_path, check=True).num_entities == 14


def _nations_archive(shared_datasets, path):
    with tarfile.open(path, "w:gz") as tar:
        for s in SPLITS:
            tar.add(shared_datasets / "nations" / f"{s}.txt", arcname=f"nations/{s}.txt")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_archive(shared_datasets, require_dataset, tmp_path, monkeypatch):
    require_dataset("nations")
    served = tmp_path / "served"
    served.mkdir()
    sha = _nations_archive(shared_datasets, served / "nations.tar.gz")
    target = tmp_path / "data"
    with serve(served) as url:
        _patch_source(monkeypatch, "nations", archive=f"{url}/nations.tar.gz", sha256=sha,
                      members={s: f"nations/{s}.txt" for s in SPLITS})
        d = download("nations", target)
    assert d == target / "nations"
    assert _files_in(d) == ["test.txt", "train.txt", "valid.txt"]
    assert verify("nations", target) == {s: f"{s}.txt" for s in SPLITS}
    counts = DATASETS.get("nations").counts
    kg = load_dataset("nations", target)
    assert kg.statistics() == {k: counts[k] for k in ("entities", "relations", "train", "valid", "test")}


def test_download_archive_wrong_checksum_leaves_nothing(shared_datasets, require_dataset, tmp_path,
                                                        monkeypatch):
    require_dataset("nations")
    served = tmp_path / "served"
    served.mkdir()
    sha = _nations_archive(shared_datasets, served / "nations.tar.gz")
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    target = tmp_path / "data"
    with serve(served) as url:
        _patch_source(monkeypatch, "nations", archive=f"{url}/nations.tar.gz", sha256=wrong,
                      members={s: f"nations/{s}.txt" for s in SPLITS})
        with pytest.raises(ChecksumError) as ei:
            download("nations", target)
    assert "nations.tar.gz" in str(ei.value) and sha in str(ei.value)
    assert _files_in(target / "nations") == []


def test_download_archive_with_wrong_member_content(shared_datasets, require_dataset, tmp_path, monkeypatch):
    """The archive checksum matches, but a member differs from the registered file: nothing written."""
    require_dataset("nations")
    served = tmp_path / "served"
    served.mkdir()
    buf = served / "nations.tar.gz"
    with tarfile.open(buf, "w:gz") as tar:
        for s in SPLITS:
            data = (shared_datasets / "nations" / f"{s}.txt").read_bytes()
            if s == "test":
                data = data.replace(b"\t", b"\t ", 1)
            info = tarfile.TarInfo(f"{s}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256(buf.read_bytes()).hexdigest()
    target = tmp_path / "data"
    with serve(served) as url:
        _patch_source(monkeypatch, "nations", archive=f"{url}/nations.tar.gz", sha256=sha,
                      members={s: f"{s}.txt" for s in SPLITS})
        with pytest.raises(ChecksumError, match="nations/test.txt"):
            download("nations", target)
    assert _files_in(target / "nations") == []


def test_download_mirror_with_corrupted_file_leaves_nothing(shared_datasets, require_dataset, tmp_path):
    require_dataset("umls")
    mirror = tmp_path / "mirror"
    d = _copy_dataset(shared_datasets, "umls", mirror)
    data = bytearray((d / "test.txt").read_bytes())
    data[-2] ^= 1  # last label character changes
    (d / "test.txt").write_bytes(bytes(data))
    target = tmp_path / "data"
    with serve(mirror) as url:
        with pytest.raises(ChecksumError, match="umls/test.txt"):
            download("umls", target, mirror=url)
    # train and valid were fine, but nothing (not even a temporary file) is left behind
    assert _files_in(target / "umls") == []


def test_download_mirror_missing_file(tmp_path):
    (tmp_path / "mirror" / "umls").mkdir(parents=True)
    with serve(tmp_path / "mirror") as url:
        with pytest.raises(OSError, match="could not fetch train") as ei:
            download("umls", tmp_path / "data", mirror=url)
    assert not isinstance(ei.value, ChecksumError)
    assert _files_in(tmp_path / "data" / "umls") == []


def test_download_with_custom_fetch(shared_datasets, require_dataset, tmp_path):
    require_dataset("kinships")
    urls = []

    def fetch(url):
        urls.append(url)
        return (shared_datasets / "kinships" / url.rsplit("/", 1)[1]).read_bytes()

    download("kinships", tmp_path, mirror="http://example.invalid/m", fetch=fetch)
    assert urls == [f"http://example.invalid/m/kinships/{s}.txt" for s in SPLITS]
    assert verify("kinships", tmp_path) == {s: f"{s}.txt" for s in SPLITS}


# ---------------------------------------------------------------------- the generated KG
def test_generated_same_seed_identical():
    a, b = generate_cyclic_kg(seed=5), generate_cyclic_kg(seed=5)
    assert a.entity_to_id == b.entity_to_id and a.relation_to_id == b.relation_to_id
    for s in SPLITS:
        assert torch.equal(a.splits[s], b.splits[s])


def test_generated_different_seed_differs():
    a, b = generate_cyclic_kg(seed=0), generate_cyclic_kg(seed=1)
    assert any(not torch.equal(a.splits[s], b.splits[s]) for s in ("valid", "test"))
    assert set(map(tuple, a.splits["test"].tolist())) != set(map(tuple, b.splits["test"].tolist()))
    assert a.entity_labels != b.entity_labels


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_generated_structure(seed):
    kg = generate_cyclic_kg(num_rings=4, ring_size=5, shifts=(1, 2), seed=seed)
    E, R = kg.num_entities, kg.num_relations
    assert (E, R) == (20, 3) and kg.relation_labels == ["shift_1", "shift_2", "mirror"]
    train = kg.splits["train"]
    assert torch.unique(train[:, [0, 2]]).tolist() == list(range(E))  # every entity occurs in training
    assert torch.unique(train[:, 1]).tolist() == list(range(R))
    every = torch.cat([kg.splits[s] for s in SPLITS])
    assert every.shape[0] == E * R  # one triple per entity and relation, each in exactly one split
    assert len(set(map(tuple, every.tolist()))) == E * R
    # the heads of relation r cover every entity once (a function per relation)
    for r in range(R):
        assert sorted(every[every[:, 1] == r, 0].tolist()) == list(range(E))
