"""What a study leaves beside ``study.db``: ``trials.json``, ``trials.md``, ``best.yaml`` and
``importance.png``. Every file is written atomically, after each trial (the plot at the end)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..config import RunConfig, load_config
from ..utils import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["finished_trials", "trial_rows", "write_tables", "write_best", "write_importance", "format_trials_table",
           "best_metrics"]


def finished_trials(study: "optuna.Study") -> List[FrozenTrial]:
    """Trials that used their budget: complete, pruned, or failed because training diverged (a
    trial failed for another reason, e.g. killed, is not finished: it is resumed)."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and "diverged" in t.user_attrs)]


def _state(t) -> str:
    if t.state == TrialState.FAIL and "diverged" in t.user_attrs:
        return "DIVERGED"
    return t.state.name


def trial_rows(study: "optuna.Study") -> List[Dict[str, Any]]:
    """One plain record per trial: number, state, params, best valid MRR, steps, seconds, test
    metrics, run directory and a note (pruned at, diverged, resumed)."""
    resumed_as = {t.user_attrs["resumes"]: t.number for t in study.get_trials(deepcopy=False)
                  if "resumes" in t.user_attrs}
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        notes = ["the configuration's own values"] if a.get("from_config") else []
        if "pruned_at" in a:
            notes.append(f"pruned at step {a['pruned_at']}")
        if "diverged" in a:
            notes.append(a["diverged"])
        if "resumes" in a:
            since = f" from step {a['resumed_at']}" if a.get("resumed_at") else ""
            notes.append(f"resumes the run of trial {a['resumes']}{since}")
        if t.number in resumed_as:
            notes.append(f"interrupted; resumed as trial {resumed_as[t.number]}")
        rows.append({"number": t.number, "state": _state(t), "params": dict(t.params),
                     "value": t.value if t.state == TrialState.COMPLETE else None,
                     "best_valid_mrr": a.get("valid_mrr"), "steps": a.get("steps"),
                     "seconds": a.get("seconds"), "test_mrr": a.get("test_mrr"),
                     "test_hits@1": a.get("test_hits@1"), "run_dir": a.get("run_dir"),
                     "note": "; ".join(notes)})
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def format_trials_table(rows: List[Mapping[str, Any]], params: List[str]) -> str:
    """A Markdown table of ``rows`` with one column per parameter.

    Examples
    --------
    >>> rows = [{"number": 0, "state": "COMPLETE", "params": {"optimizer.lr": 0.05},
    ...          "best_valid_mrr": 0.31234, "steps": 60, "seconds": 1.5, "note": ""}]
    >>> print(format_trials_table(rows, ["optimizer.lr"]))
    | trial | state | valid MRR | steps | seconds | optimizer.lr | note |
    |---:|---|---:|---:|---:|---:|---|
    | 0 | COMPLETE | 0.3123 | 60 | 1.5 | 0.05 |  |
    """
    head = ["trial", "state", "valid MRR", "steps", "seconds", *params, "note"]
    lines = ["| " + " | ".join(head) + " |",
             "|---:|---|---:|---:|---:|" + "---:|" * len(params) + "---|"]
    for r in rows:
        seconds = "-" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        cells = [str(r["number"]), r["state"], _fmt(r.get("best_valid_mrr")), _fmt(r.get("steps")), seconds,
                 *(_fmt(r["params"].get(p)) for p in params), r.get("note", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _best(study: "optuna.Study"):
    try:
        return study.best_trial
    except ValueError:
        return None


def write_tables(study: "optuna.Study", out_dir: Path, target: int, space: Mapping[str, str],
                 cfg: RunConfig, importance_note: Optional[str] = None) -> None:
    """``trials.json`` (every trial, the search space, the best trial, parameter importances)
    and ``trials.md`` (the same as a table)."""
    rows = trial_rows(study)
    best = _best(study)
    importances = study.user_attrs.get("importance")
    finished = len(finished_trials(study))
    atomic_write_json(out_dir / "trials.json", {
        "target_trials": target, "finished_trials": finished, "steps_per_trial": cfg.training.steps,
        "seed": cfg.seed, "search_space": dict(space), "best_trial": best.number if best else None,
        "best_valid_mrr": best.value if best else None, "importance": importances, "trials": rows})
    lines = [f"# Study {out_dir.name}", "",
             f"{finished} of {target} trials finished, at most {cfg.training.steps} steps each "
             f"(validation every {cfg.training.eval_every}), seed {cfg.seed}.", ""]
    if best is not None:
        lines += [f"Best: trial {best.number}, validation MRR {best.value:.4f} "
                  f"(configuration: `best.yaml`, for `dgl-emu run --config best.yaml`).", ""]
    lines += ["Search space:", ""] + [f"* `{k}`: {v}" for k, v in space.items()] + [""]
    lines += [format_trials_table(rows, list(space)), ""]
    if importances:
        lines += ["Parameter importance (`importance.png`): "
                  + ", ".join(f"`{k}` {v:.2f}" for k, v in importances.items()), ""]
    elif importance_note:
        lines += [f"Parameter importance: {importance_note}.", ""]
    atomic_write_text(out_dir / "trials.md", "\n".join(lines))


def write_best(study: "optuna.Study", out_dir: Path, cfg: RunConfig) -> Optional[Path]:
    """``best.yaml``: the best trial's resolved configuration (its run directory's
    ``config.yaml``) without its output path, ready for ``dgl-emu run --config``."""
    best = _best(study)
    if best is None:
        return None
    run_dir = out_dir / best.user_attrs["run_dir"]
    best_cfg = load_config(run_dir / "config.yaml").updated(output=None, progress=cfg.progress)
    header = (f"# best trial {best.number} of the study in {out_dir}: validation MRR {best.value:.6f}\n"
              f"# (run directory {run_dir}); train it again with: dgl-emu run --config best.yaml\n")
    atomic_write_text(out_dir / "best.yaml", header + best_cfg.to_yaml())
    return out_dir / "best.yaml"


def best_metrics(study_dir: Path, study: "optuna.Study") -> Dict[str, Any]:
    """The best trial's number, validation MRR and test MRR / Hits@1 (from its ``metrics.json``)."""
    best = _best(study)
    if best is None:
        return {"best_trial": None, "best_valid_mrr": None, "test_mrr": None, "test_hits@1": None}
    return {"best_trial": best.number, "best_valid_mrr": best.value,
            "test_mrr": best.user_attrs.get("test_mrr"), "test_hits@1": best.user_attrs.get("test_hits@1"),
            "run_dir": str(Path(study_dir) / best.user_attrs["run_dir"])}


def write_importance(study: "optuna.Study", out_dir: Path) -> Optional[str]:
    """``importance.png`` of Optuna's parameter importances (PED-ANOVA, over complete trials),
    also kept in the study's ``importance`` attribute; returns why it was skipped, or ``None``."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = {p for t in complete for p in t.params}
    note = None
    if len(complete) < 2:
        note = f"not computed: needs 2 complete trials, the study has {len(complete)}"
    elif len(names) < 2:
        note = "not computed: a single parameter is searched"
    else:
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as e:
            note = f"not computed ({e})"
    if note is not None:
        (out_dir / "importance.png").unlink(missing_ok=True)
        study.set_user_attr("importance", None)
        return note
    importances = {k: float(v) for k, v in importances.items()}
    study.set_user_attr("importance", importances)
    _plot(importances, out_dir / "importance.png", f"{out_dir.name}: {len(complete)} complete trials")
    return None


def _plot(importances: Mapping[str, float], path: Path, title: str) -> None:
    import matplotlib  # start-up cost: matplotlib, imported when the plot is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # start-up cost, as above
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="#4c72b0")
    ax.set_xlabel("importance for validation MRR (PED-ANOVA)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
