"""The ``dgl-emu`` command line through click's test runner."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from dgl_emu.config import RunConfig
from dgl_emu.data import DATASETS, load_dataset
from dgl_emu.nn.interactions import INTERACTIONS
from dgl_emu.pipeline import load_run
from dgl_emu.typing import Target

from .clihelp import SHARED_DATASETS, TINY, invoke

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KG = load_dataset("synthetic")           # the graph `run` trains on by default (seed 0)


def step_lines(run_dir):
    return [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if '"loss"' in x]


# --------------------------------------------------------------------------- run
def test_run_writes_the_run_directory(base_run):
    out, result = base_run
    assert "split  side" in result.output and "run directory" in result.output
    for name in ("config.yaml", "metrics.json", "best.pt", "last.pt", "log.jsonl", "curve.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    test_mrr = metrics["test"]["both"]["realistic"]["mrr"]
    assert 0.0 <= test_mrr <= 1.0
    assert metrics["steps"] == 40 and metrics["stop_reason"] is None
    assert metrics["test"]["both"]["realistic"]["count"] == 2 * len(KG.splits["test"])
    # the printed table is the metrics file
    row = next(x for x in result.output.splitlines() if x.startswith("test   both"))
    assert row.split()[2] == f"{test_mrr:.4f}"
    assert [r["step"] for r in step_lines(out)] == list(range(1, 41))
    assert (out / "curve.png").read_bytes()[:8] == PNG_MAGIC
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["training"]["steps"], cfg["model"]["dim"], cfg["sampler"]["num_negatives"],
            cfg["training"]["batch_size"], cfg["training"]["eval_every"]) == (40, 8, 8, 64, 20)
    assert cfg["data"]["dataset"] == "synthetic" and cfg["emu"]["name"] == "mutation" and cfg["output"] == str(out)
    assert RunConfig.from_dict(cfg).to_dict() == cfg  # the resolved file reads back as itself
    # best.pt is the validation with the highest MRR
    assert [v["step"] for v in metrics["validations"]] == [20, 40]
    best = max(metrics["validations"], key=lambda v: v["valid_mrr"])
    state = torch.load(out / "best.pt", weights_only=False)
    assert state["step"] == metrics["best_step"] == best["step"]
    assert state["valid_mrr"] == metrics["best_valid_mrr"] == best["valid_mrr"]
    assert metrics["valid"]["both"]["realistic"]["mrr"] == pytest.approx(best["valid_mrr"], abs=1e-12)


def test_rerun_resumes_without_retraining(base_run):
    out, _ = base_run
    before = {n: (out / n).read_bytes() for n in ("log.jsonl", "last.pt", "best.pt")}
    metrics_before = json.loads((out / "metrics.json").read_text())
    result = invoke("run", *TINY, "--output", out)
    assert result.exit_code == 0, result.output
    assert {n: (out / n).read_bytes() for n in before} == before      # nothing trained or rewritten
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 40 and len(step_lines(out)) == 40
    assert metrics["test"] == metrics_before["test"] and metrics["validations"] == metrics_before["validations"]
    # progress bars are not part of a run's identity: toggling them still resumes
    result = invoke("run", *[a for a in TINY if a != "--no-progress"], "--output", out)
    assert result.exit_code == 0, result.output
    assert {n: (out / n).read_bytes() for n in before} == before


def test_other_config_into_same_output_is_refused(base_run):
    out, _ = base_run
    metrics = (out / "metrics.json").read_bytes()
    args = [a if a != "8" else "16" for a in TINY]       # --dim 16 --negatives 16
    result = invoke("run", *args, "--output", out)
    assert result.exit_code == 2
    assert "--output" in result.output and "--fresh" in result.output
    assert (out / "metrics.json").read_bytes() == metrics
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["dim"] == 8


def test_fresh_restarts(tmp_path):
    out = tmp_path / "run"
    short = ["--steps", "20", "--dim", "8", "--negatives", "8", "--batch-size", "64", "--eval-every", "10",
             "--no-progress", "--output", out]
    assert invoke("run", *short).exit_code == 0
    first = step_lines(out)
    mtime = (out / "last.pt").stat().st_mtime_ns
    # same config, --fresh: trains again from step 0, the log is rewritten (not appended), same numbers
    assert invoke("run", *short, "--fresh").exit_code == 0
    again = step_lines(out)
    assert (out / "last.pt").stat().st_mtime_ns != mtime
    assert [(r["step"], r["loss"]) for r in again] == [(r["step"], r["loss"]) for r in first]
    # --fresh also accepts another configuration for the same directory
    result = invoke("run", *short, "--fresh", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 1
    other = step_lines(out)
    assert len(other) == 20 and [r["loss"] for r in other] != [r["loss"] for r in first]


def test_config_file_with_command_line_override(tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"steps": 20, "dim": 16, "num_negatives": 4, "batch_size": 64,
                                    "eval_every": 10, "model": "distmult", "progress": False}))
    out = tmp_path / "run"
    result = invoke("run", "--config", conf, "--dim", "8", "--output", out)
    assert result.exit_code == 0, result.output
    cfg = RunConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert cfg.get("model.dim") == 8                                   # the command line wins
    assert (cfg.get("training.steps"), cfg.get("sampler.num_negatives"), cfg.model.name) == (20, 4, "distmult")
    assert torch.load(out / "best.pt", weights_only=False)["model"]["encoder.entity"].shape == (384, 8)


@pytest.mark.parametrize("args,needles", [
    (["--no-such-option", "1"], ["No such option"]),
    (["--model", "foo"], ["--model"] + INTERACTIONS.names()),
    (["--keep-prob", "1.5"], ["--keep-prob", "[0, 1]"]),
    (["--dim", "-3"], ["--dim", "positive"]),
    (["--steps", "0"], ["--steps"]),
    (["--dataset", "nope"], ["--dataset", "synthetic"] + DATASETS.names()),
    (["--sampler", "hard"], ["--sampler", "uniform", "bernoulli", "sans"]),
    (["--device", "tpu:x"], ["--device"]),
])
def test_bad_options_exit_2(tmp_path, args, needles):
    result = invoke("run", *args, "--output", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_unknown_key_in_config_file(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("steps: 10\nnum_negativs: 4\n")
    result = invoke("run", "--config", conf, "--output", tmp_path / "run")
    assert result.exit_code == 2
    assert str(conf) in result.output and "num_negativs" in result.output


def test_bad_train_file_names_file_and_line(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("a\tr\tb\nb\tr\tc\nc\tr\n")
    out = tmp_path / "run"
    result = invoke("run", "--train", train, "--steps", "5", "--output", out, "--no-progress")
    assert result.exit_code != 0
    assert f"{train}:3" in result.output and "Traceback" not in result.output
    assert not (out / "metrics.json").exists()


# --------------------------------------------------------------------------- evaluate
def test_evaluate_reproduces_the_run_metrics(base_run):
    out, _ = base_run
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        args = ("evaluate", out, "--split", split) if split == "valid" else ("evaluate", out)
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        written = json.loads((out / f"eval-{split}.json").read_text())
        assert written["split"] == split
        assert written["metrics"] == metrics[split]             # same weights, same numbers
        row = next(x for x in result.output.splitlines() if x.startswith(f"{split:5s}  both"))
        assert row.split()[2] == f"{metrics[split]['both']['realistic']['mrr']:.4f}"


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--head", "x", "--relation", "y"]])
def test_commands_reject_a_non_run_directory(tmp_path, command):
    result = invoke(command[0], tmp_path, *command[1:])
    assert result.exit_code == 2 and "not a run directory" in result.output


# --------------------------------------------------------------------------- predict
def _query(target: Target):
    h, r, t = KG.splits["train"][0].tolist()
    anchor = KG.entity_labels[h if target is Target.TAIL else t]
    return anchor, KG.relation_labels[r], (h, r, t)


@pytest.mark.parametrize("target", [Target.TAIL, Target.HEAD])
def test_predict_top_k_filtered(base_run, target):
    out, _ = base_run
    anchor, rel, (h, r, t) = _query(target)
    side = "--head" if target is Target.TAIL else "--tail"
    result = invoke("predict", out, side, anchor, "--relation", rel, "--top-k", "5", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [x["rank"] for x in rows] == [1, 2, 3, 4, 5]
    scores = [x["score"] for x in rows]
    assert scores == sorted(scores, reverse=True)
    ids = [KG.entity_to_id[x["entity"]] for x in rows]   # labels from the KG
    triples = torch.tensor([(h, r, e) if target is Target.TAIL else (e, r, t) for e in ids])
    assert not KG.filter_index().contains(triples).any()
    # the same ranking as the best model's 1-vs-all scores with every known triple removed
    _, kg, model, graph = load_run(out)
    with torch.no_grad():
        full = model.scorer(graph)(torch.tensor([[h, r, t]]), target)[0]
    cand = torch.tensor([(h, r, e) if target is Target.TAIL else (e, r, t) for e in range(kg.num_entities)])
    full[kg.filter_index().contains(cand)] = float("-inf")
    assert ids == torch.topk(full, 5).indices.tolist()
    torch.testing.assert_close(torch.tensor(scores, dtype=torch.float64), full[ids].double(), rtol=1e-6, atol=1e-6)


def test_predict_table_and_unfiltered(base_run):
    out, _ = base_run
    anchor, rel, (h, r, t) = _query(Target.TAIL)
    result = invoke("predict", out, "--head", anchor, "--relation", rel, "--top-k", "3")
    assert result.exit_code == 0 and f"({anchor}, {rel}, ?)" in result.output
    assert "known triples filtered" in result.output and len(result.output.strip().splitlines()) == 4
    rows = json.loads(invoke("predict", out, "--head", anchor, "--relation", rel, "--top-k",
                             str(KG.num_entities), "--unfiltered", "--json").output)
    assert len(rows) == KG.num_entities              # nothing removed: every entity is ranked


@pytest.mark.parametrize("args,needle", [
    (["--head", "not-an-entity", "--relation", "{rel}"], "not-an-entity"),
    (["--head", "{ent}", "--relation", "not-a-relation"], "not-a-relation"),
    (["--relation", "{rel}"], "exactly one of --head and --tail"),
    (["--head", "{ent}", "--tail", "{ent}", "--relation", "{rel}"], "exactly one of --head and --tail"),
    (["--head", "{ent}", "--relation", "{rel}", "--top-k", "0"], "--top-k"),
])
def test_predict_bad_queries_exit_2(base_run, args, needle):
    out, _ = base_run
    ent, rel, _ = _query(Target.TAIL)
    result = invoke("predict", out, *[a.format(ent=ent, rel=rel) for a in args])
    assert result.exit_code == 2, result.output
    assert needle in result.output


# --------------------------------------------------------------------------- datasets, components, entry point
def test_datasets_lists_registry():
    result = invoke("datasets")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()[2:]]
    assert names == DATASETS.names() + ["synthetic"]


def test_datasets_info():
    result = invoke("datasets", "info", "umls")
    assert result.exit_code == 0
    counts = DATASETS.get("umls").counts
    assert json.dumps(counts) in result.output and '"entities": 135' in result.output
    bad = invoke("datasets", "info", "nope")
    assert bad.exit_code == 2 and "umls" in bad.output


def test_datasets_verify_umls():
    if not (SHARED_DATASETS / "umls").is_dir():
        pytest.skip(f"offline dataset copy not available: {SHARED_DATASETS / 'umls'}")
    result = invoke("datasets", "--data-dir", SHARED_DATASETS, "verify", "umls")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"umls/{s}.txt: OK (registered sha256)" for s in ("train", "valid", "test")]


def test_datasets_verify_missing_files(tmp_path):
    result = invoke("datasets", "--data-dir", tmp_path, "verify", "umls")
    assert result.exit_code == 1 and "umls" in result.output and "Traceback" not in result.output


def test_components_lists_every_registry():
    from dgl_emu.config import COMPONENTS
    result = invoke("components")
    assert result.exit_code == 0
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    assert lines["model"].split(", ") == INTERACTIONS.names()
    assert set(lines) == set(COMPONENTS) | {"datasets"}
    for section, spec in COMPONENTS.items():
        assert lines[section].split(", ") == spec.names(), section
    assert {"uniform", "bernoulli", "sans"} <= set(lines["sampler"].split(", "))


def test_components_options_are_the_constructor_arguments():
    result = invoke("components", "--options")
    assert result.exit_code == 0
    assert "  sans: num_negatives=64, k=3, num_walks=1000, filtered=False" in result.output.splitlines()
    assert "  conve: dim=64, gamma=12.0, height=None, num_filters=32, kernel=3, dropout=0.0" in result.output
    lines = result.output.splitlines()
    assert ("  tucker: dim=64, gamma=12.0, relation_dim=None, input_dropout=0.0, hidden_dropout1=0.0, "
            "hidden_dropout2=0.0, batch_norm=True") in lines
    assert "  transd: dim=64, gamma=12.0, p_norm=1, normalize=True" in lines
    assert "  protate: dim=64, gamma=12.0, modulus=None, learn_modulus=True, half_angle=False" in lines
    for name in ("rescal", "hole", "simple", "quate", "cp"):
        assert f"  {name}: dim=64, gamma=12.0" in lines


def test_python_m_help():
    proc = subprocess.run([sys.executable, "-m", "dgl_emu", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "evaluate", "predict", "datasets", "components"):
        assert command in proc.stdout


def test_umls_smoke(tmp_path):
    if not (SHARED_DATASETS / "umls").is_dir():
        pytest.skip(f"offline dataset copy not available: {SHARED_DATASETS / 'umls'}")
    out = tmp_path / "umls"
    result = invoke("run", "--dataset", "umls", "--data-dir", SHARED_DATASETS, "--model", "distmult",
                    "--steps", "20", "--dim", "8", "--negatives", "8", "--batch-size", "128",
                    "--eval-every", "20", "--no-progress", "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    counts = DATASETS.get("umls").counts
    assert metrics["dataset"]["entities"] == counts["entities"]
    assert metrics["test"]["both"]["realistic"]["count"] == 2 * counts["test"]
    assert 0.0 < metrics["test"]["both"]["realistic"]["mrr"] <= 1.0


def test_sampled_evaluation_is_labelled_in_the_results(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--evaluator", "sampled", "--set", "evaluator.num_negatives=20",
                    "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert metrics[split]["protocol"] == ("sampled: 20 uniform negatives per query (known answers "
                                              "excluded), seed 5")
    assert metrics["config"]["evaluator"] == {"name": "sampled", "num_negatives": 20, "max_rounds": 100}
