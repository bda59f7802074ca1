"""Checkpoints of a :class:`~dgl_emu.training.Trainer`: what is saved, atomic writes, loading."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Union

import torch

from ..rng import load_rng_states, rng_states
from ..utils import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["BEST", "LAST", "CheckpointError", "save_atomic", "load_checkpoint", "trainer_state",
           "restore_trainer_state"]

BEST, LAST = "best.pt", "last.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, not a checkpoint, another model)."""


def save_atomic(path: Path, obj: dict) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Union[str, Path], device: torch.device = torch.device("cpu")) -> dict:
    """Read a checkpoint written by :func:`save_atomic`.

    Raises
    ------
    CheckpointError
        Naming the file, when it is truncated, unreadable or not a dgl-emu checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, OSError, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'truncated'})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a dgl-emu checkpoint (no model weights)")
    return state


def trainer_state(trainer: "Trainer") -> dict:
    """Weights, optimiser, the state of every random component, data order and bookkeeping."""
    return {
        "step": trainer.step, "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "rng": {"trainer": trainer.generator.get_state(), "sampler": trainer.sampler.rng_state() if trainer.sampler is not None else None,
                "objective": rng_states(trainer.objective)},
        "perm": trainer.perm, "cursor": trainer.cursor, "best_metric": trainer.best_metric,
        "best_step": trainer.best_step, "validations": trainer.validations,
        "train_seconds": trainer.train_seconds, "fit_seconds": trainer.fit_seconds,
        "environments": trainer.environments,
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
    }


def rank_state(trainer: "Trainer") -> dict:
    """What differs between the ranks of sharded training: each rank's generators and data order."""
    return {"rng": {"trainer": trainer.generator.get_state(),
                    "sampler": trainer.sampler.rng_state() if trainer.sampler is not None else None,
                    "objective": rng_states(trainer.objective)},
            "perm": trainer.perm, "cursor": trainer.cursor}


def _rng_of_v01(state: dict) -> dict:
    """The ``rng`` entry of a checkpoint written by dgl-emu 0.1 (separate keys per component)."""
    objective = {f"model.{name}" if name else "model": s for name, s in state.get("module_rng", {}).items()}
    if state.get("mutation_rng") is not None:
        objective["mutation"] = state["mutation_rng"]
    return {"trainer": state["generator"], "sampler": state["sampler_rng"], "objective": objective}


def restore_trainer_state(trainer: "Trainer", state: dict) -> None:
    """The inverse of :func:`trainer_state` (also reads dgl-emu 0.1 checkpoints)."""
    trainer.step = state["step"]
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer = trainer.build_optimizer(trainer.step)
    if trainer.schedule.phase(trainer.step) == trainer.schedule.phase(max(trainer.step - 1, 0)):
        trainer.optimizer.load_state_dict(state["optimizer"])  # else: a fresh optimiser starts here
    if state.get("ranks"):  # sharded training: this rank's own generators and data order
        state = {**state, **state["ranks"][trainer.shard.rank]}
    rng = state["rng"] if "rng" in state else _rng_of_v01(state)
    trainer.generator.set_state(rng["trainer"])
    if trainer.sampler is not None:
        trainer.sampler.load_rng_state(rng["sampler"])
    load_rng_states(trainer.objective, rng["objective"])
    trainer.perm, trainer.cursor = state["perm"], state["cursor"]
    trainer.best_metric, trainer.best_step = state["best_metric"], state["best_step"]
    trainer.validations = list(state["validations"])
    trainer.train_seconds = state.get("train_seconds", 0.0)
    trainer.fit_seconds = state.get("fit_seconds", trainer.train_seconds)
    trainer.environments = list(state.get("environments", []))  # older checkpoints: none
    for cb, s in zip(trainer.callbacks, state["callbacks"]):
        cb.load_state_dict(s)
