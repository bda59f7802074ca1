"""Trust boundaries, one row per case and class (issue 31): each CLI row asserts the exit status,
ONE ``Error:`` line naming the culprit, no traceback, and that no file outside the run directory
changed. In-process rows here; the rows that start processes (sockets, signals to launchers,
concurrent runs, SIGTERM) are in ``test_trust_processes.py`` (slow).

Classes: checkpoints (no code runs from a file), run directories (nothing deleted that dgl-emu did
not write, no write through a link, one run at a time, the previous run put back), data (a run
never trains or reports on other data), messages (the culprit named), the Python API.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from dgl_emu.data import generate_cyclic_kg, verify
from dgl_emu.data.checksums import sha256_of, verified_digest
from dgl_emu.data.knowledge_graph import KnowledgeGraph
from dgl_emu.data.index import FilterIndex
from dgl_emu.locking import process_start_time
from dgl_emu.nn.emu import EmbeddingMutation
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.pipeline.rundir import LOCK, MARKER
from dgl_emu.sampling import UniformNegativeSampler
from dgl_emu.utils import atomic_write_bytes, open_append

from .clihelp import SHARED_DATASETS, TINY, check_error as _check, invoke


# --------------------------------------------------------------------------- helpers
def _tree(root: Path, skip: Path = None) -> dict:
    """Every entry under ``root`` (``skip`` and what is below it aside): relative path to the
    content digest of a file, the target of a link, or ``"dir"``."""
    out = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Outside:
    """The files under ``root`` outside the run directory ``run``: unchanged after the command."""

    def __init__(self, root: Path, run: Path):
        self.root, self.run = root, run
        self.before = _tree(root, run)

    def unchanged(self) -> None:
        assert _tree(self.root, self.run) == self.before


def _write_kg_files(directory: Path, kg: KnowledgeGraph) -> list:
    """``kg``'s splits as labelled TSV files; the ``--train/--valid/--test`` arguments."""
    directory.mkdir(parents=True, exist_ok=True)
    ents, rels = kg.entity_labels, kg.relation_labels
    args = []
    for split in ("train", "valid", "test"):
        lines = [f"{ents[h]}\t{rels[r]}\t{ents[t]}\n" for h, r, t in kg.splits[split].tolist()]
        (directory / f"{split}.txt").write_text("".join(lines))
        args += [f"--{split}", directory / f"{split}.txt"]
    return args


@pytest.fixture
def run_copy(base_run, tmp_path):
    """A copy of the module's finished run in ``tmp_path/run``."""
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    return out


@pytest.fixture(scope="module")
def files_run(tmp_path_factory):
    """A finished run on custom files (the generated KG written as TSV): ``(root, args, run_dir)``."""
    root = tmp_path_factory.mktemp("files")
    args = _write_kg_files(root / "data", generate_cyclic_kg())
    out = root / "run"
    result = invoke("run", *args, *TINY, "--output", out)
    assert result.exit_code == 0, result.output
    return root, args, out


@pytest.fixture
def files_copy(files_run, tmp_path):
    """A copy of ``files_run`` (data and run directory) in ``tmp_path``; the run's record points at
    the copy's files (as if it had trained on them)."""
    root, args, out = files_run
    shutil.copytree(root / "data", tmp_path / "data")
    shutil.copytree(out, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "data.json").read_text())
    for entry in record["files"].values():
        entry["path"] = str(tmp_path / "data" / Path(entry["path"]).name)
    (tmp_path / "run" / "data.json").write_text(json.dumps(record))
    config = (tmp_path / "run" / "config.yaml").read_text()
    (tmp_path / "run" / "config.yaml").write_text(config.replace(str(root / "data"), str(tmp_path / "data")))
    args = [a if not isinstance(a, Path) else tmp_path / "data" / a.name for a in args]
    return args, tmp_path / "run"


