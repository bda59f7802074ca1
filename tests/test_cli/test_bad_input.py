"""Bad input and interruptions, one row per class: the exit status, one ``Error:`` line naming the
culprit, no traceback, and no earlier result lost or mixed.

Classes: data files, options, checkpoints, the filesystem, interruptions (a real process killed
with SIGINT, SIGTERM or SIGKILL at a chosen step through the ``DGL_EMU_TEST_SIGNAL`` hook, not a sleep).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .clihelp import SHARED_DATASETS, TINY, check_error as _check, invoke

ROOT = Path(__file__).resolve().parents[2]
TRIPLES = "a\tr\tb\nb\tr\tc\nc\tr\ta\na\ts\tc\nb\ts\ta\nc\ts\tb\n"


def _files(tmp_path: Path, train: str, valid: str = "a\tr\tc\n", test: str = "b\tr\ta\n"):
    for name, text in (("train.txt", train), ("valid.txt", valid), ("test.txt", test)):
        (tmp_path / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return ["--train", tmp_path / "train.txt", "--valid", tmp_path / "valid.txt", "--test", tmp_path / "test.txt"]


# --------------------------------------------------------------------------- data files
DATA_ROWS = {
    "trailing whitespace": (TRIPLES.replace("a\tr\tb", "a \tr\tb"), 1, ["train.txt:1", "whitespace"]),
    "missing field": (TRIPLES + "a\tr\n", 1, ["train.txt:7", "expected 3"]),
    "empty field": (TRIPLES.replace("b\tr\tc", "b\t\tc"), 1, ["train.txt:2", "field 2 is empty"]),
    "blank line": (TRIPLES.replace("c\tr\ta\n", "\n"), 1, ["train.txt:3"]),
    "not UTF-8": (TRIPLES.encode() + b"\xff\xfe\tr\ta\n", 1, ["train.txt:7", "UTF-8"]),
    "empty file": ("", 1, ["train.txt", "no triples"]),
}


@pytest.mark.parametrize("row", list(DATA_ROWS))
def test_bad_data_file(tmp_path, row):
    text, code, needles = DATA_ROWS[row]
    result = invoke("run", *_files(tmp_path, text), *TINY, "--output", tmp_path / "run")
    _check(result, code, *needles)
    assert not (tmp_path / "run").exists()   # nothing written for a run that could not start


def test_byte_order_mark_and_header_are_recognised(tmp_path):
    """A BOM is not part of the first label; a header line is skipped; both reported, not silent."""
    plain = _files(tmp_path, TRIPLES)
    ref = invoke("run", *plain, *TINY, "--output", tmp_path / "plain")
    bom = tmp_path / "bom"
    bom.mkdir()
    args = _files(bom, b"\xef\xbb\xbf" + ("head\trelation\ttail\n" + TRIPLES).encode())
    result = invoke("run", *args, *TINY, "--output", tmp_path / "bomrun")
    out = _check(result, 0)
    assert "header line 'head\\trelation\\ttail' skipped" in out
    a = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    b = json.loads((tmp_path / "bomrun" / "metrics.json").read_text())
    assert a["dataset"] == b["dataset"] and a["dataset"]["entities"] == 3
    assert a["test"] == b["test"] and ref.exit_code == 0
    assert b["data"]["train"]["header"] == ["head", "relation", "tail"] and a["data"]["train"]["header"] is None


def test_unseen_and_duplicates_are_counted_on_every_run(tmp_path):
    args = _files(tmp_path, TRIPLES + "a\tr\tb\n", valid="a\tr\tz\na\tr\tc\n", test="b\tr\ta\n")
    for policy, kept, dropped in (("--keep-unseen", 1, 0), ("--drop-unseen", 0, 1)):
        out = tmp_path / policy
        result = invoke("run", *args, *TINY, policy, "--output", out)
        text = _check(result, 0)
        assert f"{kept} kept, {dropped} dropped" in text and "1 duplicates kept" in text
        report = json.loads((out / "metrics.json").read_text())["data"]
        assert (report["valid"]["kept_unseen"], report["valid"]["dropped"]) == (kept, dropped)
        assert report["train"]["duplicates"] == 1


def test_changed_registered_dataset_is_refused(tmp_path):
    if not (SHARED_DATASETS / "nations").is_dir():
        pytest.skip("offline dataset copy not available")
    shutil.copytree(SHARED_DATASETS / "nations", tmp_path / "nations")
    with open(tmp_path / "nations" / "train.txt", "a") as f:
        f.write("usa\tintergovorgs\tchina\n")
    result = invoke("run", "--dataset", "nations", "--data-dir", tmp_path, *TINY, "--output", tmp_path / "run")
    _check(result, 1, "nations/train.txt", "sha256", "changed")


# --------------------------------------------------------------------------- options
OPTION_ROWS = {
    "lr nan": (["--lr", "nan"], ["--lr", "finite"]),
    "lr inf": (["--lr", "inf"], ["--lr", "finite"]),
    "gamma nan": (["--gamma", "nan"], ["--gamma", "finite"]),
    "negative label nan": (["--negative-label", "nan"], ["--negative-label", "finite"]),
    "keep prob out of range": (["--keep-prob", "1.5"], ["--keep-prob", "[0, 1]"]),
    "dim zero": (["--dim", "0"], ["--dim", "positive"]),
    "decay after the last step": (["--decay-from", "40"], ["--decay-from", "[0, training.steps = 40)"]),
    "misspelt sampler": (["--set", "sampler.name=unifrom"], ["sampler", "did you mean 'uniform'"]),
    "unknown path": (["--set", "sampler.kk=3"], ["--set sampler.kk", "not an option"]),
    "option of another component": (["--sans-k", "2"], ["--sans-k", "not an option of sampler 'uniform'"]),
    "EMU option without EMU": (["--no-emu", "--keep-prob", "0.5"], ["--keep-prob"]),
    "set without value": (["--set", "model.dim"], ["--set", "PATH=VALUE"]),
}


@pytest.mark.parametrize("row", list(OPTION_ROWS))
def test_bad_option(tmp_path, row):
    args, needles = OPTION_ROWS[row]
    result = invoke("run", *TINY, *args, "--output", tmp_path / "run")
    _check(result, 2, *needles)
    assert not (tmp_path / "run").exists()


#: option checks that need no data: refused before any file is read (each was refused only after
#: the data had loaded, or not at all, in dgl-emu 0.4)
EARLY_ROWS = {
    "sampled evaluator without N": (["--evaluator", "sampled"],
                                    ["--evaluator", "needs evaluator.num_negatives", "--set evaluator.num_negatives="]),
    "sampled evaluator with N = 0": (["--evaluator", "sampled", "--set", "evaluator.num_negatives=0"],
                                     ["--set evaluator.num_negatives", "positive"]),
    "evaluation slices of 0 scores": (["--set", "evaluator.max_scores=0"], ["--set evaluator.max_scores", "positive"]),
    "chunks of 0 positives": (["--chunk-size", "0"], ["--chunk-size", "positive"]),
    "clipping with sparse tables": (["--max-grad-norm", "1", "--set", "encoder.sparse=true"],
                                    ["--max-grad-norm", "dense gradients", "encoder.sparse"]),
    "whole-table penalty with sparse tables": (["--regularizer", "table", "--regularizer-weight", "0.1", "--set",
                                                "encoder.sparse=true"], ["--regularizer", "sparse tables"]),
    "R-GCN blocks that do not divide d": (["--encoder", "rgcn", "--decomposition", "bdd", "--num-bases", "3"],
                                          ["--num-bases: the block-diagonal decomposition", "num_bases dividing 8, got 3"]),
    "CompGCN with RotatE's widths": (["--encoder", "compgcn", "--model", "rotate"],
                                     ["--encoder", "equal entity and relation widths", "RotatE"]),
    "edge dropout on sampled neighbourhoods": (["--encoder", "rgcn", "--fanouts", "5,5", "--set",
                                                "encoder.edge_dropout=0.1"],
                                               ["--set encoder.edge_dropout", "--fanouts"]),
}


@pytest.mark.parametrize("row", list(EARLY_ROWS))
def test_options_that_need_no_data_are_checked_before_any_data_load(tmp_path, monkeypatch, row):
    """The dataset's folder does not exist and the loader fails the test if called: the error
    is the option's, with exit status 2."""
    def load_graph(*args, **kwargs):
        pytest.fail("the data were loaded")
    monkeypatch.setattr(sys.modules["dgl_emu.pipeline.run"], "load_graph", load_graph)
    args, needles = EARLY_ROWS[row]
    result = invoke("run", "--dataset", "nations", "--data-dir", tmp_path / "missing", *TINY, *args,
                    "--output", tmp_path / "run")
    _check(result, 2, *needles)
    assert not (tmp_path / "run").exists()


