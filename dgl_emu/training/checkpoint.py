"""Checkpoint files: atomic writes, loading, the format of older versions (what a checkpoint
holds is the trainer's :meth:`~dgl_emu.training.Trainer.state_dict`)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import torch

from ..utils import atomic_write_bytes

__all__ = ["BEST", "LAST", "CheckpointError", "save_atomic", "load_checkpoint", "upgrade_rng_state"]

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


def upgrade_rng_state(state: dict) -> dict:
    """The ``rng`` entry of a checkpoint ``state``, also from dgl-emu 0.1 checkpoints (which kept
    separate keys per component)."""
    if "rng" in state:
        return state["rng"]
    objective = {f"model.{name}" if name else "model": s for name, s in state.get("module_rng", {}).items()}
    if state.get("mutation_rng") is not None:
        objective["mutation"] = state["mutation_rng"]
    return {"trainer": state["generator"], "sampler": state["sampler_rng"], "objective": objective}
