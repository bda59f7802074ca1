"""``run``: train, validate, test and save one configuration; ``load_run`` after."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch

from ..config import ConfigError, RunConfig, load_config
from ..data import KnowledgeGraph
from ..launching import Terminated
from ..models import KGEModel
from ..plotting import plot_training_curve
from ..training import Callback, EarlyStopping, JsonLinesLogger, Trainer, TrainingDivergedError
from ..training.callbacks import TensorBoardLogger
from ..training.checkpoint import BEST, LAST, CheckpointError, load_checkpoint
from ..training.trainer import INTERRUPTED
from ..utils import atomic_write_json, atomic_write_text, environment, tune_cpu_allocator
from .builders import build_evaluator, build_model, default_output, device_of, load_graph, training_graph
from .choices import Choice, check_chosen, check_recorded, chosen_options, describe_choices, resolved_config
from .datarecord import (DataChanged, changes, data_files, describe, located, read_record, recorded_id_maps,
                         write_record)
from .memory import check_memory
from .placement import Placement
from .setup import Setup
from .rundir import RunDirectory

__all__ = ["run", "RunResult", "RunInterrupted", "RunDiverged", "RunWriteError", "load_run", "TEST_SIGNAL_ENV"]

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
    """SIGINT (Ctrl-C) or SIGTERM stopped the run; ``checkpoint`` is the ``last.pt`` it can resume
    from (or ``None``), ``signal`` the signal's number, ``restored`` the run directory when a
    previous run (``--fresh``) was put back."""

    def __init__(self, run_dir: Path, step: int, checkpoint: Optional[Path], signum: int = signal.SIGINT,
                 restored: Optional[Path] = None):
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step, self.checkpoint = run_dir, step, checkpoint
        self.signal, self.restored = signum, restored


class RunDiverged(RuntimeError):
    """Training produced a non-finite loss or parameters; the message says what is known."""


class RunWriteError(RuntimeError):
    """A file of the run directory could not be written (a full disk, a read-only file system);
    the message names the file and the checkpoint that is kept."""


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
def _graceful_stop(trainer: Trainer):
    """The first SIGINT (Ctrl-C) or SIGTERM: finish the current step, then stop (the caller
    checkpoints); a second: abort (:class:`KeyboardInterrupt`, or
    :class:`~dgl_emu.launching.Terminated` for SIGTERM). Yields ``{"signal": number or None}``."""
    state = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["signal"] is not None:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt
        state["signal"] = signum
        trainer.request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def _kept(watch: "_Watch", out: Path) -> str:
    """What a failed run keeps: its last checkpoint, or none."""
    if watch.checkpoint_step is not None:
        return f"the last checkpoint, at step {watch.checkpoint_step}, is kept in {out / 'last.pt'}"
    return "no checkpoint had been written yet"


def _write_failure(err: OSError, out: Path, kept: str) -> str:
    """The message of a file that could not be written: which, why, and what is ``kept``."""
    what = "disk full: " if err.errno == errno.ENOSPC else ""
    return f"{what}cannot write {err.filename or out} ({err.strerror or err}); {kept}"


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
    parts.append(_kept(watch, out))
    return "; ".join(parts)


def run(cfg: RunConfig, *, resume: bool = True, notify: Optional[Callable[[str], None]] = None,
        callbacks: Sequence[Callback] = (), placement: Optional[Placement] = None,
        accept_changed_data: bool = False) -> RunResult:
    """Train and evaluate ``cfg``; write the run directory; resume an unfinished run.

    The run directory holds ``config.yaml`` (resolved), the record of its data (``data.json``
    and the id maps: :mod:`~dgl_emu.pipeline.datarecord`), ``log.jsonl`` (a line per step, on
    disk as each step ends), ``best.pt`` (best validation MRR), ``last.pt`` (resumable: written
    after each validation, and when ``training.checkpoint_every_seconds`` have passed since the
    last one), ``metrics.json`` and ``curve.png``. Everything is built before anything is
    written, so a bad option or data file leaves the directory as it was. The directory must be
    dgl-emu's and is locked while the run writes it (:class:`RunDirectory`). ``resume=False``
    starts over; if the new run stops before its first checkpoint, for whatever reason, the
    previous run is put back.
    A resumed run refuses data that differ from its record unless ``accept_changed_data`` (then
    the files are read with the recorded id maps).
    ``notify`` receives one-line progress messages (resumed step, data report).
    ``callbacks`` are added after the run's own (logs, early stopping); their
    :meth:`~dgl_emu.training.Callback.state_dict` is saved in ``last.pt`` and restored on resume
    (e.g. :mod:`dgl_emu.tuning` reports each validation to Optuna and stops pruned trials).
    ``placement`` says where the run lives (:class:`~dgl_emu.pipeline.placement.Placement`;
    default: this one process); every process of a run calls :func:`run` with its own.

    Raises
    ------
    ConfigError
        A bad option, an output directory that holds another run, is not dgl-emu's or is in use,
        or a configuration whose tables or negatives cannot fit in memory.
    DataChanged
        Resuming on data that differ from the run's record, naming the file.
    RunDiverged
        A non-finite loss or parameters.
    RunWriteError
        A file that could not be written (e.g. a full disk), naming it and the checkpoint kept.
    RunInterrupted
        SIGINT or SIGTERM, after the checkpoint of the last finished step was written.
    """
    cfg.validate()
    tune_cpu_allocator()
    device = device_of(cfg)
    placement = placement if placement is not None else Placement()
    writes = placement.writes
    say = (notify or log.info) if writes else (lambda message: None)
    out = Path(cfg.output) if cfg.output else default_output(cfg)
    rundir = RunDirectory(out)
    action = rundir.check(cfg, fresh=not resume) if writes else None  # fails at once: in use, not ours
    started = time.perf_counter()
    files = data_files(cfg)
    record = read_record(out) if action == "resume" else None
    id_maps = recorded_id_maps(out) if record is not None and accept_changed_data else (None, None)
    kg = load_graph(cfg, id_maps=id_maps)
    current = describe(cfg, kg, files) if writes else None
    if record is not None:
        _check_data(record, current, accept_changed_data, "resuming would train", say)
    # the checkpoint to resume from is read (as data only) before anything is written
    # (a shard set's tables are read later, by the processes that hold them, or assembled by the trainer)
    resume_state = (load_checkpoint(out / LAST, device, assemble=False) if action == "resume" and (out / LAST).exists()
                    else None)
    check_memory(cfg, kg, device)
    setup = placement.setup(cfg, kg, device)
    if kg.origin:
        say(f"data: {kg.origin}")
    chosen = chosen_options(cfg, kg, setup.model)  # e.g. sparse tables by size: recorded, printed, checked
    check_chosen(cfg, chosen)
    resolved = resolved_config(cfg, chosen)
    for split, report in kg.reports.items():
        say(f"data: {split}: {report.summary()}")
    if chosen:
        say(describe_choices(chosen))
    note = setup.objective.kernel_note(device)
    if note is not None:
        say(note)
    valid = "valid" if "valid" in kg.splits else None
    evaluator = build_evaluator(cfg, kg)

    def validate(m: KGEModel) -> float:
        return setup.evaluate(m, valid, evaluator).get("mrr")

    prepared = False  # whether this process took the directory (and may put a previous run back)
    try:
        if writes:
            checked, action = action, rundir.prepare(cfg, fresh=not resume)
            prepared = True
            if action == "resume" and checked != "resume" and read_record(out) is not None:
                _check_data(read_record(out), current, accept_changed_data, "resuming would train", say)
            if action == "resume":
                check_recorded(_recorded_options(out), chosen, str(out))
            if rundir.previous is not None:
                say(f"the previous run in {out} is kept in {rundir.previous} until this one's first checkpoint")
            try:
                atomic_write_text(out / "config.yaml", resolved.to_yaml())
                if action != "resume" or record is None or changes(record, current):
                    write_record(out, cfg, kg, current)
            except OSError as e:
                raise RunWriteError(_write_failure(e, out, "nothing was trained")) from None
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
                          eval_every=cfg.training.eval_every, run_dir=out, writes=writes,
                          callbacks=callbacks, progress=cfg.progress and writes,
                          max_grad_norm=cfg.optimizer.options["max_grad_norm"], replicas=setup.replicas,
                          tables=setup.tables,
                          checkpoint_every_seconds=cfg.training.checkpoint_every_seconds)
        if action == "resume" and resume_state is not None:
            trainer.load_state_dict(resume_state)
            say(f"resumed {out} at step {trainer.step} of {cfg.training.steps}")
        elif action == "resume" and trainer.resume(out / LAST):
            say(f"resumed {out} at step {trainer.step} of {cfg.training.steps}")
        resume_state = None
        setup_seconds = time.perf_counter() - started  # the fit is counted by the trainer, over resumes
        _fit(trainer, watch, cfg, out)
        try:
            return _finish(resolved, chosen, kg, setup, placement, trainer, out, device, setup_seconds, evaluator)
        except OSError as e:
            raise RunWriteError(_write_failure(e, out, _kept(watch, out))) from None
    except BaseException as e:
        if not prepared or rundir.previous is None:
            raise
        restored = rundir.restore_previous()  # stopped before the first checkpoint, whatever stopped it
        if restored is None:
            raise
        if isinstance(e, RunInterrupted):
            e.restored = restored
        elif isinstance(e, (RunDiverged, RunWriteError)):
            raise type(e)(f"{e}; the previous run in {out} was put back") from None
        else:
            say(f"the previous run in {out} was put back")
        raise
    finally:
        rundir.release()


def _recorded_options(out: Path) -> dict:
    """The flat options of the run in ``out`` (its ``config.yaml``), or ``{}``."""
    try:
        return load_config(out / "config.yaml").flat()
    except ConfigError:  # none, or unreadable: the run directory's own checks said what they allow
        return {}


def _check_data(record: dict, current: dict, accept: bool, what: str, say: Callable[[str], None]) -> None:
    """Refuse data that differ from a run's ``record`` (naming the file) unless ``accept``."""
    diff = changes(record, current)
    if not diff:
        return
    if not accept:
        more = f" (and {len(diff) - 1} more change{'s' if len(diff) > 2 else ''})" if len(diff) > 1 else ""
        raise DataChanged(f"data: {diff[0]}{more}; {what} on other data: pass --accept-changed-data to go on "
                          f"with it anyway")
    for line in diff:
        say(f"data: accepted: {line}")


