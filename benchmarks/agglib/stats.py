"""Statistics of a grid's results: per-row descriptions, seed-paired differences, verdicts."""
from __future__ import annotations

import json
import math
import statistics
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

from .records import IGNORED, KEY, METRICS, AggregateError, hashable, sort_key

__all__ = ["describe", "paired_difference", "verdict", "extra_fields", "summarize"]


def describe(values: Sequence[float]) -> Dict[str, Any]:
    """``n``, ``mean`` and the sample standard deviation ``std`` (ddof 1; None for one value)."""
    values = list(values)
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "values": values}


def paired_difference(baseline: Dict[int, float], emu: Dict[int, float]) -> Optional[Dict[str, Any]]:
    """EMU − baseline over the seeds both have: mean and 95% t-interval of the paired differences.

    ``ci95`` is ``mean ± t(0.975, n-1) * sd / sqrt(n)``; with one pair it is None and ``note`` is
    ``"n=1"``. With no common seed (but both sides present) the difference of the means is given,
    with ``note`` ``"unpaired"``. None when a side is missing.
    """
    if not baseline or not emu:
        return None
    seeds = sorted(set(baseline) & set(emu))
    if not seeds:
        mean = statistics.fmean(emu.values()) - statistics.fmean(baseline.values())
        return {"n": 0, "seeds": [], "mean": mean, "sd": None, "half_width": None, "ci95": None,
                "note": "unpaired", "differences": []}
    diffs = [emu[s] - baseline[s] for s in seeds]
    n, mean = len(diffs), statistics.fmean(diffs)
    if n == 1:
        return {"n": 1, "seeds": seeds, "mean": mean, "sd": None, "half_width": None, "ci95": None,
                "note": "n=1", "differences": diffs}
    from scipy.stats import t
    sd = statistics.stdev(diffs)
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "seeds": seeds, "mean": mean, "sd": sd, "half_width": half,
            "ci95": [mean - half, mean + half], "note": None, "differences": diffs}


def verdict(diff: Optional[Dict[str, Any]]) -> str:
    """One word for a :func:`paired_difference`: is EMU better than its baseline?

    ``"better"`` when the 95 % interval lies above 0, ``"worse"`` when it lies below, ``"unclear"``
    when it contains 0; without an interval, the sign of the mean and the reason:
    ``"higher (n=1)"`` / ``"lower (n=1)"`` for one pair, ``"higher (unpaired)"`` / ``"lower (unpaired)"``
    with no common seed; ``"—"`` when a side is missing.

    Examples
    --------
    >>> verdict({"ci95": [0.01, 0.03], "mean": 0.02, "note": None})
    'better'
    >>> verdict({"ci95": [-0.01, 0.03], "mean": 0.01, "note": None})
    'unclear'
    >>> verdict({"ci95": None, "mean": -0.02, "note": "n=1"})
    'lower (n=1)'
    """
    if diff is None:
        return "—"
    if diff["ci95"] is None:
        return f"{'higher' if diff['mean'] > 0 else 'lower'} ({diff['note']})"
    lo, hi = diff["ci95"]
    return "better" if lo > 0 else "worse" if hi < 0 else "unclear"


def extra_fields(records: Sequence[Dict[str, Any]], arm_fields: Sequence[str] = ()) -> List[str]:
    """Config fields beyond :data:`KEY`, :data:`IGNORED` and ``arm_fields`` that vary between
    records: they split rows.

    A field only some records have (an option of a component the others do not use, e.g.
    ``sans_k``) varies only if it takes two values where it exists.
    """
    fields = sorted({k for r in records for k in r["config"]} - set(KEY) - IGNORED - set(arm_fields))
    return [f for f in fields
            if len({json.dumps(r["config"][f], sort_keys=True) for r in records if f in r["config"]}) > 1]


