"""``run``: train, validate, test and save one configuration; ``load_run`` after."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..config import ConfigError, RunConfig, load_config
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..plotting import plot_training_curve
from ..training import Callback, EarlyStopping, JsonLinesLogger, Trainer, TrainingDivergedError
from ..training.callbacks import TensorBoardLogger
from ..training.checkpoint import LAST, CheckpointError, load_checkpoint, save_atomic
from ..utils import atomic_write_json, atomic_write_text, environment, tune_cpu_allocator
from .builders import build_evaluator, build_model, default_output, device_of, load_graph, training_graph
from .placement import Placement
from .setup import Setup
from .rundir import RunDirectory

__all__ = ["run", "RunResult", "RunInterrupted", "RunDiverged", "load_run", "TEST_SIGNAL_ENV"]

log = logging.getLogger(__name__)

#: test hook: ``SIGINT@12`` or ``SIGKILL@12`` sends that signal to the process after step 12
TEST_SIGNAL_ENV = "DGL_EMU_TEST_SIGNAL"


@dataclass
class RunResult:
    """What :func:`run` produced: the run directory and the metrics written to it (``main``:
    whether this process wrote them: the placement's writing process)."""

    run_dir: Path
    metrics: dict
    main: bool = True


class RunInterrupted(Exception):
    """Ctrl-C stopped the run; ``checkpoint`` is the ``last.pt`` it can resume from (or ``None``)."""

    def __init__(self, run_dir: Path, step: int, checkpoint: Optional[Path]):
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step, self.checkpoint = run_dir, step, checkpoint


class RunDiverged(RuntimeError):
    """Training produced a non-finite loss or parameters; the message says what is known."""


class _Watch(Callback):
    """Recent losses and the step of the last checkpoint, for messages; deletes the previous run
    (``--fresh``) once the new one has a checkpoint; and the test hook of :data:`TEST_SIGNAL_ENV`."""

    def __init__(self, rundir: RunDirectory):
        self.rundir = rundir
        self.losses: deque = deque(maxlen=50)
        self.checkpoint_step: Optional[int] = None
        hook = os.environ.get(TEST_SIGNAL_ENV, "")
        name, _, at = hook.partition("@")
        self.signal = (getattr(signal, name), int(at)) if hook else None

    def on_fit_start(self, trainer):
        if (self.rundir.path / "last.pt").exists() and trainer.step:
            self.checkpoint_step = trainer.step

    def on_step_end(self, trainer, record):
        self.losses.append((record["step"], record["loss"]))
        if self.signal is not None and record["step"] == self.signal[1]:
            os.kill(os.getpid(), self.signal[0])

    def on_checkpoint(self, trainer):
        self.checkpoint_step = trainer.step
        self.rundir.checkpoint_written()


@contextlib.contextmanager
def _graceful_interrupt(trainer: Trainer):
    """First Ctrl-C: finish the current step, then stop (the caller checkpoints); second: abort."""
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"]:
            raise KeyboardInterrupt
        state["hit"] = True
        trainer.stop("interrupted")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _divergence(err: Exception, watch: _Watch, cfg: RunConfig, out: Path) -> str:
    """The message of a diverged run: what happened, the cause that can be seen, what is kept."""
    parts = [f"training diverged: {err}"]
    finite = [(s, x) for s, x in watch.losses if x == x and abs(x) != float("inf")]
    if len(finite) >= 2:
        (s0, first), (s1, last) = finite[max(0, len(finite) - 20)], finite[-1]
        low = min(x for _, x in finite[-20:])
        if last > 3 * max(low, 1e-12) and last > first:
            parts.append(f"the loss was exploding ({first:.4g} at step {s0}, {last:.4g} at step {s1}): "
                         f"lower the learning rate (optimizer.lr = {cfg.get('optimizer.lr')}) or add "
                         f"regularisation")
        else:
            parts.append(f"the loss was {last:.4g} at step {s1}, with no sign of growth before; every "
                         f"option is finite, so the cause is in the model's arithmetic (e.g. an "
                         f"overflow), not in a setting")
    if watch.checkpoint_step is not None:
        parts.append(f"the last checkpoint, at step {watch.checkpoint_step}, is kept in {out / 'last.pt'}")
    else:
        parts.append("no checkpoint had been written yet")
    return "; ".join(parts)


def run(cfg: RunConfig, *, resume: bool = True, notify: Optional[Callable[[str], None]] = None,
        callbacks: Sequence[Callback] = (), placement: Optional[Placement] = None) -> RunResult:
    """Train and evaluate ``cfg``; write the run directory; resume an unfinished run.

    The run directory holds ``config.yaml`` (resolved), ``log.jsonl`` (per step),
    ``best.pt`` (best validation MRR), ``last.pt`` (resumable), ``metrics.json`` and
    ``curve.png``. Everything is built before anything is written, so a bad option or data file
    leaves the directory as it was. ``resume=False`` starts over (see :class:`RunDirectory`).
    ``notify`` receives one-line progress messages (resumed step, data report).
    ``callbacks`` are added after the run's own (logs, early stopping); their
    :meth:`~dgl_emu.training.Callback.state_dict` is saved in ``last.pt`` and restored on resume
    (e.g. :mod:`dgl_emu.tuning` reports each validation to Optuna and stops pruned trials).
    ``placement`` says where the run lives (:class:`~dgl_emu.pipeline.placement.Placement`;
    default: this one process); every process of a run calls :func:`run` with its own.

    Raises
    ------
    ConfigError
        A bad option, or an output directory that holds another run.
    RunDiverged
        A non-finite loss or parameters.
    RunInterrupted
        Ctrl-C, after the checkpoint of the last finished step was written.
    """
    cfg.validate()
    tune_cpu_allocator()
    device = device_of(cfg)
    placement = placement if placement is not None else Placement()
    writes = placement.writes
    say = (notify or log.info) if writes else (lambda message: None)
    out = Path(cfg.output) if cfg.output else default_output(cfg)
    rundir = RunDirectory(out)
    action = rundir.check(cfg, fresh=not resume) if writes else None
    started = time.perf_counter()
    kg = load_graph(cfg)
    setup = placement.setup(cfg, kg, device)
    for split, report in kg.reports.items():
        say(f"data: {split}: {report.summary()}")
    note = setup.objective.kernel_note(device)
    if note is not None:
        say(note)
    valid = "valid" if "valid" in kg.splits else None
    evaluator = build_evaluator(cfg, kg)

    def validate(m: KGEModel) -> float:
        return setup.evaluate(m, valid, evaluator).get("mrr")

    if writes:
        rundir.prepare(action)
        if rundir.previous is not None:
            say(f"the previous run in {out} is kept in {rundir.previous} until this one's first checkpoint")
        atomic_write_text(out / "config.yaml", cfg.to_yaml())
    action = placement.follow(action)  # every process follows the writer (and waits for it)
    watch = _Watch(rundir)
    extra = list(callbacks)
    callbacks = ([JsonLinesLogger(out / "log.jsonl"), TensorBoardLogger(out / "tensorboard"), watch]
                 if writes else [])
    if cfg.training.patience:
        callbacks.append(EarlyStopping(cfg.training.patience))
    callbacks.extend(extra)
    trainer = Trainer(setup.objective, setup.regime, setup.train, num_steps=cfg.training.steps,
                      batch_size=setup.batch_size, optimizer=setup.schedule, batches=setup.batches,
                      device=device, seed=setup.seed, validate=validate if valid else None,
                      eval_every=cfg.training.eval_every, run_dir=out if writes else None,
                      callbacks=callbacks, progress=cfg.progress and writes,
                      max_grad_norm=cfg.optimizer.options["max_grad_norm"], replicas=setup.replicas)
    if action == "resume" and trainer.resume(out / LAST):
        say(f"resumed {out} at step {trainer.step} of {cfg.training.steps}")
    setup_seconds = time.perf_counter() - started  # the fit is counted by the trainer, over resumes
    _fit(trainer, rundir, watch, cfg, out)
    return _finish(cfg, kg, setup, placement, trainer, out, device, setup_seconds, evaluator)


def _fit(trainer: Trainer, rundir: RunDirectory, watch: _Watch, cfg: RunConfig, out: Path) -> None:
    """``trainer.fit()`` with a graceful Ctrl-C and divergence reported as :class:`RunDiverged`."""
    with _graceful_interrupt(trainer) as interrupt:
        try:
            trainer.fit()
        except TrainingDivergedError as e:
            message = _divergence(e, watch, cfg, out)
            if rundir.restore_previous() is not None:
                message += f"; the previous run in {out} was put back"
            raise RunDiverged(message) from None
        except KeyboardInterrupt:
            last = out / "last.pt"
            raise RunInterrupted(out, watch.checkpoint_step or 0, last if last.exists() else None) from None
    if interrupt["hit"]:
        path = trainer.save_checkpoint()
        raise RunInterrupted(out, trainer.step, path)


def _finish(cfg: RunConfig, kg: KnowledgeGraph, setup: Setup, placement: Placement, trainer: Trainer,
            out: Path, device: torch.device, overhead: float, evaluator) -> RunResult:
    """Best weights, final evaluation, ``metrics.json`` and the curve."""
    model, writes = setup.model, placement.writes
    if trainer.best_step is None and writes:  # no validation split: the final weights are "best"
        save_atomic(out / "best.pt", {"model": model.state_dict(), "step": trainer.step, "valid_mrr": None})
    placement.follow(None)  # the other processes wait for best.pt
    best = load_checkpoint(out / "best.pt", device)
    model.load_state_dict(best["model"])
    started = time.perf_counter()
    metrics = {"config": cfg.to_dict(), "steps": trainer.step, "best_step": best["step"],
               "best_valid_mrr": best["valid_mrr"], "train_seconds": trainer.train_seconds,
               "stop_reason": trainer.stop_reason, "validations": trainer.validations,
               "dataset": kg.statistics(), "data": kg.load_report()}
    for split in ("valid", "test"):
        if split in kg.splits:
            metrics[split] = setup.evaluate(model, split, evaluator, cfg.progress and writes).metrics()
    # fit time over every invocation, plus this invocation's set-up and final evaluation
    metrics["wall_seconds"] = trainer.fit_seconds + overhead + (time.perf_counter() - started)
    metrics["world_size"] = placement.world_size
    metrics["environment"] = environment(device)
    metrics["environments"] = trainer.environments  # per invocation that trained, from which step
    if writes:
        atomic_write_json(out / "metrics.json", metrics)
        plot_training_curve(out / "log.jsonl", out / "curve.png", title=out.name)
    return RunResult(out, metrics, writes)


def load_run(run_dir: Path, device: Optional[str] = None):
    """Rebuild ``(config, kg, model, graph)`` of a finished run with its best weights.

    Raises
    ------
    ConfigError
        If ``run_dir`` is not a run directory or its ``config.yaml`` is invalid.
    CheckpointError
        If ``best.pt`` is unreadable or does not fit the model ``config.yaml`` describes.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "best.pt").exists():
        raise ConfigError(f"{run_dir}: not a run directory (needs config.yaml and best.pt)")
    cfg = load_config(run_dir / "config.yaml")
    if device is not None:
        cfg = cfg.updated(device=device)
    dev = device_of(cfg)
    kg = load_graph(cfg)
    model = build_model(cfg, kg).to(dev)
    state = load_checkpoint(run_dir / "best.pt", dev)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:  # e.g. config.yaml edited to another dim
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"{run_dir / 'best.pt'} does not fit the model of {run_dir / 'config.yaml'} "
                              f"({first})") from None
    model.eval()
    return cfg, kg, model, training_graph(model, kg, dev)
