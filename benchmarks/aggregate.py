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

``--arm-field FIELD`` (repeatable) names a config field that belongs to an arm, not a row, e.g.
``regularizer`` when the baselines carry the published penalty and EMU runs without: it does not
split rows, and a column gives its value for the baseline and the EMU side.

Metrics: the test split, both sides (head and tail queries), filtered ranks, realistic ties —
``metrics["test"]["both"]["realistic"]``. Config fields other than dataset, encoder, model,
sampler, dim, emu and seed that differ between results (e.g. an ``lr`` or ``keep_prob`` axis)
become extra columns, so different settings are never averaged together.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the agglib package beside this script

from agglib.plots import plot_bars, plot_curves, plot_differences, plot_dimension  # noqa: E402
from agglib.records import AggregateError, load_results  # noqa: E402
from agglib.report import fmt_diff, format_markdown, format_table, rst_table  # noqa: E402
from agglib.stats import describe, paired_difference, summarize, verdict  # noqa: E402
from dgl_emu.utils import atomic_write_json, atomic_write_text  # noqa: E402

__all__ = ["load_results", "summarize", "format_table", "paired_difference", "describe", "verdict",
           "aggregate", "main", "AggregateError", "fmt_diff"]


def aggregate(results_dir, out_dir=None, arm_fields: Sequence[str] = ()) -> Tuple[Dict[str, Any], str]:
    """Read ``results_dir``, write summary.md/.rst/.json and plots into ``out_dir``; returns (summary, table).

    ``arm_fields``: config fields that belong to an arm (see :func:`agglib.stats.summarize`)."""
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    records = load_results(results_dir)
    if not records:
        raise AggregateError(f"{results_dir}: no run result JSONs found")
    summary = summarize(records, arm_fields)
    summary["source"] = str(results_dir)
    summary["files"] = len(records)
    markdown = format_markdown(summary, results_dir.name)
    atomic_write_text(out_dir / "summary.md", markdown)
    atomic_write_text(out_dir / "summary.rst", rst_table(markdown))
    atomic_write_json(out_dir / "summary.json", summary)
    written = [out_dir / "summary.md", out_dir / "summary.rst", out_dir / "summary.json",
               plot_bars(summary, out_dir / "mrr_hits1.png")]
    extra_plots = [plot_differences(summary, out_dir / "differences.png"),
                   plot_dimension(summary, out_dir / "dimension.png"), plot_curves(records, out_dir / "curves.png", arm_fields)]
    summary["written"] = [str(w) for w in written + [x for x in extra_plots if x]]
    return summary, format_table(summary)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="aggregate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="folder of result JSONs, e.g. benchmarks/results/p1-shallow")
    p.add_argument("--out", type=Path, default=None, help="where summary.* and the plots go (default: RESULTS)")
    p.add_argument("--arm-field", action="append", default=[], metavar="FIELD",
                   help="a config field of the arms, not the rows (repeat), e.g. regularizer")
    args = p.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: {args.results}: not a folder", file=sys.stderr)
        return 2
    try:
        summary, table = aggregate(args.results, args.out, args.arm_field)
    except AggregateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    print(f"\n{summary['files']} results, {len(summary['rows'])} rows; wrote {', '.join(summary['written'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
