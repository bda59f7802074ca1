"""Ingestion from the command line: the generated graph without labels, id inputs, the parsed-data
cache, bad id input as one Error line, and the checksum commands."""
from __future__ import annotations

import json

import pytest

from .clihelp import TINY, invoke


def _errors(result):
    assert "Traceback" not in result.output, result.output
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_generated_from_cli_equals_generated_arrays(tmp_path):
    gen = invoke("datasets", "generate", tmp_path / "g", "--entities", "300", "--relations", "5")
    assert gen.exit_code == 0, gen.output
    a = invoke("run", "--dataset", "generated", "--set", "data.entities=300", "--set", "data.relations=5", *TINY,
               "--output", tmp_path / "a")
    b = invoke("run", "--input-format", "arrays", *[x for s in ("train", "valid", "test")
                                                     for x in (f"--{s}", tmp_path / "g" / f"{s}.npy")],
               "--set", "data.entities=300", "--set", "data.relations=5", *TINY, "--output", tmp_path / "b")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ma, mb = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert ma["test"] == mb["test"]
    # every entity kept, also those in no triple (only about half of them occur in one)
    assert ma["dataset"] == mb["dataset"] == {"entities": 300, "relations": 5, "train": 600, "valid": 1000,
                                              "test": 1000}


def test_second_run_reads_the_cache_with_the_same_metrics(tmp_path):
    for name, text in (("train.txt", "a\tr\tb\nb\tr\tc\nc\tr\ta\na\ts\tc\n"), ("test.txt", "b\ts\ta\n")):
        (tmp_path / name).write_text(text)
    args = ["--train", tmp_path / "train.txt", "--test", tmp_path / "test.txt", *TINY]
    first = invoke("run", *args, "--output", tmp_path / "r1")
    second = invoke("run", *args, "--output", tmp_path / "r2")
    assert "data: parsed and cached in" in first.output, first.output
    assert "data: read from the cache" in second.output, second.output
    assert _metrics(tmp_path / "r1")["test"] == _metrics(tmp_path / "r2")["test"]
    off = invoke("run", *args, "--no-data-cache", "--output", tmp_path / "r3")
    assert "cache" not in off.output.split("data: train")[0]
    listed = invoke("datasets", "cache")
    assert str(tmp_path / "train.txt") in listed.output and "current" in listed.output


@pytest.mark.parametrize("args, needles", [
    (["--input-format", "ids", "--set", "data.entities=3", "--set", "data.relations=1"], ["train.tsv:2", "decimal"]),
    (["--input-format", "ids"], ["data.entities", "--entity-dict"]),
    (["--set", "data.entities=3"], ["data.entities", "labelled triples count their own labels"]),
    (["--input-format", "ids", "--set", "data.entities=3", "--set", "data.relations=1", "--set", "data.columns=hrx"],
     ["data.columns"]),
])
def test_bad_id_input_is_one_error_line(tmp_path, args, needles):
    (tmp_path / "train.tsv").write_text("0\t0\t1\n0\t+0\t2\n")
    result = invoke("run", "--train", tmp_path / "train.tsv", *args, *TINY, "--output", tmp_path / "run")
    errors = _errors(result)
    assert result.exit_code != 0 and len(errors) == 1, result.output
    assert all(n in errors[0] for n in needles), errors[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_generated_needs_its_size():
    result = invoke("run", "--dataset", "generated", *TINY)
    errors = _errors(result)
    assert result.exit_code == 2 and len(errors) == 1 and "data.entities=5000000" in errors[0]


def _fabricated_yago(root):
    d = root / "yago3-10"
    d.mkdir(parents=True)
    for s in ("train", "valid", "test"):
        (d / f"{s}.txt").write_text("a\tr\tb\nb\tr\tc\n")
    return d


def test_checksums_list_verify_forget(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = tmp_path / "data"
    d = _fabricated_yago(data)
    before = invoke("datasets", "checksums")
    assert "yago3-10/train.txt" in before.output and "none yet" in before.output
    assert str(tmp_path / "xdg" / "dgl-emu" / "recorded-sha256.json") in before.output
    first = invoke("datasets", "--data-dir", data, "verify", "yago3-10")  # first use: recorded, unverified
    assert first.exit_code == 0 and "unverified" in first.output and "first load" in first.output
    listed = invoke("datasets", "checksums").output
    line = next(x for x in listed.splitlines() if x.startswith("yago3-10/train.txt"))
    assert "unverified" in line and str(d / "train.txt") in line
    (d / "train.txt").write_text("a\tr\tb\n")  # another copy no longer passes
    changed = invoke("datasets", "--data-dir", data, "verify", "yago3-10")
    assert changed.exit_code == 1 and len(_errors(changed)) == 1 and "changed" in _errors(changed)[0]
    forgot = invoke("datasets", "forget", "yago3-10")
    assert forgot.exit_code == 0 and forgot.output.count("forgot yago3-10/") == 3
    assert invoke("datasets", "--data-dir", data, "verify", "yago3-10").exit_code == 0  # recorded anew
    assert "no recorded checksum" in invoke("datasets", "forget", "fb15k-237").output
