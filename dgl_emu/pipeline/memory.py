"""The memory a run needs at least, checked before anything large is allocated.

A ``--dim`` or ``--num-negatives`` far too large for the machine would otherwise end in the
allocator's message (or the kernel killing the process) in the middle of building or training.
:func:`memory_needed` adds what a run certainly allocates: its weights (counted on PyTorch's
``meta`` device, which allocates nothing) with the optimiser's state per weight, and one step's
negative ids and scores (or, for 1vsAll and KvsAll, the scores of every entity), or one
evaluation batch's scores against every entity, and what building the sampler holds at once
(SANS: one entity's random walks). It is a lower bound (activations, gradients and
EMU's mutated negatives come on top), so :func:`check_memory` refuses only runs that cannot fit,
naming the option that weighs most.
"""
from __future__ import annotations

from typing import Dict, Tuple

import psutil
import torch

from ..config import ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..sampling import SAMPLERS
from ..training import REGIMES
from .builders import build_model

__all__ = ["memory_needed", "available_memory", "check_memory", "OPTIMIZER_STATES"]

#: optimiser state kept per weight (a lower bound: optimisers not listed count none)
OPTIMIZER_STATES = {"sgd": 0, "adagrad": 1, "adam": 2}


def _size(n: float) -> str:
    """``n`` bytes in binary units.

    Examples
    --------
    >>> _size(512), _size(3 * 2 ** 30), _size(5 * 2 ** 40)
    ('512 B', '3.0 GiB', '5.0 TiB')
    """
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 2 ** power:
            return f"{n / 2 ** power:.1f} {unit}"
    return f"{int(n)} B"


def memory_needed(cfg: RunConfig, kg: KnowledgeGraph) -> Dict[str, Tuple[int, str, str]]:
    """What a run of ``cfg`` on ``kg`` certainly allocates, by part.

    Returns
    -------
    dict of str to (int, str, str)
        ``{part: (bytes, option, how)}`` for ``"weights"`` (with the optimiser's state),
        ``"step"``, ``"evaluation"`` and, where the sampler's set-up needs memory, ``"sampler"``;
        ``option`` is the dotted path that sizes the part most.
    """
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = build_model(cfg, kg)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    states = OPTIMIZER_STATES.get(str(cfg.optimizer.name).lower(), 0)
    batch, entities = cfg.training.batch_size, kg.num_entities
    parts = {"weights": (weights * (1 + states), "model.dim",
                         f"weights {_size(weights)} with {states} optimiser state{'s' if states != 1 else ''} each")}
    if REGIMES.get(cfg.regime.name).all_entities:
        parts["step"] = (batch * entities * 4, "training.batch_size",
                         f"scores of {batch} queries x {entities} entities per step")
    else:
        k = int(cfg.sampler.options.get("num_negatives") or 1)
        parts["step"] = (batch * k * (8 + 4), "sampler.num_negatives",
                         f"ids and scores of {batch} x {k} negatives per step")
    if REGIMES.get(cfg.regime.name).uses_sampler:
        sampler = SAMPLERS.get(cfg.sampler.name).setup_memory(entities, **cfg.sampler.options)
        if sampler is not None:
            parts["sampler"] = sampler
    eval_batch = cfg.training.eval_batch_size
    parts["evaluation"] = (eval_batch * entities * 4, "training.eval_batch_size",
                           f"scores of {eval_batch} x {entities} entities per evaluation batch")
    return parts


def available_memory(device: torch.device) -> int:
    """Bytes that can be allocated now on ``device``: free GPU memory, or the memory available
    without swapping on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(psutil.virtual_memory().available)


def check_memory(cfg: RunConfig, kg: KnowledgeGraph, device: torch.device) -> None:
    """Refuse a run that cannot fit in the memory available here (see the module docstring).

    Raises
    ------
    ConfigError
        Naming the option that sizes the largest part, what the run needs at least and what is
        available.
    """
    parts = memory_needed(cfg, kg)
    total = sum(b for b, _, _ in parts.values())
    available = available_memory(device)
    if total <= available:
        return
    _, option, _ = max(parts.values())
    detail = "; ".join(how for _, _, how in sorted(parts.values(), reverse=True))
    raise ConfigError(f"{option}: the run needs at least {_size(total)} of {device.type.upper()} memory ({detail}), "
                      f"and {_size(available)} are available here", option)
