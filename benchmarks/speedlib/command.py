"""``python -m benchmarks speed scale``: step time and peak memory from 15k to 5M entities, evaluation at
the largest size, 1 vs 2 data-parallel processes (each setting in its own process: :mod:`.scale`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..children import run_owned
from .report import emit, ratio, secs
from .scale import MODES, SHARED_CHUNK

__all__ = ["scale"]

#: the repository root: where ``python -m benchmarks.speedlib.scale`` finds the package
REPO = Path(__file__).resolve().parents[2]


def _subprocess_json(args, env=None, cwd=None) -> dict:
    """Run ``args`` and return the JSON object its last output line holds."""
    import sys
    proc = run_owned([sys.executable, *args], timeout=3600, env=env, cwd=cwd)
    if proc.returncode:
        raise click.ClickException(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@click.command("scale")
@click.option("--entities", multiple=True, type=int, default=(15000, 1000000, 5000000), show_default=True)
@click.option("--steps", default=15, show_default=True, help="Timed steps per setting (median reported).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root of the datasets for the 1 vs 2 processes part (UMLS, FB15k-237).")
@click.option("--parallel-steps", default=40, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Device of the step timings.")
@click.option("--modes", default="dense,sparse,shared", show_default=True,
              help="Tables to time: dense, sparse, shared (sparse with negatives shared by chunks of "
                   f"{SHARED_CHUNK} positives). A subset saves as speed-scale-MODES.json.")
@click.option("--eval/--no-eval", "with_eval", default=True, help="Time an evaluation at the largest size.")
@click.option("--save/--no-save", default=True)
def scale(entities, steps, data_dir, parallel_steps, device, modes, with_eval, save):
    """Step time and peak memory from 15k to 5M entities, dense, sparse and sparse with shared
    negatives; evaluation at the largest size; 1 vs 2 data-parallel processes. Every setting (E,
    tables, plain or EMU) runs in its own process, so each peak memory is one model's."""
    import os
    import tempfile
    env = dict(os.environ)
    modes = [m.strip() for m in modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        raise click.BadParameter(f"choose among {', '.join(MODES)}", param_hint="--modes")
    out = {"model": "distmult", "dim": 100, "batch_size": 1000, "negatives": 256, "optimizer": "adagrad",
           "device": device, "shared_chunk_size": SHARED_CHUNK,
           "timed_steps": steps, "graphs": "generate_large_kg(E, 2E triples, 200 relations, Zipf skew 1)",
           "settings": []}
    for n in entities:
        for mode in modes:
            pair = {}
            for emu in ("plain", "emu"):
                pair[emu] = _subprocess_json(["-m", "benchmarks.speedlib.scale", "step", str(n), mode, emu,
                                              str(steps), device], env, REPO)
            res = {"entities": n, "tables": mode, "sparse": mode != "dense", "plain_seconds": secs(pair["plain"]["seconds"]),
                   "emu_seconds": secs(pair["emu"]["seconds"]), "peak_rss_gb": pair["plain"]["peak_rss_gb"],
                   "peak_rss_gb_emu": pair["emu"]["peak_rss_gb"]}
            out["settings"].append(res)
            click.echo(f"E={n} {mode}: plain {res['plain_seconds']:.4f} s, EMU {res['emu_seconds']:.4f} s, "
                       f"peak {res['peak_rss_gb']:.2f} / {res['peak_rss_gb_emu']:.2f} GB", err=True)
    get = {(r["entities"], r["tables"]): r for r in out["settings"]}
    small, big = min(entities), max(entities)
    tag = f"{big // 1000000}m" if big >= 1000000 else f"{big // 1000}k" if big >= 1000 else str(big)
    for mode in modes:
        for emu in ("plain", "emu"):
            out[f"{mode}_{emu}_ratio_{tag}"] = ratio(get[big, mode][f"{emu}_seconds"], get[small, mode][f"{emu}_seconds"], 2)
        out[f"peak_rss_gb_{tag}" + ("" if mode == "sparse" else f"_{mode}")] = get[big, mode]["peak_rss_gb"]
    out[f"memory_target_gb_{tag}"] = round(3 * big * 100 * 4 / 2 ** 30 + 1, 3)
    if {"dense", "sparse"} <= set(modes):
        out["sparse_vs_dense_at_smallest"] = {emu: ratio(get[small, "sparse"][f"{emu}_seconds"],
                                                         get[small, "dense"][f"{emu}_seconds"], 2)
                                              for emu in ("plain", "emu")}
    if with_eval:
        out["evaluation"] = _subprocess_json(["-m", "benchmarks.speedlib.scale", "eval", str(big), "1000"],
                                             dict(env, DGL_EMU_NO_MALLOC_TUNING="1"), REPO)
        click.echo(f"evaluation at E={big}: {out['evaluation']['seconds']:.1f} s, "
                   f"peak {out['evaluation']['peak_rss_gb']:.2f} GB", err=True)
    if data_dir:
        out["data_parallel"] = {}
        one = dict(env, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME="lo")
        for dataset in ("umls", "fb15k-237"):
            rates = {}
            for nproc in (1, 2):
                with tempfile.TemporaryDirectory() as tmp:
                    args = ["-m", "dgl_emu", "run", "--dataset", dataset, "--data-dir", data_dir, "--model",
                            "distmult", "--dim", "100", "--batch-size", "1000", "--num-negatives", "256",
                            "--steps", str(parallel_steps), "--eval-every", str(parallel_steps),
                            "--no-progress", "--nproc", str(nproc), "--output", f"{tmp}/run"]
                    import subprocess
                    import sys
                    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=one,
                                          timeout=3600)
                    if proc.returncode:
                        raise click.ClickException(proc.stdout[-2000:] + proc.stderr[-2000:])
                    m = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
                    rates[nproc] = round(m["steps"] / m["train_seconds"], 3)
            out["data_parallel"][dataset] = {"steps_per_second_1_process": rates[1],
                                             "steps_per_second_2_processes": rates[2],
                                             "speedup": round(rates[2] / rates[1], 2),
                                             "threads_per_process": 1, "steps": parallel_steps,
                                             "emu": True}
    name = "scale" if device == "cpu" else f"scale-{device.split(':')[0]}"
    emit(name if list(modes) == list(MODES) else f"{name}-{'-'.join(modes)}", out, save)
