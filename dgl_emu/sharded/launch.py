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

Every socket of the run listens on the address ``IPS`` gives this machine, nowhere else (127.0.0.1
for a run on one machine): DGL's servers bind their ``IP PORT`` line and its clients the address
they reach the servers from; the first machine's launcher hosts the torch.distributed store on a
socket bound to its ``IP`` (the trainers connect to it as clients,
``TORCHELASTIC_USE_AGENT_STORE``); gloo binds the interface that holds the machine's ``IP``
(``GLOO_SOCKET_IFNAME``).

The servers and trainers are owned by a :class:`~dgl_emu.launching.Launch`: each in a process
group of its own, ended with it. When a trainer fails the others and the servers are ended with
one ``Error:`` line; SIGINT or SIGTERM to the launcher stops the trainers after a common step, with
a checkpoint, ends the servers and prints one line that says how to resume; servers still
waiting after the trainers are done are stopped after a timeout.
"""
from __future__ import annotations

import datetime
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import psutil
import torch.distributed as dist

from ..launching import Launch
from .placement import PART_CONFIG_ENV
from .partition import read_info

__all__ = ["Machine", "read_ip_config", "launch", "interface_of", "DEFAULT_SERVER_PORT", "DEFAULT_MASTER_PORT"]

DEFAULT_SERVER_PORT = 30050
DEFAULT_MASTER_PORT = 29577


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


def interface_of(ip: str) -> Optional[str]:
    """The name of this machine's network interface that holds the address ``ip`` (``"lo"`` for
    127.0.0.1), or ``None`` when none does.

    Examples
    --------
    >>> interface_of("127.0.0.1") is not None
    True
    """
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address == ip for a in addresses):
            return name
    return None


def _environment(part_config: Path, ip_config: Path, machines: Sequence[Machine], machine_rank: int,
                 num_trainers: int, num_servers: int) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"DGL_DIST_MODE": "distributed", "DGL_IP_CONFIG": str(ip_config), "DGL_CONF_PATH": str(part_config),
                "DGL_NUM_SERVER": str(num_servers), "DGL_NUM_CLIENT": str(len(machines) * num_trainers),
                "DGL_NUM_SAMPLER": "0", "DGL_GRAPH_FORMAT": "csc", "DGL_GROUP_ID": "0",
                "MASTER_ADDR": machines[0].ip, "MASTER_PORT": env.get("MASTER_PORT", str(DEFAULT_MASTER_PORT)),
                "TORCHELASTIC_USE_AGENT_STORE": "True"})
    interface = interface_of(machines[machine_rank].ip)
    if interface is None:
        raise ValueError(f"no network interface of this machine holds {machines[machine_rank].ip} (line "
                         f"{machine_rank + 1} of the ip config, --machine-rank {machine_rank})")
    env["GLOO_SOCKET_IFNAME"] = interface
    return env


def _store(ip: str, port: int, world_size: int):
    """The torch.distributed store of the trainers, on a socket bound to ``ip:port`` only."""
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(max(128, world_size))
    except OSError as e:
        sock.close()
        raise ValueError(f"cannot listen on {ip}:{port} for the trainers' store ({e.strerror or e}): set "
                         f"MASTER_PORT to a free port") from None
    store = dist.TCPStore(ip, port, None, True, datetime.timedelta(seconds=1800), wait_for_workers=False,
                          master_listen_fd=sock.fileno())
    sock.detach()  # the store owns the socket now
    return store


def launch(argv: Sequence[str], part_config, ip_config, *, num_trainers: int = 1, num_servers: int = 1,
           machine_rank: int = 0, python: Optional[str] = None, resume: str = "the same command",
           trainer: Optional[Sequence[str]] = None) -> int:
    """Start this machine's servers and trainers of ``dgl-emu run ARGV``; returns the launcher's
    exit status (see the module docstring).

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
    resume : str
        The command that resumes the run, printed when a signal stops it.
    trainer : sequence of str, optional
        The trainers' command before ``argv`` (default ``python -m dgl_emu run``; a benchmark
        may start its own script, which connects with
        :meth:`~dgl_emu.sharded.ShardedPlacement.from_env`).

    Raises
    ------
    ValueError
        When the partitions and the machines do not match, naming the files, or the store cannot
        listen.
    """
    part_config, ip_config = Path(part_config).resolve(), Path(ip_config).resolve()
    info = read_info(part_config)
    machines = read_ip_config(ip_config)
    if info.num_parts != len(machines):
        raise ValueError(f"{part_config} has {info.num_parts} partition(s) but {ip_config} lists {len(machines)} "
                         f"machine(s): DGL serves partition i on machine i")
    if not 0 <= machine_rank < len(machines):
        raise ValueError(f"--machine-rank {machine_rank}: {ip_config} lists machines 0..{len(machines) - 1}")
    env = _environment(part_config, ip_config, machines, machine_rank, num_trainers, num_servers)
    world = len(machines) * num_trainers
    store = _store(machines[0].ip, int(env["MASTER_PORT"]), world) if machine_rank == 0 else None
    python = python or sys.executable
    with Launch(resume) as launched:
        for s in range(num_servers):
            launched.start(f"server {s} of this machine", [python, "-m", "dgl_emu.sharded.server"],
                           {**env, "DGL_ROLE": "server", "DGL_SERVER_ID": str(machine_rank * num_servers + s)},
                           server=True)
        for t in range(num_trainers):
            rank = machine_rank * num_trainers + t
            command = list(trainer) if trainer is not None else [python, "-m", "dgl_emu", "run"]
            launched.start(f"trainer {t} of this machine", [*command, *argv],
                           {**env, "DGL_ROLE": "client", PART_CONFIG_ENV: str(part_config), "RANK": str(rank),
                            "LOCAL_RANK": str(t), "WORLD_SIZE": str(world)})
        code = launched.wait()
    del store  # stops listening
    return code
