"""``dgl-emu datasets``: the registry of benchmarks, their files, downloads and checksums."""
from __future__ import annotations

import json

import click

from ..data.datasets import (DATASETS, SYNTHETIC, ChecksumError, DatasetNotFoundError, data_root, is_present,
                             verify as check)
from ..data.download import download as fetch

__all__ = ["datasets"]


@click.group(invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Root holding NAME/ folders (else $DGL_EMU_DATA, else the user cache).")
@click.pass_context
def datasets(ctx, data_dir):
    """List registered datasets with their counts and whether their files are present."""
    ctx.obj = {"data_dir": data_dir}
    if ctx.invoked_subcommand is not None:
        return
    click.echo(f"data root: {data_root(data_dir)}")
    click.echo(f"{'name':12s}  {'entities':>8s}  {'relations':>9s}  {'train':>8s}  {'valid':>6s}  "
               f"{'test':>6s}  present  checksums")
    for name in DATASETS.names():
        d = DATASETS.get(name)
        c = d.counts
        click.echo(f"{name:12s}  {c['entities']:8d}  {c['relations']:9d}  {c['train']:8d}  "
                   f"{c['valid']:6d}  {c['test']:6d}  {'yes' if is_present(name, data_dir) else 'no ':7s}  "
                   f"{d.checksums}")
    click.echo(f"{SYNTHETIC:10s}  generated from a seed, no files (the default of 'dgl-emu run')")


def _dataset_info(name: str):
    try:
        return DATASETS.get(name)
    except KeyError as e:
        raise click.BadParameter(e.args[0], param_hint="NAME") from None


@datasets.command()
@click.argument("name")
@click.pass_context
def info(ctx, name):
    """Metadata of one dataset: counts, citation, source, checksums, where it is looked for."""
    d = _dataset_info(name)
    click.echo(f"{d.title} ({d.name})")
    click.echo(f"  counts:   {json.dumps(d.counts)}")
    click.echo(f"  citation: {d.citation}")
    click.echo(f"  homepage: {d.homepage}")
    click.echo(f"  source:   {d.source.get('archive') or d.source.get('base_url')}")
    click.echo(f"  format:   {d.format}; checksums {d.checksums}")
    if d.note:
        click.echo(f"  note:     {d.note}")
    click.echo(f"  folder:   {data_root(ctx.obj['data_dir']) / d.name}")
    for split, files in d.files.items():
        for fname, sums in files.items():
            click.echo(f"  {split:5s} {fname:14s} sha256 {' or '.join(sums) or '(recorded at first download)'}")


@datasets.command()
@click.argument("name")
@click.option("--mirror", default=None, help="Base URL of a mirror laid out as MIRROR/NAME/train.txt.")
@click.pass_context
def download(ctx, name, mirror):
    """Download a dataset from its canonical source (or a mirror) and verify its checksums."""
    d = _dataset_info(name)
    try:
        path = fetch(d.name, ctx.obj["data_dir"], mirror=mirror)
    except ChecksumError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"download of {d.name} failed ({e}); without internet, put the files "
                                   f"in the folder shown by 'dgl-emu datasets info {d.name}'") from None
    click.echo(f"{d.name}: downloaded and verified in {path}")


@datasets.command()
@click.argument("name")
@click.pass_context
def verify(ctx, name):
    """Check a dataset's files against the registered sha256 checksums."""
    d = _dataset_info(name)
    try:
        files = check(d.name, ctx.obj["data_dir"], cached=False)
    except (ChecksumError, DatasetNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{d.name}: {', '.join(files.values())} OK")
