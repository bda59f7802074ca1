"""The ingestion benchmark's measurements, each in its own process so its peak memory is its own.

    python -m benchmarks.speedlib.ingest write DIR N E        -> labelled train/valid/test.txt in DIR
    python -m benchmarks.speedlib.ingest parse DIR CACHE      -> JSON: cold parse (and cache write) seconds, peak RSS
    python -m benchmarks.speedlib.ingest load DIR CACHE       -> JSON: load from the cache seconds, peak RSS

``parse`` and ``load`` read the files as ``dgl-emu run --train ... --valid ... --test ...`` does
(:func:`dgl_emu.data.cache.cached_load` around :meth:`KnowledgeGraph.from_files`), the parse with
an empty cache folder and an empty digest cache (the files' sha256 is computed: it keys the cache).
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

SPLITS = ("train", "valid", "test")


def rss_gb() -> tuple:
    """``(current, peak)`` resident memory of this process in GB (Linux: /proc and ru_maxrss in KiB)."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 2 ** 20
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def write(directory: Path, triples: int, entities: int) -> dict:
    """``triples`` training lines (plus 1000 valid and test) of ``generate_large_kg``'s ids as labels
    ``Q<id>`` / ``P<id>``, written with pyarrow (no Python loop over lines)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from dgl_emu.data import generate_large_kg
    kg = generate_large_kg(entities, triples, 200, seed=0)
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, t in kg.splits.items():
        ids = t.numpy()
        cols = {name: pc.binary_join_element_wise(prefix, pc.cast(pa.array(ids[:, i]), pa.string()), "")
                for i, (name, prefix) in enumerate((("h", "Q"), ("r", "P"), ("t", "Q")))}
        path = directory / f"{split}.txt"
        pacsv.write_csv(pa.table(cols), str(path), pacsv.WriteOptions(include_header=False, delimiter="\t",
                                                                      quoting_style="none"))
        sizes[split] = len(ids)
    return {"triples": sizes, "entities": entities,
            "bytes": sum((directory / f"{s}.txt").stat().st_size for s in SPLITS)}


def _load(directory: Path, cache: Path):
    from dgl_emu.data import KnowledgeGraph
    from dgl_emu.data.cache import cached_load
    files = {s: directory / f"{s}.txt" for s in SPLITS}
    timing = {}

    def parse():
        start = time.perf_counter()
        kg = KnowledgeGraph.from_files(files["train"], files["valid"], files["test"])
        timing["parse_seconds"] = time.perf_counter() - start
        return kg

    start = time.perf_counter()
    kg = cached_load("labels", {"unseen": "keep", "columns": "hrt", "entities": None, "relations": None},
                     files, parse, name=directory.name, root=cache)
    total = time.perf_counter() - start
    return kg, total, timing


def measure(what: str, directory: Path, cache: Path) -> dict:
    """Seconds and memory of a cold parse (``parse``) or of a load from the cache (``load``)."""
    import dgl_emu.data  # noqa: F401  (imports are not part of the measurement)
    base, _ = rss_gb()
    kg, total, timing = _load(directory, cache)
    now, peak = rss_gb()
    arrays = sum(t.numel() * t.element_size() for t in kg.splits.values()) / 2 ** 30
    out = {"measurement": what, "seconds": total, "origin": kg.origin.split(" /")[0].removesuffix(" in"),
           "entities": kg.num_entities, "triples": {s: len(t) for s, t in kg.splits.items()},
           "rss_after_imports_gb": round(base, 3), "rss_after_gb": round(now, 3), "peak_rss_gb": round(peak, 3),
           "arrays_gb": round(arrays, 3), "peak_above_imports_and_arrays_gb": round(peak - base - arrays, 3)}
    if "parse_seconds" in timing:
        out["parse_seconds"] = timing["parse_seconds"]
        out["hash_and_cache_write_seconds"] = total - timing["parse_seconds"]
    return out


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "write":
        print(json.dumps(write(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
    elif step in ("parse", "load"):
        print(json.dumps(measure(step, Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        raise SystemExit(f"unknown step {step!r}")
