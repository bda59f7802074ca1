"""``python -m benchmarks grid``: grid expansion, validation, skip/resume, failures; ``aggregate``."""
from __future__ import annotations

import json
import sys
import math
import statistics
from pathlib import Path

import pytest
import torch
from scipy.stats import t as student_t

from dgl_emu.config import RunConfig
from dgl_emu.utils import atomic_write_json

from benchmarks.agglib import plots
from benchmarks.agglib.aggregate import aggregate
from benchmarks.agglib.records import load_results
from benchmarks.agglib.report import fmt_diff
from benchmarks.agglib.stats import paired_difference, verdict
from benchmarks.gridlib import runner
from benchmarks.gridlib.spec import GridError, expand, load_grid

from .conftest import BENCHMARKS, GRIDS, bench

SMOKE = GRIDS / "smoke.yaml"
SMOKE_IDS = ["synthetic-transe-uniform-plain-d8-s0", "synthetic-transe-uniform-emu-d8-s0",
             "synthetic-distmult-uniform-plain-d8-s0", "synthetic-distmult-uniform-emu-d8-s0"]
REPO = BENCHMARKS.parent


def _dirs(tmp_path):
    return ["--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")]


def _metrics(cfg: RunConfig, mrr: float, hits1: float) -> dict:
    real = {"mrr": mrr, "mr": 1.0 / mrr, "hits@1": hits1, "hits@3": min(1.0, 2 * hits1),
            "hits@10": min(1.0, 3 * hits1), "count": 100}
    steps = cfg.training.steps
    return {"config": cfg.to_dict(), "steps": steps, "best_step": steps, "best_valid_mrr": mrr,
            "train_seconds": 0.1, "stop_reason": None, "validations": [], "dataset": {},
            "valid": {"both": {"realistic": real}}, "test": {"both": {"realistic": real}}}


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace the training by a stub writing metrics.json; records the configs it was given.

    A run whose id contains ``fake_pipeline.fail_on`` raises instead.
    """
    import dgl_emu.pipeline as pipeline

    class Fake:
        calls = []
        fail_on = None
        chosen = {}  # options the run records as chosen from its data

        def __call__(self, cfg, resume=True):
            out = Path(cfg.output)
            self.calls.append(out.name)
            if self.fail_on and self.fail_on in out.name:
                raise RuntimeError("boom: simulated failure")
            out.mkdir(parents=True, exist_ok=True)
            metrics = _metrics(cfg.updated(**self.chosen), 0.25, 0.125)
            atomic_write_json(out / "metrics.json", metrics)
            return pipeline.RunResult(out, metrics)

    fake = Fake()
    fake.calls = []
    monkeypatch.setattr(pipeline, "run", fake)
    return fake


# ---------------------------------------------------------------------------- expansion
def test_smoke_grid_expands_to_expected_run_ids(tmp_path):
    grid = load_grid(SMOKE)
    assert grid.name == "smoke"
    runs = expand(grid, work_dir=tmp_path / "w", results_dir=tmp_path / "r")
    assert [r.run_id for r in runs] == SMOKE_IDS
    for r in runs:
        assert r.run_dir == (tmp_path / "w" / r.run_id).resolve()
        assert r.result_path == (tmp_path / "r" / f"{r.run_id}.json").resolve()
        assert Path(r.config.output) == r.run_dir
        a = r.config.aliased()
        assert (a["dataset"], a["dim"], a["steps"], a["eval_every"]) == ("synthetic", 8, 30, 15)
        assert r.config.progress is False


def test_default_directories_are_under_benchmarks():
    runs = expand(load_grid(SMOKE))
    assert runs[0].run_dir == BENCHMARKS / "work" / "smoke" / SMOKE_IDS[0]
    assert runs[0].result_path == BENCHMARKS / "results" / "smoke" / f"{SMOKE_IDS[0]}.json"


def test_per_value_overrides_apply(tmp_path):
    runs = expand(load_grid(SMOKE), work_dir=tmp_path)
    lrs = {r.run_id: r.config.get("optimizer.lr") for r in runs}
    assert lrs == {SMOKE_IDS[0]: 0.05, SMOKE_IDS[1]: 0.05, SMOKE_IDS[2]: 0.1, SMOKE_IDS[3]: 0.1}
    assert [r.config.emu_enabled for r in runs] == [False, True, False, True]


def test_shared_negatives_grid_names_its_chunks_and_shares_p1_ids(tmp_path):
    """A section option as an axis names the run by its last name (``chunk_size256``); an unset
    value names nothing, so those runs keep p1-shallow's ids (and its finished results)."""
    runs = expand(load_grid(GRIDS / "shared-negatives.yaml"), work_dir=tmp_path)
    p1 = {r.run_id for r in expand(load_grid(GRIDS / "p1-shallow.yaml"), work_dir=tmp_path)}
    chunked = [r for r in runs if r.config.get("sampler.chunk_size") == 256]
    independent = [r for r in runs if r.config.get("sampler.chunk_size") is None]
    assert len(chunked) == len(independent) == 12 == len({r.run_id for r in runs}) // 2
    assert all(r.run_id.endswith("-chunk_size256") for r in chunked)
    assert {r.run_id for r in independent} <= p1


