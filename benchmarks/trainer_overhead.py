"""The trainer's own overhead against a baseline trainer, measured in one run: this checkout's
``ladder.train.train`` (the loop over features) against another source tree's (by default commit
7825623, the 245-line loop before the feature protocol), on the same configs, alternating A/B so a
change of machine load hits both.

Each measurement runs in a fresh subprocess (so the two ``scalinglab`` packages never share a
process) with one intra-op thread (``torch.set_num_threads(1)``) and BLAS pinned to one thread by
threadpoolctl, trains a run with no checkpoint and reports steps/s of the training loop (wall time of
``train`` less the first point's, so data loading and set-up are excluded). Prints the median
tokens/s of each side per config and their ratio (this / baseline; 1.0 = no change).

    git worktree add /tmp/baseline 7825623
    python benchmarks/trainer_overhead.py --baseline-src /tmp/baseline/src [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import json, sys, time
import torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(1)
try:
    from scalinglab.runconfig import RunConfig, SparsityConfig
except ImportError:   # the baseline tree
    from scalinglab.ladder.config import RunConfig, SparsityConfig
from scalinglab.ladder.train import train
spec = json.loads(sys.argv[1])
sparsity = SparsityConfig(**spec.pop("sparsity", {}))
cfg = RunConfig(sparsity=sparsity, **spec)
marks = []
with threadpool_limits(limits=1):
    summary = train(cfg, on_point=lambda p: marks.append((p["step"], p["wall_time"])), threads=1)
(s0, t0), (s1, t1) = marks[0], marks[-1]
print(json.dumps({"tok_per_s": (s1 - s0) * cfg.batch_tokens / (t1 - t0), "final_loss": summary["final_loss"]}))
"""

CONFIGS = {
    "dense 2x128 (0.4M)": {"n_layer": 2, "d_model": 128, "n_head": 4, "context": 128, "tokens": 240 * 4096,
                            "batch_tokens": 4096, "evals": 2, "eval_tokens": 4096, "dtype": "float32"},
    "dense 1x32 (13K), micro-batched": {"n_layer": 1, "d_model": 32, "n_head": 2, "context": 64,
                                        "tokens": 800 * 1024, "batch_tokens": 1024,
                                        "micro_batch_tokens": 512, "evals": 2, "eval_tokens": 2048,
                                        "dtype": "float32"},
    "gmp 0.5, 2x128": {"n_layer": 2, "d_model": 128, "n_head": 4, "context": 128, "tokens": 240 * 4096,
                       "batch_tokens": 4096, "evals": 2, "eval_tokens": 4096, "dtype": "float32",
                       "sparsity": {"target": 0.5, "update_every": 10}},
}


def measure(src: Path, spec: dict[str, object], cache: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "SCALINGLAB_CACHE": cache, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps({"name": "bench", **spec})], env=env,
                         check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["tok_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", type=Path, default=Path("/tmp/baseline/src"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, spec in CONFIGS.items():
            ours, base = [], []
            for _ in range(args.repeats):   # alternate, so a load change hits both sides
                base.append(measure(args.baseline_src, spec, cache))
                ours.append(measure(HERE, spec, cache))
            m_ours, m_base = statistics.median(ours), statistics.median(base)
            results[name] = {"this_tok_per_s": m_ours, "baseline_tok_per_s": m_base, "ratio": m_ours / m_base}
            print(f"{name:36s} baseline {m_base:10.0f} tok/s  this {m_ours:10.0f} tok/s  ratio {m_ours / m_base:.3f}"
                  f"  (runs: base {[round(x) for x in base]}, this {[round(x) for x in ours]})")
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
