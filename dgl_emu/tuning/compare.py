"""EMU against its plain baseline, each tuned with the same budget (``dgl-emu tune --compare-emu``).

Two studies, ``STUDY_DIR/emu/`` and ``STUDY_DIR/baseline/`` (the same configuration with
``emu: none``), run side by side, one trial at a time, the arm that has used less of its budget
first: the same number of trials (:class:`~dgl_emu.tuning.budget.EqualTrials`) or the same wall
time (:class:`~dgl_emu.tuning.budget.EqualTime`, ``--equal-time``), the same steps, batch and
negatives per trial, the same seed, sampler and pruning rule. The baseline searches the same
ranges except EMU's own. ``report.md`` and ``report.json`` give, per arm, the trials, the steps,
the seconds, the search space and the best trial's validation and test metrics, and say whether
the budgets are equal.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Mapping, Optional

from tqdm.auto import tqdm

from ..config import NONE, ConfigError, RunConfig
from ..utils import atomic_write_json, atomic_write_text
from .budget import ArmUse, Budget, EqualTrials
from .pruning import TPE_STARTUP, MedianRule
from .report import best_metrics
from .space import Param, apply_overrides, describe_space, read_overrides, search_space
from .study import Tuner, TuneResult, default_study_dir, finished_trials

__all__ = ["compare_emu", "arm_configs", "arm_spaces", "Comparison", "format_report", "ARMS"]

#: the two arms, in the order they take turns
ARMS = ("emu", "baseline")


def arm_configs(cfg: RunConfig) -> Dict[str, RunConfig]:
    """``{"emu": cfg, "baseline": cfg with emu: none}``; ``cfg`` must have EMU on.

    Examples
    --------
    >>> arms = arm_configs(RunConfig().validate())
    >>> arms["emu"].emu.name, arms["baseline"].emu.name
    ('mutation', 'none')
    """
    cfg = cfg.copy().validate()
    if not cfg.emu_enabled:
        raise ConfigError("emu: --compare-emu tunes EMU against the plain baseline: switch EMU on (the "
                          "baseline arm switches it off)", "emu.name")
    plain = cfg.to_dict()
    plain["emu"] = {"name": NONE}
    return {"emu": cfg, "baseline": RunConfig.from_dict(plain)}


def arm_spaces(arms: Mapping[str, RunConfig], overrides: Optional[Mapping[str, Any]] = None,
               where: str = "", fixed: Collection[str] = ()) -> Dict[str, Dict[str, Param]]:
    """Each arm's declared ranges less the ``fixed`` paths, with ``overrides`` applied; overrides
    of ``emu.*`` apply to the EMU arm only.

    Examples
    --------
    >>> spaces = arm_spaces(arm_configs(RunConfig().validate()), {"emu.keep_prob": {"low": 0.2}},
    ...                     fixed=["regularizer.weight"])
    >>> sorted(spaces["emu"]), sorted(spaces["baseline"])
    (['emu.keep_prob', 'emu.negative_label', 'emu.plain_weight', 'optimizer.lr'], ['optimizer.lr'])
    """
    overrides = read_overrides(overrides or {}, where)
    out = {}
    for arm, cfg in arms.items():
        mine = {k: v for k, v in overrides.items() if cfg.emu_enabled or not k.startswith("emu.")}
        declared = {k: v for k, v in search_space(cfg).items() if k not in fixed}
        out[arm] = apply_overrides(declared, mine, cfg, where)
    return out


@dataclass
class Comparison:
    """The study directory, each arm's :class:`~dgl_emu.tuning.study.TuneResult` and the report."""

    out_dir: Path
    arms: Dict[str, TuneResult] = field(default_factory=dict)
    report: Dict[str, Any] = field(default_factory=dict)


def _use(tuner: Tuner) -> ArmUse:
    """The finished trials of an arm and their wall time."""
    done = finished_trials(tuner.study)
    return ArmUse(len(done), sum(t.user_attrs.get("seconds") or 0.0 for t in done))