def test_published_grids_expand(tmp_path):
    p1 = expand(load_grid(GRIDS / "p1-shallow.yaml"), work_dir=tmp_path)
    assert len(p1) == 3 * 4 * 2 * 2 * 3 + 3 * 3 == len({r.run_id for r in p1})
    by_id = {r.run_id: r.config.aliased() for r in p1}
    d500 = sorted(i for i in by_id if "-d500-" in i)
    assert d500 == sorted(f"{ds}-distmult-uniform-plain-d500-s{s}"
                          for ds in ("umls", "kinships", "codex-s") for s in range(3))
    cfg = by_id["umls-distmult-uniform-emu-d100-s0"]
    assert tuple(cfg[k] for k in ("lr", "optimizer", "batch_size", "num_negatives", "switch_to_adam")) == \
        (0.1, "adagrad", 1000, 256, True)
    assert (cfg["steps"], cfg["loss"]) == (2000, "ce") and "sans_k" not in cfg and "sans_walks" not in cfg
    sans = by_id["umls-distmult-sans-emu-d100-s0"]
    assert (sans["sans_k"], sans["sans_walks"]) == (3, 1000)
    assert (cfg["eval_every"], cfg["patience"]) == (20, 10)       # early stopping: these datasets overfit fast
    # the superseded first protocol: same runs, validation every 200 steps, no early stopping
    coarse = expand(load_grid(GRIDS / "p1-shallow-coarse.yaml"), work_dir=tmp_path)
    assert [r.run_id for r in coarse] == [r.run_id for r in p1]
    for a, b in zip(coarse, p1):
        diff = {k for k, v in a.config.aliased().items() if b.config.aliased()[k] != v}
        assert diff <= {"eval_every", "patience", "output"}, diff
    assert {(r.config.training.eval_every, r.config.training.patience) for r in coarse} == {(200, None)}
    assert by_id["codex-s-rotate-sans-plain-d100-s2"]["lr"] == 0.05
    assert by_id["kinships-transe-uniform-plain-d100-s1"]["lr"] == 0.05
    assert by_id["kinships-complex-sans-emu-d100-s1"]["lr"] == 0.1
    assert cfg["data_dir"] == str((REPO / "../shared/datasets").resolve())  # relative to the repository root

    p2 = expand(load_grid(GRIDS / "p2-large.yaml"), work_dir=tmp_path)
    ids = [r.run_id for r in p2]
    assert len(ids) == 10
    assert sorted(i for i in ids if "-d500-" in i) == ["fb15k-237-distmult-uniform-plain-d500-s0",
                                                       "wn18rr-distmult-uniform-plain-d500-s0"]
    assert all(r.config.training.steps == 20000 and r.config.training.eval_every == 2000 for r in p2)

    gnn = expand(load_grid(GRIDS / "gnn.yaml"), work_dir=tmp_path)
    assert len(gnn) == 3 * 2 * 2 * 3
    assert {r.config.encoder.name for r in gnn} == {"rgcn", "compgcn"}
    assert all(tuple(r.config.aliased()[k] for k in ("optimizer", "lr", "steps", "dim")) == ("adam", 0.01, 1000, 100)
               for r in gnn)
    assert "kinships-compgcn-distmult-uniform-emu-d100-s2" in {r.run_id for r in gnn}


