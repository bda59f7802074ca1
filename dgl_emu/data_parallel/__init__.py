"""Data-parallel training on ``torch.distributed``: a placement of ``W`` processes on one machine.

:mod:`.replicas` shares each global batch between the processes and averages their gradients,
:mod:`.placement` builds a process's run (and ranks its share of each evaluated split), and
:mod:`.launch` starts the processes, and hosts their store on 127.0.0.1 (``dgl-emu run --nproc N``).
"""
from .placement import DataParallelPlacement
from .replicas import DataParallelReplicas, DataParallelStep, gather_objects

__all__ = ["DataParallelPlacement", "DataParallelReplicas", "DataParallelStep", "gather_objects"]
