"""A resumable Optuna study over run configurations: the engine of ``dgl-emu tune``.

The study lives in ``STUDY_DIR/study.db`` (SQLite). Each trial is an ordinary run directory,
``STUDY_DIR/trials/<number>/``, trained by :func:`dgl_emu.pipeline.run` with the trial's values,
reporting its validation MRR to Optuna at every validation; a :class:`~optuna.pruners.MedianPruner`
stops trials that fall below the median of the completed ones at the same step, after a warm-up
(:class:`~dgl_emu.tuning.pruning.MedianRule`).

**Resume.** One tuner works in a directory at a time (``tune.lock`` holds its PID). A study that
was killed leaves its trial ``RUNNING`` in the database; the next invocation marks it ``FAIL``
and enqueues its values again, and the new trial takes over the killed trial's run directory and
resumes it from its ``last.pt``. Complete and pruned trials are never repeated: ``trials`` counts
finished trials in total. The sampler (TPE) is seeded from the configuration's seed and the number
of finished trials, so a killed and resumed study proposes what an uninterrupted one would. TPE
draws its first :data:`~dgl_emu.tuning.pruning.TPE_STARTUP` trials at random: a study of that many
trials or fewer is a random search. With ``config_first`` a new study's first trial is the
configuration's own values instead, so the search starts where the user stands. The study stores
its configuration, search space, pruning rule and start, and a resumed study must have the same ones.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from ..config import ConfigError, RunConfig
from ..pipeline import RunDiverged, RunInterrupted, default_output, run
from ..pipeline.rundir import config_differences
from ..training import Callback
from ..locking import DirectoryLock, Locked
from .pruning import TPE_STARTUP, MedianRule
from .report import finished_trials, write_best, write_importance, write_tables
from .space import Param, describe_space, search_space, space_to_dict

__all__ = ["tune", "Tuner", "TuneResult", "PruningCallback", "default_study_dir", "finished_trials", "StudyUnreadable",
           "STUDY_NAME", "StudyLocked"]

STUDY_NAME = "dgl-emu"  #: the study's name in ``study.db`` (one study per directory)
LOCK, DATABASE, TRIALS = "tune.lock", "study.db", "trials"
LOCKED = ("{directory} is in use by another dgl-emu tune (PID {pid}); wait for it, or stop it and re-run "
          "to resume")


class StudyLocked(Locked):
    """Another live process is tuning in the same directory."""


class StudyUnreadable(RuntimeError):
    """The study's ``study.db`` is not a readable Optuna database (corrupt, or another file)."""


class PruningCallback(Callback):
    """Reports each validation MRR to an Optuna ``trial`` and stops the trainer when it is pruned.

    On a resumed run the validations restored from the checkpoint are reported first (a trial
    that takes over a killed one has none of its reports).
    """

    def __init__(self, trial: "optuna.Trial"):
        self.trial = trial
        #: the step at which the trial was pruned, or ``None``
        self.pruned_at: Optional[int] = None
        #: the step of the checkpoint the run resumed from, or ``None``
        self.resumed_at: Optional[int] = None

    def on_fit_start(self, trainer) -> None:
        self.resumed_at = trainer.step or None
        for record in getattr(trainer, "validations", []):
            self.trial.report(record["valid_mrr"], record["step"])
        if getattr(trainer, "validations", []):
            self._check(trainer)

    def on_validation_end(self, trainer, metric: float, improved: bool) -> None:
        self.trial.report(metric, trainer.step)
        self._check(trainer)

    def _check(self, trainer) -> None:
        if self.trial.should_prune():
            self.pruned_at = trainer.step
            trainer.stop(f"pruned by the median rule at step {trainer.step} (trial {self.trial.number})")


def default_study_dir(cfg: RunConfig) -> Path:
    """``tunes/<the run's default name>``."""
    return Path("tunes") / default_output(cfg).name


@dataclass
class TuneResult:
    """What a :func:`tune` invocation leaves: the study directory and its counts."""

    out_dir: Path
    target: int
    counts: Dict[str, int] = field(default_factory=dict)
    best_number: Optional[int] = None
    best_value: Optional[float] = None
    stopped: Optional[str] = None
    importance_note: Optional[str] = None

    @property
    def finished(self) -> int:
        """Complete, pruned and diverged trials."""
        return self.counts.get("complete", 0) + self.counts.get("pruned", 0) + self.counts.get("diverged", 0)


