"""``dgl-emu run``: train, validate, test, with options from flags, ``--set`` and YAML."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..config import ConfigError, RunConfig, load_config
from ..data import ChecksumError, DataFormatError, DatasetNotFoundError
from ..data_parallel.launch import launch as launch_data_parallel
from ..launching import exit_status, report, stop_line
from ..pipeline import RunDiverged, RunInterrupted, RunWriteError, run as run_pipeline
from ..pipeline.datarecord import DataChanged
from ..sharded import check_options
from ..sharded.launch import launch as launch_sharded
from ..sharded.partition import read_info
from ..training import CheckpointError
from .inspect import format_metrics_table
from .options import flag_for_error, given_options, parse_set, run_options
from .placement import worker_placement

__all__ = ["run"]


def usage_error(err: ConfigError, given: dict, set_paths: list, ctx) -> click.UsageError:
    """A usage error that names the flag when the bad value came from the command line."""
    msg = str(err)
    flag = flag_for_error(err, given, set_paths)
    if flag and err.path and msg.startswith(f"{err.path}:"):
        msg = f"{flag}{msg[len(err.path):]}"
    elif flag and err.path and msg.startswith(f"{err.path.split('.')[0]}:"):
        msg = f"{flag}: {msg.split(':', 1)[1].strip()}"
    return click.UsageError(msg, ctx)


#: the most processes (or machines) a launcher option may ask for
MAX_PROCESSES = 1024
#: options of the launcher, not passed on to the workers it starts
LAUNCH_OPTIONS = ("--nproc", "--part-config", "--ip-config", "--num-trainers", "--num-servers", "--machine-rank")


def _worker_argv() -> list:
    """This command's arguments after ``run``, without the launch options."""
    argv = sys.argv[sys.argv.index("run") + 1:]
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in LAUNCH_OPTIONS:
            skip = True
        elif not a.startswith(tuple(f"{o}=" for o in LAUNCH_OPTIONS)):
            out.append(a)
    return out


def resume_command() -> str:
    """The command that resumes this run: this one, without ``--fresh`` (which would start over)."""
    if "run" not in sys.argv[1:]:  # called from Python (e.g. click's test runner)
        return "the same command without --fresh"
    args = [a for a in sys.argv[sys.argv.index("run") + 1:] if a != "--fresh"]
    return shlex.join(["dgl-emu", "run", *args])


def _check_partitions(ctx, cfg: RunConfig, part_config) -> None:
    """The partitions must be of the run's dataset, and the options possible sharded (checked
    before any process starts)."""
    try:
        check_options(cfg)
    except ConfigError as e:
        raise click.UsageError(str(e), ctx) from None
    try:
        info = read_info(part_config)
    except FileNotFoundError as e:
        raise click.UsageError(str(e), ctx) from None
    dataset = str(Path(cfg.data.train).resolve()) if cfg.data.train else cfg.data.dataset
    if info.dataset != dataset:
        raise click.UsageError(f"--part-config: {part_config} partitions {info.dataset!r}, but this run trains "
                               f"{dataset!r}", ctx)


def _launch_sharded(ctx, part_config, ip_config, num_trainers, num_servers, machine_rank) -> None:
    if ip_config is None:
        raise click.UsageError("--part-config needs --ip-config (the machines, one 'IP [PORT]' line each)", ctx)
    try:
        code = launch_sharded(_worker_argv(), part_config, ip_config, num_trainers=num_trainers,
                              num_servers=num_servers, machine_rank=machine_rank, resume=resume_command())
    except (ValueError, FileNotFoundError) as e:
        raise click.UsageError(str(e), ctx) from None
    ctx.exit(code)


@click.command()
@click.option("--nproc", type=click.IntRange(min=1, max=MAX_PROCESSES), default=1, show_default=True,
              help="Data-parallel processes on this machine (see the docs' Scaling up page).")
