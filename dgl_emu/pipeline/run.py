"""``run``: train, validate, test and save one configuration; ``load_run`` and ``evaluate`` after."""
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

from ..config import ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..evaluation import EvaluationResult, RankBasedEvaluator, SampledRankBasedEvaluator
from ..models import KGEModel
from ..training import Callback, EarlyStopping, JsonLinesLogger, Trainer, TrainingDivergedError
from ..training.callbacks import TensorBoardLogger
from ..training.checkpoint import LAST, CheckpointError, load_checkpoint, save_atomic
from ..training.distributed import Shard, gather_objects, shard_from_env
from ..utils import atomic_write_json, atomic_write_text, environment, tune_cpu_allocator
from ..sharded.context import ShardedContext
from .builders import build_evaluator, build_model, default_output, device_of, load_graph, training_graph
from .setup import Setup, local_setup
from .rundir import RunDirectory

__all__ = ["run", "RunResult", "RunInterrupted", "RunDiverged", "evaluate", "load_run", "TEST_SIGNAL_ENV"]

log = logging.getLogger(__name__)

#: test hook: ``SIGINT@12`` or ``SIGKILL@12`` sends that signal to the process after step 12
TEST_SIGNAL_ENV = "DGL_EMU_TEST_SIGNAL"


@dataclass
class RunResult:
    """What :func:`run` produced: the run directory and the metrics written to it (``main``:
    whether this process wrote them: rank 0 of a data-parallel run, or the only process)."""

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


