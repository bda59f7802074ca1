"""``dgl-emu tune``: hyper-parameter search on Optuna, resumable, with equal-budget EMU comparisons."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Dict, Optional

import click

from ..config import ALIASES, ConfigError, RunConfig, load_config
from ..data import ChecksumError, DataFormatError, DatasetNotFoundError
from ..launching import exit_status
from ..pipeline import RunDiverged, RunInterrupted, RunWriteError
from ..pipeline.datarecord import DataChanged
from ..training import CheckpointError
from ..tuning import apply_overrides, read_search_file, search_space
from ..tuning.budget import EqualTime, EqualTrials
from .options import given_options, parse_set, run_options
from .run import usage_error

__all__ = ["tune"]


def _fixed_paths(given: Dict[str, Any], sets: Dict[str, Any]) -> Dict[str, str]:
    """``{dotted path: flag}`` of the options given on the command line."""
    out = {ALIASES[name].path: ALIASES[name].flag(name) for name in given if ALIASES[name].path}
    for key in sets:
        path = ALIASES[key].path if key in ALIASES and ALIASES[key].path else key
        out[path] = f"--set {key}"
    return out


def _space(cfg: RunConfig, search_file: Optional[str], fixed: Dict[str, str]):
    """The search space: declared, less what the command line fixes, with the ``--search`` file."""
    overrides = read_search_file(search_file) if search_file else {}
    for path, flag in fixed.items():
        if path in overrides:
            raise ConfigError(f"{search_file}: search.{path}: fixed by {flag} on the command line and searched "
                              f"by the file; drop one", path)
    declared = {k: v for k, v in search_space(cfg).items() if k not in fixed}
    where = f"{search_file}: " if search_file else ""
    return apply_overrides(declared, overrides, cfg, where), overrides, where


def _summary(result, out_dir: Path) -> None:
    c = result.counts
    click.echo(f"\nstudy directory: {out_dir} (study.db; one run directory per trial in trials/)")
    click.echo(f"{result.finished} of {result.target} trials finished: {c['complete']} complete, {c['pruned']} "
               f"pruned, {c['diverged']} diverged" + (f"; {result.stopped}" if result.stopped else ""))
    if result.best_number is not None:
        click.echo(f"best trial {result.best_number}: validation MRR {result.best_value:.4f}")
        click.echo(f"best configuration: {out_dir / 'best.yaml'} (dgl-emu run --config {out_dir / 'best.yaml'})")
    click.echo(f"trials: {out_dir / 'trials.md'}; importance: "
               + (result.importance_note or str(out_dir / "importance.png")))


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="YAML file of options, as for dgl-emu run; command-line options override it.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Finished (complete, pruned or diverged) trials the study holds in the end; a resumed "
                   "study runs only the missing ones.  [default: 20; with --equal-time: no cap]")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Start no new trial after this many seconds (the running trial finishes).")
@click.option("--search", "search_file", type=click.Path(dir_okay=False, exists=True),
              help="YAML of ranges that change, add or remove (null) declared ones, e.g. "
                   "'emu.keep_prob: {low: 0.2, high: 0.6}'.")
@click.option("--prune-after", type=click.IntRange(min=0), default=5, show_default=True,
              help="Complete trials before the median rule starts pruning.")
@click.option("--prune-warmup", type=click.FloatRange(min=0, max=1, max_open=True), default=0.25,
              show_default=True, metavar="FRACTION",
              help="Fraction of a trial's steps before which it is never pruned.")
@click.option("--config-first", is_flag=True,
              help="A new study's first trial uses the configuration's own values of the searched "
                   "parameters (from --config and the options, else the defaults), so the search starts "
                   "from them.")
@click.option("--compare-emu", is_flag=True,
              help="Tune EMU and the plain baseline (emu: none) with equal budgets, in OUTPUT/emu and "
                   "OUTPUT/baseline; writes OUTPUT/report.md.")
@click.option("--equal-time", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="With --compare-emu: both arms get SECONDS of trial wall time each on this machine (the arm "
                   "that has used less runs the next trial), instead of the same number of trials; --trials "
                   "then caps each arm's trials.")
@run_options
@click.pass_context
def tune(ctx, config_file, trials, timeout, search_file, prune_after, prune_warmup, config_first, compare_emu,
         equal_time, set_values, **options):
    """Search hyper-parameters with Optuna: each trial is a dgl-emu run, pruned on validation MRR.

    The study lives in OUTPUT/study.db (default OUTPUT: tunes/<name>); re-running the same
    command resumes it: finished trials are kept and an interrupted one resumes from its last
    checkpoint. The ranges are those the chosen components declare (see the docs' Tuning page);
    options given on the command line are fixed, not searched. OUTPUT/best.yaml is the best
    trial's configuration, for dgl-emu run --config.
    """
    import optuna  # start-up cost: Optuna (0.2 s) is imported only when a study runs
    from ..tuning.compare import compare_emu as run_comparison, format_report  # start-up cost: Optuna
    from ..tuning.pruning import MedianRule  # start-up cost: Optuna
    from ..tuning.study import (StudyLocked, StudyUnreadable, default_study_dir,  # start-up cost: Optuna
                                tune as run_study)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if equal_time is not None and not compare_emu:
        raise click.UsageError("--equal-time gives EMU and its baseline the same time: it goes with --compare-emu",
                               ctx)
    budget = EqualTime(equal_time, trials) if equal_time is not None else EqualTrials(trials or 20)
    given = given_options(ctx, options)
    sets = parse_set(set_values)
    out_dir = given.pop("output", None) or sets.pop("output", None)
    try:
        cfg = (load_config(config_file, given, sets) if config_file
               else RunConfig.from_dict(given, sets)).updated(output=None)
    except ConfigError as e:
        raise usage_error(e, given, list(sets), ctx) from None
    out_dir = Path(out_dir) if out_dir else default_study_dir(cfg)
    fixed = _fixed_paths(given, sets)
    pruning = MedianRule(after=prune_after, warmup=prune_warmup)
    try:
        space, overrides, where = _space(cfg, search_file, fixed)
        if compare_emu:
            comparison = run_comparison(cfg, out_dir, budget=budget, timeout=timeout, overrides=overrides,
                                        where=where, fixed=fixed, pruning=pruning,
                                        config_first=config_first, notify=click.echo)
        else:
            result = run_study(cfg, out_dir, trials=budget.trials, timeout=timeout, space=space,
                               pruning=pruning, config_first=config_first, notify=click.echo)
    except ConfigError as e:
        raise click.UsageError(str(e), ctx) from None
    except (StudyLocked, StudyUnreadable, DataFormatError, DatasetNotFoundError, ChecksumError, CheckpointError,
            DataChanged, RunDiverged, RunWriteError) as e:
        raise click.ClickException(str(e)) from None
    except RunInterrupted as e:
        verb = "Terminated" if e.signal == signal.SIGTERM else "Interrupted"
        click.echo(f"{verb} at step {e.step} of {e.run_dir}: re-run the same command to resume the study.",
                   err=True)
        ctx.exit(exit_status(e.signal))
    if compare_emu:
        click.echo("\n" + format_report(comparison.report))
        click.echo(f"report: {out_dir / 'report.md'}; studies: {out_dir / 'emu'}, {out_dir / 'baseline'}")
    else:
        _summary(result, out_dir)


for _param in tune.params:  # the run's --output is the study's directory here
    if _param.name == "output":
        _param.help = "Study directory (default tunes/<name>): study.db, trials/, best.yaml, trials.md."