def test_extra_axes_and_exclude(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("name: g\nbase: {dim: 8}\naxes:\n  model: [transe, rotate]\n  lr: [0.05, 0.1]\n"
                    "exclude:\n  - {model: rotate, lr: 0.1}\n")
    ids = [r.run_id for r in expand(load_grid(path), work_dir=tmp_path)]
    assert ids == ["synthetic-transe-uniform-emu-d8-s0-lr0.05", "synthetic-transe-uniform-emu-d8-s0-lr0.1",
                   "synthetic-rotate-uniform-emu-d8-s0-lr0.05"]


BAD_GRIDS = {
    "unknown axis field": ("name: bad\naxes: {modle: [transe]}\n", "axes.modle"),
    "invalid axis value": ("name: bad\naxes: {model: [transe, nosuchmodel]}\n", "model"),
    "invalid base value": ("name: bad\nbase: {dim: 0}\naxes: {model: [transe]}\n", "dim"),
    "invalid enum": ("name: bad\nbase: {sampler: magic}\naxes: {seed: [0]}\n", "sampler"),
    "unknown dataset": ("name: bad\nbase: {dataset: nosuchkg}\naxes: {seed: [0]}\n", "dataset"),
    "per_value value not on axis": ("name: bad\naxes: {model: [transe]}\nper_value: {model: {transee: {lr: 0.1}}}\n",
                                    "per_value.model.transee"),
    "per_value bad field": ("name: bad\naxes: {model: [transe]}\nper_value: {model: {transe: {learning_rate: 1}}}\n",
                            "learning_rate"),
    "exclude matches nothing": ("name: bad\naxes: {model: [transe]}\nexclude: [{model: rotate}]\n", "exclude[0]"),
    "output is the runner's": ("name: bad\nbase: {output: x}\naxes: {seed: [0]}\n", "base.output"),
    "axis not a list": ("name: bad\naxes: {seed: 0}\n", "axes.seed"),
    "unknown top-level key": ("name: bad\naxis: {seed: [0]}\n", "axis"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_invalid_grid_fails_before_training(fake_pipeline, tmp_path, capsys, case):
    text, field = BAD_GRIDS[case]
    path = tmp_path / "bad-grid.yaml"
    path.write_text(text)
    assert bench("grid", str(path), *_dirs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err and field in err, err
    assert fake_pipeline.calls == []
    assert not (tmp_path / "work").exists() and not (tmp_path / "results").exists()


def test_bad_value_later_in_grid_stops_everything(fake_pipeline, tmp_path, capsys):
    """Validation covers every run before the first one trains."""
    path = tmp_path / "late.yaml"
    path.write_text("name: late\nbase: {dim: 8, steps: 5}\naxes:\n  model: [transe, distmult]\n"
                    "per_value: {model: {distmult: {keep_prob: 1.5}}}\n")
    assert bench("grid", str(path), *_dirs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "keep_prob" in err and "model=distmult" in err
    assert fake_pipeline.calls == []


# ---------------------------------------------------------------------------- runner (stubbed training)
def test_dry_run_trains_nothing(fake_pipeline, tmp_path, capsys):
    assert bench("grid", str(SMOKE), "--dry-run", *_dirs(tmp_path)) == 0
    out = capsys.readouterr().out
    assert out.count("would train") == 4 and all(i in out for i in SMOKE_IDS)
    assert fake_pipeline.calls == [] and not (tmp_path / "work").exists()


def test_only_and_max_runs(fake_pipeline, tmp_path, capsys):
    assert bench("grid", str(SMOKE), "--only", "distmult", "--max-runs", "1", *_dirs(tmp_path)) == 0
    assert fake_pipeline.calls == [SMOKE_IDS[2]]
    out = capsys.readouterr().out
    assert "[1/2]" in out and "1 not started" in out
    assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 0
    assert fake_pipeline.calls == [SMOKE_IDS[2], SMOKE_IDS[0], SMOKE_IDS[1], SMOKE_IDS[3]]
    out = capsys.readouterr().out
    assert f"{SMOKE_IDS[2]}: skipped (finished)" in out and "ETA" in out


def test_failing_run_is_recorded_and_others_continue(fake_pipeline, tmp_path, capsys):
    fake_pipeline.fail_on = "transe-uniform-emu"
    assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "RuntimeError: boom" in captured.out
    assert SMOKE_IDS[1] in captured.err
    error = (tmp_path / "work" / SMOKE_IDS[1] / "error.txt").read_text()
    assert "Traceback" in error and "boom: simulated failure" in error
    results = sorted(p.stem for p in (tmp_path / "results").glob("*.json"))
    assert results == sorted(set(SMOKE_IDS) - {SMOKE_IDS[1]})
    # fixed: the re-run trains only the failed run and clears its error.txt
    fake_pipeline.fail_on = None
    assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 0
    assert fake_pipeline.calls[-1] == SMOKE_IDS[1] and len(fake_pipeline.calls) == 5
    assert not (tmp_path / "work" / SMOKE_IDS[1] / "error.txt").exists()


def test_changed_grid_is_refused(fake_pipeline, tmp_path, capsys):
    assert bench("grid", str(SMOKE), "--max-runs", "1", *_dirs(tmp_path)) == 0
    changed = tmp_path / "smoke.yaml"
    changed.write_text(SMOKE.read_text().replace("steps: 30", "steps: 40"))
    assert bench("grid", str(changed), *_dirs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "steps" in err and SMOKE_IDS[0] in err
    assert len(fake_pipeline.calls) == 1


def test_a_choice_a_run_recorded_is_not_a_change_of_the_grid(fake_pipeline, tmp_path, capsys):
    """The grid leaves encoder.sparse to the data (null); a finished run records false: the grid
    skips it. A run that recorded another explicit value than the grid's is refused."""
    fake_pipeline.chosen = {"encoder.sparse": False}
    assert bench("grid", str(SMOKE), "--max-runs", "1", *_dirs(tmp_path)) == 0
    assert bench("grid", str(SMOKE), "--max-runs", "1", *_dirs(tmp_path)) == 0
    assert len(fake_pipeline.calls) == 2 and fake_pipeline.calls[0] != fake_pipeline.calls[1]
    changed = tmp_path / "smoke.yaml"
    changed.write_text(SMOKE.read_text().replace("  progress: false", "  progress: false\n  encoder.sparse: true"))
    capsys.readouterr()
    assert bench("grid", str(changed), *_dirs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "finished with different encoder.sparse" in err and len(fake_pipeline.calls) == 2, err


# ---------------------------------------------------------------------------- runner (real training)
def test_smoke_grid_runs_skips_and_resumes(tmp_path, capsys, monkeypatch):
    from dgl_emu.pipeline import run as run_pipeline
    from dgl_emu.training.trainer import Trainer

    work, results = tmp_path / "work", tmp_path / "results"
    args = [str(SMOKE), *_dirs(tmp_path)]

    # 1. interrupt the first run after its checkpoint at step 15 (like Ctrl-C or a kill)
    original = Trainer.save_checkpoint

    def interrupted(self):
        path = original(self)
        if self.step >= 15:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Trainer, "save_checkpoint", interrupted)
    assert bench("grid", *args, "--max-runs", "1") == 130
    monkeypatch.undo()
    first = work / SMOKE_IDS[0]
    assert (first / "last.pt").exists() and not (first / "metrics.json").exists()
    assert torch.load(first / "last.pt", weights_only=False)["step"] == 15
    capsys.readouterr()

    # 2. the same command resumes it and runs the others
    assert bench("grid", *args) == 0
    out = capsys.readouterr().out
    assert f"{SMOKE_IDS[0]}: resumed at step 15, done in" in out
    assert out.count("done in") == 4 and "test MRR" in out and "ETA" in out
    assert sorted(p.name for p in results.glob("*.json")) == sorted(f"{i}.json" for i in SMOKE_IDS)
    for rid in SMOKE_IDS:
        assert json.loads((results / f"{rid}.json").read_text()) == json.loads((work / rid / "metrics.json").read_text())
    steps = [json.loads(line)["step"] for line in (first / "log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 31))  # continued at 16, not retrained from scratch
    # the resumed run matches an uninterrupted one
    resumed = json.loads((results / f"{SMOKE_IDS[0]}.json").read_text())
    cfg = RunConfig.from_dict(resumed["config"], {"output": str(tmp_path / "straight")})
    straight = run_pipeline(cfg).metrics
    assert straight["test"]["both"]["realistic"]["mrr"] == pytest.approx(
        resumed["test"]["both"]["realistic"]["mrr"], abs=1e-6)

    # 3. a second invocation skips everything
    assert bench("grid", *args) == 0
    out = capsys.readouterr().out
    assert out.count("skipped (finished)") == 4 and "done in" not in out

    # 4. metrics.json and results JSON lost, last.pt kept: resumes at the end, no retraining
    second = work / SMOKE_IDS[1]
    before = json.loads((results / f"{SMOKE_IDS[1]}.json").read_text())
    (second / "metrics.json").unlink()
    (results / f"{SMOKE_IDS[1]}.json").unlink()
    # 5. run directory gone but results JSON committed (a fresh clone): still finished
    import shutil
    shutil.rmtree(work / SMOKE_IDS[2])
    assert bench("grid", *args) == 0
    out = capsys.readouterr().out
    assert f"{SMOKE_IDS[1]}: resumed at step 30, done in" in out
    assert out.count("skipped (finished)") == 3
    after = json.loads((results / f"{SMOKE_IDS[1]}.json").read_text())
    assert after["test"] == before["test"] and after["best_step"] == before["best_step"]


# ---------------------------------------------------------------------------- aggregate
BASE_MRR = {"distmult": [0.30, 0.32, 0.34], "rotate": [0.50, 0.45, 0.55]}
EMU_MRR = {"distmult": [0.35, 0.36, 0.40], "rotate": [0.52, 0.46, 0.60]}
BASE_H1 = {"distmult": [0.20, 0.21, 0.25], "rotate": [0.40, 0.35, 0.45]}
EMU_H1 = {"distmult": [0.22, 0.26, 0.27], "rotate": [0.40, 0.37, 0.47]}


def _write_results(folder: Path, dims=(100,)) -> None:
    for model in BASE_MRR:
        for emu, mrrs, h1s in ((False, BASE_MRR, BASE_H1), (True, EMU_MRR, EMU_H1)):
            for seed in range(3):
                for dim in dims:
                    shift = 0.0 if dim == 100 else 0.04
                    cfg = RunConfig(dataset="umls", model=model, emu=emu, seed=seed, dim=dim)
                    name = f"umls-{model}-uniform-{'emu' if emu else 'plain'}-d{dim}-s{seed}.json"
                    atomic_write_json(folder / name, _metrics(cfg, mrrs[model][seed] + shift, h1s[model][seed]))


def _by_hand(base, emu):
    diffs = [e - b for b, e in zip(base, emu)]
    mean, sd = sum(diffs) / 3, math.sqrt(sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2)
    half = student_t.ppf(0.975, 2) * sd / math.sqrt(3)
    return mean, half


def test_aggregate_statistics_by_hand(tmp_path, capsys):
    res = tmp_path / "results"
    res.mkdir()
    _write_results(res)
    atomic_write_json(res / "speed-eval.json", {"benchmark": "eval"})  # not a run result: ignored
    assert bench("aggregate", str(res)) == 0
    stdout = capsys.readouterr().out
    summary = json.loads((res / "summary.json").read_text())
    rows = {r["model"]: r for r in summary["rows"]}
    assert [r["model"] for r in summary["rows"]] == ["distmult", "rotate"]
    d = rows["distmult"]
    assert (d["dataset"], d["encoder"], d["sampler"], d["dim"]) == ("umls", "lookup", "uniform", 100)
    assert d["baseline"]["n"] == d["emu"]["n"] == 3 and d["baseline"]["seeds"] == [0, 1, 2]
    assert d["baseline"]["mrr"]["mean"] == pytest.approx(0.32)
    assert d["baseline"]["mrr"]["std"] == pytest.approx(0.02)  # sample std (ddof 1)
    assert d["emu"]["mrr"]["mean"] == pytest.approx((0.35 + 0.36 + 0.40) / 3)
    assert d["emu"]["mrr"]["std"] == pytest.approx(statistics.stdev([0.35, 0.36, 0.40]))
    # paired differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01, t(0.975, 2) = 4.3027
    mean, half = _by_hand(BASE_MRR["distmult"], EMU_MRR["distmult"])
    assert mean == pytest.approx(0.05) and half == pytest.approx(4.302652729911275 * 0.01 / math.sqrt(3))
    diff = d["difference"]["mrr"]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(mean)
    assert diff["ci95"] == pytest.approx([mean - half, mean + half])
    for model in BASE_MRR:
        for metric, base, emu in (("mrr", BASE_MRR, EMU_MRR), ("hits@1", BASE_H1, EMU_H1)):
            m, h = _by_hand(base[model], emu[model])
            got = rows[model]["difference"][metric]
            assert got["mean"] == pytest.approx(m) and got["half_width"] == pytest.approx(h)
            assert rows[model]["baseline"][metric]["mean"] == pytest.approx(statistics.fmean(base[model]))
            assert rows[model]["emu"][metric]["std"] == pytest.approx(statistics.stdev(emu[model]))
    # Markdown table: printed and written, with the numbers formatted from the same values
    md = (res / "summary.md").read_text()
    row_line = next(line for line in md.splitlines() if "| distmult |" in line)
    assert "| umls | lookup | distmult | uniform | 100 | 3/3 | 0.3200 ± 0.0200 |" in row_line
    assert f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}]" in row_line
    assert row_line in stdout
    # verdicts from the intervals: MRR 0.05 ± 0.025 lies above 0; Hits@1 diffs 0.02, 0.05, 0.02
    # (mean 0.03, half-width 4.30 * 0.0173 / sqrt(3) = 0.043) contain 0
    assert row_line.endswith("| better / unclear |")
    assert rows["distmult"]["verdict"] == {"mrr": "better", "hits@1": "unclear"}
    # the docs' copy: the same table as an RST csv-table, one quoted cell per Markdown cell
    rst = (res / "summary.rst").read_text()
    cells = [c.strip() for c in row_line.strip().strip("|").split("|")]
    assert rst.startswith(".. csv-table::") and "   " + ", ".join(f'"{c}"' for c in cells) in rst.splitlines()
    assert (res / "mrr_hits1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (res / "dimension.png").exists()  # one dimension only
    assert (res / "differences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aggregate_dimension_plot_and_out_dir(tmp_path):
    res, out = tmp_path / "results", tmp_path / "out"
    res.mkdir()
    _write_results(res, dims=(100, 500))
    assert bench("aggregate", str(res), "--out", str(out)) == 0
    for name in ("summary.md", "summary.json", "mrr_hits1.png", "dimension.png"):
        assert (out / name).exists(), name
    assert (out / "dimension.png").read_bytes()[:4] == b"\x89PNG"
    assert not (res / "summary.md").exists()
    assert not (out / "curves.png").exists()     # no run recorded validations
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["rows"]) == 4
    comp = {(c["model"], c["emu_dim"], c["baseline_dim"]): c for c in summary["dimension"]}
    c = comp[("distmult", 100, 500)]
    assert c["mrr"]["emu"] == pytest.approx(statistics.fmean(EMU_MRR["distmult"]))
    assert c["mrr"]["baseline"] == pytest.approx(statistics.fmean(BASE_MRR["distmult"]) + 0.04)
    assert "larger dimension" in (out / "summary.md").read_text()


def test_paired_difference_edge_cases():
    one = paired_difference({0: 0.30}, {0: 0.35})
    assert one["n"] == 1 and one["ci95"] is None and one["note"] == "n=1"
    assert one["mean"] == pytest.approx(0.05)
    assert fmt_diff(one) == "+0.0500 (n=1)"
    assert verdict(one) == "higher (n=1)"
    worse = paired_difference({0: 0.40, 1: 0.41, 2: 0.42}, {0: 0.38, 1: 0.38, 2: 0.40})
    assert worse["ci95"][1] < 0 and verdict(worse) == "worse"
    assert verdict(None) == "—"
    unpaired = paired_difference({0: 0.30, 1: 0.40}, {2: 0.45})
    assert unpaired["note"] == "unpaired" and unpaired["mean"] == pytest.approx(0.10)
    assert verdict(unpaired) == "higher (unpaired)"
    assert paired_difference({0: 0.3}, {}) is None
    # only the seeds both sides have are paired
    partial = paired_difference({0: 0.1, 1: 0.2, 2: 0.3}, {0: 0.2, 1: 0.4})
    assert partial["seeds"] == [0, 1] and partial["mean"] == pytest.approx(0.15)


def test_aggregate_single_seed_and_missing_side(tmp_path):
    res = tmp_path / "r"
    res.mkdir()
    atomic_write_json(res / "a.json", _metrics(RunConfig(dataset="wn18rr", model="distmult", emu=False, dim=500), 0.4, 0.3))
    atomic_write_json(res / "b.json", _metrics(RunConfig(dataset="wn18rr", model="distmult", emu=False), 0.4, 0.3))
    atomic_write_json(res / "c.json", _metrics(RunConfig(dataset="wn18rr", model="distmult", emu=True), 0.45, 0.35))
    summary, table = aggregate(res)
    assert "+0.0500 (n=1)" in table
    d500 = next(r for r in summary["rows"] if r["dim"] == 500)
    assert d500["emu"] is None and d500["difference"] is None
    assert "| wn18rr | lookup | distmult | uniform | 500 | 1/0 | 0.4000 | — | — |" in table
    assert str(res / "differences.png") in summary["written"]   # one pair: a marker, no interval
    assert d500["verdict"] == {"mrr": "—", "hits@1": "—"}


def test_no_differences_plot_without_pairs(tmp_path):
    res = tmp_path / "r"
    res.mkdir()
    atomic_write_json(res / "a.json", _metrics(RunConfig(dataset="umls", model="distmult", emu=False), 0.4, 0.3))
    summary, _ = aggregate(res)
    assert not (res / "differences.png").exists()
    assert (res / "summary.md").exists()


def test_aggregate_refuses_duplicates_and_empty(tmp_path, capsys):
    res = tmp_path / "r"
    res.mkdir()
    assert bench("aggregate", str(res)) == 2
    cfg = RunConfig(dataset="umls", model="distmult", emu=True)
    atomic_write_json(res / "x.json", _metrics(cfg, 0.4, 0.3))
    atomic_write_json(res / "y.json", _metrics(cfg, 0.5, 0.3))
    assert bench("aggregate", str(res)) == 2
    assert "same run" in capsys.readouterr().err


def test_run_held_by_another_runner_is_left_to_it(fake_pipeline, tmp_path, capsys):
    """A run whose lock another live runner holds is skipped; once that runner is gone (killed:
    its lock file stays behind, naming a dead process) the next invocation takes the run over."""
    import subprocess
    held_id = SMOKE_IDS[1]
    run_dir = tmp_path / "work" / held_id
    run_dir.mkdir(parents=True)
    code = ("import sys; from dgl_emu.locking import DirectoryLock\n"
            f"DirectoryLock({str(run_dir / runner.LOCK_NAME)!r}).acquire()\n"
            "print('held', flush=True); sys.stdin.readline()\n")
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 0
        out = capsys.readouterr().out
        assert f"{held_id}: skipped (another runner, pid {other.pid}, is training it)" in out
        assert "3 done, 0 skipped, 0 failed, 1 being trained by another runner" in out
    finally:
        other.kill()
        other.wait()
    assert sorted(fake_pipeline.calls) == sorted(i for i in SMOKE_IDS if i != held_id)
    assert not (tmp_path / "results" / f"{held_id}.json").exists()
    assert (run_dir / runner.LOCK_NAME).exists()  # left by the killed runner
    # its holder is gone: the next invocation trains only the run that was held
    assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 0
    assert fake_pipeline.calls[-1] == held_id and len(fake_pipeline.calls) == 4
    assert not (run_dir / runner.LOCK_NAME).exists()  # released after the run


def test_run_finished_by_another_runner_after_the_scan_is_not_retrained(fake_pipeline, tmp_path,
                                                                         monkeypatch, capsys):
    """Between the start-up scan and taking a run's lock, another runner may finish it."""
    real_lock = runner.lock_run

    def lock_after_other_runner_finished(run_dir):
        handle = real_lock(run_dir)
        if run_dir.name == SMOKE_IDS[0]:
            atomic_write_json(run_dir / "metrics.json",
                              _metrics(RunConfig(dataset="synthetic"), 0.5, 0.5))
        return handle

    monkeypatch.setattr(runner, "lock_run", lock_after_other_runner_finished)
    assert bench("grid", str(SMOKE), *_dirs(tmp_path)) == 0
    assert SMOKE_IDS[0] not in fake_pipeline.calls and len(fake_pipeline.calls) == 3
    out = capsys.readouterr().out
    assert f"{SMOKE_IDS[0]}: skipped (finished by another runner)" in out
    assert "3 done, 1 skipped, 0 failed in" in out and "not started" not in out
    copied = json.loads((tmp_path / "results" / f"{SMOKE_IDS[0]}.json").read_text())
    assert copied["best_valid_mrr"] == 0.5


def test_aggregate_validation_curves(tmp_path, monkeypatch, capsys):
    res = tmp_path / "r"
    res.mkdir()
    for emu in (False, True):
        cfg = RunConfig(dataset="fb15k-237", model="distmult", emu=emu, steps=6, switch_to_adam=True)
        m = _metrics(cfg, 0.3, 0.2)
        m["validations"] = [{"step": s, "valid_mrr": 0.1 * s + (0.05 if emu else 0)} for s in (2, 4, 6)]
        atomic_write_json(res / f"{'emu' if emu else 'plain'}.json", m)
    records = load_results(res)
    # sorted by file name: emu.json, then plain.json
    assert [r["validations"] for r in records] == [[(s, 0.1 * s + 0.05) for s in (2, 4, 6)],
                                                  [(s, 0.1 * s) for s in (2, 4, 6)]]
    summary, _ = aggregate(res)
    assert (res / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert str(res / "curves.png") in summary["written"]
    assert "validations" not in json.dumps(summary)        # curves stay out of summary.json
    # too many groups for one figure: no curves.png, and a note says why
    (res / "curves.png").unlink()
    monkeypatch.setattr(plots, "MAX_CURVE_PANELS", 0)
    aggregate(res)
    assert not (res / "curves.png").exists()
    assert "curves.png not drawn" in capsys.readouterr().err


def test_dimension_plot_needs_one_series_at_two_dimensions(tmp_path):
    res = tmp_path / "r"
    res.mkdir()
    # two dimensions in the folder, but no model measured at both: nothing to plot
    atomic_write_json(res / "a.json", _metrics(RunConfig(dataset="umls", model="transe", emu=False, dim=100), 0.4, 0.3))
    atomic_write_json(res / "b.json", _metrics(RunConfig(dataset="umls", model="distmult", emu=False, dim=500), 0.5, 0.3))
    summary, _ = aggregate(res)
    assert not (res / "dimension.png").exists()
    atomic_write_json(res / "c.json", _metrics(RunConfig(dataset="umls", model="distmult", emu=True, dim=100), 0.6, 0.3))
    summary, _ = aggregate(res)
    assert (res / "dimension.png").read_bytes()[:4] == b"\x89PNG"


def test_new_grids_expand_with_config_files_and_shared_runs(tmp_path):
    """p2-published reads the shipped paper configurations under its own fields; the grids whose
    runs are shared with p1-shallow / p2-large give those runs the same ids and configurations."""
    p2 = {r.run_id: r.config for r in expand(load_grid(GRIDS / "p2-published.yaml"),
                                                        work_dir=tmp_path)}
    base = p2["fb15k-237-distmult-uniform-plain-d100-s0"]
    assert (base.regularizer.name, base.get("regularizer.weight"), base.get("regularizer.p")) == ("table", 1e-5, 3.0)
    assert base.training.steps == 20000 and base.training.batch_size == 1000   # the grid's budget wins
    assert p2["wn18rr-rotate-uniform-plain-d100-s0"].get("regularizer.weight") == 1e-3
    assert p2["wn18rr-rotate-uniform-plain-d100-s0"].get("optimizer.lr") == 0.05
    emu = p2["fb15k-237-distmult-uniform-emu-d100-s0"]
    control = p2["wn18rr-rotate-uniform-smoothing-d100-s0"]  # EMU's soft labels and r = 0, no mutation
    assert len(p2) == 14 and control.emu.name == "smoothing" and control.get("regularizer.weight") == 0.0
    assert (control.get("emu.negative_label"), control.get("emu.plain_weight")) == (0.53, 0.11)
    large = {r.run_id: r.config for r in expand(load_grid(GRIDS / "p2-large.yaml"),
                                                           work_dir=tmp_path)}
    assert emu.flat() | {"output": None} == large["fb15k-237-distmult-uniform-emu-d100-s0"].flat() | {"output": None}
    shallow = {r.run_id: r.config.flat() | {"output": None}
               for r in expand(load_grid(GRIDS / "p1-shallow.yaml"), work_dir=tmp_path)}
    for name, shared in (("p1-regimes", 36), ("p1-controls", 18)):
        runs = expand(load_grid(GRIDS / f"{name}.yaml"), work_dir=tmp_path)
        same = [r for r in runs if r.run_id in shallow]
        assert len(same) == shared and all(r.config.flat() | {"output": None} == shallow[r.run_id] for r in same)
    controls = {r.run_id: r.config for r in expand(load_grid(GRIDS / "p1-controls.yaml"),
                                                              work_dir=tmp_path)}
    assert controls["umls-complex-uniform-emu-2draws-d100-s1"].emu.options["separate_negatives"] is True
    assert controls["codex-s-distmult-uniform-smoothing-d100-s2"].emu.name == "smoothing"


def test_unreadable_config_file_names_the_grid(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nbase: {config: no/such/file.yaml, steps: 2}\naxes: {seed: [0]}\n")
    with pytest.raises(GridError) as err:
        expand(load_grid(grid), work_dir=tmp_path)
    assert str(err.value).startswith(f"{grid}: config: cannot read no/such/file.yaml")
