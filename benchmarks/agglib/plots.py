"""Plots of a summary: bars, differences, dimension, validation curves."""
from __future__ import annotations

import io
import json
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from dgl_emu.utils import atomic_write_bytes

from .records import METRIC_LABELS, METRICS, sort_key
from .stats import extra_fields

__all__ = ["plot_bars", "plot_differences", "plot_dimension", "plot_curves"]


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


def plot_curves(records: Sequence[Dict[str, Any]], path: Path, arm_fields: Sequence[str] = ()) -> Optional[Path]:
    """``curves.png``: validation MRR against the step, baseline and EMU, one panel per group.

    A group is a (dataset, encoder, model, sampler, extra fields but ``arm_fields``) combination; every run is one
    line (baseline blue, EMU orange; solid at the group's smallest dimension, dashed at larger
    ones), a dotted vertical line marks the switch to Adam and a dash-dotted one the start of a
    learning-rate decay. Nothing is written when no run
    recorded validations, or when there are more than :data:`MAX_CURVE_PANELS` groups.
    """
    runs = [r for r in records if r["validations"]]
    if not runs:
        return None
    extras = extra_fields(runs, arm_fields)
    groups: "OrderedDict[str, List[Dict[str, Any]]]" = OrderedDict()
    for r in sorted(runs, key=lambda r: sort_key({**r, "extras": {k: r["config"].get(k) for k in extras}})):
        name = " ".join([r["dataset"]] + ([r["encoder"]] if r["encoder"] != "lookup" else [])
                        + [r["model"], r["sampler"]]
                        + [f"{k}={r['config'][k]}" for k in extras if r["config"].get(k) is not None])
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
        if cfg.get("decay_from") is not None:  # the learning rate decays linearly from here
            ax.axvline(int(cfg["decay_from"]), color="grey", linestyle="-.", linewidth=1)
        ax.set_title("\n".join(textwrap.wrap(name, 44)), fontsize=9)   # a long name wraps, not overlaps
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
