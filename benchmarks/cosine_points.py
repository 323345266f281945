"""Use more of each curve: intermediate points of other people's cosine runs, as they are, corrected by
the annealing law, or dropped, measured by rollouts against annealed losses.

Porian et al. 2024 (arXiv 2406.19146) trained the same grid of model sizes twice with a short warmup:
``decay = kaplan`` (one cosine per size over a long horizon; the smaller budgets of that size are
intermediate points of it, not annealed) and ``decay = chinchilla`` (one run per budget, its cosine
ending at the budget: every point annealed). The matched cosine is the truth an IsoFLOP fit wants.
For RefinedWeb and OpenWebText2 this benchmark fits Chinchilla by rollout over the budgets (fit on
budgets 1..k, predict budget k + 1) on

* ``all``: every point of the long-cosine runs, intermediate ones as they are;
* ``final``: the last point of each long-cosine run only (the largest budget of its size);
* ``corrected``: every point, each moved to the loss the annealing law (Tissue et al. 2024,
  ``scalinglab.laws.anneal``) predicts had its cosine ended at that point: per size, the law is fitted
  to that run's points and the point gets ``L + L_law(cosine ending at t) - L_law(the long cosine at t)``;
* ``matched``: the matched-cosine points themselves (the oracle),

and always scores against the matched-cosine points of budget k + 1. It prints the pooled mean ARE and
the coverage of the plain 80%/95% observation intervals, and first the mean |log| distance of the
long-cosine points (raw and corrected) from the matched ones at the same (N, budget).

The source gives the points only, not the learning-rate curves: the schedule is assumed (each size's
cosine from the peak to ``--final-lr`` of it, ending at its largest budget; warmup ignored; 1,000 steps
per horizon, momentum lambda ``--decay``). That assumption is part of what is measured.

    python benchmarks/cosine_points.py [--bootstrap 20] [--final-lr 0.1] [--decay 0.99]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from scalinglab.fit import LawFit
from scalinglab.fit.backtest import score
from scalinglab.laws.anneal import ANNEAL, curve_areas

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "isoflops-porian"
STEPS = 1000


def cosine(n_steps: int, horizon: int, final: float) -> np.ndarray:
    """The learning rate (peak 1) of steps 1..n_steps of a cosine to ``final`` over ``horizon`` steps."""
    i = np.arange(1, n_steps + 1)
    return np.asarray(final + (1 - final) * 0.5 * (1 + np.cos(np.pi * np.minimum(i, horizon) / horizon)))


def corrected(runs: pd.DataFrame, final: float, decay: float) -> tuple[pd.DataFrame, int]:
    """``runs`` with ``loss`` moved to the anneal law's annealed value; sizes with fewer than 5
    points (4 parameters) are left as they are. Returns the table and the number of sizes corrected."""
    S1, S2 = curve_areas(cosine(STEPS, STEPS, final), decay)
    out, n_fit = [], 0
    for _, g in runs.groupby("N"):
        g = g.sort_values("D").copy()
        step = np.clip(np.round(STEPS * g["D"].to_numpy() / g["D"].max()).astype(int), 2, STEPS)
        if len(g) >= 5:
            rows = pd.DataFrame({"S1": S1[step - 1], "S2": S2[step - 1], "loss": g["loss"].to_numpy()})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = LawFit("anneal").fit(rows).result_.params
            ends = [curve_areas(cosine(int(s), int(s), final), decay) for s in step]
            annealed = ANNEAL.predict(p, {"S1": np.array([a[0][-1] for a in ends]),
                                          "S2": np.array([a[1][-1] for a in ends])})
            along = ANNEAL.predict(p, {"S1": rows["S1"].to_numpy(), "S2": rows["S2"].to_numpy()})
            g["loss"] = g["loss"].to_numpy() + (annealed - along)
            n_fit += 1
        out.append(g)
    return pd.concat(out).reset_index(drop=True), n_fit


def rollout_against(train_sets: dict[str, pd.DataFrame], truth: pd.DataFrame, bootstrap: int) -> dict[str, Any]:
    """Per training set: fit on its rows of budgets <= g_k, score on the truth's rows of g_{k+1}."""
    budgets = sorted(set(truth["budget_flops"]))
    out = {}
    for name, df in train_sets.items():
        are: list[float] = []
        in80: list[bool] = []
        in95: list[bool] = []
        skipped = 0
        for k in range(2, len(budgets)):
            train = df[df["budget_flops"] <= budgets[k - 1]]
            test = truth[truth["budget_flops"] == budgets[k]]
            if len(train) < 8 or train["budget_flops"].nunique() < 2:
                skipped += 1
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = LawFit("chinchilla", bootstrap=bootstrap, seed=0).fit(train[["N", "D", "loss"]]).result_
            sc = score(f, test[["N", "D", "loss"]], calibrated=False)
            are += sc["are"]
            in80 += [bool(x) for x in sc["inside_80"] if x is not None]
            in95 += [bool(x) for x in sc["inside_95"] if x is not None]
        out[name] = {"are": float(np.mean(are)) if are else float("nan"), "n": len(are), "skipped": skipped,
                     "cov80": float(np.mean(in80)) if in80 else float("nan"),
                     "cov95": float(np.mean(in95)) if in95 else float("nan")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", type=int, default=20)
    ap.add_argument("--final-lr", type=float, default=0.1, help="the assumed cosine's end, a fraction of the peak")
    ap.add_argument("--decay", type=float, default=0.99, help="the anneal law's momentum lambda (per assumed step)")
    args = ap.parse_args()
    print(f"load {os.getloadavg()[0]:.2f}; bootstrap {args.bootstrap}; assumed cosine to {args.final_lr} x peak, "
          f"lambda {args.decay}")
    with threadpool_limits(1):
        for fname, ds in (("summary_df_isoflop_points.csv", "rw"), ("summary_df_owt2_isoflop_points.csv", "owt2")):
            path = DATA / fname
            if not path.exists():
                print(f"{ds}: {path} missing, skipped")
                continue
            t0 = time.perf_counter()
            p = pd.read_csv(path).rename(columns={"n": "N", "t": "D", "flops": "budget_flops"})
            sel = (p["hparams"] == "base") & (p["warmup"] == "short") & (p["val"] == "val")
            runs = p[sel & (p["decay"] == "kaplan")].reset_index(drop=True)
            truth = p[sel & (p["decay"] == "chinchilla")].reset_index(drop=True)
            corr, n_fit = corrected(runs, args.final_lr, args.decay)
            final = runs.loc[runs.groupby("N")["D"].idxmax()].reset_index(drop=True)
            m = runs.merge(truth, on=["N", "budget_flops"], suffixes=("", "_t")).merge(
                corr[["N", "budget_flops", "loss"]], on=["N", "budget_flops"], suffixes=("", "_c"))
            raw_err = float(np.mean(np.abs(np.log(m["loss"] / m["loss_t"]))))
            cor_err = float(np.mean(np.abs(np.log(m["loss_c"] / m["loss_t"]))))
            print(f"{ds}: {len(runs)} long-cosine points of {runs['N'].nunique()} sizes ({n_fit} corrected), "
                  f"{len(truth)} matched-cosine points; at the {len(m)} shared (N, budget): mean |log(L / L_matched)| "
                  f"raw {100 * raw_err:.2f}%, corrected {100 * cor_err:.2f}%")
            res = rollout_against({"all": runs, "final": final, "corrected": corr, "matched": truth}, truth,
                                  args.bootstrap)
            for name, r in res.items():
                print(f"  {ds:<5} {name:<10} predicted {r['n']:>3} (steps skipped {r['skipped']}): ARE "
                      f"{100 * r['are']:5.2f}%  cov80 {100 * r['cov80']:5.1f}  cov95 {100 * r['cov95']:5.1f}", flush=True)
            print(f"  ({time.perf_counter() - t0:.0f} s)")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
