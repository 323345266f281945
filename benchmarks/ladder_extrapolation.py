"""Extrapolation check: fit Chinchilla on a ladder, predict the compute-optimal loss 10x beyond it, train it.

1. Takes the quickstart ladder's store (``--store``, default ``quickstart-out/runs.db``; run
   ``make quickstart`` first, or pass ``--minutes`` to train a fresh quickstart ladder into ``--out``):
   the runs of the ``ladder.toml`` beside it (the quickstart's own), or, without one, every point with
   a ``budget_flops``.
2. Fits Chinchilla (N = total parameters, D = tokens) on every budget of it, with a bootstrap: of
   the points at the end of a learning-rate decay (the runs' final points and their cooldown-branch
   ends, each under its own budget), or each budget's ``--near-optimal K`` lowest-loss ones (default 0: all of them).
   ``--law chinchilla_tied`` fits Chinchilla with one exponent instead. Its intervals are calibrated for
   extrapolation over the budgets, as the quickstart's (``--calibrate``, default ``quickstart.CALIBRATE``;
   ``none``: the observation interval of the bootstrap).
3. Plans the budget 10x the largest (C = 6 N_total D), picks the model shape whose total parameter
   count is closest to the planned N, trains it on the planned D tokens (into ``extrapolation.db``
   beside the ladder's store, so a second call only fits: the trained run is reused while the plan
   stays the same), and prints the predicted loss (at the trained shape's own N and D, with its 80% and
   95% prediction intervals and their kind), the measured loss and the relative error.

With ``--seeds 0,1,2`` it does that for each seed (the ladder of seed K in ``OUT/seedK`` with
``--minutes``, or at ``--store`` with ``{seed}`` in it, e.g. ``--store runs/seed{seed}/runs.db``) and
ends with one table over the seeds and their mean absolute error; ``--json PATH`` writes every figure.

    python benchmarks/ladder_extrapolation.py [--store quickstart-out/runs.db] [--factor 10]
    python benchmarks/ladder_extrapolation.py --minutes 5 --out ext --seeds 0,1,2 --threads 1 --json ext/x.json

Measured 2026-12-03 (calib9, 2 cores shared, load 1.5-3.5; 4-minute ladders, ``--store
'ext/seed{seed}/runs.db' --seeds 0,3,4,5,1,2 --threads 1``, stopped at 12:28 UTC after seeds 0, 3 and 4;
each 10x run a 2 x 64 model on 27.3M tokens, 2.44 epochs, 5 min): the "relative error" printed is
(predicted - measured) / measured. Seed 0: 1.3686 predicted, 1.3535 measured, +1.12% (as before);
seed 3: 1.2935 predicted, 1.3626 measured, -5.07% (its fit is degenerate: E = 2e-22); seed 4: 1.3012
predicted, 1.3670 measured, -4.81% (E = 0.60). With seeds 1 and 2 from before (+0.43%, -1.77%) the mean
absolute error over seeds 0-4 is 2.64%, above the 1.5% target.
The intervals printed in that run were ``drift-p``'s (the default for a moment; see
``scalinglab.fit.calibrate``): seed 0 inside its 80% [1.1209, 1.3859], seed 3 outside its 80%
[1.0421, 1.2826] and inside its 95% [0.9695, 1.3786], seed 4 outside both (80% [1.0232, 1.2219], 95%
[0.9719, 1.2879]). ``group-t``'s 80% intervals at the same plans (bootstrap 100): seed 0 [-11.7, +13.2]%,
seed 3 [-9.5, +10.4]%, seed 4 [-13.1, +15.0]% of the prediction, all inside.

Measured 2026-12-03 (stop 26, ``--minutes 4 --out ext --seeds K --threads 1`` for K = 6 and 7 in two processes, load
2-3, under the default ``group-tp``): seed 6 1.3869 predicted, 1.3712 measured, +1.14% (80% [1.1661, 1.6495]); seed 7
1.3481 predicted, 1.3705 measured, -1.63% (80% [1.1318, 1.6057]); both inside their 80% and 95% intervals. Over seeds
0-7 (seed 5 -2.23%) the mean absolute error is 2.28%. Stop 27 (the same command, seeds 8, 9, 10, pre-registered, load 2-4):
-4.13% (1.3055 predicted, 1.3617 measured, fit E = 0.28), -2.99% (1.3482, 1.3897), +2.88% (1.3877, 1.3488), all inside
their 80% intervals; seeds 0-10: 2.56%. The bagged diagnostic (median over the bootstrap fits): seeds 6-10 +0.80/-1.54/
-2.62/-4.74/+2.83% against the point fit's +1.14/-1.63/-4.13/-2.99/+2.88%; on the fresh seeds 8-10 3.40% against 3.33%.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab import quickstart as qs
from scalinglab import units
from scalinglab.errors import ParameterError
from scalinglab.execute import cpu_count, execute
from scalinglab.fit import LawFit
from scalinglab.fit.predict import predict
from scalinglab.fit.result import Fit, json_safe
from scalinglab.ladder import ladderfile
from scalinglab.ladder.corpus import load_tokens
from scalinglab.plan import plan
from scalinglab.quickstart import CALIBRATE, MAX_EPOCHS, RATIOS, SETTINGS, own_runs, quickstart
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store
from scalinglab.table import near_optimal

#: the nominal levels of the intervals reported
LEVELS = (0.8, 0.95)


def shape_for_total(n_total: float, context: int, vocab: int, *, flops: float | None = None,
                    batch_tokens: int = 1, max_tokens: float | None = None) -> dict[str, int]:
    """The quickstart shape rule's shape (quickstart.SHAPE, a design.ShapeRule) whose N_total is
    closest to ``n_total``; with ``flops`` and ``max_tokens``, among the shapes whose run at that budget
    (``flops / (6 N_total)`` tokens, whole batches of ``batch_tokens``) stays within ``max_tokens``: the
    plan holds D to the data limit (plan(max_tokens=...)), and rounding N to a shape must not break it
    (a smaller shape at the same budget trains on more tokens)."""
    best, err = None, np.inf
    for target in np.geomspace(n_total / 20, 2 * n_total, 300):
        s = qs.SHAPE.shape(float(target))
        tot = units.param_counts(s["n_layer"], s["d_model"], context, vocab)["N_total"]
        if flops is not None and max_tokens is not None and \
                round(flops / (6 * tot) / batch_tokens) * batch_tokens > max_tokens:
            continue
        e = abs(np.log(tot / n_total))
        if e < err:
            best, err = s, e
    if best is None:
        raise SystemExit(f"no shape of the rule near N = {n_total:.3g} trains {flops:.3g} FLOPs within "
                         f"{max_tokens:.3g} tokens")
    return best


def train_big(cfg: RunConfig, store_path: Path, threads: int) -> tuple[dict[str, Any], bool]:
    """Train ``cfg`` into the store ``store_path`` (checkpoints beside it), or reuse it if that store
    already holds it done; returns the trainer's summary and whether it was reused."""
    with Store(store_path) as store:
        name = cfg.name or f"run-{cfg.digest()}"
        known = {r.name: r for r in store.runs()}
        reused = name in known and known[name].status == "done"
        if not reused:
            res = execute([cfg], store, checkpoint_dir=store_path.parent / "extrapolation-checkpoints", workers=1,
                          threads=threads, progress=False)
            if res["failed"]:
                raise SystemExit(f"the 10x run {name} failed: {res['failed'][name]}")
        summary = store.get(name).summary
    assert summary is not None
    return summary, reused