class _Evil:
    """Unpickling it would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, marker: Path) -> None:
    """A checkpoint at ``path`` whose loading would run code (create ``marker``)."""
    state = torch.load(path, weights_only=True) if path.exists() else {"model": {}}
    torch.save({**state, "payload": _Evil(marker)}, path)


# --------------------------------------------------------------------------- checkpoints: no code runs
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_checkpoint_that_would_run_code_is_refused(run_copy, tmp_path, command):
    marker = tmp_path / "marker"
    _plant(run_copy / "best.pt", marker)
    outside = Outside(tmp_path, run_copy)
    args = [run_copy] if command == "evaluate" else [run_copy, "--head", "e0000", "--relation", "shift_1"]
    _check(invoke(command, *args), 1, "best.pt", "refused", "posix.system")
    assert not marker.exists()
    outside.unchanged()


def test_resuming_from_a_checkpoint_that_would_run_code_is_refused(run_copy, tmp_path):
    marker = tmp_path / "marker"
    (run_copy / "metrics.json").unlink()          # unfinished: the run resumes from last.pt
    _plant(run_copy / "last.pt", marker)
    outside = Outside(tmp_path, run_copy)
    before = _tree(run_copy)
    _check(invoke("run", *TINY, "--output", run_copy), 1, "last.pt", "refused", "posix.system")
    assert not marker.exists()
    outside.unchanged()
    assert {k: v for k, v in _tree(run_copy).items() if k != LOCK} == before  # nothing of the run changed


def test_checkpoints_hold_only_data(base_run):
    for name in ("best.pt", "last.pt"):
        state = torch.load(base_run[0] / name, weights_only=True)  # loads without any allowed global
        assert "model" in state


# --------------------------------------------------------------------------- run directories
def test_fresh_on_a_directory_that_is_not_a_run_is_refused(tmp_path):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "important.txt").write_text("keep me")
    (mine / "sub" / "notes.md").write_text("and me")
    outside = Outside(tmp_path, tmp_path / "nothing")   # everything, the user's folder included
    _check(invoke("run", *TINY, "--fresh", "--output", mine), 2, "--output", str(mine), "not a dgl-emu run directory",
           "important.txt")
    outside.unchanged()


def test_a_directory_with_its_own_config_and_log_is_not_overwritten(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own settings\n")
    (mine / "log.jsonl").write_text('{"mine": 1}\n')
    outside = Outside(tmp_path, tmp_path / "nothing")
    _check(invoke("run", *TINY, "--output", mine), 2, "--output", str(mine), "not a dgl-emu run directory")
    outside.unchanged()


def test_a_users_folder_named_like_the_aside_copy_is_not_deleted(run_copy, tmp_path):
    aside = tmp_path / ".run.previous"
    aside.mkdir()
    (aside / "thesis.tex").write_text("years of work")
    outside = Outside(tmp_path, run_copy)
    before = _tree(run_copy)
    _check(invoke("run", *TINY, "--seed", "5", "--fresh", "--output", run_copy), 2, "--output", str(aside),
           "not a dgl-emu run directory")
    outside.unchanged()
    assert _tree(run_copy) == before


def test_fresh_with_files_dgl_emu_did_not_write_is_refused(run_copy, tmp_path):
    (run_copy / "notes.txt").write_text("my notes on this run")
    outside = Outside(tmp_path, run_copy)
    before = _tree(run_copy)
    _check(invoke("run", *TINY, "--seed", "5", "--fresh", "--output", run_copy), 2, "--output", "notes.txt",
           "did not write")
    outside.unchanged()
    assert _tree(run_copy) == before


def test_a_log_that_is_a_symbolic_link_is_refused(run_copy, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not a log")
    (run_copy / "metrics.json").unlink()
    (run_copy / "log.jsonl").unlink()
    (run_copy / "log.jsonl").symlink_to(victim)
    outside = Outside(tmp_path, run_copy)
    _check(invoke("run", *TINY, "--output", run_copy), 2, "--output", "log.jsonl", "symbolic link")
    outside.unchanged()
    assert victim.read_text() == "not a log"


def test_files_are_written_through_no_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    link = tmp_path / "metrics.json"
    link.symlink_to(victim)
    atomic_write_bytes(link, b"{}")             # the link is replaced, its target untouched
    assert not link.is_symlink() and link.read_bytes() == b"{}" and victim.read_text() == "not yours"
    (tmp_path / "log.jsonl").symlink_to(victim)
    with pytest.raises(OSError) as err:
        open_append(tmp_path / "log.jsonl")
    assert err.value.errno == errno.ELOOP and victim.read_text() == "not yours"


def test_a_run_directory_is_marked_when_created_and_unlocked_after(base_run):
    out = base_run[0]
    assert (out / MARKER).is_file() and not (out / LOCK).exists()


def _held_by_parent(out: Path, start_offset: int = 0) -> int:
    """A lock in ``out`` held by this process's parent (a live process that is not this one)."""
    pid = os.getppid()
    start = process_start_time(pid)
    if start is None:
        pytest.skip("no /proc: process start times unknown")
    (out / LOCK).write_text(f"{pid} {start + start_offset}\n")
    return pid


