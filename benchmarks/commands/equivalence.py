"""``python -m benchmarks equivalence``: refactor equivalence, a fixed set of ``dgl-emu run`` invocations
with their metrics and loss traces recorded.

    python -m benchmarks equivalence OUT.json WORK_DIR [CASE ...]

Each case is one command line covering a path of the pipeline (samplers, losses, EMU variants,
schedules, encoders, neighbour sampling, ConvE) and each placement: one process, data-parallel
(``--nproc 2``) and sharded (one partition, two trainers; the partition is made in ``WORK_DIR``).
Every process is local (127.0.0.1, gloo over ``lo``), in its own process group, and ended by its
PID when it outlives its timeout. For every case the JSON holds the test metrics
(both sides, realistic), the best step and a sha256 of the per-step loss trace, so two versions of
the code can be compared bit for bit (run each with ``PYTHONPATH=<checkout>``, from outside the
checkouts, as ``python -m benchmarks`` and the ``dgl-emu run`` processes import the package of the
working directory first). Set ``OMP_NUM_THREADS=1`` to compare code whose DGL sampling was
multi-threaded (not reproducible).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import click

from ..children import run_owned

__all__ = ["equivalence", "run_cases", "CASES", "TIMEOUT"]

#: ``../shared/datasets`` beside the repository
D = str(Path(__file__).resolve().parents[3] / "shared" / "datasets")
CASES = {
 "default": [],
 "umls-distmult-emu": ["--dataset", "umls", "--data-dir", D, "--model", "distmult", "--emu", "--dim", "64",
                       "--steps", "400", "--eval-every", "100", "--batch-size", "256", "--negatives", "64"],
 "transe-bern-softplus": ["--model", "transe", "--no-emu", "--sampler", "bernoulli", "--loss", "softplus",
                          "--adversarial-temperature", "1.0", "--filtered", "--regularizer-weight", "1e-4",
                          "--steps", "200", "--eval-every", "100", "--p-norm", "2"],
 "distmult-sans-mixup": ["--model", "distmult", "--sampler", "sans", "--sans-k", "2", "--sans-walks", "50",
                         "--mutation", "mixup", "--steps", "200", "--eval-every", "100"],
 "complex-margin-switch": ["--model", "complex", "--no-emu", "--loss", "margin", "--switch-to-adam",
                           "--steps", "200", "--eval-every", "50", "--patience", "2"],
 "rgcn-emu": ["--encoder", "rgcn", "--steps", "60", "--eval-every", "30", "--dim", "16", "--num-bases", "4"],
 "rgcn-bdd-fanouts": ["--encoder", "rgcn", "--decomposition", "bdd", "--fanouts", "4,4", "--steps", "40",
                      "--eval-every", "20", "--dim", "16"],
 "compgcn-fanouts": ["--encoder", "compgcn", "--composition", "corr", "--fanouts", "5,-1", "--steps", "40",
                     "--eval-every", "20", "--dim", "16"],
 "conve": ["--model", "conve", "--steps", "60", "--eval-every", "30", "--dim", "16"],
 "dp2-distmult-emu": ["--dataset", "umls", "--data-dir", D, "--model", "distmult", "--emu", "--dim", "32",
                      "--steps", "60", "--eval-every", "30", "--batch-size", "256", "--negatives", "16",
                      "--nproc", "2"],
 "sharded2-distmult-emu": ["--dataset", "umls", "--data-dir", D, "--model", "distmult", "--emu", "--dim", "32",
                           "--steps", "60", "--eval-every", "30", "--batch-size", "256", "--negatives", "16",
                           "--part-config", "{parts}", "--ip-config", "{ip}", "--num-trainers", "2"],
}
#: seconds a case may run before its process group is killed
TIMEOUT = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    """Local processes only; one MKL kernel family (the sharded blocks and one process round alike)."""
    return dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), GLOO_SOCKET_IFNAME="lo",
                MKL_ENABLE_INSTRUCTIONS="AVX2", PYTHONWARNINGS="ignore")


def _call(cmd, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``cmd`` in its own process group, the group killed by PID if it is still there at the end."""
    return run_owned(cmd, timeout=timeout, env=_env())


def _partition(workdir: Path) -> dict:
    """One UMLS partition and an ip_config of one machine on 127.0.0.1, for the sharded case."""
    out = workdir / "parts"
    if out.exists():
        shutil.rmtree(out)
    p = _call([sys.executable, "-m", "dgl_emu", "partition", "--dataset", "umls", "--data-dir", D, "--num-parts", "1",
               "--method", "random", "--output", str(out)])
    if p.returncode:
        raise SystemExit(f"partition failed: {p.stderr[-500:]}")
    ip = workdir / "ip_config.txt"
    ip.write_text(f"127.0.0.1 {_free_port()}\n")
    return {"parts": str(out / "umls.json"), "ip": str(ip)}


def run_cases(out_json, workdir, names: Optional[Sequence[str]] = None) -> dict:
    """Run the cases ``names`` (default: every case of :data:`CASES`) and write their records.

    Parameters
    ----------
    out_json : path-like
        Where the records go (JSON, one object per case).
    workdir : path-like
        The cases' run directories (each removed first) and the sharded case's partition.
    names : sequence of str, optional
        Cases to run, in order.

    Returns
    -------
    dict
        Per case: ``test`` (metrics), ``best_step``, ``best_valid_mrr``, ``steps``, ``loss_sha``
        and ``last_loss``, or ``error`` (the end of its stderr) when it failed.
    """
    results = {}
    cases = list(names or CASES)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fill = _partition(workdir) if any("{parts}" in CASES[name] for name in cases) else {}
    for name in cases:
        d = workdir / name
        if d.exists():
            shutil.rmtree(d)
        cmd = [sys.executable, "-m", "dgl_emu", "run", "--no-progress", "--output", str(d)]
        cmd += [a.format(**fill) for a in CASES[name]]
        p = _call(cmd)
        if p.returncode:
            results[name] = {"error": p.stderr[-2000:]}
            print(name, "ERROR", p.stderr[-500:])
            continue
        m = json.loads((d / "metrics.json").read_text())
        lines = (d / "log.jsonl").read_text().splitlines()
        losses = [json.loads(x)["loss"] for x in lines if '"loss"' in x]
        results[name] = {"test": m["test"]["both"]["realistic"], "best_step": m["best_step"],
                         "best_valid_mrr": m["best_valid_mrr"], "steps": m["steps"],
                         "loss_sha": hashlib.sha256(json.dumps(losses).encode()).hexdigest(), "last_loss": losses[-1]}
        print(name, results[name]["test"]["mrr"], results[name]["loss_sha"][:12], flush=True)
    Path(out_json).write_text(json.dumps(results, indent=1))
    return results


@click.command("equivalence", short_help="Metrics and loss traces of fixed runs.")
@click.argument("out_json", metavar="OUT.json", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("work_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("cases", nargs=-1, type=click.Choice(list(CASES)))
def equivalence(out_json, work_dir, cases):
    """Refactor equivalence: run a fixed set of `dgl-emu run` invocations (CASES, default all) in
    WORK_DIR and write their test metrics, best step and loss-trace sha256 to OUT.json, so two
    versions of the code can be compared bit for bit.

    Every case runs on local processes (127.0.0.1, gloo over lo), in its own process group, killed
    by its PID after its timeout; the sharded case's partition is made in WORK_DIR.
    """
    run_cases(out_json, work_dir, cases or None)
