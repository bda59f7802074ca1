"""``python -m benchmarks speed shard-eval``: machine 0's peak memory in a 2-partition sharded
evaluation, shard-wise against gathered.

A generated KG is partitioned in two (at random) and served by two simulated machines on this
host: two network namespaces joined by a veth pair, each with its own ``/dev/shm`` (DGL's servers
share their partition with the trainers through shared memory named after the graph, so two
machines on one host need two; the same simulation as ``docs/two_machines.sh`` and the test
suite's). Each machine runs one DGL server and one trainer (this module's ``trainer``, started by
:func:`dgl_emu.sharded.launch.launch`), which builds the sharded model of the run options and
evaluates the same test queries twice:

* **shard-wise** (:meth:`~dgl_emu.sharded.ShardedPlacement.shardwise`, what ``dgl-emu run`` does for
  lookup tables): each trainer scores the queries against its own rows, counts are summed;
* **gathered** (:meth:`~dgl_emu.sharded.ShardedPlacement.gathered`, what it does for GNNs and the
  sampled protocol, and did for everything before): trainer 0 builds a one-process model, loads
  the gathered table into it and ranks there.

Memory is each trainer's peak resident set size during one evaluation: the kernel's high-water
mark (``VmHWM``) reset just before it (``/proc/self/clear_refs``, after a garbage collection and
``malloc_trim``) and read just after it. It includes the pages of its machine's partition that the
trainer reads from shared memory; the server's own memory (its partition) is the same in both
modes and not counted. Needs root (namespaces, mounts) and Linux.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

__all__ = ["shard_eval"]

REPO = Path(__file__).resolve().parents[2]
ADDRESSES = ("10.231.0.1", "10.231.0.2")


def _status(field: str) -> int:
    """``VmRSS``, ``VmHWM`` ... of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _quiet_baseline() -> int:
    """Free what can be freed, reset the high-water mark; returns the resident set size."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _measured(evaluate):
    """``(result, {"baseline_rss", "peak_rss"})`` of ``evaluate()``."""
    before = _quiet_baseline()
    result = evaluate()
    return result, {"baseline_rss": before, "peak_rss": _status("VmHWM")}


def trainer(spec: dict) -> None:
    """One machine's trainer: build the sharded model and evaluate shard-wise, then gathered."""
    import torch  # start-up cost: only in the trainer processes

    from dgl_emu.config import RunConfig
    from dgl_emu.data.generated import generate_large_kg
    from dgl_emu.pipeline.builders import build_evaluator
    from dgl_emu.sharded import ShardedPlacement

    placement = ShardedPlacement.from_env()
    kg = generate_large_kg(spec["entities"], spec["triples"], seed=spec["seed"])
    cfg = RunConfig(model="distmult", dim=spec["dim"], progress=False).validate()
    setup = placement.setup(cfg, kg, torch.device("cpu"))
    evaluator = build_evaluator(cfg, kg)
    kg.splits["bench"] = kg.splits["test"][:spec["queries"]]
    model = setup.model.eval()
    out = {}
    runs = {"shardwise": lambda: placement.shardwise(model, kg, "bench", evaluator),
            "gathered": lambda: placement.gathered(cfg, kg, model, "bench", evaluator)}
    for name, evaluate in runs.items():
        placement.follow(None)  # both trainers start together
        result, memory = _measured(evaluate)
        out[name] = {"metrics": result.metrics()["both"]["realistic"], "trainers": placement.replicas.gather(memory)}
    if placement.writes:
        print("RESULT " + json.dumps(out), flush=True)
    placement.follow(None)


def machine(rank: int, spec: dict, part_config: str, ip_config: str) -> int:
    """Machine ``rank``'s server and trainer (inside its namespace)."""
    from dgl_emu.sharded.launch import launch
    return launch([json.dumps(spec)], part_config, ip_config, num_trainers=1, machine_rank=rank,
                  trainer=[sys.executable, "-m", "benchmarks.speedlib.shardeval", "trainer"])


def _ip(*args) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def _two_machines():
    """Two network namespaces joined by a veth pair; deleted on the way out."""
    tag = os.getpid() % 100000
    names, links = [f"dgxb{tag}{m}" for m in "ab"], [f"dgvb{tag}{m}" for m in "ab"]
    made = []
    try:
        for name in names:
            _ip("netns", "add", name)
            made.append(name)
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for name, link, addr in zip(names, links, ADDRESSES, strict=True):
            _ip("link", "set", link, "netns", name)
            _ip("-n", name, "addr", "add", f"{addr}/24", "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", links[0]], capture_output=True, timeout=30)


