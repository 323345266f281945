"""A sparse ladder on the embedded corpus: does sparsity pay at equal non-zero parameters and tokens?

Frantar et al. 2023 ("Scaling Laws for Sparsely-Connected Foundation Models", arXiv 2309.08520) fit
L(S, N, D) = (a_S (1-S)^b_S + c_S) N^-b_N + (a_D/D)^b_D + c with N the non-zero parameters, and find
that at equal non-zero parameters and data, sparse models (larger dense models, pruned) reach lower
loss. This benchmark checks that on the embedded default corpus (byte-level, context 128):

1. a sparsity x N_nonzero x D grid (``ladder.design.grid_sparse``): S in {0, 0.5, 0.75} (gradual
   magnitude pruning, cubic schedule from 25% to 75% of training), three non-zero sizes, two token
   counts; trained into ``OUT/runs.db`` on the local pool (re-running resumes);
2. fits the ``sparse`` law on all of it (with a bootstrap), and back-tests it leaving the largest
   non-zero size out (fit on the two smaller sizes, predict the largest);
3. compares, at each (N, D), the sparse runs' final losses with the dense one, measured and moved to
   the exact target N with the fitted law (the designed non-zero counts differ by a few percent);
4. one Sparse-IFT pair (a dense model and its 1/sqrt(1-S)-widened S = 0.75 static-mask version, equal
   non-zero FLOPs) and one SPDF run (S = 0.75 static sparse pre-training, dense fine-tuning for the
   last 25%, same corpus) against the dense and static-sparse runs of its shape;
5. the step time per token of masked runs against dense runs of the same shape (from the runs' own
   wall times; ``benchmarks/masking_overhead.py`` measures it in isolation);
6. plans the optimal sparsity at the largest non-zero size for 10x the largest run's compute, and
   writes ``OUT/index.html`` (loss against non-zero parameters per sparsity with the fitted law, the
   back-test, the optimal-sparsity contour) and ``OUT/summary.json``.

``--scale`` multiplies the token counts (1.0: the full benchmark, estimated at about 25-30 minutes on
the 2-core reference machine; 0.15: a few minutes, to check that it works).

    python benchmarks/sparse_ladder.py [--scale 1.0] [--out sparse-ladder-out] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.execute import cpu_count, execute
from scalinglab.fit import LawFit
from scalinglab.fit.backtest import backtest
from scalinglab.fit.result import json_safe as _clean
from scalinglab.ladder import design, ladderfile
from scalinglab.plan import plan_sparse
from scalinglab.quickstart import estimate_seconds
from scalinglab.report import ladder_report
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

SPARSITIES = (0.0, 0.5, 0.75)
#: non-zero non-embedding targets; with head size 8 the designed counts match across sparsities
#: within 5% (16: up to 28%)
SIZES = (2e4, 1e5, 4e5)
TOKENS = (1e6, 3e6)
RULE = design.ShapeRule(head_dim=8)
SETTINGS: dict[str, Any] = {"vocab": 256, "context": 128, "batch_tokens": 2048, "lr": 3e-3, "evals": 6,
                            "eval_tokens": 16_384, "schedule": {"name": "cosine"}}


def ladder(scale: float, seed: int) -> list[RunConfig]:
    """The grid, the widened run of the Sparse-IFT pair, and the SPDF run with its static-sparse twin."""
    tokens = [t * scale for t in TOKENS]
    grid = design.grid_sparse(SPARSITIES, SIZES, tokens, rule=RULE, seed=seed, **SETTINGS)
    mid, d_max = SIZES[1], tokens[-1]
    # Sparse-IFT: the grid's dense run at (mid, d_max) and its 1/sqrt(1 - S)-widened S = 0.75 version with
    # a static random mask: equal non-zero parameters and equal non-zero FLOPs (the trainer widens it)
    sift = design.grid_sparse([0.75], [mid], [d_max], rule=RULE, seed=seed, group="sift",
                              sparsity={"ift": True, "method": "static"}, **SETTINGS)
    # SPDF: the grid's S = 0.75 shape at (mid, d_max), static sparse pre-training then the last 25% dense,
    # and the same run sparse throughout
    spdf = [design.grid_sparse([0.75], [mid], [d_max], rule=RULE, seed=seed, group="spdf",
                               sparsity={"method": "static", "dense_finetune_frac": frac}, **SETTINGS)[0]
            for frac in (0.25, 0.0)]
    return grid + sift + spdf


def _row(df: pd.DataFrame, **eq: Any) -> pd.Series:
    sub = df
    for k, v in eq.items():
        sub = sub[np.isclose(sub[k], v)] if isinstance(v, float) else sub[sub[k] == v]
    if len(sub) != 1:
        raise LookupError(f"{len(sub)} runs match {eq}")
    return sub.iloc[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the token counts (1.0: the full benchmark)")
    ap.add_argument("--out", type=Path, default=Path("sparse-ladder-out"))
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workers = args.workers or cpu_count()
    runs = ladder(args.scale, args.seed)
    ladderfile.write_toml(args.out / "ladder.toml", runs, {"design": "sparse benchmark", "scale": args.scale})
    estimate = estimate_seconds(runs, workers)
    print(f"{len(runs)} runs, estimated {estimate / 60:.1f} min on {workers} workers (dense-kernel FLOPs)")

    # -- train ---------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    with Store(args.out / "runs.db") as store:
        result = execute(runs, store, checkpoint_dir=args.out / "checkpoints", workers=workers, threads=1,
                         progress=False)
        table = store.to_table(final=True)
        points = store.to_table(final=False)
        summaries = {r.name: r.summary or {} for r in store.runs()}
    seconds = time.perf_counter() - t0
    if result["failed"]:
        raise SystemExit(f"failed runs: {result['failed']}")
    print(f"trained in {seconds / 60:.1f} min")
    table["c_mul"] = [summaries[n].get("c_mul") for n in table["run"]]
    table["flops_sparse_kernel"] = [summaries[n].get("flops_sparse_kernel") for n in table["run"]]
    table["s_per_token"] = table["wall_time"] / table["D"]
    grid = table[table["group"] == "sparse"].copy()
    # the size and token targets each run was designed for
    grid["N_target"] = [min(SIZES, key=lambda t: abs(np.log(n / t))) for n in grid["N_nonzero"]]
    grid["D_target"] = [min((t * args.scale for t in TOKENS), key=lambda t: abs(np.log(d / t))) for d in grid["D"]]

    # -- fit and back-test ---------------------------------------------------------------------------
    warnings.simplefilter("ignore")
    fit = LawFit("sparse", bootstrap=args.bootstrap, seed=args.seed, source=str(args.out / "runs.db")).fit(
        grid).result_
    largest = max(SIZES)
    train_where = f"N_nonzero < {np.sqrt(largest * sorted(SIZES)[-2]):.6g}"
    bt = backtest(grid, "sparse", train_where, bootstrap=args.bootstrap, seed=args.seed)
    print("\nsparse law fitted on all", len(grid), "grid runs:",
          ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    print(f"back-test, leave the largest non-zero size ({largest:.3g}) out: fit on {bt['train_points']} runs "
          f"({train_where}), predict {bt['test_points']}")
    for p in bt["per_point"]:
        i = p["inputs"]
        print(f"  S={i['S']:<5g} N_nonzero={i['N_nonzero']:>9.0f} D={i['D']:>9.0f}  measured {p['actual']:.4f}  "
              f"predicted {p['predicted']:.4f}  ARE {100 * p['are']:.2f}%")
    print(f"  mean ARE {100 * bt['are_mean']:.2f}%, max {100 * bt['are_max']:.2f}%")

    # -- sparse against dense at equal non-zero parameters and tokens -----------------------------------
    law = fit.law_
    print("\nfinal loss at equal non-zero parameters and tokens (adj.: moved to the target N with the fit)")
    print(f"  {'N target':>9} {'D':>9} " + " ".join(f"{'S=' + format(s, 'g'):>15}" for s in SPARSITIES)
          + "   sparse < dense")
    comparisons = []
    for n_t in SIZES:
        for d_t in sorted(grid["D_target"].unique()):
            cells, adj = [], []
            for s in SPARSITIES:
                r = _row(grid, N_target=n_t, D_target=d_t, S=s)
                shift = (law.predict(fit.params, {"S": [s], "N_nonzero": [n_t], "D": [r["D"]]})[0]
                         - law.predict(fit.params, {"S": [s], "N_nonzero": [r["N_nonzero"]], "D": [r["D"]]})[0])
                adj.append(float(r["loss"] + shift))
                cells.append(f"{r['loss']:.4f}/{adj[-1]:.4f}")
            wins = [s for s, a in zip(SPARSITIES[1:], adj[1:]) if a < adj[0]]
            comparisons.append({"N_target": n_t, "D": d_t, "loss_adjusted": dict(zip(SPARSITIES, adj)),
                                "sparse_wins": wins})
            print(f"  {n_t:>9.3g} {d_t:>9.3g} " + " ".join(f"{c:>15}" for c in cells)
                  + f"   {', '.join(f'S={w:g}' for w in wins) or 'none'}")
    n_pairs = len(comparisons) * (len(SPARSITIES) - 1)
    n_wins = sum(len(c["sparse_wins"]) for c in comparisons)
    print(f"  sparse runs below the dense run of their (N, D): {n_wins} of {n_pairs} (measured/adjusted losses)")

    # -- Sparse-IFT and SPDF ----------------------------------------------------------------------------
    wide = table[table["group"] == "sift"].iloc[0]
    dense_ift = _row(grid, N_target=SIZES[1], D_target=max(grid["D_target"]), S=0.0)
    print(f"\nSparse-IFT at {dense_ift['D']:.3g} tokens: dense {dense_ift['run']} loss {dense_ift['loss']:.4f} "
          f"(N_nonzero {dense_ift['N_nonzero']:.0f}, sparse-kernel FLOPs {dense_ift['flops_sparse_kernel']:.3g}) | "
          f"widened S=0.75 {wide['run']} loss {wide['loss']:.4f} (N_nonzero {wide['N_nonzero']:.0f}, "
          f"sparse-kernel FLOPs {wide['flops_sparse_kernel']:.3g}, dense-kernel FLOPs spent "
          f"{summaries[wide['run']]['flops_spent_dense_kernels']:.3g})")
    spdf_g = table[table["group"] == "spdf"]
    spdf = spdf_g[[summaries[n].get("phases", [{}])[-1].get("phase") == "dense_finetune" for n in spdf_g["run"]]].iloc[0]
    static = spdf_g[spdf_g["run"] != spdf["run"]].iloc[0]
    phases = summaries[spdf["run"]]["phases"]
    dense_same_shape = grid[(grid["S"] == 0) & (grid["n_layer"] == spdf["n_layer"])
                            & (grid["d_model"] == spdf["d_model"]) & np.isclose(grid["D"], spdf["D"])]
    print(f"SPDF {spdf['run']}: sparse phase (S=0.75 static, steps 0-{phases[0]['end_step']}) ends at loss "
          f"{phases[0]['eval_loss']:.4f} with N_nonzero {phases[0]['N_nonzero']}; after dense fine-tuning "
          f"(steps {phases[1]['start_step']}-{phases[1]['end_step']}) {phases[1]['eval_loss']:.4f} with N_nonzero "
          f"{phases[1]['N_nonzero']} | static S=0.75 throughout: {static['loss']:.4f}"
          + (f" | dense of the same shape: {dense_same_shape['loss'].iloc[0]:.4f}" if len(dense_same_shape) else ""))

    # -- masking overhead: time per token of masked and dense runs of one shape -------------------------------
    print("\ntime per token of runs of the same shape and tokens (concurrent workers: indicative only)")
    overhead = []
    for (L, d, D), g in table.groupby(["n_layer", "d_model", "D"]):
        dense_g, masked = g[g["S"] == 0], g[(g["S"] > 0) & (g["group"] != "sift")]
        if len(dense_g) and len(masked):
            for _, m in masked.iterrows():
                ratio = float(m["s_per_token"] / dense_g["s_per_token"].iloc[0])
                overhead.append(ratio)
                print(f"  n_layer={L} d_model={d} D={D:.3g}: {m['run']} / {dense_g['run'].iloc[0]} = {ratio:.3f}")
    if overhead:
        print(f"  median ratio masked / dense: {np.median(overhead):.3f} (target <= 1.15)")

    # -- plan and report --------------------------------------------------------------------------------
    big = grid[grid["N_target"] == largest]
    c_plan = 10.0 * float((6 * big["N_nonzero"] * big["D"] * big["c_mul"]).max())
    the_plan = plan_sparse(fit, c_plan, n_nonzero=largest, seed=args.seed)
    print(f"\nplan at C = {c_plan:.3g} FLOPs (6 N D c_mul, 10x the largest run) for N_nonzero = {largest:.3g}: "
          f"S_opt = {the_plan['S']:.3f} {the_plan['S_interval']}, tokens {the_plan['tokens']:.3g}, loss "
          f"{the_plan['loss']:.4f} {the_plan['interval']} (dense at this budget: {the_plan['dense']['loss']:.4f})")
    report = ladder_report(args.out / "index.html", final=grid, points=points[points["group"] == "sparse"].rename(
        columns={"D": "tokens"}), fit=fit, backtest=bt, plan=None, sparse_plan=the_plan,
        title="scalinglab sparse ladder",
        subtitle=f"{len(grid)} grid runs (+ Sparse-IFT pair, SPDF) on the embedded corpus in {seconds / 60:.1f} min; "
                 f"sparse law fitted on all, back-tested leaving N_nonzero = {largest:.3g} out.")
    fit_d = fit.to_dict()
    fit_d.pop("residuals", None)
    fit_d["bootstrap"] = {k: v for k, v in fit_d["bootstrap"].items() if k != "draws"}
    summary = {"scale": args.scale, "runs": len(runs), "seconds": seconds, "estimated_seconds": estimate,
               "fit": fit_d, "backtest": {k: v for k, v in bt.items() if k != "fit"},
               "comparisons": comparisons, "sparse_wins": [n_wins, n_pairs],
               "sift": {"dense": dense_ift[["run", "loss", "N_nonzero", "flops_sparse_kernel"]].to_dict(),
                        "wide": wide[["run", "loss", "N_nonzero", "flops_sparse_kernel"]].to_dict()},
               "spdf": {"run": spdf["run"], "phases": phases, "static_loss": float(static["loss"])},
               "masking_time_ratio_median": float(np.median(overhead)) if overhead else None,
               "plan": {k: v for k, v in the_plan.items() if k != "contour"}, "report": str(report)}
    (args.out / "summary.json").write_text(json.dumps(_clean(summary), indent=2, default=str) + "\n")
    print(f"\nreport: {report}; summary: {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
