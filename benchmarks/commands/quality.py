"""``python -m benchmarks quality``: EMU vs baseline, the same configuration trained with and without
EMU (same seed, same steps), as a quick pair outside a grid.

Writes ``benchmarks/results/quality/<dataset>-<encoder>-<model>-<sampler>-d<dim>.json`` with both
metric sets per seed and a plot of validation MRR against steps (``.png``). Run directories go to
``benchmarks/work/quality/`` (not committed); re-running resumes or skips finished runs.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import click
import yaml

from dgl_emu.config import RunConfig
from dgl_emu.pipeline import run
from dgl_emu.utils import atomic_write_bytes, atomic_write_json

HERE = Path(__file__).resolve().parents[1]  # benchmarks/

__all__ = ["quality", "published"]


def published(cfg_kwargs: dict) -> dict:
    """The paper's settings: batch 1000, K=256, Adagrad (0.1 DistMult/ComplEx, 0.05 TransE/RotatE)
    switched to Adam at lr/10 after half the steps, CE for the plain loss."""
    lr = 0.05 if cfg_kwargs.get("model") in ("transe", "rotate") else 0.1
    base = {"batch_size": 1000, "num_negatives": 256, "optimizer": "adagrad", "lr": lr,
            "switch_to_adam": True, "loss": "ce"}
    if cfg_kwargs.get("emu", True):
        base.update(keep_prob=0.39, negative_label=0.53, plain_weight=0.11)
    if cfg_kwargs.get("encoder", "lookup") != "lookup":
        base.update(optimizer="adam", lr=0.01, switch_to_adam=False)
    return {**base, **cfg_kwargs}


@click.command("quality", short_help="Train one EMU/baseline pair outside a grid.")
@click.option("--dataset", required=True)
@click.option("--data-dir", default=None)
@click.option("--model", default="distmult", show_default=True)
@click.option("--encoder", default="lookup", show_default=True)
@click.option("--sampler", default="uniform", show_default=True)
@click.option("--dim", default=100, show_default=True)
@click.option("--steps", default=1000, show_default=True)
@click.option("--eval-every", default=None, type=int, help="Default: steps // 5.")
@click.option("--seeds", multiple=True, type=int, default=(0,), show_default=True)
@click.option("--set", "extra", multiple=True, help="Extra option (flat name or dotted path), KEY=VALUE (YAML value).")
@click.option("--progress/--no-progress", default=False)
def quality(dataset, data_dir, model, encoder, sampler, dim, steps, eval_every, seeds, extra, progress):
    """EMU vs baseline: train the same configuration with and without EMU (same seed, same steps)
    and write both metric sets.

    \b
        python -m benchmarks quality --dataset umls --data-dir ../shared/datasets --model rotate \\
            --steps 1000 [--encoder rgcn] [--seeds 0 --seeds 1] [any option as --set key=value]

    Writes benchmarks/results/quality/<dataset>-<encoder>-<model>-<sampler>-d<dim>.json with both
    metric sets per seed and a plot of validation MRR against steps (.png). Run directories go to
    benchmarks/work/quality/ (not committed); re-running resumes or skips finished runs.
    `python -m benchmarks report` tabulates the results.
    """
    overrides = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in extra)}
    name = f"{dataset}-{encoder}-{model}-{sampler}-d{dim}"
    results = {"name": name, "runs": []}
    for seed in seeds:
        for emu in (False, True):
            kwargs = published(dict(dataset=dataset, data_dir=data_dir, model=model, encoder=encoder,
                                    sampler=sampler, dim=dim, steps=steps, seed=seed, emu=emu,
                                    eval_every=eval_every or max(1, steps // 5), progress=progress,
                                    output=str(HERE / "work" / "quality" / f"{name}-{'emu' if emu else 'plain'}-s{seed}"),
                                    **overrides))
            cfg = RunConfig.from_dict(kwargs)
            res = run(cfg)
            m = res.metrics
            results["runs"].append({"seed": seed, "emu": emu, "steps": m["steps"],
                                    "train_seconds": m["train_seconds"], "best_step": m["best_step"],
                                    "validations": m["validations"],
                                    "test": m["test"]["both"]["realistic"], "config": m["config"]})
            t = m["test"]["both"]["realistic"]
            click.echo(f"{name} seed={seed} emu={emu}: test MRR {t['mrr']:.4f} Hits@1 {t['hits@1']:.4f} "
                       f"({m['train_seconds']:.0f}s)")
    summary = {}
    for emu in (False, True):
        rows = [r["test"] for r in results["runs"] if r["emu"] == emu]
        summary["emu" if emu else "baseline"] = {
            k: {"mean": statistics.fmean(r[k] for r in rows),
                "std": statistics.stdev([r[k] for r in rows]) if len(rows) > 1 else 0.0}
            for k in ("mrr", "hits@1", "hits@10")}
    results["summary"] = summary
    out = HERE / "results" / "quality" / f"{name}.json"
    atomic_write_json(out, results)
    _plot(results, out.with_suffix(".png"))
    click.echo(json.dumps({"name": name, **summary}))


def _plot(results: dict, path: Path) -> None:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in results["runs"]:
        xs = [v["step"] for v in r["validations"]]
        ys = [v["valid_mrr"] for v in r["validations"]]
        ax.plot(xs, ys, "o-" if r["emu"] else "s--", color="tab:red" if r["emu"] else "tab:blue",
                label=f"{'EMU' if r['emu'] else 'baseline'} seed {r['seed']}", alpha=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("validation MRR (realistic, filtered)")
    ax.set_title(results["name"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
