#!/usr/bin/env python
"""Aggregate the per-run result JSONs of a grid into a table, a JSON summary and plots.

    python benchmarks/aggregate.py benchmarks/results/<grid name> [--out DIR]

Reads every ``<run id>.json`` written by ``run_grid.py`` (copies of the runs' ``metrics.json``)
and writes, atomically, into ``--out`` (default: the results folder itself):

``summary.md``
    A Markdown table, one row per (dataset, encoder, model, sampler, dim): baseline and EMU test
    MRR and Hits@1 as mean ± sample standard deviation (ddof 1) over seeds, the number of seeds,
    and EMU − baseline as the mean of the seed-paired differences with a 95% t-interval,
    mean ± t(0.975, n−1)·sd/√n (with one pair: the difference alone, marked ``n=1``). When a grid
    has several dimensions, a second table compares EMU at d with the baseline at larger d.
``summary.rst``
    The same tables as RST ``csv-table`` directives, for the docs' benchmarks page.
``summary.json``
    The same numbers, with the per-seed values.
``mrr_hits1.png``
    Grouped bars per model, baseline vs EMU, MRR and Hits@1, one panel per dataset (error bars:
    standard deviation over seeds).
``differences.png``
    EMU − baseline with its 95 % interval for every row that has both sides, MRR and Hits@1,
    coloured by the verdict (green above 0, red below, grey containing 0).
``dimension.png``
    Only when the results hold several dimensions: test MRR against the dimension, baseline and
    EMU, per dataset and model (does EMU at d=100 match the baseline at 5x the dimension?).
``curves.png``
    Validation MRR against the step for every run, baseline and EMU, one panel per dataset /
    model / sampler (at most 24 panels; the switch to Adam is marked).

Metrics: the test split, both sides (head and tail queries), filtered ranks, realistic ties —
``metrics["test"]["both"]["realistic"]``. Config fields other than dataset, encoder, model,
sampler, dim, emu and seed that differ between results (e.g. an ``lr`` or ``keep_prob`` axis)
become extra columns, so different settings are never averaged together.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dgl_emu.utils import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["load_results", "summarize", "format_table", "paired_difference", "describe", "main"]

KEY = ("dataset", "encoder", "model", "sampler", "dim")
METRICS = ("mrr", "hits@1")
METRIC_LABELS = {"mrr": "MRR", "hits@1": "Hits@1"}
#: config fields that never split rows (run identity, or no effect on what is measured)
IGNORED = {"seed", "emu", "output", "progress", "data_dir", "device", "eval_batch_size"}
DATASET_ORDER = ["umls", "kinships", "nations", "codex-s", "codex-m", "fb15k-237", "wn18rr", "synthetic"]
MODEL_ORDER = ["transe", "distmult", "complex", "rotate"]
ENCODER_ORDER = ["lookup", "rgcn", "compgcn"]
SAMPLER_ORDER = ["uniform", "bernoulli", "sans"]
SKIP_FILES = {"summary.json"}


class AggregateError(ValueError):
    """The results cannot be aggregated (none found, or duplicates)."""


# ---------------------------------------------------------------------------- reading
def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def load_results(directory) -> List[Dict[str, Any]]:
    """One record per result JSON in ``directory`` (sorted by file name).

    Each record has ``path``, ``config``, the :data:`KEY` fields, ``seed``, ``emu`` and the
    test metrics ``mrr`` and ``hits@1`` (realistic ties, both sides). Files that are not run
    results (e.g. ``summary.json``, speed benchmarks) are skipped.
    """
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        if path.name in SKIP_FILES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"warning: skipping {path}: {e}", file=sys.stderr)
            continue
        if not isinstance(data, dict) or "config" not in data:
            continue
        try:
            real = data["test"]["both"]["realistic"]
        except (KeyError, TypeError):
            print(f"warning: skipping {path}: no test metrics", file=sys.stderr)
            continue
        cfg = data["config"]
        dataset = Path(cfg["train"]).parent.name if cfg.get("train") else str(cfg["dataset"]).lower()
        records.append({
            "path": str(path), "config": cfg, "dataset": dataset,
            "encoder": str(cfg.get("encoder", "lookup")).lower(), "model": str(cfg["model"]).lower(),
            "sampler": str(cfg["sampler"]).lower(), "dim": int(cfg["dim"]), "seed": int(cfg["seed"]),
            "emu": bool(cfg["emu"]), "mrr": float(real["mrr"]), "hits@1": float(real["hits@1"]),
            "validations": [(int(v["step"]), float(v["valid_mrr"])) for v in data.get("validations") or []
                            if isinstance(v, dict) and "step" in v and "valid_mrr" in v],
        })
    return records


def _rank(order: Sequence[str], value: Any) -> Tuple[int, Any]:
    return (order.index(value), "") if value in order else (len(order), str(value))


def _sort_key(key: Dict[str, Any]):
    return (_rank(DATASET_ORDER, key["dataset"]), _rank(ENCODER_ORDER, key["encoder"]),
            _rank(MODEL_ORDER, key["model"]), _rank(SAMPLER_ORDER, key["sampler"]), key["dim"],
            tuple(str(v) for v in key["extras"].values()))


# ---------------------------------------------------------------------------- statistics
def describe(values: Sequence[float]) -> Dict[str, Any]:
    """``n``, ``mean`` and the sample standard deviation ``std`` (ddof 1; None for one value)."""
    values = list(values)
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "values": values}


def paired_difference(baseline: Dict[int, float], emu: Dict[int, float]) -> Optional[Dict[str, Any]]:
    """EMU − baseline over the seeds both have: mean and 95% t-interval of the paired differences.

    ``ci95`` is ``mean ± t(0.975, n-1) * sd / sqrt(n)``; with one pair it is None and ``note`` is
    ``"n=1"``. With no common seed (but both sides present) the difference of the means is given,
    with ``note`` ``"unpaired"``. None when a side is missing.
    """
    if not baseline or not emu:
        return None
    seeds = sorted(set(baseline) & set(emu))
    if not seeds:
        mean = statistics.fmean(emu.values()) - statistics.fmean(baseline.values())
        return {"n": 0, "seeds": [], "mean": mean, "sd": None, "half_width": None, "ci95": None,
                "note": "unpaired", "differences": []}
    diffs = [emu[s] - baseline[s] for s in seeds]
    n, mean = len(diffs), statistics.fmean(diffs)
    if n == 1:
        return {"n": 1, "seeds": seeds, "mean": mean, "sd": None, "half_width": None, "ci95": None,
                "note": "n=1", "differences": diffs}
    from scipy.stats import t
    sd = statistics.stdev(diffs)
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "seeds": seeds, "mean": mean, "sd": sd, "half_width": half,
            "ci95": [mean - half, mean + half], "note": None, "differences": diffs}


def verdict(diff: Optional[Dict[str, Any]]) -> str:
    """One word for a :func:`paired_difference`: is EMU better than its baseline?

    ``"better"`` when the 95 % interval lies above 0, ``"worse"`` when it lies below, ``"unclear"``
    when it contains 0; without an interval, the sign of the mean and the reason:
    ``"higher (n=1)"`` / ``"lower (n=1)"`` for one pair, ``"higher (unpaired)"`` / ``"lower (unpaired)"``
    with no common seed; ``"—"`` when a side is missing.

    Examples
    --------
    >>> verdict({"ci95": [0.01, 0.03], "mean": 0.02, "note": None})
    'better'
    >>> verdict({"ci95": [-0.01, 0.03], "mean": 0.01, "note": None})
    'unclear'
    >>> verdict({"ci95": None, "mean": -0.02, "note": "n=1"})
    'lower (n=1)'
    """
    if diff is None:
        return "—"
    if diff["ci95"] is None:
        return f"{'higher' if diff['mean'] > 0 else 'lower'} ({diff['note']})"
    lo, hi = diff["ci95"]
    return "better" if lo > 0 else "worse" if hi < 0 else "unclear"


def _extra_fields(records: Sequence[Dict[str, Any]]) -> List[str]:
    """Config fields beyond :data:`KEY` and :data:`IGNORED` that vary between records: they split rows."""
    fields = sorted({k for r in records for k in r["config"]} - set(KEY) - IGNORED)
    return [f for f in fields if len({json.dumps(r["config"].get(f), sort_keys=True) for r in records}) > 1]


def summarize(records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Rows of baseline/EMU statistics and paired differences, plus the dimension comparison.

    Raises
    ------
    AggregateError
        If two results are the same run (same row, EMU flag and seed).
    """
    if not records:
        raise AggregateError("no run results to aggregate")
    extras = _extra_fields(records)
    groups: "OrderedDict[Any, Dict[str, Any]]" = OrderedDict()
    for r in records:
        key = {k: r[k] for k in KEY}
        key["extras"] = {f: r["config"].get(f) for f in extras}
        hk = tuple(_hashable(v) for v in (*[key[k] for k in KEY], key["extras"]))
        g = groups.setdefault(hk, {"key": key, "baseline": {}, "emu": {}})
        side = g["emu" if r["emu"] else "baseline"]
        if r["seed"] in side:
            raise AggregateError(f"{side[r['seed']]['path']} and {r['path']} are the same run "
                                 f"({'EMU' if r['emu'] else 'baseline'}, seed {r['seed']})")
        side[r["seed"]] = r
    rows = []
    for g in sorted(groups.values(), key=lambda g: _sort_key(g["key"])):
        row = dict(g["key"])
        for side in ("baseline", "emu"):
            runs = g[side]
            if not runs:
                row[side] = None
                continue
            seeds = sorted(runs)
            row[side] = {"n": len(seeds), "seeds": seeds,
                         **{m: describe([runs[s][m] for s in seeds]) for m in METRICS}}
        row["difference"] = None
        if g["baseline"] and g["emu"]:
            row["difference"] = {m: paired_difference({s: r[m] for s, r in g["baseline"].items()},
                                                      {s: r[m] for s, r in g["emu"].items()})
                                 for m in METRICS}
        row["verdict"] = {m: verdict(row["difference"][m] if row["difference"] else None) for m in METRICS}
        rows.append(row)
    return {"metric_source": "test split, both sides, filtered ranks, realistic ties",
            "std": "sample standard deviation over seeds (ddof 1)",
            "difference": "EMU - baseline over paired seeds: mean ± t(0.975, n-1)·sd/sqrt(n)",
            "extra_fields": extras, "rows": rows, "dimension": _dimension_comparison(rows)}


