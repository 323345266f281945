"""Learning-rate transfer across width: the best peak learning rate at widths 64, 128, 256 under
``mus`` (μnit Scaling, Narayan et al. 2025) and ``sp`` (standard practice).

Each (parametrization, width, lr) trains the ladder's GPT with the real trainer (``ladder.train``) on
the embedded corpus, the same tokens, seed and schedule (cosine to 10%, 5% warmup) for every run; the
final eval loss is compared across a grid of learning rates in powers of 2. The claim tested (μS,
PRECISION.md section 1: "η optimal from width 256 to 8192 while SP's η* falls as 1/width"): under
``mus`` the best lr stays within one grid step across widths; ``sp``'s drift is reported beside it.

    python benchmarks/lr_transfer.py [--widths 64,128,256] [--layers 2] [--steps 60]
        [--sp-lrs=-12..-8] [--mus-lrs=-1..3] [--tau 0.4] [--batch-tokens 2048] [--context 64] [--json OUT]

LR grids are exponents of 2 (``-11..-5`` is 2^-11 .. 2^-5). One thread (threadpoolctl and torch), runs
one after another; prints ``os.getloadavg()`` with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from scalinglab.ladder.train import train
from scalinglab.runconfig import ParametrizationConfig, RunConfig


def exponents(text: str) -> list[int]:
    lo, sep, hi = text.partition("..")
    if sep:
        return list(range(int(lo), int(hi) + 1))
    return [int(x) for x in text.split(",")]


def run(parametrization: ParametrizationConfig, width: int, lr: float, a: argparse.Namespace) -> float:
    cfg = RunConfig(n_layer=a.layers, d_model=width, n_head=width // 16, context=a.context,
                    batch_tokens=a.batch_tokens, tokens=a.steps * a.batch_tokens, lr=lr, evals=1,
                    eval_tokens=a.eval_tokens, seed=a.seed, dtype="float32", parametrization=parametrization,
                    weight_decay=a.weight_decay)
    points: list[dict[str, Any]] = []
    try:
        train(cfg, on_point=points.append, threads=1)
    except Exception as exc:   # a diverged run (non-finite loss) counts as the worst loss
        print(f"    {parametrization.name} d={width} lr=2^{math.log2(lr):.0f}: {type(exc).__name__}")
        return math.inf
    return float(points[-1]["eval_loss"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="64,128,256")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--sp-lrs", default="-12..-8", help="exponents of 2 for sp")
    ap.add_argument("--mus-lrs", default="-1..3", help="exponents of 2 for mus")
    ap.add_argument("--mup-lrs", default="-10..-6", help="exponents of 2 for mup (with --only ...,mup)")
    ap.add_argument("--tau", type=float, default=0.4)
    ap.add_argument("--base-width", type=int, default=64)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="sp,mus", help="parametrizations to run (sp, mus, mup)")
    ap.add_argument("--json", default=None, help="write every loss here")
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    arms = {"sp": (ParametrizationConfig(), exponents(a.sp_lrs)),
            "mus": (ParametrizationConfig("mus", tau=a.tau, base_width=a.base_width), exponents(a.mus_lrs)),
            "mup": (ParametrizationConfig("mup", base_width=a.base_width), exponents(a.mup_lrs))}
    torch.set_num_threads(1)
    t0 = time.time()
    results: dict[str, dict[int, dict[int, float]]] = {}
    with threadpool_limits(1):
        for name in a.only.split(","):
            pc, grid = arms[name]
            results[name] = {}
            for w in widths:
                results[name][w] = {}
                for e in grid:
                    t = time.time()
                    results[name][w][e] = run(pc, w, 2.0 ** e, a)
                    print(f"  {name:3s} d={w:4d} lr=2^{e:<3d} loss {results[name][w][e]:.4f}  ({time.time() - t:.0f} s)",
                          flush=True)
    print(f"\n{a.layers} layers, {a.steps} steps x {a.batch_tokens} tokens, context {a.context}, seed {a.seed}, "
          f"float32, 1 thread; {time.time() - t0:.0f} s; load average {os.getloadavg()}")
    summary: dict[str, Any] = {}
    for name, by_width in results.items():
        best = {w: min(losses, key=losses.__getitem__) for w, losses in by_width.items()}
        drift = max(best.values()) - min(best.values())
        summary[name] = {"best_exponent": best, "drift_steps": drift,
                         "best_loss": {w: by_width[w][best[w]] for w in by_width}}
        grid = sorted(next(iter(by_width.values())))
        print(f"\n{name}: final eval loss (nats/token); rows width, columns lr = 2^e")
        print("  d \\ e " + "".join(f"{e:>8d}" for e in grid))
        for w, losses in by_width.items():
            print(f"  {w:5d} " + "".join(f"{losses[e]:8.4f}" + ("*" if e == best[w] else " ")
                                         for e in grid).rstrip())
        verdict = "within one grid step" if drift <= 1 else f"drifts {drift} grid steps"
        print("  best lr by width: " + ", ".join(f"d={w}: 2^{e}" for w, e in best.items()) + f"  -> {verdict}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "losses": results, "summary": summary,
                       "load": os.getloadavg()}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
