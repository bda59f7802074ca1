"""Starting the data-parallel processes of ``dgl-emu run --nproc N`` on this machine.

The launcher starts ``N`` workers (``python -m dgl_emu run ARGV``) with the environment that
``torchrun`` would give them (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``; ``OMP_NUM_THREADS=1`` unless set) and hosts their rendezvous store itself: a
:class:`torch.distributed.TCPStore` on a socket bound to 127.0.0.1 only (``torchrun``'s store,
and rank 0's when a process group starts without one, listen on every interface). The workers
connect to it as clients (``TORCHELASTIC_USE_AGENT_STORE``), and gloo talks over the loopback
interface (``GLOO_SOCKET_IFNAME=lo``): no port of the run is reachable from another machine.

The workers are owned by a :class:`~dgl_emu.launching.Launch`: a failing worker ends the others
with one ``Error:`` line (a worker killed from outside: ``rank 1 of 2 (pid N) was killed by signal
9 (SIGKILL)``, and the command that resumes the run), and SIGINT or SIGTERM to the launcher stops
every worker after a common step, with a checkpoint, and one line that says how to resume. The
workers write to the launcher's terminal (rank 0 its progress; a worker's error goes to the
launcher as its one line, with a traceback only under ``dgl-emu --debug``).
"""
from __future__ import annotations

import datetime
import os
import socket
import sys
from typing import Sequence

import torch.distributed as dist

from ..launching import Launch

__all__ = ["launch", "free_port", "loopback_store", "LOOPBACK"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def loopback_store(world_size: int, timeout: float = 1800.0):
    """A rendezvous store served from this process on a socket bound to 127.0.0.1.

    Returns
    -------
    (TCPStore, int)
        The store (keep it while the workers run: it listens as long as it lives) and its port
        (the workers' ``MASTER_PORT``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(max(128, world_size))
    port = sock.getsockname()[1]
    store = dist.TCPStore(LOOPBACK, port, None, True, datetime.timedelta(seconds=timeout),
                          wait_for_workers=False, master_listen_fd=sock.fileno())
    sock.detach()  # the store owns the listening socket now
    return store, port


def launch(nproc: int, argv: Sequence[str], *, resume: str = "the same command") -> int:
    """Start ``nproc`` data-parallel workers of ``dgl-emu run ARGV`` on this machine and wait for
    them (see the module docstring); returns the launcher's exit status.

    Parameters
    ----------
    nproc : int
        Workers.
    argv : sequence of str
        The ``run`` options of the workers (without ``--nproc``).
    resume : str
        The command that resumes the run, printed when a signal stops it.
    """
    store, port = loopback_store(nproc)
    env = dict(os.environ)
    if nproc > 1:
        env.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: one thread per process unless set
    env.update({"MASTER_ADDR": LOOPBACK, "MASTER_PORT": str(port), "WORLD_SIZE": str(nproc),
                "LOCAL_WORLD_SIZE": str(nproc), "GROUP_RANK": "0", "TORCHELASTIC_USE_AGENT_STORE": "True",
                "GLOO_SOCKET_IFNAME": "lo"})
    with Launch(resume) as workers:
        for rank in range(nproc):
            workers.start(f"rank {rank} of {nproc}", [sys.executable, "-m", "dgl_emu", "run", *argv],
                          {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
        code = workers.wait()
    del store  # stops listening
    return code