def test_a_second_run_on_a_directory_in_use_fails_at_once_naming_the_holder(run_copy, tmp_path):
    (run_copy / "metrics.json").unlink()
    pid = _held_by_parent(run_copy)
    outside = Outside(tmp_path, run_copy)
    before = _tree(run_copy)
    _check(invoke("run", *TINY, "--output", run_copy), 2, "--output", str(run_copy), "in use", f"process {pid}")
    _check(invoke("run", *TINY, "--seed", "3", "--fresh", "--output", run_copy), 2, "in use", f"process {pid}")
    outside.unchanged()
    assert _tree(run_copy) == before


def test_a_stale_lock_is_taken_over(run_copy):
    (run_copy / "metrics.json").unlink()
    _held_by_parent(run_copy, start_offset=1)    # that PID now belongs to a process started later
    _check(invoke("run", *TINY, "--output", run_copy), 0)
    assert (run_copy / "metrics.json").exists() and not (run_copy / LOCK).exists()


def _disk_full_at(monkeypatch, names, after: int = 0) -> None:
    """Make the atomic writes of ``names`` fail as on a full disk (ENOSPC when flushed), all but
    the first ``after`` of them."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc")
    real, written = os.fsync, []

    def fsync(fd):
        target = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if any(target.startswith(f".{n}.") for n in names):
            written.append(target)
            if len(written) > after:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def test_disk_full_at_the_first_checkpoint_of_a_fresh_run_puts_the_previous_run_back(run_copy, tmp_path,
                                                                                       monkeypatch):
    before = _tree(run_copy)
    outside = Outside(tmp_path, run_copy)
    _disk_full_at(monkeypatch, ["best.pt", "last.pt"])
    _check(invoke("run", *TINY, "--seed", "5", "--fresh", "--output", run_copy), 1, "disk full", "best.pt",
           "no checkpoint had been written yet", "previous run", "put back")
    outside.unchanged()                          # no aside copy left beside it
    assert _tree(run_copy) == before


def test_disk_full_later_names_the_file_and_the_step_kept(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _disk_full_at(monkeypatch, ["last.pt"], after=1)   # the checkpoint of step 20 is written, not step 40's
    _check(invoke("run", *TINY, "--output", out), 1, "disk full", str(out / "last.pt"),
           f"the last checkpoint, at step 20, is kept in {out / 'last.pt'}")
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 20
    assert not [p.name for p in out.iterdir() if p.name.startswith(".last.pt.")]   # no temporary file left


def test_a_fresh_run_that_fails_before_its_first_checkpoint_puts_the_previous_run_back(run_copy, tmp_path):
    before = _tree(run_copy)
    outside = Outside(tmp_path, run_copy)
    _check(invoke("run", *TINY, "--optimizer", "sgd", "--lr", "1e30", "--no-emu", "--eval-every", "1000", "--fresh",
                  "--output", run_copy), 1, "training diverged", "previous run", "put back")
    outside.unchanged()
    assert _tree(run_copy) == before


# --------------------------------------------------------------------------- data: a run knows its data
def test_the_run_records_its_data(files_run):
    root, args, out = files_run
    record = json.loads((out / "data.json").read_text())
    for split in ("train", "valid", "test"):
        entry = record["files"][split]
        assert entry["path"] == str((root / "data" / f"{split}.txt").resolve())
        assert entry["sha256"] == sha256_of(root / "data" / f"{split}.txt")
    labels = [line.split("\t")[1] for line in (out / "entities.dict").read_text().splitlines()]
    assert labels == sorted(generate_cyclic_kg().entity_labels)   # the ids the files gave
    assert record["entities"]["sha256"] == hashlib.sha256("".join(f"{x}\n" for x in labels).encode()).hexdigest()


def test_resume_on_a_changed_training_file_is_refused(files_copy, tmp_path):
    args, out = files_copy
    train = Path(args[1])
    text = train.read_text().splitlines(keepends=True)
    train.write_text("".join(text[:-5]))          # five triples fewer
    outside = Outside(tmp_path, out)
    before = _tree(out)
    _check(invoke("run", *args, *TINY, "--output", out), 1, str(train), "changed", "--accept-changed-data")
    outside.unchanged()
    assert _tree(out) == before


def test_a_relabelled_entity_is_refused_by_evaluate_and_predict(files_copy, tmp_path):
    args, out = files_copy
    test = Path(args[5])
    lines = test.read_text().splitlines(keepends=True)
    old = lines[0].split("\t")[0]
    test.write_text("".join(line.replace(f"{old}\t", "renamed\t") for line in lines))   # one entity renamed
    outside = Outside(tmp_path, out)
    before = _tree(out)
    _check(invoke("evaluate", out), 1, str(test), "changed", "--accept-changed-data")
    _check(invoke("predict", out, "--head", "e0000", "--relation", "shift_1"), 1, str(test), "changed")
    outside.unchanged()
    assert _tree(out) == before


def test_accepted_changed_data_is_read_with_the_recorded_id_maps(files_copy, files_run):
    """One more test triple: with the override the run ranks it too, every label on its row."""
    args, out = files_copy
    test = Path(args[5])
    test.write_text(test.read_text() + "e0000\tshift_1\te0005\n")
    _check(invoke("evaluate", out, "--accept-changed-data"), 0)
    ref = _check(invoke("evaluate", files_run[2]), 0)
    count = json.loads((out / "eval-test.json").read_text())["metrics"]["both"]["realistic"]["count"]
    ref_count = json.loads((files_run[2] / "eval-test.json").read_text())["metrics"]["both"]["realistic"]["count"]
    assert count == ref_count + 2 and ref


def test_evaluate_from_another_directory_reads_the_files_the_run_trained_on(files_run, tmp_path, monkeypatch):
    """``config.yaml`` holds relative paths; files of the same names elsewhere are not read."""
    root, args, out = files_run
    relative = tmp_path / "rel"
    shutil.copytree(root / "data", relative / "data")
    monkeypatch.chdir(relative)
    run = tmp_path / "relrun"
    _check(invoke("run", "--train", "data/train.txt", "--valid", "data/valid.txt", "--test", "data/test.txt",
                  *TINY, "--output", run), 0)
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    decoy = tmp_path / "elsewhere"
    _write_kg_files(decoy / "data", generate_cyclic_kg(seed=9))   # same names, other triples
    monkeypatch.chdir(decoy)
    _check(invoke("evaluate", run), 0)
    assert json.loads((run / "eval-test.json").read_text())["metrics"] == metrics


def test_test_triples_that_occur_in_training_are_reported(tmp_path):
    kg = generate_cyclic_kg()
    args = _write_kg_files(tmp_path / "data", kg)
    with open(args[5], "a") as f:
        f.write(Path(args[1]).read_text().splitlines()[0] + "\n")   # a training triple
    out = _check(invoke("run", *args, *TINY, "--output", tmp_path / "run"), 0)
    assert "data: test: 232 triples (0 duplicates kept; 1 also in training, kept)" in out
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]
    assert report["test"]["in_train"] == 1 and report["valid"]["in_train"] == 0


def test_an_edited_registered_file_with_size_and_mtime_restored_is_refused(tmp_path, monkeypatch):
    if not (SHARED_DATASETS / "nations").is_dir():
        pytest.skip("offline dataset copy not available")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copytree(SHARED_DATASETS / "nations", tmp_path / "nations")
    train = tmp_path / "nations" / "train.txt"
    verify("nations", tmp_path)                    # the digest is cached now
    stat = train.stat()
    data = train.read_bytes()
    edited = data.replace(b"usa\t", b"uss\t", 1)   # same size
    assert len(edited) == len(data) and edited != data
    train.write_bytes(edited)
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (train.stat().st_size, train.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert verified_digest(train) == hashlib.sha256(edited).hexdigest()
    result = invoke("run", "--dataset", "nations", "--data-dir", tmp_path, *TINY, "--output", tmp_path / "run")
    _check(result, 1, "nations/train.txt", "sha256", "changed")
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- messages name the culprit
RANGE_ROWS = {
    "integer beyond 64 bits": (["--steps", str(10 ** 23)], ["--steps", "64-bit integer", "2^63 - 1"]),
    "seed beyond 64 bits": (["--seed", str(10 ** 23)], ["--seed", "64-bit integer"]),
    "seed beyond its range": (["--seed", str(2 ** 63 - 1)], ["--seed", "[0, 2^62]"]),
    "float beyond range": (["--gamma", "1e999"], ["--gamma", "finite"]),
    "float from a huge integer": (["--set", f"optimizer.lr={10 ** 400}"], ["--set optimizer.lr", "finite"]),
    "tables too large for memory": (["--dim", str(10 ** 10)], ["--dim", "needs at least", "TiB", "available"]),
    "negatives too large for memory": (["--num-negatives", str(10 ** 11)],
                                       ["--num-negatives", "needs at least", "negatives per step"]),
    # one entity's walks are (num_walks, k + 1) int64: 7.3 TiB here (it aborted with std::bad_alloc)
    # a constructor's message names the option, not the section (it said "--encoder: ...")
    "R-GCN bases below one": (["--encoder", "rgcn", "--set", "encoder.num_bases=-1"],
                              ["--set encoder.num_bases: must be a positive integer, got -1"]),
    "unknown CompGCN composition": (["--encoder", "compgcn", "--set", "encoder.composition=foo"],
                                    ["--set encoder.composition: unknown composition 'foo'", "sub, mult, corr"]),
    "SANS walks too long for memory": (["--sampler", "sans", "--sans-k", str(10 ** 9)],
                                       ["--sans-k", "needs at least", "TiB", "SANS walks of 1000000000 hops"]),
}


@pytest.mark.parametrize("row", list(RANGE_ROWS))
def test_numbers_beyond_their_range_name_the_option(tmp_path, row):
    args, needles = RANGE_ROWS[row]
    _check(invoke("run", *TINY, *args, "--output", tmp_path / "run"), 2, *needles)
    assert not (tmp_path / "run").exists()


def test_a_yaml_syntax_error_is_one_line_with_its_place(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("model:\n  name: distmult\n  dim: [8, 16\ntraining: {steps: 4}\n")
    _check(invoke("run", "--config", conf, *TINY, "--output", tmp_path / "run"), 2, f"{conf}:4:9",
           "YAML syntax error")
    assert not (tmp_path / "run").exists()


def test_partition_beyond_the_graph_names_num_parts(tmp_path):
    _check(invoke("partition", "--num-parts", "385", "--output", tmp_path / "parts"), 2, "--num-parts",
           "384 entities", "at most 384")
    assert not (tmp_path / "parts").exists()


def test_partition_that_would_leave_a_partition_empty_names_num_parts(tmp_path):
    _check(invoke("partition", "--num-parts", "380", "--method", "random", "--output", tmp_path / "parts"), 2,
           "--num-parts", "without an entity")
    assert not (tmp_path / "parts").exists()


def test_a_corrupt_study_database_is_named(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    outside = Outside(tmp_path, study / "trials")
    _check(invoke("tune", "--trials", "1", "--steps", "4", "--dim", "8", "--output", study), 1,
           str(study / "study.db"), "not a readable study database")
    outside.unchanged()


# --------------------------------------------------------------------------- the Python API
API_ROWS = {
    "triples of shape (N, 2)": (lambda: KnowledgeGraph.from_id_triples({"train": [[0, 1], [1, 2]]}, 3, 1), ValueError,
                                r"split 'train': expected id triples of shape \(N, 3\), got shape \(2, 2\)"),
    "triples of shape (N, 4)": (lambda: KnowledgeGraph.from_id_triples({"train": [[0, 0, 1, 2]]}, 3, 1),
                                ValueError, r"shape \(1, 4\)"),
    "flat triples": (lambda: KnowledgeGraph.from_id_triples({"train": [0, 0, 1, 1, 0, 2]}, 3, 1),
                     ValueError, r"shape \(6,\)"),
    "float triples": (lambda: KnowledgeGraph.from_id_triples({"train": torch.tensor([[0.0, 0.0, 1.5]])}, 3, 1),
                      TypeError, "must be integers, got torch.float32"),
    "float entity count": (lambda: KnowledgeGraph.from_id_triples({"train": [[0, 0, 1]]}, 3.5, 1),
                           TypeError, "num_entities must be an integer, got 3.5"),
    "a graph's triples reshaped": (lambda: KnowledgeGraph({"a": 0, "b": 1}, {"r": 0},
                                                          {"train": torch.tensor([[0, 0, 1, 1]])}),
                                   ValueError, r"shape \(1, 4\)"),
    "src, dst, etype of other lengths": (lambda: KnowledgeGraph.from_dgl((torch.tensor([0, 1]), torch.tensor([1]),
                                                                          torch.tensor([0, 0]))),
                                         ValueError, "three 1-D tensors of one length"),
    "float negatives in a sampler": (lambda: UniformNegativeSampler(10, 2.5), TypeError,
                                     "num_negatives must be an integer, got 2.5"),
    "float entities in a sampler": (lambda: UniformNegativeSampler(10.0, 2), TypeError, "num_entities"),
    "float chunk size": (lambda: UniformNegativeSampler(10, 2, chunk_size=1.5), TypeError, "chunk_size"),
    "a filter index of (N, 2)": (lambda: FilterIndex(torch.tensor([[0, 1]]), 3, 1), ValueError, r"\(N, 3\)"),
    "a float dimension": (lambda: INTERACTIONS.get("distmult")(dim=8.5), TypeError, "dim must be an integer"),
    "a probability beyond [0, 1]": (lambda: EmbeddingMutation(keep_prob=1.5), ValueError,
                                    r"keep_prob must be in \[0, 1\]"),
    "a probability that is not a number": (lambda: EmbeddingMutation(keep_prob="0.4"), TypeError, "keep_prob"),
}


@pytest.mark.parametrize("row", list(API_ROWS))
def test_public_constructors_check_their_input(row):
    make, error, pattern = API_ROWS[row]
    with pytest.raises(error, match=pattern):
        make()


def test_valid_input_is_taken_as_it_is():
    kg = KnowledgeGraph.from_id_triples({"train": torch.tensor([[0, 0, 1]], dtype=torch.int32),
                                         "test": []}, 3, 1)
    assert kg.splits["train"].dtype == torch.long and kg.splits["test"].shape == (0, 3)
    assert UniformNegativeSampler(torch.tensor(10), 2).num_entities == 10