def _fit(trainer: Trainer, watch: _Watch, cfg: RunConfig, out: Path) -> None:
    """``trainer.fit()`` with a graceful stop on SIGINT and SIGTERM, divergence reported as
    :class:`RunDiverged` and a file that cannot be written as :class:`RunWriteError`."""
    with _graceful_stop(trainer) as caught:
        try:
            trainer.fit()
            if trainer.stop_reason == INTERRUPTED:  # every process stopped after the same step
                path = trainer.save_checkpoint()
                raise RunInterrupted(out, trainer.step, path, caught["signal"] or signal.SIGINT)
        except TrainingDivergedError as e:
            raise RunDiverged(_divergence(e, watch, cfg, out)) from None
        except OSError as e:
            raise RunWriteError(_write_failure(e, out, _kept(watch, out))) from None
        except KeyboardInterrupt as e:  # a second signal: no checkpoint of this step
            last = out / "last.pt"
            raise RunInterrupted(out, watch.checkpoint_step or 0, last if last.exists() else None,
                                 signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT) from None


def _finish(cfg: RunConfig, chosen: Dict[str, Choice], kg: KnowledgeGraph, setup: Setup, placement: Placement,
            trainer: Trainer, out: Path, device: torch.device, overhead: float, evaluator) -> RunResult:
    """Best weights, final evaluation, ``metrics.json`` (``cfg`` resolved, with the options it
    ``chosen``) and the curve."""
    model, writes = setup.model, placement.writes
    if trainer.best_step is None:  # no validation split: the final weights are "best"
        trainer.save_weights(None)
    placement.follow(None)  # the other processes wait for best.pt
    trainer.release_optimizer()  # its state is not needed to evaluate: memory for the best weights
    best = trainer.load_weights(out / BEST)
    started = time.perf_counter()
    metrics = {"config": cfg.to_dict(), "steps": trainer.step, "best_step": best["step"],
               "best_valid_mrr": best["valid_mrr"], "train_seconds": trainer.train_seconds,
               "stop_reason": trainer.stop_reason, "validations": trainer.validations,
               "dataset": kg.statistics(), "data": kg.load_report(),
               "chosen": {path: {"value": c.value, "reason": c.reason, "by_data": c.by_data}
                          for path, c in chosen.items()}}
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