def bagged_prediction(fit: Fit, n_total: float, tokens: float) -> tuple[float, int] | None:
    """``predict(point="bagged")`` at (N, D): the median of the law over the fit's bootstrap fits (bagging,
    Breiman 1996), and the number of them; None for a fit without draws. Printed beside the point fit's."""
    try:
        out = predict(fit, {"N": [float(n_total)], "D": [float(tokens)]}, point="bagged")
    except ParameterError:          # no bootstrap draws (--bootstrap 0)
        return None
    return float(out["prediction"].iloc[0]), int(out.attrs["bagged_from"])


def one_seed(args: argparse.Namespace, seed: int, store_path: Path, out: Path) -> dict[str, Any]:
    """Steps 1-3 for one seed; prints them and returns every figure."""
    rec: dict[str, Any] = {"seed": seed, "store": str(store_path)}
    if args.minutes is not None:
        t0 = time.perf_counter()
        # the quickstart's own fit and back-test are not used here: no bootstrap for them
        quickstart(args.minutes, out, progress=False, seed=seed, bootstrap=0, workers=args.workers,
                   ratios=tuple(float(r) for r in args.ratios.split(",")))
        rec["ladder_seconds"] = time.perf_counter() - t0      # training, or only the check when it was done
        store_path = out / "runs.db"
        rec["store"] = str(store_path)
    with Store(store_path, create=False) as store:
        final = store.to_table(points="annealed")   # final points and cooldown-branch ends, each under its budget
    ladder_file = store_path.parent / "ladder.toml"
    if ladder_file.exists():                        # the quickstart's ladder only, as the quickstart fits it
        ladder_runs = ladderfile.read_toml(ladder_file)
        final = own_runs(final, ladder_runs, store_path)
        rec["runs"] = len(ladder_runs)
    else:                                           # any store: its IsoFLOP points (those with a budget)
        final = final[final["budget_flops"] > 0]
        rec["runs"] = int(final["run"].nunique())
    top = float(final["budget_flops"].max())
    largest = final[final["budget_flops"] == top]
    used = final if args.near_optimal == 0 else near_optimal(final, args.near_optimal)
    calibrate = None if args.calibrate == "none" else args.calibrate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit(args.law, bootstrap=args.bootstrap, seed=seed, calibrate=calibrate).fit(used).result_
    c_big = args.factor * float(np.mean(6 * largest["N"] * largest["D"]))
    unique = len(load_tokens(SETTINGS.get("corpus", "default"), SETTINGS["vocab"]).train)
    max_tokens = None if args.max_epochs <= 0 else args.max_epochs * unique
    p = plan(fit, c_big, seed=seed, max_tokens=max_tokens)
    context, vocab = SETTINGS["context"], SETTINGS["vocab"]
    bt = SETTINGS["batch_tokens"]
    shape = shape_for_total(p["N"], context, vocab, flops=c_big, batch_tokens=bt, max_tokens=max_tokens)
    n_total = units.param_counts(shape["n_layer"], shape["d_model"], context, vocab)["N_total"]
    tokens = round(c_big / (6 * n_total) / bt) * bt
    lr = qs.SHAPE.lr(SETTINGS["lr"], shape["d_model"])
    cfg = RunConfig.from_dict({**SETTINGS, "n_layer": shape["n_layer"], "d_model": shape["d_model"],
                               "n_head": shape["n_head"], "lr": lr, "tokens": tokens, "seed": seed,
                               "group": "extrapolation"})
    cfg = RunConfig.from_dict({**cfg.to_dict(), "name": f"extrapolation-n{shape['n_layer']}d{shape['d_model']}-"
                                                        f"{tokens}-{cfg.digest()}"})
    preds = {lv: predict(fit, {"N": [n_total], "D": [cfg.steps * bt]}, level=lv, seed=seed) for lv in LEVELS}
    kind = preds[LEVELS[0]].attrs.get("interval")
    budgets = sorted(float(b) for b in final["budget_flops"].unique())
    print(f"seed {seed}: ladder {rec['runs']} runs, {len(final)} points (final points and cooldown-branch ends), "
          f"budgets {', '.join(f'{b:.3g}' for b in budgets)} (full FLOPs); "
          f"fitted on {len(used)}" + ("" if args.near_optimal == 0 else f", each budget's {args.near_optimal} best"))
    print(f"fit ({args.law}): {', '.join(f'{k}={v:.4g}' for k, v in fit.params.items())}")
    print(f"plan at C = {c_big:.3g} (6 N_total D, {args.factor:g}x the largest budget): N = {p['N']:.3g}, "
          f"D = {p['D']:.3g}, loss {p['loss']:.4f}" + (
              f"; data-constrained to {args.max_epochs:g} epochs of the corpus's {unique:,} tokens (unconstrained: "
              f"N = {p['unconstrained']['N']:.3g}, D = {p['unconstrained']['D']:.3g}, "
              f"{p['unconstrained']['D'] / unique:.2f} epochs)" if p["data_constrained"] else ""))
    print(f"trained shape: n_layer={shape['n_layer']} d_model={shape['d_model']} n_head={shape['n_head']} "
          f"N_total={n_total}, lr {lr:g}, D = {cfg.steps * bt} tokens ({cfg.steps} steps)", flush=True)
    t0 = time.perf_counter()
    summary, reused = train_big(cfg, store_path.parent / "extrapolation.db", args.threads)
    seconds = time.perf_counter() - t0
    measured = float(summary["final_loss"])
    yhat = float(preds[LEVELS[0]]["prediction"].iloc[0])
    iv = {lv: (float(preds[lv]["lo"].iloc[0]), float(preds[lv]["hi"].iloc[0])) for lv in LEVELS}
    err = (yhat - measured) / measured
    inside = {lv: bool(lo <= measured <= hi) for lv, (lo, hi) in iv.items()}
    bagged = bagged_prediction(fit, n_total, cfg.steps * bt)
    print(("reused the stored 10x run" if reused else f"trained in {seconds:.0f} s") +
          f"; {summary['epochs']:.2f} epochs of the corpus's {summary['unique_tokens']:,} training tokens "
          f"(the ladder's largest run: {final['D'].max() / summary['unique_tokens']:.2f})")
    print(f"predicted loss {yhat:.4f} [{iv[0.95][0]:.4f}, {iv[0.95][1]:.4f}]  measured {measured:.4f}  "
          f"relative error {100 * abs(err):.2f}%  inside interval: {inside[0.95]}")
    print(f"  {kind} intervals: 80% [{iv[0.8][0]:.4f}, {iv[0.8][1]:.4f}] inside: {inside[0.8]}; "
          f"95% [{iv[0.95][0]:.4f}, {iv[0.95][1]:.4f}] inside: {inside[0.95]}; signed error {100 * err:+.2f}%",
          flush=True)
    if bagged is not None:
        print(f"  diagnostic: bagged prediction (median over the {bagged[1]} bootstrap fits) {bagged[0]:.4f}, signed error "
              f"{100 * (bagged[0] - measured) / measured:+.2f}% (the point fit's: {100 * err:+.2f}%)", flush=True)
    rec.update({
        "budgets": budgets, "points": len(final), "fitted_points": len(used), "law": args.law,
        "fit": {k: float(v) for k, v in fit.params.items()}, "fit_warnings": list(fit.warnings),
        "plan": {"C": c_big, "N": float(p["N"]), "D": float(p["D"]), "loss": float(p["loss"]),
                 "data_constrained": bool(p["data_constrained"])},
        "trained": {"name": cfg.name, "n_layer": shape["n_layer"], "d_model": shape["d_model"],
                    "n_head": shape["n_head"], "N_total": int(n_total), "lr": lr, "tokens": cfg.steps * bt,
                    "steps": cfg.steps, "epochs": float(summary["epochs"]), "reused": reused,
                    "seconds": None if reused else seconds},
        "ladder_max_epochs": float(final["D"].max() / summary["unique_tokens"]),
        "interval_kind": kind, "predicted": yhat, "measured": measured,
        "interval_80": list(iv[0.8]), "interval_95": list(iv[0.95]),
        "error_pct": 100 * err, "abs_error_pct": 100 * abs(err),
        "bagged": None if bagged is None else bagged[0],
        "bagged_error_pct": None if bagged is None else 100 * (bagged[0] - measured) / measured,
        "inside_80": inside[0.8], "inside_95": inside[0.95]})
    return rec