def run(cfg: RunConfig, *, resume: bool = True,
        notify: Optional[Callable[[str], None]] = None, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train and evaluate ``cfg``; write the run directory; resume an unfinished run.

    The run directory holds ``config.yaml`` (resolved), ``log.jsonl`` (per step),
    ``best.pt`` (best validation MRR), ``last.pt`` (resumable), ``metrics.json`` and
    ``curve.png``. Everything is built before anything is written, so a bad option or data file
    leaves the directory as it was. ``resume=False`` starts over (see :class:`RunDirectory`).
    ``notify`` receives one-line progress messages (resumed step, data report).
    ``callbacks`` are added after the run's own (logs, early stopping); their
    :meth:`~dgl_emu.training.Callback.state_dict` is saved in ``last.pt`` and restored on resume
    (e.g. :mod:`dgl_emu.tuning` reports each validation to Optuna and stops pruned trials).

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
    sharded = ShardedContext.from_env(cfg)  # DGL's store first, then torch.distributed
    shard = sharded.shard if sharded is not None else shard_from_env(device)
    say = (notify or log.info) if shard.main else (lambda message: None)
    out = Path(cfg.output) if cfg.output else default_output(cfg)
    rundir = RunDirectory(out)
    action = rundir.check(cfg, fresh=not resume) if shard.main else None
    started = time.perf_counter()
    kg = load_graph(cfg)
    setup = sharded.setup(cfg, kg) if sharded is not None else local_setup(cfg, kg, device, shard)
    for split, report in kg.reports.items():
        say(f"data: {split}: {report.summary()}")
    valid = "valid" if "valid" in kg.splits else None
    evaluator = build_evaluator(cfg, kg)

    def validate(m: KGEModel) -> float:
        return setup.evaluate(m, valid, evaluator).get("mrr")

    if shard.main:
        rundir.prepare(action)
        if rundir.previous is not None:
            say(f"the previous run in {out} is kept in {rundir.previous} until this one's first checkpoint")
        atomic_write_text(out / "config.yaml", cfg.to_yaml())
    action = gather_objects(action, shard)[0]  # every rank follows rank 0 (and waits for it)
    watch = _Watch(rundir)
    extra = list(callbacks)
    callbacks = ([JsonLinesLogger(out / "log.jsonl"), TensorBoardLogger(out / "tensorboard"), watch]
                 if shard.main else [])
    if cfg.training.patience:
        callbacks.append(EarlyStopping(cfg.training.patience))
    callbacks.extend(extra)
    trainer = Trainer(setup.objective, setup.sampler, setup.train, num_steps=cfg.training.steps,
                      batch_size=setup.batch_size, optimizer=setup.schedule, batches=setup.batches,
                      device=device, seed=setup.seed, validate=validate if valid else None,
                      eval_every=cfg.training.eval_every, run_dir=out if shard.main else None,
                      callbacks=callbacks, progress=cfg.progress and shard.main,
                      max_grad_norm=cfg.optimizer.options["max_grad_norm"], shard=setup.shard,
                      regime=setup.regime, reciprocal=cfg.regime.options["reciprocal"])
    if action == "resume" and trainer.resume(out / LAST):
        say(f"resumed {out} at step {trainer.step} of {cfg.training.steps}")
    setup_seconds = time.perf_counter() - started  # the fit is counted by the trainer, over resumes
    _fit(trainer, rundir, watch, cfg, out)
    return _finish(cfg, kg, setup, trainer, out, device, setup_seconds, evaluator)


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


def _finish(cfg: RunConfig, kg: KnowledgeGraph, setup: Setup, trainer: Trainer, out: Path,
            device: torch.device, overhead: float, evaluator) -> RunResult:
    """Best weights, final evaluation, ``metrics.json`` and the curve."""
    shard, model = trainer.shard, setup.model
    if trainer.best_step is None and shard.main:  # no validation split: the final weights are "best"
        save_atomic(out / "best.pt", {"model": model.state_dict(), "step": trainer.step, "valid_mrr": None})
    gather_objects(None, shard)  # the other ranks wait for best.pt
    best = load_checkpoint(out / "best.pt", device)
    model.load_state_dict(best["model"])
    started = time.perf_counter()
    metrics = {"config": cfg.to_dict(), "steps": trainer.step, "best_step": best["step"],
               "best_valid_mrr": best["valid_mrr"], "train_seconds": trainer.train_seconds,
               "stop_reason": trainer.stop_reason, "validations": trainer.validations,
               "dataset": kg.statistics(), "data": kg.load_report()}
    for split in ("valid", "test"):
        if split in kg.splits:
            metrics[split] = setup.evaluate(model, split, evaluator, cfg.progress and shard.main).metrics()
    # fit time over every invocation, plus this invocation's set-up and final evaluation
    metrics["wall_seconds"] = trainer.fit_seconds + overhead + (time.perf_counter() - started)
    metrics["world_size"] = shard.world_size
    metrics["environment"] = environment(device)
    metrics["environments"] = trainer.environments  # per invocation that trained, from which step
    if shard.main:
        atomic_write_json(out / "metrics.json", metrics)
        from ..plotting import plot_training_curve
        plot_training_curve(out / "log.jsonl", out / "curve.png", title=out.name)
    return RunResult(out, metrics, shard.main)


def evaluate(model: KGEModel, kg: KnowledgeGraph, split: str, *, batch_size: int = 512,
             device: torch.device = torch.device("cpu"), graph=None, progress: bool = False,
             evaluator=None, shard: Optional[Shard] = None) -> EvaluationResult:
    """Ranks of ``split``, both sides: filtered by train + valid + test, against every entity,
    unless another ``evaluator`` (e.g. :class:`~dgl_emu.evaluation.SampledRankBasedEvaluator`)
    is given; a sampled evaluator uses the dataset's given negatives of ``split`` when it has
    them (:attr:`KnowledgeGraph.negatives`). With a data-parallel ``shard`` each rank ranks its
    part of the triples and the ranks are gathered (every rank returns them all)."""
    shard = shard or Shard()
    evaluator = evaluator or RankBasedEvaluator(kg.filter_index(), batch_size=batch_size)
    triples, part = kg.splits[split], shard.part(len(kg.splits[split]))
    extra = {}
    if isinstance(evaluator, SampledRankBasedEvaluator) and split in kg.negatives:
        extra["negatives"] = {t: n[part] for t, n in kg.negatives[split].items()}
    model.eval()
    with torch.no_grad():
        result = evaluator.evaluate(model.scorer(graph), triples[part], device=device,
                                    progress=progress, num_entities=kg.num_entities, **extra)
    if not shard.distributed:
        return result
    pieces = gather_objects(result.ranks, shard)
    ranks = {t: {p: torch.cat([piece[t][p] for piece in pieces]) for p in result.ranks[t]} for t in result.ranks}
    return EvaluationResult(ranks=ranks, relations=triples[:, 1].cpu(), ks=result.ks, protocol=result.protocol)


def load_run(run_dir: Path, device: Optional[str] = None):
    """Rebuild ``(config, kg, model, graph)`` of a finished run with its best weights.

    Raises
    ------
    ConfigError
        If ``run_dir`` is not a run directory or its ``config.yaml`` is invalid.
    CheckpointError
        If ``best.pt`` is unreadable or does not fit the model ``config.yaml`` describes.
    """
    from ..config import load_config
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
