"""Where a ``dgl-emu run`` process lives: chosen once, here, and handed to the pipeline."""
from __future__ import annotations

from typing import Optional

from ..config import RunConfig
from ..data_parallel import DataParallelPlacement
from ..pipeline import Placement, device_of
from ..sharded import ShardedPlacement

__all__ = ["worker_placement"]


def worker_placement(cfg: RunConfig) -> Optional[Placement]:
    """The placement of a process that a launcher started: a sharded trainer
    (:meth:`ShardedPlacement.from_env`, which connects it to DGL's servers first), or one of
    the data-parallel launcher's processes (:meth:`DataParallelPlacement.from_env`); ``None``
    for a command a user typed (which then runs in one process, or launches the others).

    Raises
    ------
    ConfigError
        When ``cfg``'s device does not exist here.
    """
    return ShardedPlacement.from_env() or DataParallelPlacement.from_env(device_of(cfg))