def table(recs: list[dict[str, Any]]) -> str:
    """The seeds' figures, one row each, and the mean absolute error."""
    head = (f"{'seed':>4}  {'budgets':>7}  {'runs':>4}  {'points':>6}  {'trained':>14}  {'tokens':>7}  {'epochs':>6}  "
            f"{'predicted':>9}  {'80% interval':>17}  {'measured':>8}  {'error':>7}  {'in 80%':>6}  {'in 95%':>6}")
    rows = [head]
    for r in recs:
        t = r["trained"]
        rows.append(f"{r['seed']:>4}  {len(r['budgets']):>7}  {r['runs']:>4}  {r['points']:>6}  "
                    f"{t['n_layer']}x{t['d_model']} ({t['N_total'] / 1e3:.0f}k)".rjust(14) + "  "
                    f"{t['tokens'] / 1e6:>6.1f}M  {t['epochs']:>6.2f}  {r['predicted']:>9.4f}  "
                    f"[{r['interval_80'][0]:.4f}, {r['interval_80'][1]:.4f}]  {r['measured']:>8.4f}  "
                    f"{r['error_pct']:>+6.2f}%  {str(r['inside_80']):>6}  {str(r['inside_95']):>6}")
    mae = float(np.mean([r["abs_error_pct"] for r in recs]))
    rows.append(f"mean absolute error {mae:.2f}% over {len(recs)} seeds; inside the 80% interval: "
                f"{sum(r['inside_80'] for r in recs)}/{len(recs)}, the 95%: {sum(r['inside_95'] for r in recs)}/"
                f"{len(recs)} (interval: {recs[0]['interval_kind']})")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=Path("quickstart-out/runs.db"),
                    help="the ladder's store; with --seeds, a path with {seed} in it")
    ap.add_argument("--minutes", type=float, default=None, help="train a fresh quickstart ladder first")
    ap.add_argument("--out", type=Path, default=Path("extrapolation-out"),
                    help="with --minutes: the quickstart's folder (with --seeds: OUT/seedK for seed K)")
    ap.add_argument("--ratios", default=",".join(f"{r:g}" for r in RATIOS),
                    help="with --minutes: the ladder's budget ratios (default: the quickstart's)")
    ap.add_argument("--corpus", default=None,
                    help="with --minutes: train the ladder and the big run on this corpus (default: embedded)")
    ap.add_argument("--min-layers", type=int, default=None,
                    help="with --minutes: override the quickstart shape rule's fewest layers")
    ap.add_argument("--workers", type=int, default=None,
                    help="with --minutes: the quickstart's workers (default: one per core; the ladder's design "
                         "follows from minutes x workers)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the 10x run (default: one per core)")
    ap.add_argument("--factor", type=float, default=10.0)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="seed of the ladder (with --minutes), the bootstrap and the big run")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated seeds, each as --seed, then a table over them and their mean absolute error")
    ap.add_argument("--law", default="chinchilla", choices=["chinchilla", "chinchilla_tied"],
                    help="the law fitted and planned with (default: Chinchilla, as the quickstart; chinchilla_tied: "
                         "one exponent)")
    ap.add_argument("--calibrate", default=CALIBRATE,
                    help="the group key of the intervals' extrapolation calibration (default %(default)s, as the "
                         "quickstart's); none: the bootstrap's observation interval")
    ap.add_argument("--near-optimal", type=int, default=0,
                    help="fit each budget's K lowest-loss points (table.near_optimal); 0 (default): every point")
    ap.add_argument("--max-epochs", type=float, default=MAX_EPOCHS,
                    help="plan with at most this many epochs of the corpus (plan(max_tokens=...)), as the quickstart "
                         "does (quickstart.MAX_EPOCHS, default %(default)g); 0: no limit")
    ap.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    args = ap.parse_args()
    args.threads = args.threads or cpu_count()
    if args.corpus is not None:
        SETTINGS["corpus"] = args.corpus        # the ladder and the big run train on it
    if args.min_layers is not None:
        # the ladder (quickstart.design_runs reads quickstart.SHAPE) and the trained shape follow the same rule
        qs.SHAPE = dataclasses.replace(qs.SHAPE, min_layers=args.min_layers)
    seeds = [args.seed] if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    many = args.seeds is not None
    if many and args.minutes is None and "{seed}" not in str(args.store):
        ap.error("--seeds needs --minutes (ladders in OUT/seedK) or a --store with {seed} in it")
    load_before = os.getloadavg()
    print(f"load average: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    recs = []
    for seed in seeds:
        out = args.out / f"seed{seed}" if many else args.out
        store = Path(str(args.store).format(seed=seed))
        recs.append(one_seed(args, seed, store, out))
    load_after = os.getloadavg()
    print(f"load average: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if many:
        print(table(recs))
    if args.json is not None:
        mae = float(np.mean([r["abs_error_pct"] for r in recs]))
        doc = {"seeds": recs, "mean_abs_error_pct": mae, "inside_80": sum(r["inside_80"] for r in recs),
               "inside_95": sum(r["inside_95"] for r in recs), "load_before": list(load_before),
               "load_after": list(load_after), "args": {k: str(v) for k, v in vars(args).items()}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_safe(doc), indent=2) + "\n")


if __name__ == "__main__":
    main()
