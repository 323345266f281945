"""Post-training quantisation degradation on our own ladders (../shared/PRECISION.md section 5): four
sizes trained with WSD cooldown branches, every evaluation point also measured with the hidden linear
weights round-to-nearest quantised (ladder.ptq: symmetric absmax integers, scales per group of 16), so
ΔL = loss_ptq - loss comes for every (N, D) on the main line and at every branch end.

What it prints: ΔL at 2, 3 and 4 bits against D (main line) for each N; whether ΔL rises with D at
fixed N and falls with N at fixed D (Ouyang et al. 2024, arXiv 2411.17691: ΔL ∝ D^β / N^α); and the
learning-rate-decay confound (Catalan-Tatjer et al., arXiv 2510.06213): the main line (undecayed)
against the cooldown branches (decayed) at the same D. Steps are a power of two and the evaluations
``log2(steps) + 1``, so the main line evaluates exactly at the branch ends (1/4 and 1/2 of the steps).
The ``ouyang_qid`` fit is left to the law module (another change); the table here is its input.

    python benchmarks/ptq.py [--params 1e4,2.5e4,6e4,1.5e5] [--steps 256] [--store /tmp/ptq.db] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.execute import execute
from scalinglab.ladder.design import DesignRequest, ShapeRule, make_design
from scalinglab.store import Store

SETTINGS = ("int2_g16", "int3_g16", "int4_g16")


def monotone(values: list[float], rising: bool) -> str:
    """'yes' / 'no' / 'mostly' for a sequence, with the count of steps that go the right way."""
    steps = [b > a if rising else b < a for a, b in zip(values, values[1:])]
    good = sum(steps)
    return f"{'yes' if good == len(steps) else 'no'} ({good}/{len(steps)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="1e4,2.5e4,6e4,1.5e5")
    ap.add_argument("--steps", type=int, default=256, help="optimizer steps per run (a power of two)")
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", default="/tmp/ptq.db")
    args = ap.parse_args()
    if args.steps & (args.steps - 1):
        raise SystemExit("--steps must be a power of two")
    evals = int(math.log2(args.steps)) + 1
    tokens = args.steps * args.batch_tokens
    runs = make_design(DesignRequest(
        params=[float(p) for p in args.params.split(",")], tokens=[tokens], rule=ShapeRule(min_steps=10),
        wsd_branches=[0.25, 0.5],
        overrides={"vocab": 256, "context": 64, "batch_tokens": args.batch_tokens, "lr": 3e-3, "dtype": "float32",
                   "evals": evals, "eval_tokens": 16384, "ptq": list(SETTINGS), "group": "ptq",
                   "schedule": {"warmup_steps": 8}})).runs
    print(f"load average before: {os.getloadavg()}; {len(runs)} runs of {args.steps} steps")
    t0 = time.time()
    with Store(args.store) as store:
        result = execute(runs, store, checkpoint_dir=Path(args.store).with_suffix(".checkpoints"),
                         workers=args.workers, threads=1, progress=False)
        table = store.to_table(points="all", failed=False)
    print(f"trained in {time.time() - t0:.0f} s ({result.get('done')}, failed {result.get('failed')})")
    table = table[table.run.isin({r.name for r in runs})]
    out: dict[str, Any] = {}
    for s in SETTINGS:
        col = f"dloss_ptq_{s}"
        main_line = table[(table.branch == 0) & (table.D >= 8 * args.batch_tokens)]
        pivot = main_line.pivot_table(index="D", columns="N_nonembed", values=col)
        print(f"\nΔL {s} (nats), main line; rows D (tokens), columns N_nonembed:")
        print(pivot.round(4).to_string())
        # undecayed main line only (the last point is the end of its decay)
        stable = pivot.iloc[:-1]
        for n in stable.columns:
            print(f"  N {int(n)}: rises with D (stable phase): {monotone(list(stable[n]), True)}")
        for d in stable.index[-3:]:
            print(f"  D {int(d)}: falls with N: {monotone(list(stable.loc[d]), False)}")
        br = table[table.branch > 0][["N_nonembed", "D", col]].rename(columns={col: "branch"})
        both = br.merge(table[table.branch == 0][["N_nonembed", "D", col]], on=["N_nonembed", "D"])
        both = both.rename(columns={col: "main"})
        both["decayed_minus_main"] = both["branch"] - both["main"]
        print("  cooldown branch (decayed) vs main line (undecayed) at equal D:\n"
              + both.round(4).to_string(index=False))
        out[s] = {"main": {f"{int(d)}": {f"{int(n)}": float(v) for n, v in row.items() if np.isfinite(v)}
                           for d, row in pivot.iterrows()},
                  "decayed_minus_main_mean": float(both.decayed_minus_main.mean()) if len(both) else None}
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(out))


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
