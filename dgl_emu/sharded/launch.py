"""Starting the servers and trainers of sharded training on one machine of the cluster.

``dgl-emu run --part-config P --ip-config IPS --num-trainers T`` on machine ``i`` (``--machine-rank
i``) starts that machine's DGL servers (``python -m dgl_emu.sharded.server``, one per
``--num-servers``) and its ``T`` trainers (``python -m dgl_emu run ...`` with the same options), with
the environment DGL's ``launch.py`` would give them, and waits for them. Run the same command on
every machine listed in ``IPS`` (for instance over ssh), each with its own ``--machine-rank``; on a
single machine, ``IPS`` holds one line (``127.0.0.1``) and one command starts everything.

``IPS`` has one line per machine, ``IP [PORT]`` (default port 30050), in partition order: machine
``i`` serves partition ``i``. Trainer ``t`` of machine ``i`` has rank ``i * T + t``; the
torch.distributed rendezvous is the first machine's IP at ``MASTER_PORT`` (default 29577).

Every process started is ended by its PID: when a trainer fails the others and the servers are
killed, and servers still waiting after the trainers are done are stopped after a timeout.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .placement import PART_CONFIG_ENV
from .partition import read_info

__all__ = ["Machine", "read_ip_config", "launch", "DEFAULT_SERVER_PORT", "DEFAULT_MASTER_PORT"]

DEFAULT_SERVER_PORT = 30050
DEFAULT_MASTER_PORT = 29577
#: seconds the servers get to shut down after the last trainer exits
SERVER_GRACE = 30.0


@dataclass(frozen=True)
class Machine:
    """One line of an ip_config file."""

    ip: str
    port: int = DEFAULT_SERVER_PORT


def read_ip_config(path) -> List[Machine]:
    """The machines of an ip_config file (``IP [PORT]`` per line; blank lines and ``#`` comments
    skipped).

    Raises
    ------
    ValueError
        Naming the file and line of a malformed entry.
    """
    machines = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
            raise ValueError(f"{path}:{n}: expected 'IP [PORT]', got {line!r}")
        machines.append(Machine(fields[0], int(fields[1]) if len(fields) == 2 else DEFAULT_SERVER_PORT))
    if not machines:
        raise ValueError(f"{path}: no machine listed (one 'IP [PORT]' line per machine)")
    return machines


def _environment(part_config: Path, ip_config: Path, machines: Sequence[Machine], num_trainers: int,
                 num_servers: int) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"DGL_DIST_MODE": "distributed", "DGL_IP_CONFIG": str(ip_config), "DGL_CONF_PATH": str(part_config),
                "DGL_NUM_SERVER": str(num_servers), "DGL_NUM_CLIENT": str(len(machines) * num_trainers),
                "DGL_NUM_SAMPLER": "0", "DGL_GRAPH_FORMAT": "csc", "DGL_GROUP_ID": "0",
                "MASTER_ADDR": machines[0].ip, "MASTER_PORT": env.get("MASTER_PORT", str(DEFAULT_MASTER_PORT))})
    if all(m.ip.startswith("127.") for m in machines):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _end(procs: Sequence[subprocess.Popen], sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Send ``sig`` to every live process (by PID) and wait for it, at most ``timeout`` each."""
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=timeout)


def launch(argv: Sequence[str], part_config, ip_config, *, num_trainers: int = 1, num_servers: int = 1,
           machine_rank: int = 0, python: Optional[str] = None) -> int:
    """Start this machine's servers and trainers of ``dgl-emu run ARGV``; returns their exit status.

    Parameters
    ----------
    argv : sequence of str
        The ``run`` options of the trainers (without the launch options).
    part_config, ip_config : path-like
        DGL's partition configuration (from ``dgl-emu partition``) and the machines.
    num_trainers, num_servers : int
        Trainer and server processes on each machine.
    machine_rank : int
        This machine's line in ``ip_config`` (and its partition).

    Raises
    ------
    ValueError
        When the partitions and the machines do not match, naming the files.
    """
    part_config, ip_config = Path(part_config).resolve(), Path(ip_config).resolve()
    info = read_info(part_config)
    machines = read_ip_config(ip_config)
    if info.num_parts != len(machines):
        raise ValueError(f"{part_config} has {info.num_parts} partition(s) but {ip_config} lists {len(machines)} "
                         f"machine(s): DGL serves partition i on machine i")
    if not 0 <= machine_rank < len(machines):
        raise ValueError(f"--machine-rank {machine_rank}: {ip_config} lists machines 0..{len(machines) - 1}")
    env = _environment(part_config, ip_config, machines, num_trainers, num_servers)
    python = python or sys.executable
    servers: List[subprocess.Popen] = []
    trainers: List[subprocess.Popen] = []
    try:
        for s in range(num_servers):
            servers.append(subprocess.Popen(
                [python, "-m", "dgl_emu.sharded.server"],
                env={**env, "DGL_ROLE": "server", "DGL_SERVER_ID": str(machine_rank * num_servers + s)}))
        for t in range(num_trainers):
            rank = machine_rank * num_trainers + t
            trainers.append(subprocess.Popen(
                [python, "-m", "dgl_emu", "run", *argv],
                env={**env, "DGL_ROLE": "client", PART_CONFIG_ENV: str(part_config), "RANK": str(rank),
                     "LOCAL_RANK": str(t), "WORLD_SIZE": str(len(machines) * num_trainers)}))
        return _wait(trainers, servers)
    except KeyboardInterrupt:  # the trainers got the Ctrl-C too: let them checkpoint, then stop all
        _end(trainers, signal.SIGINT, timeout=120.0)
        return 130
    finally:
        _end(trainers)
        _end(servers, signal.SIGTERM, timeout=SERVER_GRACE)


def _wait(trainers: Sequence[subprocess.Popen], servers: Sequence[subprocess.Popen]) -> int:
    """Wait for the trainers; the first failure (or a server that dies early) stops everything."""
    while True:
        codes = [p.poll() for p in trainers]
        failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            _end(trainers)
            rank, code = failed[0]
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            print(f"Error: trainer {rank} of this machine {how}; the other trainers and the servers were "
                  f"stopped (a rerun resumes from the last checkpoint)", file=sys.stderr, flush=True)
            return 128 - code if code < 0 else code
        if all(c == 0 for c in codes):
            deadline = time.monotonic() + SERVER_GRACE  # servers exit once every trainer disconnected
            while any(p.poll() is None for p in servers) and time.monotonic() < deadline:
                time.sleep(0.2)
            return 0
        if any(p.poll() not in (None, 0) for p in servers):
            _end(trainers)
            return 1
        time.sleep(0.2)
