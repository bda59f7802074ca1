"""``dgl-emu datasets``: the registry of benchmarks, their files, downloads and checksums."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import click
import numpy as np

from ..data.datasets import (DATASETS, SYNTHETIC, ChecksumError, DatasetNotFoundError, data_root, is_present,
                             verify as check)
from ..data import SPLITS, generate_large_kg
from ..data.cache import cache_root, entries, remove_entry
from ..data.checksums import DIGESTS, RECORDS, UNVERIFIED, cache_dir, forget as forget_records, records
from ..data.download import download as fetch
from ..utils import atomic_write_bytes

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
    for split, fname in files.items():
        if d.files[split][fname]:
            click.echo(f"{d.name}/{fname}: OK (registered sha256)")
        else:
            entry = records().get(f"{d.name}/{fname}", {})
            click.echo(f"{d.name}/{fname}: OK against the checksum recorded at its {entry.get('how', 'first use')} "
                       f"({entry.get('recorded') or 'time unknown'}): {UNVERIFIED}, no registered checksum vouches "
                       f"for it")


@datasets.command()
def checksums():
    """List the checksums: registered ones, and those recorded at first use (unverified)."""
    rec = records()
    click.echo(f"records: {cache_dir() / RECORDS}")
    click.echo(f"digest cache: {cache_dir() / DIGESTS}")
    for name in DATASETS.names():
        d = DATASETS.get(name)
        for split, files in d.files.items():
            for fname, sums in files.items():
                key = f"{d.name}/{fname}"
                if sums:
                    line = f"registered  {sums[0][:16]}"
                elif key in rec:
                    e = rec[key]
                    line = (f"{e['status']:10s}  {e['sha256'][:16]}  recorded at {e.get('how', 'first use')} "
                            f"{e.get('recorded') or ''} from {e.get('path') or '?'}")
                else:
                    line = "none yet    (recorded at the first download or load)"
                click.echo(f"{key:52s} {line}")


@datasets.command()
@click.argument("name")
def forget(name):
    """Forget the checksums recorded for NAME, so its next download or load records them anew."""
    d = _dataset_info(name)
    gone = forget_records(d.name)
    if not gone:
        click.echo(f"{d.name}: no recorded checksum ({d.checksums})")
        return
    for key in gone:
        click.echo(f"forgot {key}")


@datasets.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--entities", type=click.IntRange(min=2), required=True, help="Entities E.")
@click.option("--triples", type=click.IntRange(min=1), default=None, help="Training triples (default 2E).")
@click.option("--relations", type=click.IntRange(min=1), default=200, show_default=True, help="Relations R.")
@click.option("--seed", type=int, default=0, show_default=True)
def generate(out, entities, triples, relations, seed):
    """Write a generated graph (Zipf-skewed degrees, as 'speed scale') as id arrays: OUT/train.npy,
    valid.npy and test.npy, each (N, 3) int64 (head, relation, tail). No labels are written; train it
    with the command printed (or directly: dgl-emu run --dataset generated --set data.entities=E)."""
    folder = Path(out)
    taken = [folder / f"{s}.npy" for s in SPLITS if os.path.lexists(folder / f"{s}.npy")]
    if taken:
        raise click.ClickException(f"{taken[0]} exists; nothing is overwritten: choose another folder")
    kg = generate_large_kg(entities, triples or 2 * entities, relations, seed=seed, name="generated")
    try:
        for split, t in kg.splits.items():
            buf = io.BytesIO()
            np.save(buf, t.numpy())
            atomic_write_bytes(folder / f"{split}.npy", buf.getvalue())
    except OSError as e:
        raise click.ClickException(f"{e.filename}: could not be written ({e.strerror})") from None
    stats = kg.statistics()
    click.echo(f"wrote {folder}/train.npy ({stats['train']} triples), valid.npy ({stats['valid']}), "
               f"test.npy ({stats['test']}): E={entities}, R={relations}, seed {seed}")
    click.echo(f"train it: dgl-emu run --input-format arrays --train {folder}/train.npy --valid {folder}/valid.npy "
               f"--test {folder}/test.npy --set data.entities={entities} --set data.relations={relations}")


@datasets.command("cache")
@click.option("--clear", is_flag=True, help="Remove the entries (only those dgl-emu wrote).")
def cache_cmd(clear):
    """The binary cache of parsed datasets ($DGL_EMU_CACHE, else the user cache): its entries, their
    size and whether the files they were parsed from are unchanged."""
    root = cache_root()
    click.echo(f"cache: {root}")
    for entry in entries(root):
        files = entry.meta.get("files", {})
        where = files.get("train", next(iter(files.values()), {})).get("path", "?")
        if clear:
            gone = remove_entry(entry.path)
            click.echo(f"{'removed' if gone else 'kept (holds other files)'} {entry.path.name}  {where}")
            continue
        click.echo(f"{entry.path.name}  {entry.bytes / 2 ** 20:9.1f} MiB  "
                   f"{'current' if entry.current() else 'stale  '}  {entry.meta.get('format')}  {where}")