def summarize(records: Sequence[Dict[str, Any]], arm_fields: Sequence[str] = ()) -> Dict[str, Any]:
    """Rows of baseline/EMU statistics and paired differences, plus the dimension comparison.

    ``arm_fields`` are config fields that belong to an arm rather than to a row (e.g. the
    published baselines' regulariser, which EMU runs without): they do not split rows, and each
    row reports their value for the baseline and the EMU side (``row["arm_settings"]``).

    Raises
    ------
    AggregateError
        If two results are the same run (same row, EMU flag and seed), if an arm field is in no
        result's configuration, or if it takes two values within one side of a row.
    """
    if not records:
        raise AggregateError("no run results to aggregate")
    arm_fields = list(arm_fields)
    for f in arm_fields:
        if not any(f in r["config"] for r in records):
            raise AggregateError(f"--arm-field {f}: no result's configuration has this field")
    extras = extra_fields(records, arm_fields)
    groups: "OrderedDict[Any, Dict[str, Any]]" = OrderedDict()
    for r in records:
        key = {k: r[k] for k in KEY}
        key["extras"] = {f: r["config"].get(f) for f in extras}
        hk = tuple(hashable(v) for v in (*[key[k] for k in KEY], key["extras"]))
        g = groups.setdefault(hk, {"key": key, "baseline": {}, "emu": {}})
        side = g["emu" if r["emu"] else "baseline"]
        if r["seed"] in side:
            raise AggregateError(f"{side[r['seed']]['path']} and {r['path']} are the same run "
                                 f"({'EMU' if r['emu'] else 'baseline'}, seed {r['seed']})")
        side[r["seed"]] = r
    rows = []
    for g in sorted(groups.values(), key=lambda g: sort_key(g["key"])):
        row = dict(g["key"])
        for side in ("baseline", "emu"):
            runs = g[side]
            if not runs:
                row[side] = None
                continue
            seeds = sorted(runs)
            row[side] = {"n": len(seeds), "seeds": seeds,
                         **{m: describe([runs[s][m] for s in seeds]) for m in METRICS}}
        row["arm_settings"] = {side: _arm_settings(g[side], arm_fields, side) for side in ("baseline", "emu")}
        row["difference"] = None
        if g["baseline"] and g["emu"]:
            row["difference"] = {m: paired_difference({s: r[m] for s, r in g["baseline"].items()},
                                                      {s: r[m] for s, r in g["emu"].items()})
                                 for m in METRICS}
        row["verdict"] = {m: verdict(row["difference"][m] if row["difference"] else None) for m in METRICS}
        rows.append(row)
    return {"metric_source": "test split, both sides, filtered ranks, realistic ties",
            "std": "sample standard deviation over seeds (ddof 1)",
            "difference": "EMU - baseline over paired seeds: mean ± t(0.975, n-1)·sd/sqrt(n)",
            "extra_fields": extras, "arm_fields": arm_fields, "rows": rows,
            "dimension": _dimension_comparison(rows)}


def _arm_settings(runs: Dict[int, Dict[str, Any]], fields: Sequence[str], side: str) -> Optional[Dict[str, Any]]:
    """The one value each arm field takes in ``runs`` (a row's side, by seed); None without runs."""
    if not runs:
        return None
    out = {}
    for f in fields:
        values = {json.dumps(r["config"].get(f), sort_keys=True) for r in runs.values()}
        if len(values) > 1:
            raise AggregateError(f"--arm-field {f}: the {side} runs of one row differ in it "
                                 f"({', '.join(sorted(values))}); they would be averaged together")
        out[f] = next(iter(runs.values()))["config"].get(f)
    return out


def _dimension_comparison(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """EMU at d against the baseline at every larger d of the same dataset/encoder/model/sampler."""
    out = []
    for emu_row in rows:
        if emu_row["emu"] is None:
            continue
        for base_row in rows:
            same = all(base_row[k] == emu_row[k] for k in ("dataset", "encoder", "model", "sampler", "extras"))
            if not same or base_row["baseline"] is None or base_row["dim"] <= emu_row["dim"]:
                continue
            entry = {k: emu_row[k] for k in ("dataset", "encoder", "model", "sampler", "extras")}
            entry.update({"emu_dim": emu_row["dim"], "baseline_dim": base_row["dim"],
                          "ratio": base_row["dim"] / emu_row["dim"]})
            for m in METRICS:
                e, b = emu_row["emu"][m], base_row["baseline"][m]
                entry[m] = {"emu": e["mean"], "emu_n": e["n"], "baseline": b["mean"], "baseline_n": b["n"],
                            "difference_of_means": e["mean"] - b["mean"]}
            out.append(entry)
    return out