class Tuner:
    """One study directory, opened (locked, loaded, stale trials re-queued) in a ``with`` block.

    Parameters
    ----------
    cfg : RunConfig
        The configuration every trial starts from (its ``output`` and ``progress`` are set per trial).
    out_dir : path-like
        The study directory.
    space : dict of str to Param, optional
        Default: :func:`~dgl_emu.tuning.space.search_space` of ``cfg``.
    pruning : MedianRule
        The pruning rule (default: after 5 complete trials, not before a quarter of the steps).
    config_first : bool
        Whether a new study's first trial is ``cfg``'s own values of the searched parameters
        (:meth:`config_values`) rather than the sampler's.
    notify : callable, optional
        Receives one line per trial.

    Raises
    ------
    ConfigError
        An empty space, or (``config_first``) a value of ``cfg`` outside its range.
    """

    def __init__(self, cfg: RunConfig, out_dir, space: Optional[Mapping[str, Param]] = None, *,
                 pruning: MedianRule = MedianRule(), config_first: bool = False,
                 notify: Optional[Callable[[str], None]] = None):
        self.cfg = cfg.validate()
        self.out_dir = Path(out_dir)
        self.space = dict(search_space(cfg) if space is None else space)
        if not self.space:
            raise ConfigError("search: nothing to tune: the chosen components declare no ranges and no "
                              "--search file adds any", "search")
        self.pruning = pruning
        #: the first trial's values (``config_first``), checked here before any study is opened
        self.first_values = self.config_values() if config_first else None
        self.notify = notify or (lambda message: None)
        self.lock = DirectoryLock(self.out_dir / LOCK, LOCKED, StudyLocked)
        self.study: Optional[optuna.Study] = None

    # ------------------------------------------------------------------ opening
    def __enter__(self) -> "Tuner":
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"output: cannot create {self.out_dir} ({e.strerror or e})", "output") from None
        self.lock.__enter__()
        try:
            self.study = self._open()
            self._check_same_study()
            self._requeue_stale()
            if self.first_values is not None and not self.study.get_trials(deepcopy=False):
                self.study.enqueue_trial(self.first_values, user_attrs={"from_config": True})
        except BaseException:
            self.lock.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.lock.__exit__()

    def _open(self) -> "optuna.Study":
        """The study in ``study.db`` (created if missing).

        Raises
        ------
        StudyUnreadable
            Naming the file, when it is not a readable Optuna study database.
        """
        path = (self.out_dir / DATABASE).resolve()
        try:
            return optuna.create_study(storage=f"sqlite:///{path}", study_name=STUDY_NAME, load_if_exists=True,
                                       direction="maximize", pruner=self.pruning.pruner(self.cfg.training.steps))
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ValueError, KeyError) as e:
            reason = str(getattr(e, "orig", None) or e).splitlines()[0] if str(e) else type(e).__name__
            raise StudyUnreadable(f"{path}: not a readable study database ({reason}); move it away to start a new "
                                  f"study in {self.out_dir}") from None

    @property
    def config_first(self) -> bool:
        """Whether a new study's first trial is the configuration's own values."""
        return self.first_values is not None

    def config_values(self) -> Dict[str, Any]:
        """The configuration's own value of every searched parameter: given in ``cfg``, else the
        component's default (:meth:`RunConfig.flat <dgl_emu.config.RunConfig.flat>`).

        Raises
        ------
        ConfigError
            A value outside its range, naming the parameter.
        """
        resolved = self.cfg.flat()
        values = {}
        for path, param in self.space.items():
            value = resolved.get(path)
            if not param.contains(value):
                raise ConfigError(f"search.{path}: the configuration's value {value!r} is outside the searched "
                                  f"range ({param.describe()}), so the first trial cannot start from it; set "
                                  f"it inside the range, fix it on the command line or change the range "
                                  f"with --search", path)
            values[path] = value
        return values

    def _check_same_study(self) -> None:
        attrs = dict(self.study.user_attrs)
        mine = {"space": space_to_dict(self.space), "pruning": self.pruning.to_dict(),
                "start": {"config_first": self.config_first}}
        new = "config" not in attrs
        if new:
            self.study.set_user_attr("config", self.cfg.to_dict())
        for key, value in mine.items():  # a study made before a key was stored: it used no config-first
            if key not in attrs:           # trial, and takes this pruning rule
                attrs[key] = value if new or key != "start" else {"config_first": False}
                self.study.set_user_attr(key, attrs[key])
        if new:
            return
        diff = config_differences(attrs["config"], self.cfg)
        for key, prefix in (("space", "search"), ("pruning", "pruning"), ("start", "start")):
            saved, current = attrs[key], mine[key]
            diff += [f"{prefix}.{k}: {saved.get(k)} -> {current.get(k)}" for k in sorted(set(saved) | set(current))
                     if saved.get(k) != current.get(k)]
        if diff:
            shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
            raise ConfigError(f"output: {self.out_dir} holds a study of another configuration ({shown}); "
                              f"choose another --output", "output")

    def _requeue_stale(self) -> None:
        """Trials left RUNNING by a killed tuner: FAIL, and their values enqueued again."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.requeue(t)

    def requeue(self, t: FrozenTrial) -> None:
        """Enqueue ``t``'s values for a new trial that resumes ``t``'s run directory; ``t`` FAILs."""
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not any(w.user_attrs.get("resumes") == t.number for w in waiting):
            own = self.trial_dir(t.number)
            source = own if own.exists() else self.out_dir / str(t.user_attrs.get("resumes_dir", own))
            attrs = {"resumes": t.number, "resumes_dir": str(source.relative_to(self.out_dir))}
            if t.user_attrs.get("from_config"):
                attrs["from_config"] = True
            self.study.enqueue_trial(dict(t.params), user_attrs=attrs)
        self.study.tell(t.number, state=TrialState.FAIL)
        self.notify(f"trial {t.number} was interrupted: its values are queued again, to resume its run")

    # ------------------------------------------------------------------ trials
    def trial_dir(self, number: int) -> Path:
        """``STUDY_DIR/trials/<number>``."""
        return self.out_dir / TRIALS / str(number)

    @property
    def finished(self) -> int:
        """Trials that used their budget (see :func:`finished_trials`)."""
        return len(finished_trials(self.study))

    def sampler(self) -> optuna.samplers.BaseSampler:
        """TPE seeded from the configuration's seed and the number of finished trials."""
        seed = int(np.random.SeedSequence([self.cfg.seed, self.finished]).generate_state(1)[0])
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP)

    def run_trial(self) -> FrozenTrial:
        """Ask for a trial, train it in its run directory, tell the study; returns the trial."""
        self.study.sampler = self.sampler()
        trial = self.study.ask()
        params = {path: p.suggest(trial, path) for path, p in self.space.items()}
        out = self.trial_dir(trial.number)
        source = trial.user_attrs.get("resumes_dir")
        if source is not None and (self.out_dir / source).is_dir() and not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            (self.out_dir / source).rename(out)
            self.notify(f"trial {trial.number} resumes the run of trial {trial.user_attrs['resumes']}")
        elif out.exists():
            self.study.tell(trial, state=TrialState.FAIL)
            raise ConfigError(f"output: {out} exists but the study has no record of it (was {DATABASE} "
                              f"deleted?); choose another --output", "output")
        trial.set_user_attr("run_dir", str(out.relative_to(self.out_dir)))
        pruning = PruningCallback(trial)
        try:
            cfg = self.cfg.updated(**params, output=str(out), progress=False)
            result = run(cfg, resume=True, callbacks=[pruning], notify=lambda message: None)
        except RunDiverged as e:
            trial.set_user_attr("diverged", str(e).splitlines()[0])
            self.study.tell(trial, state=TrialState.FAIL)
            self.notify(f"trial {trial.number}: diverged ({params})")
            return self.study.trials[trial.number]
        except (RunInterrupted, KeyboardInterrupt):
            self.requeue(self.study.trials[trial.number])
            raise
        except BaseException:
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        return self._tell(trial, result.metrics, pruning)

    def _tell(self, trial: "optuna.Trial", metrics: dict, pruning: PruningCallback) -> FrozenTrial:
        value = metrics.get("best_valid_mrr")
        if value is None:
            self.study.tell(trial, state=TrialState.FAIL)
            raise ConfigError("data: tuning needs a validation split (the study maximises validation MRR)",
                              "data.valid")
        test = metrics.get("test", {}).get("both", {}).get("realistic", {})
        for key, v in (("valid_mrr", value), ("steps", metrics["steps"]), ("best_step", metrics["best_step"]),
                       ("seconds", metrics["wall_seconds"]), ("stop_reason", metrics["stop_reason"]),
                       ("test_mrr", test.get("mrr")), ("test_hits@1", test.get("hits@1"))):
            trial.set_user_attr(key, v)
        if pruning.resumed_at is not None:
            trial.set_user_attr("resumed_at", pruning.resumed_at)
        if pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at", pruning.pruned_at)
            self.study.tell(trial, state=TrialState.PRUNED)
            what = f"pruned at step {pruning.pruned_at}"
        else:
            self.study.tell(trial, value)
            what = "complete"
        self.notify(f"trial {trial.number}: {what}, valid MRR {value:.4f} ({metrics['steps']} steps, "
                    f"{metrics['wall_seconds']:.1f} s)")
        return self.study.trials[trial.number]

    # ------------------------------------------------------------------ results
    def write_outputs(self, target: int, importance: bool = True) -> Optional[str]:
        """``trials.json``, ``trials.md``, ``best.yaml`` and (``importance``) ``importance.png``;
        returns the note of a skipped importance plot."""
        note = write_importance(self.study, self.out_dir) if importance else None
        write_tables(self.study, self.out_dir, target, describe_space(self.space), self.cfg, note)
        write_best(self.study, self.out_dir, self.cfg)
        return note

    def result(self, target: int, stopped: Optional[str] = None, note: Optional[str] = None) -> TuneResult:
        """The counts of the study now."""
        counts = {"complete": 0, "pruned": 0, "diverged": 0}
        for t in finished_trials(self.study):
            counts["diverged" if t.state == TrialState.FAIL else t.state.name.lower()] += 1
        out = TuneResult(self.out_dir, target, counts, stopped=stopped, importance_note=note)
        try:
            best = self.study.best_trial
            out.best_number, out.best_value = best.number, best.value
        except ValueError:  # no complete trial yet
            pass
        return out