def test_bad_key_in_a_config_file_names_the_file(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("sampler: {name: uniform, num_negative: 8}\n")
    result = invoke("run", "--config", conf, *TINY, "--output", tmp_path / "run")
    _check(result, 2, str(conf), "sampler.num_negative", "did you mean 'num_negatives'")


# --------------------------------------------------------------------------- checkpoints
def test_truncated_last_checkpoint(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    (out / "metrics.json").unlink()
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 3])
    result = invoke("run", *TINY, "--output", out)
    _check(result, 1, "last.pt", "not a readable checkpoint", "--fresh")
    assert (out / "best.pt").exists()   # nothing else was touched


def test_garbage_best_checkpoint(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    (out / "best.pt").write_bytes(b"this is not a checkpoint")
    _check(invoke("evaluate", out), 1, "best.pt", "not a readable checkpoint")


def test_config_edited_to_another_dimension(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    text = (out / "config.yaml").read_text().replace("dim: 8", "dim: 16")
    (out / "config.yaml").write_text(text)
    _check(invoke("evaluate", out), 1, "best.pt", "does not fit", "config.yaml")


# --------------------------------------------------------------------------- filesystem
@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_run_directory_keeps_the_metrics(base_run, tmp_path):  # pragma: no cover - non-root
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    out.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out_text = _check(invoke("evaluate", out), 1, "eval-test.json", "printed above")
        assert "test   both" in out_text
    finally:
        out.chmod(stat.S_IRWXU)


def test_evaluate_write_failure_keeps_the_metrics(base_run, tmp_path):
    """As a read-only directory would (also when root): the target path is a directory."""
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    (out / "eval-test.json").mkdir()
    out_text = _check(invoke("evaluate", out), 1, "eval-test.json", "printed above")
    assert "test   both" in out_text


def test_output_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    _check(invoke("run", *TINY, "--output", tmp_path / "file"), 2, "--output", "is a file")
    assert (tmp_path / "file").read_text() == "x"


def test_output_below_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    _check(invoke("run", *TINY, "--output", tmp_path / "file" / "run"), 2, "--output", "cannot create")


def test_another_configuration_is_refused_naming_the_option(base_run):
    out = base_run[0]
    before = (out / "metrics.json").read_bytes()
    _check(invoke("run", *TINY, "--seed", "5", "--output", out), 2, "--output", "seed: 0 -> 5", "--fresh")
    assert (out / "metrics.json").read_bytes() == before


def test_failed_start_does_not_block_the_corrected_run(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--optimizer", "sgd", "--lr", "1e30", "--no-emu", "--eval-every", "1000",
                    "--output", out)
    _check(result, 1, "training diverged", "no checkpoint had been written yet")
    assert not (out / "last.pt").exists()
    _check(invoke("run", *TINY, "--output", out), 0)   # another lr: not refused


def test_divergence_names_the_checkpoint_it_keeps(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--optimizer", "sgd", "--lr", "1e30", "--no-emu", "--eval-every", "1",
                    "--output", out)
    text = _check(result, 1, "training diverged", "by step 2", "the loss was exploding",
                  f"the last checkpoint, at step 1, is kept in {out / 'last.pt'}")
    assert text and (out / "last.pt").exists()


# --------------------------------------------------------------------------- interruptions
SHORT = ["--steps", "30", "--dim", "8", "--num-negatives", "8", "--batch-size", "64", "--eval-every", "10",
         "--no-progress"]


def _cli(args, signal_at=None, timeout=300):
    """``python -m dgl_emu`` in its own process; killed by its PID on timeout."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("DGL_EMU_TEST_SIGNAL", None)
    if signal_at:
        env["DGL_EMU_TEST_SIGNAL"] = signal_at
    proc = subprocess.Popen([sys.executable, "-m", "dgl_emu", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return proc.returncode, out


def _losses(run_dir: Path):
    lines = [json.loads(x, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
             for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if "loss" in r]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    code, text = _cli(["run", *SHORT, "--output", out])
    assert code == 0, text
    return out


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, straight, how):
    out = tmp_path / "run"
    code, text = _cli(["run", *SHORT, "--output", out], signal_at=f"{how}@13")
    graceful = how != "SIGKILL"
    if graceful:  # Ctrl-C or SIGTERM: the step finishes, a checkpoint at step 13, one line how to resume
        assert code == (130 if how == "SIGINT" else 143) and "Traceback" not in text and "Error:" not in text, text
        verb = "Interrupted" if how == "SIGINT" else "Terminated"
        lines = [x for x in text.splitlines() if x.startswith(verb)]
        assert len(lines) == 1 and lines[0].startswith(f"{verb} at step 13: {out / 'last.pt'} holds the run; "
                                                       f"to resume it, run: dgl-emu run "), text
        assert json.loads(json.dumps(_losses(out)))[-1][0] == 13
    else:         # killed: the checkpoint of step 10 survives
        assert code == -signal.SIGKILL, text
    code, text = _cli(["run", *SHORT, "--output", out])
    assert code == 0, text
    assert f"resumed {out} at step {13 if graceful else 10} of 30" in text
    assert _losses(out) == _losses(straight)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (out, straight))
    assert a["test"] == b["test"] and a["validations"] == b["validations"]
    assert a["wall_seconds"] > 0 and a["train_seconds"] > 0
    resumed_at = 13 if graceful else 10  # each invocation that trained, from its first step
    assert [e["from_step"] for e in a["environments"]] == [0, resumed_at]
    assert [e["from_step"] for e in b["environments"]] == [0]


def test_interrupted_fresh_run_mixes_nothing(tmp_path, straight):
    """A --fresh re-run killed before its first checkpoint leaves the old run whole (aside) and no
    old file beside the new configuration."""
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    old_metrics = (out / "metrics.json").read_bytes()
    code, text = _cli(["run", *SHORT, "--seed", "7", "--fresh", "--output", out], signal_at="SIGKILL@5")
    assert code == -signal.SIGKILL, text
    assert not {"best.pt", "last.pt", "metrics.json", "curve.png"} & {p.name for p in out.iterdir()}
    aside = tmp_path / ".run.previous"
    assert (aside / "metrics.json").read_bytes() == old_metrics
    code, text = _cli(["evaluate", out])
    assert code == 2 and "not a run directory" in text and "Traceback" not in text
    code, text = _cli(["run", *SHORT, "--seed", "7", "--fresh", "--output", out])
    assert code == 0, text
    assert not aside.exists()   # deleted once the new run had a checkpoint


def test_interrupted_run_loses_only_the_steps_after_its_wall_time_checkpoint(tmp_path, straight):
    """With a checkpoint due after every step (1 ns), SIGKILL after step 13 leaves the checkpoint
    of step 12, not a validation step (those are 10, 20, 30); the command resumes there without
    the option (how often to checkpoint changes no number, so it may change on resume), to the
    uninterrupted result."""
    out = tmp_path / "run"
    code, text = _cli(["run", *SHORT, "--checkpoint-every-seconds", "1e-9", "--output", out],
                      signal_at="SIGKILL@13")
    assert code == -signal.SIGKILL, text
    code, text = _cli(["run", *SHORT, "--output", out])
    assert code == 0 and f"resumed {out} at step 12 of 30" in text, text
    assert _losses(out) == _losses(straight)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (out, straight))
    assert a["test"] == b["test"] and a["validations"] == b["validations"] and a["best_step"] == b["best_step"]
    assert a["config"]["training"]["checkpoint_every_seconds"] == 300.0   # this invocation's (the default)