@click.option("--part-config", type=click.Path(dir_okay=False, exists=True),
              help="Sharded embeddings: DGL partition configuration from 'dgl-emu partition'.")
@click.option("--ip-config", type=click.Path(dir_okay=False, exists=True),
              help="Sharded embeddings: the machines, one 'IP [PORT]' line each (partition i on line i).")
@click.option("--num-trainers", type=click.IntRange(min=1, max=MAX_PROCESSES), default=1, show_default=True,
              help="Sharded embeddings: trainer processes on this machine.")
@click.option("--num-servers", type=click.IntRange(min=1, max=MAX_PROCESSES), default=1, show_default=True,
              help="Sharded embeddings: store servers on this machine.")
@click.option("--machine-rank", type=click.IntRange(min=0, max=MAX_PROCESSES - 1), default=0, show_default=True,
              help="Sharded embeddings: this machine's line in --ip-config.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="YAML file of options (sections or flat names); command-line options override it.")
@click.option("--fresh", is_flag=True, help="Start over even if the run directory holds a checkpoint.")
@click.option("--accept-changed-data", is_flag=True,
              help="Resume although the data differ from the run's record (read with its recorded id maps).")
@run_options
@click.pass_context
def run(ctx, nproc, part_config, ip_config, num_trainers, num_servers, machine_rank, config_file, fresh,
        accept_changed_data, set_values, **options):
    """Train (with EMU by default), validate, keep the best checkpoint and report test metrics.

    With no arguments it trains RotatE with EMU on a small generated KG in well under a minute.
    Every flag is the flat spelling of a configuration option (``--num-negatives`` sets
    ``sampler.num_negatives``); ``--set PATH=VALUE`` reaches every other option.
    """
    given = given_options(ctx, options)
    sets = parse_set(set_values)
    try:
        cfg = (load_config(config_file, given, sets) if config_file
               else RunConfig.from_dict(given, sets))
        placement = worker_placement(cfg)  # a process that a launcher started, or None
    except ConfigError as e:
        raise usage_error(e, given, list(sets), ctx) from None
    if placement is None and part_config is not None:
        if nproc > 1:
            raise click.UsageError("--nproc (data-parallel) and --part-config (sharded) exclude each other; "
                                   "use --num-trainers with --part-config", ctx)
        _check_partitions(ctx, cfg, part_config)
        _launch_sharded(ctx, part_config, ip_config, num_trainers, num_servers, machine_rank)
    if placement is None and nproc > 1:
        ctx.exit(launch_data_parallel(nproc, _worker_argv(), resume=resume_command()))
    try:
        result = run_pipeline(cfg, resume=not fresh, notify=click.echo, placement=placement,
                              accept_changed_data=accept_changed_data)
    except ConfigError as e:
        raise usage_error(e, given, list(sets), ctx) from None
    except (DataFormatError, DatasetNotFoundError, ChecksumError, DataChanged, RunDiverged, RunWriteError) as e:
        raise click.ClickException(str(e)) from None
    except CheckpointError as e:
        raise click.ClickException(f"{e}; delete it to start over, or pass --fresh") from None
    except RunInterrupted as e:
        checkpoint = str(e.checkpoint) if e.checkpoint is not None else None
        restored = str(e.restored) if e.restored is not None else None
        line = stop_line(e.signal, e.step, checkpoint, resume_command(), restored)
        if not report("stopped", line, step=e.step, checkpoint=checkpoint, restored=restored):
            click.echo(line, err=True)
        ctx.exit(exit_status(e.signal))
    if not result.main:  # another data-parallel rank: rank 0 reports
        return
    click.echo(f"\nrun directory: {result.run_dir}")
    click.echo(f"best validation MRR {result.metrics['best_valid_mrr']} at step {result.metrics['best_step']}; "
               f"{result.metrics['train_seconds']:.1f} s")
    click.echo(format_metrics_table(result.metrics))
