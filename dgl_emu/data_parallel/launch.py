"""Starting the data-parallel processes of ``dgl-emu run --nproc N`` on this machine (torchrun)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Sequence

__all__ = ["launch", "free_port"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Start ``nproc`` data-parallel workers of ``dgl-emu run ARGV`` with torchrun on this
    machine (127.0.0.1, gloo over the loopback interface); returns their exit status."""
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={nproc}",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}", "-m", "dgl_emu", "run", *argv]
    return subprocess.call(cmd, env=env)