def compare_emu(cfg: RunConfig, out_dir=None, *, trials: Optional[int] = None, budget: Optional[Budget] = None,
                timeout: Optional[float] = None, overrides: Optional[Mapping[str, Any]] = None, where: str = "",
                fixed: Collection[str] = (), pruning: MedianRule = MedianRule(), config_first: bool = False,
                progress: Optional[bool] = None, notify: Optional[Callable[[str], None]] = None) -> Comparison:
    """Tune EMU and the plain baseline with equal budgets; write ``report.md`` and ``report.json``.

    Parameters are those of :func:`~dgl_emu.tuning.study.tune`; ``budget`` is what each arm gets
    (default ``EqualTrials(trials)``; :class:`~dgl_emu.tuning.budget.EqualTime` for the same wall
    time); ``overrides`` (with ``where`` naming their file in errors) are the ``--search`` ranges
    and ``fixed`` the paths that are not searched (see :func:`arm_spaces`). Each arm is resumable
    on its own (a killed comparison resumes both). ``timeout`` stops starting trials in either
    arm; the report then says whether the arms used their budgets.
    """
    if budget is None:
        if trials is None:
            raise ValueError("compare_emu needs trials or a budget")
        budget = EqualTrials(trials)
    out_dir = Path(out_dir) if out_dir is not None else default_study_dir(cfg)
    arms = arm_configs(cfg)
    spaces = arm_spaces(arms, overrides, where, fixed)
    say = notify or (lambda message: None)
    show = cfg.progress if progress is None else progress
    started, stopped = time.monotonic(), None
    tuners = {arm: Tuner(arms[arm], out_dir / arm, spaces[arm], pruning=pruning, config_first=config_first,
                         notify=lambda m, a=arm: say(f"{a}: {m}"))
              for arm in ARMS}  # both checked before either study is opened
    with contextlib.ExitStack() as stack:
        for tuner in tuners.values():
            stack.enter_context(tuner)

        def done() -> float:
            return round(sum(min(budget.used(_use(t)), budget.per_arm) for t in tuners.values()), 1)

        bar = tqdm(total=2 * budget.per_arm, initial=done(), disable=not show, desc="tune emu+baseline",
                   unit=budget.unit, dynamic_ncols=True)
        if show:
            say = bar.write
        try:
            while True:
                open_arms = [a for a in ARMS if budget.open(_use(tuners[a]))]
                if not open_arms:
                    break
                if timeout is not None and time.monotonic() - started >= timeout:
                    stopped = f"timeout: no new trial after {timeout:g} s"
                    break
                arm = min(open_arms, key=lambda a: budget.used(_use(tuners[a])))  # ties: EMU first
                tuners[arm].run_trial()
                tuners[arm].write_outputs(budget.target(_use(tuners[arm])), importance=False)
                bar.n = done()
                bar.refresh()
        finally:
            bar.close()
        results = {}
        for arm in ARMS:
            target = budget.target(_use(tuners[arm]))
            note = tuners[arm].write_outputs(target)
            results[arm] = tuners[arm].result(target, stopped, note)
        report = _report(out_dir, tuners, results, budget, pruning, stopped)
    return Comparison(out_dir, results, report)


