"""Post-training quantisation degradation on our own ladders (../shared/PRECISION.md section 5): four
sizes trained with WSD cooldown branches, every evaluation point also measured with the hidden linear
weights round-to-nearest quantised (ladder.ptq: symmetric absmax integers, scales per group of 16), so
ΔL = loss_ptq - loss comes for every (N, D) on the main line and at every branch end.

What it prints: ΔL at 2, 3 and 4 bits against D (main line) for each N; whether ΔL rises with D at
fixed N and falls with N at fixed D (Ouyang et al. 2024, arXiv 2411.17691: ΔL ∝ D^β / N^α); and the
learning-rate-decay confound (Catalan-Tatjer et al., arXiv 2510.06213): the main line (undecayed)
against the cooldown branches (decayed) at the same D. Steps are a power of two and the evaluations
``log2(steps) + 1``, so the main line evaluates exactly at the branch ends (1/4 and 1/2 of the steps).
Last, the ``ouyang_qid`` law (``laws/ouyang.py``: ΔL = k D^β / (N^α P^γ), N non-embedding) is fitted
on every positive ΔL (main line and branch ends, all three bit widths), and on the undecayed main line
alone, with bootstrap intervals; its exponents are printed beside the published joint fit (Ouyang et
al. 2024, Eq. 8, as PRECISION.md section 5 gives it: α 0.2261, β 0.5251, γ 5.4967, k 0.017).

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

from scalinglab import laws
from scalinglab.execute import execute
from scalinglab.fit import LawFit
from scalinglab.ladder.design import DesignRequest, ShapeRule, make_design
from scalinglab.store import Store

SETTINGS = ("int2_g16", "int3_g16", "int4_g16")
BITS = {"int2_g16": 2, "int3_g16": 3, "int4_g16": 4}


def qid_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The ``ouyang_qid`` inputs from the run table: one row per (point, setting) with ΔL > 0."""
    parts = [pd.DataFrame({"N": table.N_nonembed, "D": table.D, "P_post": float(BITS[s]),
                           "dL_ptq": table[f"dloss_ptq_{s}"], "branch": table.branch}) for s in SETTINGS]
    rows = pd.concat(parts, ignore_index=True)
    return rows[np.isfinite(rows.dL_ptq) & (rows.dL_ptq > 0)].reset_index(drop=True)


def fit_qid(rows: pd.DataFrame, label: str, bootstrap: int) -> dict[str, Any]:
    """Fit ``ouyang_qid``; print each parameter with its interval beside the published value."""
    published = dict(laws.get("ouyang_qid").preset("ouyang2024").params)
    fit = LawFit("ouyang_qid", bootstrap=bootstrap, seed=0).fit(rows[["N", "D", "P_post", "dL_ptq"]]).result_
    print(f"\nouyang_qid fit, {label}: {fit.n_points} points (ΔL > 0), converged {fit.converged}")
    for name in ("alpha", "beta", "gamma", "k"):
        ci = fit.ci.get(name)
        interval = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "-"
        print(f"  {name:5s} {fit.params[name]:10.4g}  95% {interval:22s} published {published[name]:.4g}")
    for w in fit.warnings:
        print(f"  warning: {w}")
    return {"params": fit.params, "ci": fit.ci, "n_points": fit.n_points, "warnings": fit.warnings}


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
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates of the ouyang_qid fit")
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
    rows = qid_rows(table[table.D >= 8 * args.batch_tokens])
    out["ouyang_qid_all"] = fit_qid(rows, "main line and branch ends", args.bootstrap)
    last_d = table[table.branch == 0].D.max()
    stable = rows[(rows.branch == 0) & (rows.D < last_d)]
    out["ouyang_qid_main_undecayed"] = fit_qid(stable, "undecayed main line only", args.bootstrap)
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