def load_run(run_dir: Path, device: Optional[str] = None, *, accept_changed_data: bool = False):
    """Rebuild ``(config, kg, model, graph)`` of a finished run with its best weights.

    The data are read where the run's record says they were (their resolved absolute paths),
    or where ``config.yaml`` says when those files are gone, and must be the data the run
    trained on (:mod:`~dgl_emu.pipeline.datarecord`); ``accept_changed_data`` reads changed files
    with the run's recorded id maps instead of refusing them.

    Raises
    ------
    ConfigError
        If ``run_dir`` is not a run directory or its ``config.yaml`` is invalid.
    DataChanged
        If a data file or id map differs from the run's record (naming it).
    CheckpointError
        If ``best.pt`` is unreadable, asks for more than data, or does not fit the model
        ``config.yaml`` describes.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "best.pt").exists():
        raise ConfigError(f"{run_dir}: not a run directory (needs config.yaml and best.pt)")
    cfg = load_config(run_dir / "config.yaml")
    if device is not None:
        cfg = cfg.updated(device=device)
    dev = device_of(cfg)
    record = read_record(run_dir)
    files = located(record, data_files(cfg))
    id_maps = recorded_id_maps(run_dir) if record is not None and accept_changed_data else (None, None)
    kg = load_graph(cfg, files=files or None, id_maps=id_maps)
    if record is not None:
        _check_data(record, describe(cfg, kg, files), accept_changed_data, "its metrics would be",
                    lambda line: log.warning("%s", line))
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
