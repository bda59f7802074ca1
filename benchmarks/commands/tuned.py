"""``python -m benchmarks tuned``: EMU and its plain baseline each tuned with the same budget, then
retrained with several seeds beside the label-smoothing-only control.

For every cell of a spec file (:mod:`benchmarks.tunedlib.spec`, e.g. ``benchmarks/grids/tuned.yaml``):

1. ``dgl-emu tune --compare-emu`` (:func:`dgl_emu.tuning.compare.compare_emu`): two Optuna
   studies, EMU and the baseline (``emu: none``), the same number of trials of the same steps;
   the baseline searches the same ranges except EMU's own;
2. each arm's best configuration (``best.yaml``) trained again with every seed of the spec, and
   the **smoothing-only control**: EMU's best configuration with ``mutation: smoothing`` (its
   tuned soft labels on un-mutated negatives);
3. ``--summary``: per cell, each arm's tuning budget, best validation MRR and searched values,
   the retrained test MRR (mean ± sd over seeds) and the seed-paired differences EMU − baseline,
   EMU − smoothing and smoothing − baseline with 95 % t-intervals (``summary.md``,
   ``summary.json``, ``tuned.png``).

Re-run the same command to resume: finished trials and runs are kept, an interrupted trial or
run resumes from its checkpoint (a tuned cell's study is re-read and its report rewritten, no
trial is repeated). Several runners (one per core) can share a spec: a cell's
studies and each retraining run are locked, and a runner skips what another holds.

Results: ``<cell>-<arm>-s<seed>.json`` (arm: ``baseline``, ``emu``, ``smoothing``) and
``<cell>-tuning.md`` (the comparison's report) per cell.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..gridlib.spec import GridError

__all__ = ["tuned"]


@click.command("tuned", short_help="Tune both arms of each cell, retrain, summarise.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(path_type=Path))
@click.option("--only", multiple=True, metavar="CELL", help="Only this cell (repeatable).")
@click.option("--threads", type=int, default=None, metavar="N", help="Torch CPU threads.")
@click.option("--summary", is_flag=True, help="Write summary.md/json and tuned.png; train nothing.")
@click.option("--beside", multiple=True, metavar="SPEC", type=click.Path(path_type=Path),
              help="With --summary: also side-by-side.md, this spec's cells beside SPEC's (e.g. the equal-time "
                   "cells beside tuned.yaml's equal-trials ones; repeatable), read from the summary.json "
                   "in SPEC's default results folder.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Studies and run directories (default benchmarks/work/<name>).")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Result JSONs and summaries (default benchmarks/results/<name>).")
def tuned(spec_file, only, threads, summary, beside, work_dir, results_dir):
    """Tuned cells of SPEC (e.g. benchmarks/grids/tuned.yaml): EMU and its plain baseline each tuned
    with the same budget, then retrained with several seeds beside the label-smoothing-only control.

    \b
        python -m benchmarks tuned benchmarks/grids/tuned.yaml --threads 1   # tune + retrain
        python -m benchmarks tuned benchmarks/grids/tuned.yaml --summary     # tables and plot
        python -m benchmarks tuned benchmarks/grids/tuned-equal-time.yaml --summary \\
            --beside benchmarks/grids/tuned.yaml                              # both readings

    Re-run the same command to resume; several runners (one per core) can share a spec.
    """
    from ..tunedlib.spec import load_spec
    ctx = click.get_current_context()
    try:
        spec = load_spec(spec_file, work_dir, results_dir)
        missing = sorted(set(only) - set(spec.cells))
        if missing:
            raise GridError(f"--only {missing[0]}: not a cell of {spec.path} ({', '.join(spec.cells)})")
        if beside and not summary:
            raise GridError("--beside: goes with --summary (it writes a table, it trains nothing)")
        others = [load_spec(path) for path in beside]
    except GridError as e:
        print(f"Error: {e}", file=sys.stderr)
        ctx.exit(2)
    if summary:
        from ..agglib.tuned import write_summary
        try:
            print(write_summary(spec, others))
        except FileNotFoundError as e:
            print(f"Error: --beside: {e}", file=sys.stderr)
            ctx.exit(2)
        ctx.exit(0)
    from ..tunedlib.runner import run_spec
    ctx.exit(run_spec(spec, only, threads))
