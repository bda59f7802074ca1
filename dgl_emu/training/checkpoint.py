"""Checkpoint files: atomic writes, loading as data only, the format of older versions (what a
checkpoint holds is the trainer's :meth:`~dgl_emu.training.Trainer.state_dict`).

A checkpoint holds tensors, numbers, strings, ``None`` and plain containers, nothing else, and is
read with ``torch.load(..., weights_only=True)``: unpickling it builds no other object and calls no
other function, so a ``best.pt`` or ``last.pt`` from someone else's run directory cannot run code.
A file that needs anything more is refused (:class:`CheckpointRefused`), naming what it asked for.
The one global allowed beyond PyTorch's own is :class:`torch.torch_version.TorchVersion` (a
``str`` subclass), which checkpoints of dgl-emu 0.2 and earlier hold in their environment record.

A checkpoint of a run whose tables are held in shards (sharded training) refers to a *shard set*
(:mod:`.shardset`): each process's rows in ``.npy`` files beside it, with a manifest.
:func:`load_checkpoint` assembles the tables into the state (a reader in one process), or leaves
the references and the opened :class:`~.shardset.ShardSet` under ``"shards"`` for the processes
that hold the shards to read their own rows.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Optional, Union

import torch

from torch.torch_version import TorchVersion

from ..utils import atomic_write_stream
from .shardset import ShardSetError, open_shard_set, resolve

__all__ = ["BEST", "LAST", "CheckpointError", "CheckpointRefused", "save_atomic", "load_checkpoint",
           "upgrade_rng_state"]

BEST, LAST = "best.pt", "last.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, not a checkpoint, another model)."""


class CheckpointRefused(CheckpointError):
    """A checkpoint file asks for more than data (a Python object or function); it was not loaded."""


#: globals a checkpoint may name beyond what ``weights_only`` allows (older dgl-emu versions)
ALLOWED_GLOBALS = (TorchVersion,)


def save_atomic(path: Path, obj: dict) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically, streamed into the temporary file (no copy of
    the tables in memory: a 5M-entity table and its optimiser state are written as they are)."""
    atomic_write_stream(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: Union[str, Path], device: torch.device = torch.device("cpu"), *,
                    assemble: bool = True) -> dict:
    """Read a checkpoint written by :func:`save_atomic` (or, with a shard set, by
    :func:`.shardset.commit`).

    Only data is loaded (``weights_only=True``, see the module docstring). A checkpoint with a
    shard set has its tables assembled into the state when ``assemble`` (``(E, d)`` each, in
    this process's memory); otherwise it keeps its references and ``state["shards"]`` is the
    :class:`~.shardset.ShardSet` they are read from.

    Raises
    ------
    CheckpointRefused
        Naming the file and the global it asks for, when it needs more than data.
    CheckpointError
        Naming the file, when it is truncated, unreadable or not a dgl-emu checkpoint, or when
        its shard set is incomplete or altered.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as e:
        asked = _refused_global(str(e))
        if asked is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (UnpicklingError: "
                                  f"{str(e).splitlines()[0] if str(e) else 'truncated'})") from None
        raise CheckpointRefused(f"{path}: refused: it asks for {asked}, and a checkpoint holds only "
                                f"tensors, numbers, strings and containers (dgl-emu loads checkpoints as "
                                f"data only; a file from an untrusted source may run code)") from None
    except Exception as e:  # torch raises RuntimeError, EOFError, OSError, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'truncated'})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a dgl-emu checkpoint (no model weights)")
    try:
        shards = open_shard_set(path, state)
        if shards is None:
            return state
        if not assemble:
            return {**state, "shards": shards}
        return resolve({k: v for k, v in state.items() if k != "shards"}, shards)
    except ShardSetError as e:
        raise CheckpointError(str(e)) from None


def _refused_global(message: str) -> Optional[str]:
    """What a ``weights_only`` load refused (``os.system``, ``REDUCE`` ...), from torch's message;
    ``None`` when the load failed for another reason (a truncated file)."""
    if "Weights only load failed" not in message:
        return None
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return found.group(1)
    found = re.search(r"WeightsUnpickler error: (.+)", message)
    return found.group(1).strip().rstrip(".") if found else "a Python object"


def upgrade_rng_state(state: dict) -> dict:
    """The ``rng`` entry of a checkpoint ``state``, also from dgl-emu 0.1 checkpoints (which kept
    separate keys per component)."""
    if "rng" in state:
        return state["rng"]
    objective = {f"model.{name}" if name else "model": s for name, s in state.get("module_rng", {}).items()}
    if state.get("mutation_rng") is not None:
        objective["mutation"] = state["mutation_rng"]
    return {"trainer": state["generator"], "sampler": state["sampler_rng"], "objective": objective}
