"""A small, hook-driven trainer with atomic checkpoints and bit-identical resume."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..sampling.base import NegativeSampler
from ..typing import Target, Tensor
from ..utils import environment
from .batching import BatchStrategy, FullGraphBatches
from .callbacks import Callback
from .checkpoint import BEST, LAST, load_checkpoint, rank_state, restore_trainer_state, save_atomic, trainer_state
from .optim import CombinedOptimizer, OptimizerSchedule
from .distributed import DataParallel, Shard, gather_objects
from .step import Objective, StepLoss, split_by_side

__all__ = ["Trainer", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """The loss or the parameters became NaN or infinite; training stopped before using them."""


class Trainer:
    """Trains an :class:`~dgl_emu.training.step.Objective` for a number of steps.

    Each step draws a batch (an epoch-wise permutation of the training triples from the
    trainer's generator), picks the side (alternating, or per triple for Bernoulli), samples
    negatives, gathers embeddings through the batch strategy and takes an optimiser step. Every
    ``eval_every`` steps ``validate(model)`` gives the validation MRR; the best model is saved to
    ``run_dir/best.pt`` and a resumable ``run_dir/last.pt`` holds everything needed to continue
    bit-identically on CPU.

    ``environments`` lists, for each :meth:`fit` that trained, the step it started from and the
    :func:`~dgl_emu.utils.environment` it ran in (threads, CPU kernels, versions), kept across
    resumes: a run resumed on another machine or thread count says which steps ran where.

    Parameters
    ----------
    objective : Objective
        Model, loss, optional EMU layer and regulariser.
    sampler : NegativeSampler or None
        Negative sampler (``None`` with an all-entity ``regime``).
    train_triples : Tensor
        ``(N, 3)`` training triples.
    num_steps : int
        Total optimiser steps.
    batch_size : int
        Positives per step.
    optimizer : OptimizerSchedule
        Optimiser (and optional switch).
    batches : BatchStrategy, optional
        How embeddings are gathered: :class:`~dgl_emu.training.batching.FullGraphBatches`
        (default, no graph: lookup tables) or
        :class:`~dgl_emu.training.batching.NeighborSampledBatches`.
    device : torch.device
        Training device.
    seed : int
        Seed of the data-order generator (the sampler and EMU layer hold their own).
    validate : callable, optional
        ``validate(model) -> float`` (higher is better), e.g. validation MRR.
    eval_every : int, optional
        Steps between validations (and checkpoints).
    run_dir : path-like, optional
        Where checkpoints go; ``None`` keeps nothing on disk.
    callbacks : sequence of Callback
        Hooks (logging, early stopping).
    progress : bool
        Show a tqdm bar with ETA.
    max_grad_norm : float, optional
        Clip the gradients' total 2-norm to this before each step.
    shard : Shard, optional
        This process's rank in data-parallel training (:mod:`dgl_emu.training.distributed`):
        it trains on its part of every global batch, and only rank 0 writes (give the other
        ranks ``run_dir=None`` and no loggers).
    regime : Regime, optional
        A regime that scores every entity (:mod:`dgl_emu.training.regimes`: 1vsAll, KvsAll);
        batches are then drawn from its examples of ``train_triples`` and the sampler is not
        used. ``None`` (or negative sampling): the sampler's negatives.
    reciprocal : bool
        Train tail queries only: ``train_triples`` holds every triple in both directions, the
        inverse of ``r`` being ``r + R`` (:func:`dgl_emu.data.with_reciprocal_relations`).
    """

    def __init__(self, objective: Objective, sampler: Optional[NegativeSampler], train_triples: Tensor, *,
                 num_steps: int, batch_size: int, optimizer: OptimizerSchedule,
                 batches: Optional[BatchStrategy] = None,
                 device: torch.device = torch.device("cpu"), seed: int = 0,
                 validate: Optional[Callable[[torch.nn.Module], float]] = None,
                 eval_every: Optional[int] = None, run_dir: Optional[Path] = None,
                 callbacks: Sequence[Callback] = (), progress: bool = True,
                 max_grad_norm: Optional[float] = None, shard: Optional[Shard] = None,
                 regime=None, reciprocal: bool = False):
        if num_steps < 1 or batch_size < 1:
            raise ValueError("num_steps and batch_size must be positive")
        self.device = torch.device(device)
        self.objective = objective.to(self.device)
        self.model = objective.model
        self.sampler = sampler
        self.triples = train_triples.to(self.device)
        self.num_steps, self.batch_size = num_steps, batch_size
        self.schedule = optimizer
        self.batches = batches if batches is not None else FullGraphBatches()
        self.batches.prepare(self.model.encoder)
        self.validate_fn, self.eval_every = validate, eval_every
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks)
        self.progress = progress
        if max_grad_norm is not None and self.model.encoder.sparse_parameters():
            raise ValueError("gradient clipping needs dense gradients; these lookup tables are sparse "
                             "(set encoder.sparse to false)")
        reg = objective.regularizer
        if reg is not None and reg.weight and reg.whole_tables and self.model.encoder.sparse_parameters():
            raise ValueError("a whole-table regulariser changes every row each step; these lookup tables are "
                             "sparse (set encoder.sparse to false)")
        self.max_grad_norm = max_grad_norm
        self.shard = shard or Shard()
        self.regime = regime if regime is not None and regime.all_entities else None
        self.reciprocal = reciprocal
        if self.regime is not None:
            if self.model.encoder.sparse_parameters():
                raise ValueError("an all-entity regime scores every row of the tables each step; "
                                 "sparse tables bring nothing there (set encoder.sparse to false)")
            self.triples = self.regime.examples(train_triples, reciprocal).to(self.device)
        elif sampler is None:
            raise ValueError("training with sampled negatives needs a sampler")
        self.parallel = DataParallel(StepLoss(self.objective, self.batches, self.regime), self.shard,
                                     self.model.encoder.sparse_parameters())
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.best_metric = -math.inf
        self.best_step: Optional[int] = None
        self.validations: List[Dict[str, float]] = []
        self.stop_reason: Optional[str] = None
        self.train_seconds = 0.0  # wall time of training steps, summed over resumes
        self.fit_seconds = 0.0  # wall time inside fit (steps, validations, checkpoints), over resumes
        # where each fit() that trained ran: {"from_step": first step's index, **environment()}
        self.environments: List[Dict[str, object]] = []
        self.perm = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        self.optimizer = self.build_optimizer(0)

    # ------------------------------------------------------------------ control
    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the current step."""
        self.stop_reason = reason

    def next_indices(self) -> Tensor:
        """Indices of the next batch in an epoch-wise permutation drawn from the trainer's generator."""
        if self.cursor >= len(self.perm):
            self.perm = torch.randperm(len(self.triples), generator=self.generator)
            self.cursor = 0
        idx = self.perm[self.cursor:self.cursor + self.batch_size]
        self.cursor += len(idx)
        return idx

    def next_batch(self) -> Tensor:
        """The next batch: ``(B, 3)`` triples on the training device."""
        return self.triples[self.next_indices().to(self.device)]

    def training_step(self, hrt: Tensor) -> float:
        """One optimiser step on ``hrt (B, 3)``; returns the loss (the step counter is not moved).

        Raises
        ------
        TrainingDivergedError
            If the loss is not finite (before any parameter changes).
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        parts = []  # every part's negatives are drawn for all its rows, on every rank alike
        if self.regime is not None:  # scored against every entity: no negatives
            parts = [(t, rows, None, self.shard.part(len(rows)))
                     for t, rows in self.regime.parts(hrt, self.step, self.reciprocal)]
        else:
            sides = ([(Target.TAIL, hrt)] if self.reciprocal
                     else split_by_side(hrt, self.step, self.sampler, self.generator))
            for target, rows in sides:
                negatives = self.sampler(rows, target)
                if self.objective.separate_negatives:  # a second, independent draw for the EMU pass
                    negatives = torch.cat([negatives, self.sampler(rows, target)], 1)
                parts.append((target, rows, negatives, self.shard.part(len(rows))))
        total = self.parallel(parts, self.generator, len(hrt), self.shard)
        loss = self.parallel.mean(float(total.detach()))
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"the loss is {loss} at step {self.step + 1}")
        total.backward()
        self.parallel.synchronize()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return loss

    def build_optimizer(self, step: int):
        """The optimiser of the schedule's phase at ``step``, with the encoder's row optimiser
        (sharded tables) beside it when it has one."""
        opt = self.schedule.build(self.model.parameters(), step, self.model.encoder.sparse_parameters())
        name = self.schedule.switch_name if self.schedule.phase(step) else self.schedule.name
        rows = self.model.encoder.row_optimizer(name, self.schedule.lr_at(step))
        return opt if rows is None else CombinedOptimizer([opt, rows])

    def train_step(self) -> dict:
        """Draw the next batch, take one step and advance the counter; returns the step's record.

        The record holds ``step``, ``loss``, ``lr`` and ``seconds``; the optimiser is switched
        and its learning rate set when the schedule says so.
        """
        if self.schedule.phase(self.step) != self.schedule.phase(max(self.step - 1, 0)):
            self.optimizer = self.build_optimizer(self.step)
        if self.schedule.decays:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule.lr_at(self.step)
        start = time.perf_counter()
        loss = self.training_step(self.next_batch())
        self.step += 1
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        return {"step": self.step, "loss": loss, "lr": self.schedule.lr_at(self.step - 1), "seconds": seconds}

    def fit(self) -> "Trainer":
        """Train until ``num_steps`` (or a callback stops it); returns ``self``."""
        for cb in self.callbacks:
            cb.on_fit_start(self)  # early stopping may end a resumed run here
        if self.step < self.num_steps and self.stop_reason is None:
            self.environments.append({"from_step": self.step, **environment(self.device)})
        bar = tqdm(total=self.num_steps, initial=self.step, disable=not self.progress,
                   desc="train", unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        try:
            while self.step < self.num_steps and self.stop_reason is None:
                record = self.train_step()
                for cb in self.callbacks:
                    cb.on_step_end(self, record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}", best=f"{self.best_metric:.4f}")
                if self.eval_every and (self.step % self.eval_every == 0 or self.step == self.num_steps):
                    self.validate()
                    self.fit_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save_checkpoint()
        finally:
            self.fit_seconds += time.perf_counter() - started
            bar.close()
            for cb in self.callbacks:
                cb.on_fit_end(self)
        return self

    def validate(self) -> Optional[float]:
        """Run ``validate``; keep ``best.pt`` when the metric improves."""
        if self.validate_fn is None:
            return None
        bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingDivergedError(f"parameters became NaN/inf by step {self.step} ({bad[0]})")
        metric = float(self.validate_fn(self.model))
        improved = metric > self.best_metric
        self.validations.append({"step": self.step, "valid_mrr": metric})
        if improved:
            self.best_metric, self.best_step = metric, self.step
            if self.run_dir is not None:
                save_atomic(self.run_dir / BEST, {"model": self.model.state_dict(), "step": self.step,
                                                   "valid_mrr": metric})
        for cb in self.callbacks:
            cb.on_validation_end(self, metric, improved)
        return metric

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume: weights, optimiser, every generator, data order."""
        return trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (the inverse of saving)."""
        restore_trainer_state(self, state)

    def save_checkpoint(self) -> Optional[Path]:
        """Atomically write ``run_dir/last.pt`` (in sharded training every rank takes part: its
        generators and data order are gathered into rank 0's checkpoint)."""
        ranks = None
        if self.shard.distributed and not self.shard.splits_batches:
            ranks = gather_objects(rank_state(self), self.shard)
        if self.run_dir is None:
            return None
        path = self.run_dir / LAST
        save_atomic(path, {**self.state_dict(), "ranks": ranks})
        for cb in self.callbacks:
            cb.on_checkpoint(self)
        return path

    def resume(self, path: Optional[Path] = None) -> bool:
        """Load ``last.pt`` (or ``path``) if it exists; returns whether it did."""
        path = Path(path) if path is not None else (self.run_dir / LAST if self.run_dir else None)
        if path is None or not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, self.device))
        return True