def _report(out_dir: Path, tuners: Mapping[str, Tuner], results: Mapping[str, TuneResult], budget: Budget,
            pruning: MedianRule, stopped: Optional[str]) -> Dict[str, Any]:
    cfg = tuners["emu"].cfg
    arms = {}
    for arm in ARMS:
        t, r = tuners[arm], results[arm]
        done = finished_trials(t.study)
        steps = [x.user_attrs.get("steps") or 0 for x in done]
        seconds = [x.user_attrs.get("seconds") or 0.0 for x in done]
        arms[arm] = {"directory": str(out_dir / arm), "trials_finished": r.finished, **r.counts,
                     "steps_per_trial": t.cfg.training.steps, "steps_trained": sum(steps),
                     "seconds_trained": round(sum(seconds), 1),
                     "search_space": describe_space(t.space), **best_metrics(t.out_dir, t.study),
                     "best_config": str(out_dir / arm / "best.yaml") if r.best_number is not None else None}
    equal = not any(budget.open(_use(tuners[arm])) for arm in ARMS)
    most = max(a["trials_finished"] for a in arms.values())
    only_emu = sorted(set(arms["emu"]["search_space"]) - set(arms["baseline"]["search_space"]))
    sampler = (f"TPE, whose first {TPE_STARTUP} trials are random: with {most} trials per arm a random search"
               if most <= TPE_STARTUP else f"TPE, after {TPE_STARTUP} random trials")
    first = "each arm's first trial is its configuration's own values; " if tuners["emu"].config_first else ""
    per_trial = (f"of at most {cfg.training.steps} steps each "
                 f"({cfg.training.batch_size} positives and {cfg.sampler.options['num_negatives']} negatives "
                 f"per step, validation every {cfg.training.eval_every} steps), from seed {cfg.seed}, with "
                 f"the same sampler ({sampler}) and pruning rule ({pruning.describe(cfg.training.steps)}); "
                 f"{first}the baseline searches the same ranges except EMU's own "
                 f"({', '.join(only_emu) or 'none'})")
    if equal:
        statement = f"The budgets are equal: {budget.statement(arms, per_trial)}."
    else:
        statement = (f"The budgets are NOT equal yet: of {budget.describe()}, EMU used "
                     f"{arms['emu']['trials_finished']} trials and {arms['emu']['seconds_trained']:.0f} s, the "
                     f"baseline {arms['baseline']['trials_finished']} trials and "
                     f"{arms['baseline']['seconds_trained']:.0f} s{' (' + stopped + ')' if stopped else ''}; "
                     f"re-run the same command to complete both.")
    pruned = (f"Pruning stops poor trials early under the same rule in both arms, so the steps actually "
              f"trained differ: EMU {arms['emu']['steps_trained']}, baseline {arms['baseline']['steps_trained']}. "
              f"{budget.caveat(arms)}")
    report = {"equal_budgets": equal, "budget": statement, "pruning": pruned,
              "budget_kind": budget.to_dict()["kind"], "budget_given": budget.to_dict(),
              "trials": getattr(budget, "trials", None),
              "steps_per_trial": cfg.training.steps, "seed": cfg.seed, "pruning_rule": pruning.to_dict(),
              "sampler": sampler,
              "stopped": stopped, "arms": arms}
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", format_report(report))
    return report


def _f(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def format_report(report: Mapping[str, Any]) -> str:
    """``report.md``: one row per arm, the search spaces and the budget statement."""
    what = "equal time" if report.get("budget_kind") == "equal-time" else "equal budgets"
    lines = [f"# EMU against the plain baseline, tuned with {what}", "", report["budget"], "",
             report["pruning"], "",
             "| arm | trials (complete / pruned / diverged) | steps per trial | steps trained | seconds "
             "| best valid MRR | test MRR | test Hits@1 | best trial |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, a in report["arms"].items():
        lines.append(f"| {arm} | {a['trials_finished']} ({a['complete']} / {a['pruned']} / {a['diverged']}) | "
                     f"{a['steps_per_trial']} | {a['steps_trained']} | {a['seconds_trained']:.0f} | "
                     f"{_f(a['best_valid_mrr'])} | "
                     f"{_f(a['test_mrr'])} | {_f(a['test_hits@1'])} | {_f(a['best_trial'])} |")
    for arm, a in report["arms"].items():
        lines += ["", f"Search space of {arm} (`{arm}/trials.md`, best configuration `{arm}/best.yaml`):", ""]
        lines += [f"* `{k}`: {v}" for k, v in a["search_space"].items()]
    return "\n".join(lines) + "\n"