def _run_machines(spec: dict, part_config: Path, ip_config: Path, work: Path, timeout: int) -> list:
    """Both machines' outputs (every process ended by its group's PID whatever happens)."""
    procs, logs = [], [work / f"machine{r}.log" for r in range(2)]
    with _two_machines() as names:
        try:
            for rank, name in enumerate(names):
                inner = " ".join([sys.executable, "-m", "benchmarks.speedlib.shardeval", "machine", str(rank),
                                  f"'{json.dumps(spec)}'", str(part_config), str(ip_config)])
                command = ["ip", "netns", "exec", name, "unshare", "--mount", "--propagation", "private", "sh",
                           "-c", f"mount -t tmpfs tmpfs /dev/shm && exec {inner}"]
                env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_PORT="29577", PYTHONWARNINGS="ignore")
                env.pop("MASTER_ADDR", None)
                procs.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=open(logs[rank], "w"),
                                              stderr=subprocess.STDOUT, start_new_session=True))
            for p in procs:
                p.wait(timeout=timeout)
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 9)
                p.wait(timeout=30)
    texts = [log.read_text() for log in logs]
    if any(p.returncode for p in procs):
        raise click.ClickException("a machine failed:\n" + "\n".join(t[-3000:] for t in texts))
    return texts


@click.command("shard-eval")
@click.option("--entities", default=1_000_000, show_default=True)
@click.option("--triples", default=1_500_000, show_default=True, help="Generated triples (all splits).")
@click.option("--dim", default=200, show_default=True)
@click.option("--queries", default=200, show_default=True, help="Test triples ranked (both sides).")
@click.option("--seed", default=0, show_default=True)
@click.option("--timeout", default=3000, show_default=True, help="Seconds the two machines may take.")
@click.option("--save/--no-save", default=True)
def shard_eval(entities, triples, dim, queries, seed, timeout, save):
    """Machine 0's peak memory in a 2-partition sharded evaluation, shard-wise and gathered (two
    machines simulated in network namespaces: needs root). Prints and saves
    speed-shard-eval.json."""
    from dgl_emu.data.generated import generate_large_kg
    from dgl_emu.sharded.partition import PartitionMethod, partition_kg

    from .report import emit
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        raise click.UsageError("needs root, ip and unshare: two machines are simulated in network namespaces")
    spec = {"entities": entities, "triples": triples, "dim": dim, "queries": queries, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="shard-eval-") as tmp:
        work = Path(tmp)
        kg = generate_large_kg(entities, triples, seed=seed)
        part_config = partition_kg(kg, 2, work / "parts", method=PartitionMethod.RANDOM, dataset="generated")
        del kg
        ip_config = work / "ip_config.txt"
        ip_config.write_text("".join(f"{a} 30051\n" for a in ADDRESSES))
        texts = _run_machines(spec, part_config, ip_config, work, timeout)
    line = next(x for x in texts[0].splitlines() if x.startswith("RESULT "))
    measured = json.loads(line[len("RESULT "):])
    shard, gathered = (measured[m]["trainers"][0] for m in ("shardwise", "gathered"))
    metrics = {m: measured[m]["metrics"] for m in measured}
    out = {**spec, "model": "distmult", "partitions": 2, "method": "random",
           "memory": "peak resident set size (VmHWM, reset before each evaluation) of each machine's trainer",
           "shardwise": measured["shardwise"], "gathered": measured["gathered"],
           "machine0_peak_ratio": round(shard["peak_rss"] / gathered["peak_rss"], 4),
           "machine0_added_ratio": round((shard["peak_rss"] - shard["baseline_rss"])
                                         / (gathered["peak_rss"] - gathered["baseline_rss"]), 4),
           "same_metrics": all(abs(metrics["shardwise"][k] - metrics["gathered"][k]) <= 1e-6 * max(1, abs(v))
                               for k, v in metrics["gathered"].items()),
           "table_bytes": entities * dim * 4}
    emit("shard-eval", out, save)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "trainer":
        trainer(json.loads(sys.argv[2]))
    elif role == "machine":
        sys.exit(machine(int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]))
    else:
        sys.exit(f"Error: unknown role {role!r} (trainer or machine)")
