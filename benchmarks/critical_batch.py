"""Critical batch size from batch sweeps, and Su et al.'s trajectory at a held-out batch size.

1. Trains batch sweeps (``--batches`` tokens per step, the same ``--tokens`` for every run, constant
   learning rate after a warmup, ``lr = --lr x sqrt(B / B_0)`` capped at ``--lr-max``: the square-root
   rule for Adam, B_0 = ``--lr-ref-batch``, by default the smallest batch) at each ``--d-models`` width;
   with the trainer's gradient-noise-scale feature when it exists (``noise_scale = true``, two
   micro-batches), the runs also record ``B_simple``. With ``--seeds 0,1`` every config is trained once
   per seed and its curves are averaged point by point at the common evaluation steps before everything
   below (``_dynamics.seed_mean``).
2. Steps to each of ``--n-targets`` target losses (from the lowest loss three batch sizes of every
   width reach to 20% above it), interpolated in ln step; per model and target, the ``critical_batch`` hyperbola (S_min, B_crit,
   intervals), Zhang et al.'s 20% batch, B_simple beside it; then B_crit against L (Kaplan) and D.
3. Su et al. (2024) end to end on every run but the held-out one (``--held-out-batch`` at the largest
   width): two-stage (``kaplan_steps`` on S_min = S / (1 + B_crit(L)/B) with the B_crit(L) of step 2),
   joint (``kaplan_steps_batch``: B_* and alpha_B fitted with the trajectory law on the curves after
   ``--su-window`` x warmup), joint-width (the same on the held-out run's width alone, alpha_N = 1) or
   joint-trimmed (joint without the fit runs off the law: joint leave-one-out error > ``--su-trim`` x the
   median, one at a time); ``--su-fit auto`` (default) chooses among two-stage and ``--su-methods`` at each
   of ``--su-windows`` by leave-one-run-out over the fit runs only (``plan.su.su_select``), scored on the
   ``--su-score`` folds (interior batches, all, the held-out run's width, its interior batches), and prints
   the su6 protocol's choice (two-stage or joint, interior folds) beside it. Each candidate's folds are
   also split into early/middle/late thirds. In-sample trajectories of the fit runs, then the held-out
   run's curve predicted by ``plan.steps.loss_trajectory`` and scored (mean |relative error| after warmup;
   target <= 2%), with the minimum loss and the steps and tokens to the lowest target at the held-out batch;
   the su6 choice and two-stage beside it.

    PYTHONPATH=src:benchmarks python benchmarks/critical_batch.py [--d-models 48,96] [--tokens 2e6]

The measured recipe (su7; pre-registered 2026-12-03 11:24 UTC before the held-out run was scored):

    PYTHONPATH=src:benchmarks python benchmarks/critical_batch.py --d-models 48,64,96 \
        --batches 512,1024,2048,4096 --tokens 2e6 --lr 1.5e-3 --lr-ref-batch 256 --lr-max 6e-3 \
        --n-targets 4 --su-windows 1,2 --seeds 0,1 --su-methods joint,joint-width,joint-trimmed \
        --su-score same-width --su-trim 3 --out cb-out

(24 runs, 1540 s of training in one process at load 1.3-4.8, then 136 s of analysis at load 3; every
figure of su6's that both print is reproduced: the runs are deterministic given the seed). B_crit grows as the target falls at all three widths (targets
2.548/2.399/2.259/2.128: d48 635/1194/1448/2626 tokens, d64 1062/1301/2478/6996, d96 68/255/524/786, the
d96 ones poorly determined, intervals from ~0), with B_simple beside them (d48 707/1385/2651/3039, d64
616/1151/1613/3337, d96 412/980/2044/2787). Leave-one-run-out over the 11 fit configs (mean / interior /
d96 folds b1024, b4096, b512): two-stage 2.86/2.26/2.69,7.54,2.49%; joint w1 2.17/1.34/2.39,7.60,1.78%;
joint-width w1 3.06/1.67/3.86,12.21,5.60%; joint-trimmed w1 2.05/1.21/1.37,7.60,1.73% (cb-d96-b4096, held
back by its learning rate, is the one run off the law). Chosen: joint-trimmed, window 1 (alpha_N 1.17, off
its bound): the held-out cb-d96-b2048 trajectory is off by 1.38% mean / 5.22% max (thirds
0.99/0.39/2.86%): the 2% target is met. The su6 protocol's choice (joint, window 1) scores 2.56% / 7.41%
(alpha_N at its bound 5), two-stage 3.32% / 10.64%. The held-back d96 run at 4096 tokens per step (final
2.12 against 1.76 at 512, seed means) is left out, not explained: the law has no learning rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _dynamics import seed_mean, seed_run_name, train_all
from threadpoolctl import threadpool_limits

from scalinglab.fit.critical import critical_batch_study
from scalinglab.plan.steps import loss_floor, steps_to_loss
from scalinglab.plan.su import SCORES, fit_su, fit_su_method, su_backtest, su_choose, su_score_runs, su_select
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

torch.set_num_threads(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-models", default="48,96")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--batches", default="256,512,1024,2048,4096,8192")
    ap.add_argument("--tokens", type=float, default=2e6)
    ap.add_argument("--lr", type=float, default=1.5e-3, help="peak lr at the smallest batch")
    ap.add_argument("--lr-max", type=float, default=1e-2)
    ap.add_argument("--lr-ref-batch", type=int, default=0,
                    help="the batch (tokens) at which the lr is --lr (default 0: the smallest of --batches)")
    ap.add_argument("--warmup-tokens", type=float, default=1e5)
    ap.add_argument("--held-out-batch", type=int, default=2048)
    ap.add_argument("--n-targets", type=int, default=4)
    ap.add_argument("--targets", default="", help="target losses (comma-separated) instead of the automatic ones")
    ap.add_argument("--su-fit", choices=["auto", "joint", "joint-width", "joint-trimmed", "two-stage"], default="auto",
                    help="how Su et al.'s constants are fitted: auto = chosen by leave-one-run-out over the fit "
                    "runs; joint-width = kaplan_steps_batch on the held-out run's width alone (alpha_N = 1); "
                    "joint-trimmed = joint without the fit runs off the law (--su-trim)")
    ap.add_argument("--su-trim", type=float, default=3.0, help="joint-trimmed leaves out a fit run whose joint "
                    "leave-one-out error exceeds this many times the median")
    ap.add_argument("--su-window", type=float, default=1.0, help="with --su-fit joint(-width): fit after this x warmup")
    ap.add_argument("--su-windows", default="1,2,3,4", help="with --su-fit auto: the joint windows tried")
    ap.add_argument("--su-methods", default="joint", help="with --su-fit auto: the joint methods tried at every "
                    "window besides two-stage (comma-separated: joint, joint-width, joint-trimmed)")
    ap.add_argument("--su-score", default="interior", choices=list(SCORES),
                    help="with --su-fit auto: the leave-one-out folds that choose (interior batches, all, the "
                    "held-out run's width, its interior batches)")
    ap.add_argument("--seeds", default="0", help="seeds (comma-separated): each config is trained once per seed "
                    "(seed s > first named cb-d<d>-b<B>-s<s>) and the curves are averaged point by point (same steps)")
    ap.add_argument("--evals", type=int, default=30)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--out", type=Path, default=Path("critical-out"))
    ap.add_argument("--analyse-only", action="store_true", help="train nothing: analyse the runs --out's store has "
                    "finished (those of the sweep that are not there are left out and listed)")
    ap.add_argument("--train-only", default="", help="train only these batch sizes (comma-separated) and stop: "
                    "to share one --out store between processes; the analysis is the run without it")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (hyperbola fits, the held-out "
                    "curves predicted by each method, in-sample errors) to this JSON file")
    ap.add_argument("--train-seeds", default="", help="with --train-only: only these of --seeds (default: all)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    widths = [int(x) for x in args.d_models.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    b_ref = args.lr_ref_batch or batches[0]
    noise = "noise_scale" in {f.name for f in dataclasses.fields(RunConfig)}
    seeds = [int(x) for x in args.seeds.split(",")]
    configs = []
    for seed, d, B in itertools.product(seeds, widths, batches):
        extra = {"noise_scale": True, "micro_batch_tokens": B // 2} if noise and B >= 256 else {}
        configs.append(RunConfig(
            name=seed_run_name(f"cb-d{d}-b{B}", seed, seeds[0]), n_layer=args.n_layer, d_model=d,
            n_head=2, context=128, tokens=int(args.tokens), batch_tokens=B,
            lr=min(args.lr * (B / b_ref) ** 0.5, args.lr_max),
            schedule=ScheduleConfig(name="constant", warmup_steps=max(1, round(args.warmup_tokens / B))),
            evals=args.evals, eval_tokens=args.eval_tokens, seed=seed, group="critical", **extra))
    t0 = time.perf_counter()
    print(f"training {len(configs)} runs (noise scale: {noise}; load {os.getloadavg()})", flush=True)
    if args.train_only:
        only = {int(x) for x in args.train_only.split(",")}
        with threadpool_limits(limits=1):
            keep = {int(x) for x in args.train_seeds.split(",")} if args.train_seeds else set(seeds)
            train_all(args.out / "runs.db", [c for c in configs if c.batch_tokens in only and c.seed in keep])
        return
    if args.analyse_only:
        store = Store(str(args.out / "runs.db"))
        done = {r.name for r in store.runs("done")}
        missing = [c.name for c in configs if c.name not in done]
        print(f"analysing the {len(configs) - len(missing)} finished runs; not trained: {missing or 'none'}")
        configs = [c for c in configs if c.name in done]
    else:
        with threadpool_limits(limits=1):
            store = train_all(args.out / "runs.db", configs)
    df = store.to_table(points="all", failed=False)
    df = df[df["run"].isin({c.name for c in configs})]
    df = df[df["branch"] == 0]
    if len(seeds) > 1:
        df = seed_mean(df, len(seeds))
    warm = {c.name: c.schedule.warmup_steps for c in configs if c.seed == seeds[0]}
    d_big = max(widths)
    held = f"cb-d{d_big}-b{args.held_out_batch}"
    fit_df = df[df["run"] != held]
    # the lowest target: one that 3 batch sizes of every width reach (the hyperbola needs 3 points)
    best = fit_df.groupby("run").agg(loss=("loss", "min"), d=("d_model", "first"))
    reach = float(best.groupby("d")["loss"].apply(lambda x: np.sort(x.to_numpy())[min(2, len(x) - 1)]).max())
    targets = ([float(x) for x in args.targets.split(",")] if args.targets else
               [float(x) for x in np.round(np.geomspace(reach * 1.2, reach * 1.002, args.n_targets), 4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = critical_batch_study(fit_df, targets, seed=0)
    print(f"targets (nats/token): {targets}  (3 batch sizes of every width reach {reach:.4f})")
    print(f"{'N_nonembed':>11}{'target':>8}{'S_min':>9}{'B_crit':>10}{'95% interval':>22}{'B_zhang':>9}"
          f"{'hyp. 20%':>9}{'B_simple':>10}")
    for f in res["fits"]:
        iv = f["B_crit_interval"]
        ivs = f"[{iv[0]:.0f}, {iv[1]:.0f}]" if iv else "-"
        bz = f"{f['B_zhang']:.0f}" if f["B_zhang"] else "-"
        bs = f"{f['B_simple']:.0f}" if f.get("B_simple") else "-"
        print(f"{f['N_nonembed']:>11.0f}{f['target']:>8.4f}{f['S_min']:>9.0f}{f['B_crit']:>10.0f}{ivs:>22}{bz:>9}"
              f"{f['B_zhang_hyperbola']:>9.0f}{bs:>10}")
    for n, v in res["vs_loss"].items():
        mono = all(b2["B_crit"] >= b1["B_crit"] for b1, b2 in zip(
            *(lambda fs: (fs, fs[1:]))(sorted([f for f in res["fits"] if f"{f['N_nonembed']:.6g}" == n],
                                              key=lambda f: -f["target"]))))
        print(f"N_nonembed {n}: B_crit = {v['B_star']:.4g} / L^{v['inverse_alpha_B']:.3g} "
              f"(1/alpha_B interval {v['inverse_alpha_B_interval']}); B_crit ~ D^{res['vs_tokens'][n]['exponent']:.3g} "
              f"(interval {res['vs_tokens'][n]['exponent_interval']}); grows as the target falls: {mono}")
    for w in res["warnings"]:
        print(f"  warning: {w}")
    # -- Su et al.: the constants from the fit runs, the held-out trajectory --------------------------
    fit_df = fit_df.assign(warmup=fit_df["run"].map(warm))
    all_df = df.assign(warmup=df["run"].map(warm))
    method, window = args.su_fit, args.su_window
    N_held = float(all_df.loc[all_df["run"] == held, "N_nonembed"].iloc[0]) if held in set(all_df["run"]) else \
        float(fit_df["N_nonembed"].max())
    old: tuple[str, float] | None = None
    trimmed: dict[tuple[str, float], list[str]] = {}
    if method == "auto":
        # chosen on the fit runs alone: leave each fit run out, refit, score its trajectory
        windows = [float(w) for w in args.su_windows.split(",")]
        cands = [("two-stage", 1.0)] + [(m, w) for m in args.su_methods.split(",") for w in windows]
        score_runs = su_score_runs(fit_df, args.su_score, held, N_held)
        sel = su_select(fit_df, cands, targets=targets, seed=0, score_runs=score_runs, trim=args.su_trim)
        same = su_score_runs(fit_df, "same-width", held, N_held)
        for sc in sel["scores"]:
            name = sc["method"] + (f", window {sc['window']:g} x warmup" if sc["method"] != "two-stage" else "")
            if sc["mean"] is None:
                print(f"leave-one-run-out, {name}: not fitted ({sc['failed']['every fold']})")
                continue
            sw = [sc["runs"][r] for r in same if r in sc["runs"]]
            th = np.mean([v["thirds"] for v in sc["runs"].values()], axis=0)
            swe = "/".join(f"{100 * v['mean_abs_rel_error']:.2f}" for v in sw)
            swb = "/".join(f"{v['batch']:.0f}" for v in sw)
            print(f"leave-one-run-out over the {len(sc['runs'])} fit runs, {name}: mean |rel err| "
                  f"{100 * sc['mean']:.2f}%, interior batches {100 * sc['interior_mean']:.2f}%, width of the "
                  f"held-out run: {swe}% (batches {swb}); early/middle/late thirds "
                  + "/".join(f"{100 * t:.2f}" for t in th) + "%"
                  + (f"; folds not fitted: {sorted(sc['failed'])}" if sc["failed"] else ""))
        method, window = sel["chosen"]
        trimmed = {(sc["method"], sc["window"]): sc["trimmed"] for sc in sel["scores"] if "trimmed" in sc}
        for (_m, w), t in trimmed.items():
            print(f"joint-trimmed, window {w:g}: fitted without {t or 'no run'} (joint leave-one-out error > "
                  f"{args.su_trim:g} x the median)")
        print(f"chosen (lowest leave-one-out error over the {args.su_score} folds"
              + (f": {[r.removeprefix('cb-') for r in score_runs]}" if score_runs else "") + f"): {method}"
              + (f", window {window:g} x warmup" if method != "two-stage" else ""))
        olds = [sc for sc in sel["scores"] if sc["method"] in ("two-stage", "joint")]
        if olds:
            o = olds[su_choose(olds)]
            old = (o["method"], o["window"])
            print(f"the su6 protocol (two-stage or joint, interior folds) would choose: {old[0]}"
                  + (f", window {old[1]:g} x warmup" if old[0] != "two-stage" else ""))
    report: dict[str, Any] = {"targets": targets, "held_out": held, "method": [method, window],
                              "old_protocol": old, "critical": res["fits"], "vs_loss": res["vs_loss"], "su": {}}
    if args.json:
        args.json.write_text(json.dumps(report, default=str, indent=1))
    fits = {}
    for m, w in dict.fromkeys([(method, window)] + ([old] if old else []) + [("two-stage", 1.0)]):
        if m != "two-stage":
            ks, B_star, alpha_B = fit_su_method(fit_df, m, window=w, N=N_held, trimmed=trimmed.get((m, w)),
                                                trim=args.su_trim)
        else:
            law = res["pooled"]["vs_loss"]
            B_star, alpha_B = law["B_star"], law["alpha_B"]
            if not alpha_B or alpha_B <= 0:
                print(f"Su two-stage: not computed, the fitted B_crit(L) does not fall with L (alpha_B = {alpha_B})")
                continue
            ks = fit_su(fit_df, B_star, alpha_B)
        fits[(m, w)] = (ks, B_star, alpha_B)
    for (m, w), (ks, B_star, alpha_B) in fits.items():
        tag = ("adopted" if (m, w) == (method, window) else "the su6 protocol's choice" if (m, w) == old
               else "for comparison")
        name = m + (f", window {w:g}" if m != "two-stage" else "")
        print(f"Su et al., {name} ({tag}): B_crit = {B_star:.4g} / L^{1 / alpha_B:.3g}; kaplan_steps: "
              + ", ".join(f"{k} = {ks.params[k]:.4g}" for k in ("N_c", "alpha_N", "S_c", "alpha_S"))
              + (f"  warnings: {ks.warnings}" if ks.warnings else ""))
        if "trimmed" in ks.data:
            print(f"  fitted without {ks.data['trimmed']}")
        in_runs = sorted(set(fit_df["run"] if m != "joint-width" else
                             fit_df.loc[np.isclose(fit_df["N_nonembed"], N_held), "run"]))
        ins = {r: su_backtest(fit_df, r, ks, B_star, alpha_B) for r in in_runs}
        print("  in-sample trajectories (mean / max |rel err|): " + "; ".join(
            f"{r.removeprefix('cb-')} {100 * v['mean_abs_rel_error']:.1f}/{100 * v['max_abs_rel_error']:.1f}%"
            for r, v in ins.items()))
        print(f"  in-sample mean over the {len(ins)} fit runs: "
              f"{100 * np.mean([v['mean_abs_rel_error'] for v in ins.values()]):.2f}%")
        if held not in set(all_df["run"]):
            print(f"  held-out {held}: not in the store (not trained yet), not scored")
            continue
        bt = su_backtest(all_df, held, ks, B_star, alpha_B)
        report["su"][f"{m}@{w:g}"] = {"adopted": (m, w) == (method, window), "old_protocol": (m, w) == old,
                                      "B_star": B_star, "alpha_B": alpha_B, "params": dict(ks.params),
                                      "held_out": bt, "in_sample": {r: v["mean_abs_rel_error"] for r, v in ins.items()}}
        print(f"  held-out {held} ({bt['points']} points after warmup): mean |rel err| "
              f"{100 * bt['mean_abs_rel_error']:.2f}%, max {100 * bt['max_abs_rel_error']:.2f}%, thirds "
              + "/".join(f"{100 * t:.2f}" for t in bt["thirds"]) + "%, final pred "
              f"{bt['curve'][-1]['predicted']:.4f} vs {bt['curve'][-1]['loss']:.4f}"
              + (f"  (target mean <= 2%: {'met' if bt['mean_abs_rel_error'] <= 0.02 else 'NOT met'})"
                 if (m, w) == (method, window) else ""))
    if args.json:
        args.json.write_text(json.dumps(report, default=str, indent=1))
    if (method, window) not in fits:
        return
    ks, B_star, alpha_B = fits[(method, window)]
    N = N_held
    low = min(targets)
    if low <= float(loss_floor(N, ks.params)):
        print(f"  the lowest target {low} lies below the fitted loss floor of N = {N:.0f}: no steps to it")
        return
    st = steps_to_loss(low, N, batch=float(args.held_out_batch), params=ks.params, B_star=B_star, alpha_B=alpha_B)
    print(f"  minimum loss of N = {N:.0f}: {float(loss_floor(N, ks.params)):.4f}; to reach {low}: S_min "
          f"{float(st.S_min):.0f} steps, E_min {float(st.E_min):.3g} tokens, at B = {args.held_out_batch}: "
          f"{float(st.S):.0f} steps, {float(st.E):.3g} tokens")
    print(f"total {time.perf_counter() - t0:.0f} s, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
