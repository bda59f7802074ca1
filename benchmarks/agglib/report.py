"""Text output of a summary: the console table, Markdown and RST."""
from __future__ import annotations

from typing import Any, Dict, Optional

from .records import METRIC_LABELS, METRICS

__all__ = ["format_table", "format_markdown", "rst_table", "fmt_diff"]


def _fmt_stat(stat: Optional[Dict[str, Any]]) -> str:
    if stat is None:
        return "—"
    return f"{stat['mean']:.4f}" if stat["std"] is None else f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def fmt_diff(diff: Optional[Dict[str, Any]]) -> str:
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
    extras, arms = summary["extra_fields"], summary.get("arm_fields", [])
    head = ["dataset", "encoder", "model", "sampler", "dim", *extras, *[f"{f} (base / EMU)" for f in arms],
            "seeds (base/EMU)"]
    for m in METRICS:
        lab = METRIC_LABELS[m]
        head += [f"{lab} baseline", f"{lab} EMU", f"Δ{lab} EMU − base [95% CI]"]
    head.append("EMU vs base (" + " / ".join(METRIC_LABELS[m] for m in METRICS) + ")")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in summary["rows"]:
        n_b = row["baseline"]["n"] if row["baseline"] else 0
        n_e = row["emu"]["n"] if row["emu"] else 0
        cells = [row["dataset"], row["encoder"], row["model"], row["sampler"], str(row["dim"]),
                 *[_fmt_extra(row["extras"][f]) for f in extras],
                 *[" / ".join(_fmt_extra(row["arm_settings"][side][f]) if row["arm_settings"][side] else "—"
                              for side in ("baseline", "emu")) for f in arms], f"{n_b}/{n_e}"]
        for m in METRICS:
            cells += [_fmt_stat(row["baseline"][m] if row["baseline"] else None),
                      _fmt_stat(row["emu"][m] if row["emu"] else None),
                      fmt_diff(row["difference"][m] if row["difference"] else None)]
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
    if summary.get("arm_fields"):
        extra += (f" Arm columns: settings of each arm, baseline / EMU ({', '.join(summary['arm_fields'])});"
                  " the two arms of a row differ in them.")
    return (f"# Results: {source}\n\n"
            "Test split, both sides (head and tail queries), filtered ranks (train + valid + test), "
            "realistic ties. Baseline and EMU: mean ± sample standard deviation over seeds. "
            "Δ = EMU − baseline: mean of the seed-paired differences with a 95% t-interval "
            "(mean ± t(0.975, n−1)·sd/√n); 'n=1': a single pair, no interval. Last column: "
            "'better' / 'worse' when the interval lies above / below 0, 'unclear' when it contains 0."
            + extra + "\n\n"
            + format_table(summary) + "\n")



def rst_table(markdown: str) -> str:
    """Markdown tables as RST ``csv-table`` directives (``summary.rst``, included by docs/benchmarks.rst).

    Every block of consecutive ``|`` lines becomes its own table; a paragraph between two tables
    (e.g. the caption of ``aggregate``'s dimension table) is kept; headings and the text
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
