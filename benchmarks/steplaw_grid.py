"""Step Law on our own learning-rate x batch grids, and the planned lr and batch one size up.

1. Trains a learning-rate x batch grid (``--lrs`` x ``--batches``, cosine schedule) at every width of
   ``--d-models`` and every token count of ``--tokens`` (several D per width, so that ln N and ln D
   are not collinear).
2. Fits the Step Law (``fit_steplaw``: the 0.25% window of each (N, D) cell's best final eval loss,
   OLS, bootstrap; N non-embedding parameters, batch in tokens) and prints its exponents with 95%
   intervals beside li2025's; measures the Adam lr-vs-batch exponent (``lr_batch_exponent``: the
   parabola vertex in ln lr per cell and batch, one intercept per cell).
3. Plans the next width up (``--next-d-model`` at ``--next-tokens``) with ``plan.hparams.plan_hparams``
   from the fit (lr, batch rounded to whole sequences), trains it, and trains the grid's learning rates
   at that batch (and the planned lr at the grid's batches) as the comparison grid; prints the planned
   run's loss against that grid's best (target: within 1%).

    PYTHONPATH=src:benchmarks python benchmarks/steplaw_grid.py [--d-models 32,48] [--tokens 2e5,4e5]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _dynamics import train_all
from threadpoolctl import threadpool_limits

from scalinglab import units
from scalinglab.fit.steplaw import fit_steplaw, lr_batch_exponent
from scalinglab.laws.steplaw import PRESETS
from scalinglab.plan.hparams import plan_hparams
from scalinglab.runconfig import RunConfig, ScheduleConfig

torch.set_num_threads(1)
CONTEXT = 128


def cfg(d: int, layers: int, tokens: float, lr: float, batch: int, tag: str = "sl", unit: int = 4096) -> RunConfig:
    """A grid run; ``tokens`` is rounded to a multiple of ``unit`` (every batch of the grid divides it), so
    every run of an (N, D) cell trains on exactly the same D whatever its batch."""
    tokens = max(unit, round(tokens / unit) * unit)
    return RunConfig(name=f"{tag}-d{d}-t{tokens:.0e}-lr{lr:.2e}-b{batch}".replace("+", ""), n_layer=layers, d_model=d,
                     n_head=2, context=CONTEXT, tokens=int(tokens), batch_tokens=batch, lr=lr,
                     schedule=ScheduleConfig(name="cosine", warmup_frac=0.05), evals=4, eval_tokens=32768,
                     seed=0, group="steplaw")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-models", default="32,48")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--tokens", default="2e5,4e5")
    ap.add_argument("--lrs", default="1.5e-3,3e-3,6e-3,1.2e-2")
    ap.add_argument("--batches", default="256,512,1024")
    ap.add_argument("--next-d-model", type=int, default=64)
    ap.add_argument("--next-tokens", type=float, default=8e5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("steplaw-out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    widths = [int(x) for x in args.d_models.split(",")]
    tokens = [float(x) for x in args.tokens.split(",")]
    lrs = [float(x) for x in args.lrs.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    unit = int(np.lcm.reduce(batches))
    grid = [cfg(d, args.n_layer, t, lr, b, unit=unit) for d in widths for t in tokens for lr in lrs for b in batches]
    t0 = time.perf_counter()
    print(f"training a {len(lrs)} x {len(batches)} grid at {len(widths)} widths x {len(tokens)} token counts "
          f"({len(grid)} runs; load {os.getloadavg()})", flush=True)
    with threadpool_limits(limits=1):
        store = train_all(args.out / "runs.db", grid)
    df = store.to_table(points="final", failed=False)
    df = df[df["group"] == "steplaw"].assign(N=lambda x: x["N_nonembed"])
    df = df[df["run"].isin([c.name for c in grid])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_steplaw(df, bootstrap=args.bootstrap, seed=0, source="steplaw benchmark")
    fit.to_json(args.out / "steplaw_fit.json")
    li = PRESETS["li2025"].params
    print(f"Step Law fit: {fit.data['rows_used']} near-optimal runs of {len(df)} (0.25% window)")
    print(f"{'parameter':<14}{'ours':>10}{'95% interval':>24}{'li2025':>10}")
    for k in ("lr_exp_N", "lr_exp_D", "batch_exp_D", "lr_scale", "batch_scale"):
        iv = fit.ci.get(k)
        ivs = f"[{iv[0]:.3g}, {iv[1]:.3g}]" if iv else "-"
        print(f"{k:<14}{fit.params[k]:>10.4g}{ivs:>24}{li[k]:>10.4g}")
    for w in fit.warnings:
        print(f"  warning: {w}")
    lb = lr_batch_exponent(df)
    edges = sum(p["edge"] for p in lb["points"])
    print(f"Adam lr-vs-batch exponent: lr_opt ~ B^{lb['exponent']:.3f} (SE {lb['stderr']}); "
          f"{lb['n_cells']} cells, {edges} of {len(lb['points'])} optima at a grid edge; square-root rule: 0.5")
    # -- the next size up -------------------------------------------------------------------------
    d, t = args.next_d_model, args.next_tokens
    n_next = units.param_counts(args.n_layer, d, CONTEXT, 256)["N_nonembed"]
    plan = plan_hparams({"N": n_next, "D": t, "flops": 6 * n_next * t, "loss": float("nan"),
                         "n_convention": "non-embedding"}, fit, None)
    lr_p = float(plan["lr"])
    b_p = int(max(CONTEXT, round(plan["batch_tokens"] / CONTEXT) * CONTEXT))
    print(f"planned for d_model {d} (N_nonembed {n_next}, D {t:.3g}): lr {lr_p:.4g} "
          f"(interval {plan['lr_interval']}), batch {plan['batch_tokens']:.0f} -> {b_p} tokens "
          f"(interval {plan['batch_tokens_interval']})")
    unit = int(np.lcm.reduce([*batches, b_p]))
    planned = cfg(d, args.n_layer, t, lr_p, b_p, tag="next", unit=unit)
    check = [cfg(d, args.n_layer, t, lr, b_p, tag="next", unit=unit) for lr in lrs]
    check += [cfg(d, args.n_layer, t, lr_p, b, tag="next", unit=unit) for b in batches if b != b_p]
    with threadpool_limits(limits=1):
        store = train_all(args.out / "runs.db", [planned, *check])
    fin = store.to_table(points="final", failed=False).set_index("run")["loss"]
    best_name = min((c.name for c in check), key=lambda n: fin[n])
    gap = fin[planned.name] / fin[best_name] - 1
    print(f"planned run loss {fin[planned.name]:.4f}; comparison grid best {fin[best_name]:.4f} ({best_name}); "
          f"gap {100 * gap:+.2f}% (target within 1%: {'met' if gap <= 0.01 else 'NOT met'})")
    print(f"total {time.perf_counter() - t0:.0f} s, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