def _dimension_comparison(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """EMU at d against the baseline at every larger d of the same dataset/encoder/model/sampler."""
    out = []
    for emu_row in rows:
        if emu_row["emu"] is None:
            continue
        for base_row in rows:
            same = all(base_row[k] == emu_row[k] for k in ("dataset", "encoder", "model", "sampler", "extras"))
            if not same or base_row["baseline"] is None or base_row["dim"] <= emu_row["dim"]:
                continue
            entry = {k: emu_row[k] for k in ("dataset", "encoder", "model", "sampler", "extras")}
            entry.update({"emu_dim": emu_row["dim"], "baseline_dim": base_row["dim"],
                          "ratio": base_row["dim"] / emu_row["dim"]})
            for m in METRICS:
                e, b = emu_row["emu"][m], base_row["baseline"][m]
                entry[m] = {"emu": e["mean"], "emu_n": e["n"], "baseline": b["mean"], "baseline_n": b["n"],
                            "difference_of_means": e["mean"] - b["mean"]}
            out.append(entry)
    return out


# ---------------------------------------------------------------------------- formatting
def _fmt_stat(stat: Optional[Dict[str, Any]]) -> str:
    if stat is None:
        return "—"
    return f"{stat['mean']:.4f}" if stat["std"] is None else f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _fmt_diff(diff: Optional[Dict[str, Any]]) -> str:
    if diff is None:
        return "—"
    if diff["ci95"] is None:
        return f"{diff['mean']:+.4f} ({diff['note']})"
    lo, hi = diff["ci95"]
    return f"{diff['mean']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def _fmt_extra(value: Any) -> str:
    return "—" if value is None else str(value)


def format_table(summary: Dict[str, Any]) -> str:
    """The Markdown table of :func:`summarize` (rows, then the dimension comparison if any)."""
    extras = summary["extra_fields"]
    head = ["dataset", "encoder", "model", "sampler", "dim", *extras, "seeds (base/EMU)"]
    for m in METRICS:
        lab = METRIC_LABELS[m]
        head += [f"{lab} baseline", f"{lab} EMU", f"Δ{lab} EMU − base [95% CI]"]
    head.append("EMU vs base (" + " / ".join(METRIC_LABELS[m] for m in METRICS) + ")")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in summary["rows"]:
        n_b = row["baseline"]["n"] if row["baseline"] else 0
        n_e = row["emu"]["n"] if row["emu"] else 0
        cells = [row["dataset"], row["encoder"], row["model"], row["sampler"], str(row["dim"]),
                 *[_fmt_extra(row["extras"][f]) for f in extras], f"{n_b}/{n_e}"]
        for m in METRICS:
            cells += [_fmt_stat(row["baseline"][m] if row["baseline"] else None),
                      _fmt_stat(row["emu"][m] if row["emu"] else None),
                      _fmt_diff(row["difference"][m] if row["difference"] else None)]
        cells.append(" / ".join(row["verdict"][m] for m in METRICS))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    if summary["dimension"]:
        dl = ["| dataset | encoder | model | sampler | EMU d | baseline d | MRR EMU | MRR baseline | "
              "ΔMRR | Hits@1 EMU | Hits@1 baseline | ΔHits@1 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in summary["dimension"]:
            cells = [e["dataset"], e["encoder"], e["model"], e["sampler"], str(e["emu_dim"]), str(e["baseline_dim"])]
            for m in METRICS:
                x = e[m]
                cells += [f"{x['emu']:.4f} (n={x['emu_n']})", f"{x['baseline']:.4f} (n={x['baseline_n']})",
                          f"{x['difference_of_means']:+.4f}"]
            dl.append("| " + " | ".join(cells) + " |")
        text += ("\n\nEMU at dimension d against the baseline at a larger dimension (difference of means; "
                 "different models, so not paired):\n\n" + "\n".join(dl))
    return text


def format_markdown(summary: Dict[str, Any], source: str) -> str:
    """The full ``summary.md``."""
    extra = (f" Extra columns: config fields that differ between runs ({', '.join(summary['extra_fields'])})."
             if summary["extra_fields"] else "")
    return (f"# Results: {source}\n\n"
            "Test split, both sides (head and tail queries), filtered ranks (train + valid + test), "
            "realistic ties. Baseline and EMU: mean ± sample standard deviation over seeds. "
            "Δ = EMU − baseline: mean of the seed-paired differences with a 95% t-interval "
            "(mean ± t(0.975, n−1)·sd/√n); 'n=1': a single pair, no interval. Last column: "
            "'better' / 'worse' when the interval lies above / below 0, 'unclear' when it contains 0."
            + extra + "\n\n"
            + format_table(summary) + "\n")


# ---------------------------------------------------------------------------- plots
def _save_png(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _varying(rows, fields) -> List[str]:
    return [f for f in fields if len({json.dumps(r[f], sort_keys=True, default=str) for r in rows}) > 1]


def _label(row, fields) -> str:
    parts = []
    for f in fields:
        if f == "dim":
            parts.append(f"d{row['dim']}")
        elif f == "extras":
            parts += [f"{k}={v}" for k, v in row["extras"].items()]
        else:
            parts.append(str(row[f]))
    return "\n".join(["/".join(parts[:2]), "/".join(parts[2:])]) if len(parts) > 2 else "/".join(parts)


def plot_bars(summary: Dict[str, Any], path: Path) -> Path:
    """``mrr_hits1.png``: per dataset, grouped bars (baseline/EMU × MRR/Hits@1) per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(OrderedDict.fromkeys(r["dataset"] for r in summary["rows"]))
    fields = ["model"] + _varying(summary["rows"], ["encoder", "sampler", "dim", "extras"])
    if fields[1:2] == ["encoder"]:
        fields = ["encoder", "model"] + fields[2:]
    width_groups = max(len([r for r in summary["rows"] if r["dataset"] == d]) for d in datasets)
    fig, axes = plt.subplots(len(datasets), 1, figsize=(max(6.0, 1.3 * width_groups + 2), 3.6 * len(datasets)),
                             squeeze=False)
    bars = [("baseline", "mrr", "#4c72b0", None), ("emu", "mrr", "#dd8452", None),
            ("baseline", "hits@1", "#4c72b0", "//"), ("emu", "hits@1", "#dd8452", "//")]
    w = 0.2
    for ax, dataset in zip(axes[:, 0], datasets):
        rows = [r for r in summary["rows"] if r["dataset"] == dataset]
        for j, (side, metric, color, hatch) in enumerate(bars):
            xs, ys, errs = [], [], []
            for i, row in enumerate(rows):
                stat = row[side][metric] if row[side] else None
                if stat is None:
                    continue
                xs.append(i + (j - 1.5) * w)
                ys.append(stat["mean"])
                errs.append(stat["std"] or 0.0)
            ax.bar(xs, ys, w, yerr=errs if any(errs) else None, capsize=2, color=color, hatch=hatch, edgecolor="black",
                   linewidth=0.5, alpha=1.0 if metric == "mrr" else 0.75,
                   label=f"{'EMU' if side == 'emu' else 'baseline'} {METRIC_LABELS[metric]}")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([_label(r, fields) for r in rows], fontsize=8)
        ax.set_xlim(-0.5, width_groups - 0.5)   # the same bar width in every panel
        ax.set_title(dataset)
        ax.set_ylabel("test (realistic)")
        ax.set_ylim(0, min(1.0, 1.15 * max([0.01] + [r[s][m]["mean"] + (r[s][m]["std"] or 0)
                                                     for r in rows for s in ("baseline", "emu") if r[s]
                                                     for m in METRICS])))
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=4, loc="upper left", bbox_to_anchor=(0, 1.25))
    fig.tight_layout()
    _save_png(fig, path)
    plt.close(fig)
    return path


VERDICT_COLORS = {"better": "#2a9d4b", "worse": "#c0392b"}   # anything else: grey


def plot_differences(summary: Dict[str, Any], path: Path) -> Optional[Path]:
    """``differences.png``: EMU − baseline with its 95 % interval, one line per row, MRR and Hits@1.

    Green: the interval lies above 0; red: below; grey: it contains 0. A row without an interval
    (one pair) is a hollow marker. None when no row has both sides.
    """
    rows = [r for r in summary["rows"] if r["difference"]]
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = ["dataset", "model"] + _varying(rows, ["encoder", "sampler", "dim", "extras"])
    labels = [_label(r, fields).replace("\n", "/") for r in rows]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5.0 * len(METRICS) + 2, 0.3 * len(rows) + 1.2),
                             sharey=True, squeeze=False)
    ys = list(range(len(rows)))[::-1]
    for ax, metric in zip(axes[0], METRICS):
        for y, row in zip(ys, rows):
            diff = row["difference"][metric]
            color = VERDICT_COLORS.get(row["verdict"][metric], "#7f7f7f")
            ax.errorbar(diff["mean"], y, xerr=diff["half_width"], fmt="o", color=color, capsize=2,
                        markerfacecolor=color if diff["half_width"] is not None else "white")
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(f"EMU − baseline, test {METRIC_LABELS[metric]} (95 % CI)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(ys)
    axes[0, 0].set_yticklabels(labels, fontsize=7)
    fig.tight_layout()
    _save_png(fig, path)
    plt.close(fig)
    return path


def plot_dimension(summary: Dict[str, Any], path: Path) -> Optional[Path]:
    """``dimension.png``: MRR against the dimension, baseline and EMU, one panel per dataset."""
    def series_key(r):
        return json.dumps([r[f] for f in ("dataset", "encoder", "model", "sampler", "extras")],
                          sort_keys=True, default=str)

    dims: Dict[str, set] = {}
    for r in summary["rows"]:
        dims.setdefault(series_key(r), set()).add(r["dim"])
    # only what can answer the dimension question: series measured at two or more dimensions
    rows = [r for r in summary["rows"] if len(dims[series_key(r)]) > 1]
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(OrderedDict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), squeeze=False)
    series_fields = ["encoder", "model", "sampler", "extras"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, dataset in zip(axes[0], datasets):
        drows = [r for r in rows if r["dataset"] == dataset]
        label_fields = _varying(drows, series_fields) or ["model"]
        series = OrderedDict()
        for r in drows:
            key = json.dumps([r[f] for f in series_fields], sort_keys=True, default=str)
            series.setdefault(key, []).append(r)
        for c, (key, srows) in enumerate(series.items()):
            srows = sorted(srows, key=lambda r: r["dim"])
            name = "/".join(_label(srows[0], [f]) for f in label_fields)
            color = colors[c % len(colors)]
            for side, style, marker in (("baseline", "-", "o"), ("emu", "--", "s")):
                pts = [(r["dim"], r[side]["mrr"]) for r in srows if r[side]]
                if not pts:
                    continue
                errs = [s["std"] or 0.0 for _, s in pts]
                ax.errorbar([d for d, _ in pts], [s["mean"] for _, s in pts], yerr=errs if any(errs) else None,
                            linestyle=style, marker=marker, color=color, capsize=3,
                            label=f"{name} {'EMU' if side == 'emu' else 'baseline'}")
                if side == "emu" and len(pts) == 1 and len(srows) > 1:
                    # a single EMU dimension: a reference line to read off the matching baseline dimension
                    ax.axhline(pts[0][1]["mean"], color=color, linestyle=":", linewidth=1, alpha=0.6)
        dims = sorted({r["dim"] for r in drows})
        ax.set_xscale("log")
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("dimension d")
        ax.set_ylabel("test MRR (realistic)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save_png(fig, path)
    plt.close(fig)
    return path


#: at most this many panels (dataset/encoder/model/sampler groups) in curves.png
MAX_CURVE_PANELS = 24


def plot_curves(records: Sequence[Dict[str, Any]], path: Path) -> Optional[Path]:
    """``curves.png``: validation MRR against the step, baseline and EMU, one panel per group.

    A group is a (dataset, encoder, model, sampler, extra fields) combination; every run is one
    line (baseline blue, EMU orange; solid at the group's smallest dimension, dashed at larger
    ones), and a dotted vertical line marks the switch to Adam. Nothing is written when no run
    recorded validations, or when there are more than :data:`MAX_CURVE_PANELS` groups.
    """
    runs = [r for r in records if r["validations"]]
    if not runs:
        return None
    extras = _extra_fields(runs)
    groups: "OrderedDict[str, List[Dict[str, Any]]]" = OrderedDict()
    for r in sorted(runs, key=lambda r: _sort_key({**r, "extras": {k: r["config"].get(k) for k in extras}})):
        name = " ".join([r["dataset"]] + ([r["encoder"]] if r["encoder"] != "lookup" else [])
                        + [r["model"], r["sampler"]] + [f"{k}={r['config'].get(k)}" for k in extras])
        groups.setdefault(name, []).append(r)
    if len(groups) > MAX_CURVE_PANELS:
        print(f"note: {len(groups)} groups, more than {MAX_CURVE_PANELS}: curves.png not drawn", file=sys.stderr)
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, grun) in zip(axes.flat, groups.items()):
        small = min(r["dim"] for r in grun)
        for r in grun:
            steps, mrr = zip(*r["validations"])
            ax.plot(steps, mrr, color="#dd8452" if r["emu"] else "#4c72b0",
                    linestyle="-" if r["dim"] == small else "--", linewidth=1.2, alpha=0.85,
                    label=f"{'EMU' if r['emu'] else 'baseline'} d={r['dim']}")
        cfg = grun[0]["config"]
        if cfg.get("switch_to_adam") and cfg.get("steps"):
            ax.axvline(int(cfg["steps"]) // 2, color="grey", linestyle=":", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("valid MRR", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = OrderedDict(zip(labels, handles))        # one legend entry per side/dim, not per seed
        ax.legend(unique.values(), unique.keys(), fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    _save_png(fig, path)
    plt.close(fig)
    return path


def rst_table(markdown: str) -> str:
    """Markdown tables as RST ``csv-table`` directives (``summary.rst``, included by docs/benchmarks.rst).

    Every block of consecutive ``|`` lines becomes its own table; a paragraph between two tables
    (e.g. the caption of ``aggregate.py``'s dimension table) is kept; headings and the text
    before the first table are dropped (the docs page says it in its own words).
    """
    out, table, seen_table = [], [], False

    def flush():
        if table:
            out.extend([".. csv-table::", "   :header-rows: 1", ""])
            out.extend("   " + ", ".join('"' + c.replace('"', '""') + '"' for c in row) for row in table)
            out.append("")
            table.clear()

    for line in markdown.strip().splitlines():
        if line.startswith("|"):
            seen_table = True
            if not line.startswith("|---"):
                table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if seen_table and line.strip() and not line.startswith("#"):
            out.extend([line.strip(), ""])
    flush()
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------- main
def aggregate(results_dir, out_dir=None) -> Tuple[Dict[str, Any], str]:
    """Read ``results_dir``, write summary.md/.rst/.json and plots into ``out_dir``; returns (summary, table)."""
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    records = load_results(results_dir)
    if not records:
        raise AggregateError(f"{results_dir}: no run result JSONs found")
    summary = summarize(records)
    summary["source"] = str(results_dir)
    summary["files"] = len(records)
    markdown = format_markdown(summary, results_dir.name)
    atomic_write_text(out_dir / "summary.md", markdown)
    atomic_write_text(out_dir / "summary.rst", rst_table(markdown))
    atomic_write_json(out_dir / "summary.json", summary)
    written = [out_dir / "summary.md", out_dir / "summary.rst", out_dir / "summary.json",
               plot_bars(summary, out_dir / "mrr_hits1.png")]
    extra_plots = [plot_differences(summary, out_dir / "differences.png"),
                   plot_dimension(summary, out_dir / "dimension.png"), plot_curves(records, out_dir / "curves.png")]
    summary["written"] = [str(w) for w in written + [x for x in extra_plots if x]]
    return summary, format_table(summary)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="aggregate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="folder of result JSONs, e.g. benchmarks/results/p1-shallow")
    p.add_argument("--out", type=Path, default=None, help="where summary.* and the plots go (default: RESULTS)")
    args = p.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: {args.results}: not a folder", file=sys.stderr)
        return 2
    try:
        summary, table = aggregate(args.results, args.out)
    except AggregateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    print(f"\n{summary['files']} results, {len(summary['rows'])} rows; wrote {', '.join(summary['written'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
