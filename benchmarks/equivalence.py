#!/usr/bin/env python
"""Refactor equivalence: run a fixed set of ``dgl-emu run`` invocations, record metrics and loss traces.

    python benchmarks/equivalence.py OUT.json WORK_DIR [CASE ...]

Each case is one command line covering a path of the pipeline (samplers, losses, EMU variants,
schedules, encoders, neighbour sampling, ConvE). For every case the JSON holds the test metrics
(both sides, realistic), the best step and a sha256 of the per-step loss trace, so two versions of
the code can be compared bit for bit (run each with ``PYTHONPATH=<checkout>``). Set
``OMP_NUM_THREADS=1`` to compare code whose DGL sampling was multi-threaded (not reproducible).
"""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

D = str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
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
}


def main(out_json, workdir, args=None):
    """Run ``args`` (default: every case) and write their records to ``out_json``."""
    results = {}
    cases = args or list(CASES)
    for name in cases:
        d = Path(workdir) / name
        if d.exists():
            shutil.rmtree(d)
        cmd = [sys.executable, "-m", "dgl_emu", "run", "--no-progress", "--output", str(d)] + CASES[name]
        p = subprocess.run(cmd, capture_output=True, text=True)
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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or None)