def tune(cfg: RunConfig, out_dir=None, *, trials: int, timeout: Optional[float] = None,
         space: Optional[Mapping[str, Param]] = None, pruning: MedianRule = MedianRule(),
         config_first: bool = False, progress: Optional[bool] = None,
         notify: Optional[Callable[[str], None]] = None) -> TuneResult:
    """Run (or resume) a study until ``trials`` trials have finished, or ``timeout`` seconds.

    Parameters
    ----------
    cfg : RunConfig
        Every trial's configuration, with the trial's values of ``space`` set.
    out_dir : path-like, optional
        The study directory (default :func:`default_study_dir`).
    trials : int
        Finished trials (complete, pruned or diverged) the study should hold in total; a resumed
        study runs only the missing ones.
    timeout : float, optional
        Seconds after which no new trial starts (the running one finishes).
    space : dict of str to Param, optional
        Default: the ranges the chosen components declare.
    pruning : MedianRule
        The pruning rule (default ``MedianRule()``).
    config_first : bool
        A new study's first trial is ``cfg``'s own values (:meth:`Tuner.config_values`), so the
        search starts from the configuration it was given.
    progress : bool, optional
        A progress bar over trials (default ``cfg.progress``).
    notify : callable, optional
        Receives one line per trial.

    Returns
    -------
    TuneResult

    Raises
    ------
    ConfigError
        A bad option, or a study directory that holds a study of another configuration.
    StudyLocked
        Another live tuner holds the directory.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_study_dir(cfg)
    show = cfg.progress if progress is None else progress
    started, stopped = time.monotonic(), None
    with Tuner(cfg, out_dir, space, pruning=pruning, config_first=config_first, notify=notify) as tuner:
        bar = tqdm(total=trials, initial=min(tuner.finished, trials), disable=not show, desc="tune",
                   unit="trial", dynamic_ncols=True)
        if show:
            tuner.notify = bar.write
        try:
            while tuner.finished < trials:
                if timeout is not None and time.monotonic() - started >= timeout:
                    stopped = f"timeout: no new trial after {timeout:g} s"
                    break
                tuner.run_trial()
                tuner.write_outputs(trials, importance=False)
                bar.n = min(tuner.finished, trials)
                best = tuner.result(trials)
                bar.set_postfix(best=f"{best.best_value:.4f}" if best.best_value is not None else "-")
                bar.refresh()
        finally:
            bar.close()
            tuner.notify = notify or (lambda message: None)
        note = tuner.write_outputs(trials)
        return tuner.result(trials, stopped, note)
