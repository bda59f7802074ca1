"""``python -m benchmarks aggregate``: a grid's per-run result JSONs turned into a table, a JSON summary and plots.

Reads every ``<run id>.json`` written by ``grid`` (copies of the runs' ``metrics.json``)
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

import sys
from pathlib import Path

import click

from ..agglib.aggregate import aggregate as write_aggregate
from ..agglib.records import AggregateError

__all__ = ["aggregate"]


@click.command("aggregate", short_help="Tables and plots of a grid's results.")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where summary.* and the plots go (default: RESULTS).")
@click.option("--arm-field", "arm_fields", multiple=True, metavar="FIELD",
              help="A config field of the arms, not the rows (repeat), e.g. regularizer.")
def aggregate(results, out, arm_fields):
    """Aggregate the per-run result JSONs of a grid (RESULTS, e.g. benchmarks/results/p1-shallow)
    into summary.md/.rst/.json and plots: baseline and EMU per row, seed-paired differences with
    95 % t-intervals."""
    ctx = click.get_current_context()
    if not results.is_dir():
        print(f"error: {results}: not a folder", file=sys.stderr)
        ctx.exit(2)
    try:
        summary, table = write_aggregate(results, out, arm_fields)
    except AggregateError as e:
        print(f"error: {e}", file=sys.stderr)
        ctx.exit(2)
    print(table)
    print(f"\n{summary['files']} results, {len(summary['rows'])} rows; wrote {', '.join(summary['written'])}")
