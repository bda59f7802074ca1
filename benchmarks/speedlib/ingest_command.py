"""``python -m benchmarks speed ingest``: labelled triples parsed cold and loaded from the binary
cache, each in its own process (:mod:`.ingest`), with peak memory."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from .command import REPO, _subprocess_json
from .report import emit, secs

__all__ = ["ingest"]

#: the issue's targets (measured on a quiet machine): seconds and GB
TARGETS = {"parse_seconds_10m": 15.0, "cache_load_seconds_10m": 3.0, "peak_above_arrays_gb": 2.0}


@click.command("ingest")
@click.option("--triples", type=click.IntRange(min=1), default=10_000_000, show_default=True,
              help="Training triples written as labelled TSV.")
@click.option("--entities", type=click.IntRange(min=2), default=5_000_000, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the files and the cache go (default: a temporary folder, removed after).")
@click.option("--save/--no-save", default=True)
def ingest(triples, entities, workdir, save):
    """Cold parse and cache load of N labelled triples over E entities (generate_large_kg's ids as
    labels Q<id>, P<id>; 1000 valid and 1000 test triples), as 'dgl-emu run --train ...' reads them:
    seconds and peak RSS, each in a fresh process. "Cold": no cache entry and no digest cached (the
    files' sha256 is computed); the files may be in the OS page cache (written just before)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "xdg"))  # a cold digest cache
        written = _subprocess_json(["-m", "benchmarks.speedlib.ingest", "write", str(tmp / "data"), str(triples),
                                    str(entities)], env, REPO)
        parse = _subprocess_json(["-m", "benchmarks.speedlib.ingest", "parse", str(tmp / "data"), str(tmp / "cache")],
                                 env, REPO)
        load = _subprocess_json(["-m", "benchmarks.speedlib.ingest", "load", str(tmp / "data"), str(tmp / "cache")],
                                env, REPO)
    if not parse["origin"].startswith("parsed") or not load["origin"].startswith("read from the cache"):
        raise click.ClickException(f"unexpected: parse {parse['origin']!r}, load {load['origin']!r}")
    for m in (parse, load):
        m["seconds"] = secs(m["seconds"])
    parse["parse_seconds"] = secs(parse["parse_seconds"])
    parse["hash_and_cache_write_seconds"] = secs(parse["hash_and_cache_write_seconds"])
    out = {"triples": triples, "entities": entities, "labelled_bytes": written["bytes"],
           "entities_in_triples": parse["entities"], "cold": parse, "cache_load": load,
           "targets_at_10m_on_a_quiet_machine": TARGETS}
    click.echo(f"parse {parse['parse_seconds']:.2f} s (+{parse['hash_and_cache_write_seconds']:.2f} s hashing and "
               f"caching), peak {parse['peak_rss_gb']:.2f} GB; cache load {load['seconds']:.2f} s, peak "
               f"{load['peak_rss_gb']:.2f} GB", err=True)
    emit("ingest" if triples == 10_000_000 else f"ingest-{triples}", out, save)
