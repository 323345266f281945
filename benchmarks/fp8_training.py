"""FP8 training without scale factors: μnit Scaling (``mus``) against standard practice (``sp``).

The claim tested (Narayan et al. 2025, "μnit Scaling", arXiv 2502.05967; PRECISION.md section 1): with
μS's unit-scaled numerics, FP8 (E4M3 weights and activations, E5M2 gradients, clipped, no scales:
``precision.recipe = fp8-static``) trains to the fp32 loss; the target here is fp8-static under ``mus``
within 1% of fp32 ``mus``. Arms per width (2 layers, d 64 and 128 by default), the same tokens, seed and
schedule for all of them:

    sp fp32 | mus fp32 | mus fp8-static | sp fp8-static | sp fp8-dynamic (per-tensor current absmax)

Each run uses the real trainer (``ladder.train``) on the embedded corpus; the final main-line eval
loss, the gap to the fp32 run of the same parametrization (in %), and the telemetry point metrics of the
last point (``underflow_w/a/g``: fraction of non-zero values flushed to zero, ``saturate_w/a/g``:
fraction clipped at the format's max, per role: weights, activations, gradients) are printed.

    python benchmarks/fp8_training.py [--widths 64,128] [--layers 2] [--steps 200] [--batch-tokens 1024]
        [--context 64] [--sp-lr 2^-8@64,2^-9@128] [--mus-lr 1.0] [--tau 0.4] [--loss-scale S]
        [--arms LABELS] [--json OUT]
    python benchmarks/fp8_training.py --combine seed0.json,seed1.json,seed2.json   # gaps over seeds

One seed's gap swings by about 1% at these sizes (fp32's own seed-to-seed spread): run three seeds
(``--seed K --json seedK.json``) and read the mean gap of ``--combine``.

The ``fp8-static`` recipe's static loss scale is the batch in tokens (dY x S before its E5M2 quantiser,
/ S after: a sum-reduced backward; PRECISION.md section 1 item 9 leaves this choice to the emulation).
``--loss-scale S`` adds the arms ``mus fp8-static ls`` and ``sp fp8-static ls``: the static recipe with
``precision.loss_scale = S`` instead (``--loss-scale 1``: the mean-reduced gradients, unscaled).

Learning rates: ``mus`` 2^0 at every width (its optimum in benchmarks/lr_transfer.py); ``sp`` 2^-8 at
d 64 and 2^-9 at d 128 (the same benchmark's optima). One thread (threadpoolctl and torch), runs one
after another; prints ``os.getloadavg()`` with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from scalinglab.ladder.design import run_name
from scalinglab.ladder.train import train
from scalinglab.runconfig import ParametrizationConfig, PrecisionConfig, RunConfig

#: (label, parametrization name, recipe); recipe '' is fp32
ARMS = (("sp fp32", "sp", ""), ("mus fp32", "mus", ""), ("mus fp8-static", "mus", "fp8-static"),
        ("sp fp8-static", "sp", "fp8-static"), ("sp fp8-dynamic", "sp", "fp8-dynamic"))
#: with ``--loss-scale S``: the static recipe with a static loss scale (S = batch tokens: a sum-reduced backward)
LS_ARMS = (("mus fp8-static ls", "mus", "fp8-static"), ("sp fp8-static ls", "sp", "fp8-static"))
TELEMETRY = tuple(f"{k}_{r}" for k in ("underflow", "saturate") for r in "wag")


def sp_lrs(text: str) -> dict[int, float]:
    """``2^-8@64,2^-9@128`` -> {64: 2^-8, 128: 2^-9}."""
    out = {}
    for item in text.split(","):
        lr, _, width = item.partition("@")
        out[int(width)] = 2.0 ** float(lr[2:]) if lr.startswith("2^") else float(lr)
    return out


def config(par: str, recipe: str, width: int, lr: float, a: argparse.Namespace, loss_scale: float = 1.0
           ) -> RunConfig:
    pc = ParametrizationConfig("mus", tau=a.tau, base_width=a.base_width) if par == "mus" else ParametrizationConfig()
    return RunConfig(group="fp8", n_layer=a.layers, d_model=width, n_head=width // 16, context=a.context,
                     batch_tokens=a.batch_tokens, tokens=a.steps * a.batch_tokens, lr=lr, evals=a.evals,
                     eval_tokens=a.eval_tokens, seed=a.seed, dtype="float32", parametrization=pc,
                     precision=PrecisionConfig(recipe=recipe, loss_scale=loss_scale), weight_decay=a.weight_decay)


def run(cfg: RunConfig) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    try:
        train(cfg, on_point=points.append, threads=1)
    except Exception as exc:   # a diverged run (non-finite loss) is reported, not hidden
        return {"loss": math.inf, "error": f"{type(exc).__name__}: {exc}"}
    last = [p for p in points if p.get("branch", 0) == 0][-1]
    return {"loss": float(last["eval_loss"]), "curve": [float(p["eval_loss"]) for p in points],
            **{k: float(last[k]) for k in TELEMETRY if k in last}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="64,128")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--evals", type=int, default=4)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--sp-lr", default="2^-8@64,2^-9@128", help="sp learning rate per width (lr@width)")
    ap.add_argument("--mus-lr", type=float, default=1.0)
    ap.add_argument("--tau", type=float, default=0.4)
    ap.add_argument("--base-width", type=int, default=64)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss-scale", type=float, default=0.0,
                    help="also run fp8-static under mus and sp with this static loss scale (e.g. 1: unscaled)")
    ap.add_argument("--arms", default="", help="only these arms (comma-separated labels; default all)")
    ap.add_argument("--json", default=None, help="write every figure here")
    ap.add_argument("--combine", default="", help="JSON files of earlier runs (one per seed, comma-separated): "
                    "print each seed's gaps and their mean with its standard error, train nothing")
    a = ap.parse_args()
    if a.combine:
        combine(a.combine.split(","))
        return
    widths = [int(w) for w in a.widths.split(",")]
    sp = sp_lrs(a.sp_lr)
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()}", flush=True)
    t0 = time.time()
    results: dict[int, dict[str, dict[str, Any]]] = {}
    with threadpool_limits(1):
        for w in widths:
            results[w] = {}
            arm_list = ARMS + (LS_ARMS if a.loss_scale > 0 else ())
            for label, par, recipe in arm_list:
                if a.arms and label not in a.arms.split(","):
                    continue
                lr = a.mus_lr if par == "mus" else sp.get(w, 2.0 ** -8)
                cfg = config(par, recipe, w, lr, a, a.loss_scale if label.endswith(" ls") else 0.0)
                t = time.time()
                r = run(cfg)
                r.update(name=run_name(cfg), lr=lr, seconds=time.time() - t)
                results[w][label] = r
                print(f"  d={w:4d} {label:15s} lr {lr:.5g}  loss {r['loss']:.4f}  ({r['seconds']:.0f} s)  {r['name']}"
                      + (f"  {r['error']}" if "error" in r else ""), flush=True)
    print(f"\n{a.layers} layers, {a.steps} steps x {a.batch_tokens} tokens, context {a.context}, seed {a.seed}, "
          f"tau {a.tau}, float32 master weights, 1 thread; {time.time() - t0:.0f} s; load average {os.getloadavg()}")
    print("\n| d | arm | lr | final loss | gap vs fp32 same param. | " + " | ".join(TELEMETRY) + " |")
    print("|---|---|---|---|---|" + "---|" * len(TELEMETRY))
    verdicts = []
    for w, arms in results.items():
        for label, r in arms.items():
            base = arms.get("mus fp32" if label.startswith("mus") else "sp fp32", {}).get("loss", math.nan)
            gap = 100.0 * (r["loss"] - base) / base if label not in ("sp fp32", "mus fp32") else 0.0
            r["gap_pct"] = gap
            tel = " | ".join(f"{r[k]:.4f}" if k in r else "-" for k in TELEMETRY)
            print(f"| {w} | {label} | {r['lr']:.5g} | {r['loss']:.4f} | {gap:+.2f}% | {tel} |")
        if "mus fp8-static" in arms:
            g = arms["mus fp8-static"]["gap_pct"]
            verdicts.append(f"d={w}: mus fp8-static {g:+.2f}% vs mus fp32 -> "
                            f"{'within' if abs(g) <= 1.0 else 'NOT within'} 1%")
        verdicts += [f"d={w}: {label} {r['gap_pct']:+.2f}% vs {label.split()[0]} fp32"
                     for label, r in arms.items() if label not in ("sp fp32", "mus fp32", "mus fp8-static")]
    print("\n" + "\n".join(verdicts))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results, "load": os.getloadavg()}, f, indent=1, default=str)


def combine(paths: list[str]) -> None:
    """Per-seed gaps of every arm against fp32 of the same parametrization, and over seeds the mean gap
    with its standard error (one seed's gap swings by about 1% at these sizes: the seed-to-seed spread
    of fp32 itself). The verdict on the target reads the mean."""
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(json.load(f))
    seeds = [r["args"]["seed"] for r in runs]
    print(f"seeds {seeds}; {runs[0]['args']['steps']} steps x {runs[0]['args']['batch_tokens']} tokens")
    print("\n| d | arm | " + " | ".join(f"gap seed {s}" for s in seeds) + " | mean gap | s.e. |")
    print("|---|---|" + "---|" * (len(seeds) + 2))
    for w in runs[0]["results"]:
        for label in runs[0]["results"][w]:
            if label in ("sp fp32", "mus fp32"):
                continue
            gaps = np.array([r["results"][w][label]["gap_pct"] for r in runs])
            se = gaps.std(ddof=1) / math.sqrt(len(gaps)) if len(gaps) > 1 else math.nan
            print(f"| {w} | {label} | " + " | ".join(f"{g:+.2f}%" for g in gaps)
                  + f" | {gaps.mean():+.2f}% | {se:.2f} |")
            if label == "mus fp8-static":
                print(f"|   | -> mean within 1%: {abs(gaps.mean()) <= 1.0} |" + " |" * (len(seeds) + 2))


if __name__ == "__main__":
    main()
