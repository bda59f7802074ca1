"""Every ``python -m benchmarks speed`` subcommand runs end to end on the generated KG and prints its JSON last."""
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from benchmarks.commands.speed import speed
from benchmarks.speedlib import report

from .conftest import BENCHMARKS


def _run(args):
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(speed, args + ["--dataset", "synthetic", "--no-save"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_train_step_reports_both_variants():
    out = _run(["train-step", "--dim", "8", "--batch-size", "32", "--negatives", "4",
                       "--steps", "3", "--warmup", "1"])
    assert out["timed_steps"] == 3
    assert out["seconds_per_step_emu"] > 0 and out["seconds_per_step_plain"] > 0
    assert out["emu_overhead_ratio"] == pytest.approx(
        out["seconds_per_step_emu"] / out["seconds_per_step_plain"], abs=0.01)


def test_eval_counts_two_ranks_per_test_triple():
    from dgl_emu.data import load_dataset
    out = _run(["eval", "--dim", "8", "--baseline-triples", "3"])
    assert out["ranks"] == 2 * load_dataset("synthetic").statistics()["test"]
    assert out["seconds"] > 0 and out["baseline_seconds_extrapolated"] > 0
    assert out["speedup_vs_baseline"] == pytest.approx(
        out["baseline_seconds_extrapolated"] / out["seconds"], rel=0.01, abs=0.1)


def test_sans_neighbourhood_size():
    out = _run(["sans", "--walks", "20", "--baseline-entities", "2"])
    assert out["entities"] == 384 and 0 < out["mean_neighbourhood"] < 384


def test_encoder_epoch_reports_each_encoder():
    out = _run(["encoder-epoch", "--dim", "8", "--batch-size", "500", "--negatives", "4",
                       "--steps", "1"])
    from dgl_emu.data import load_dataset
    assert out["steps_per_epoch"] == -(-load_dataset("synthetic").statistics()["train"] // 500)
    for enc in ("rgcn", "compgcn"):
        assert out[f"{enc}_seconds_per_epoch"] == pytest.approx(
            out[f"{enc}_seconds_per_step"] * out["steps_per_epoch"], abs=0.002)


def test_pykeen_same_run_comparison():
    pytest.importorskip("pykeen")
    out = _run(["pykeen", "--train-triples", "1000", "--eval-triples", "20"])
    assert out["timed_steps"] == 1 and out["eval_triples"] == 20
    assert out["train_step_speedup"] == pytest.approx(
        out["pykeen_seconds_per_step"] / out["dgl_emu_seconds_per_step"], abs=0.02)


def test_train_step_files_are_named_by_model(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    threads = torch.get_num_threads()
    try:
        for model in ("distmult", "transe"):
            result = CliRunner().invoke(speed, ["train-step", "--dataset", "synthetic", "--model", model,
                                                    "--dim", "4", "--batch-size", "16", "--negatives", "2",
                                                    "--steps", "1", "--warmup", "0"])
            assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(threads)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speed-train-step-transe.json", "speed-train-step.json"]
    saved = json.loads((tmp_path / "speed-train-step-transe.json").read_text())
    assert saved["model"] == "transe"
    # the keys of the committed results (read by the docs' tables) are all still written (new
    # settings such as chunk_size may be added)
    committed = json.loads((BENCHMARKS / "results" / "speed-train-step.json").read_text())
    assert set(committed) <= set(saved), set(committed) - set(saved)


def test_scale_benchmark_runs_its_settings_in_their_own_processes():
    """``speed scale`` on tiny generated graphs (one mode, no evaluation): every setting ran
    in its own process and the ratios are computed from the settings it printed."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "speed", "scale", "--entities", "300",
                           "--entities", "600", "--steps", "1", "--modes", "shared", "--no-eval", "--no-save"],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    settings = {s["entities"]: s for s in out["settings"]}
    assert set(settings) == {300, 600} and all(s["tables"] == "shared" for s in settings.values())
    assert out["shared_plain_ratio_600"] == pytest.approx(settings[600]["plain_seconds"] / settings[300]["plain_seconds"],
                                                         abs=0.01)


@pytest.mark.slow
def test_ingest_parses_then_loads_from_the_cache():
    result = CliRunner().invoke(speed, ["ingest", "--triples", "3000", "--entities", "800", "--no-save"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["cold"]["origin"] == "parsed and cached" and out["cache_load"]["origin"] == "read from the cache"
    assert out["cold"]["triples"] == out["cache_load"]["triples"] == {"train": 3000, "valid": 1000, "test": 1000}
    assert out["cold"]["entities"] == out["cache_load"]["entities"] == out["entities_in_triples"] <= 800
    assert out["cold"]["arrays_gb"] == round(5000 * 3 * 8 / 2 ** 30, 3)


def test_cli_memory_compares_the_whole_run_with_the_training_step(tmp_path, monkeypatch):
    """``speed cli-memory`` on a small generated graph: both processes ran (the CLI run was
    evaluated), and the ratio is the two peaks it reports, divided."""
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    result = CliRunner().invoke(speed, ["cli-memory", "--entities", "3000", "--steps", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "speed-cli-memory-3000.json").read_text())
    assert saved["cli_peak_rss_gb"] > 0 and saved["scale_step_peak_rss_gb"] > 0
    assert 0 <= saved["cli_test_mrr"] <= 1
    assert saved["ratio"] == pytest.approx(saved["cli_peak_rss_gb"] / saved["scale_step_peak_rss_gb"], abs=1e-3)
