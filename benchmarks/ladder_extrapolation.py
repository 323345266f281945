"""Extrapolation check: fit Chinchilla on a ladder, predict the compute-optimal loss 10x beyond it, train it.

1. Takes the quickstart ladder's store (``--store``, default ``quickstart-out/runs.db``; run
   ``make quickstart`` first, or pass ``--minutes`` to train a fresh quickstart ladder into ``--out``):
   the runs of the ``ladder.toml`` beside it (the quickstart's own), or, without one, every point with
   a ``budget_flops``.
2. Fits Chinchilla (N = total parameters, D = tokens) on every budget of it, with a bootstrap: of
   the points at the end of a learning-rate decay (the runs' final points and their cooldown-branch
   ends, each under its own budget), or each budget's ``--near-optimal K`` lowest-loss ones (default 0: all of them).
   ``--law chinchilla_tied`` fits Chinchilla with one exponent instead.
3. Plans the budget 10x the largest (C = 6 N_total D), picks the model shape whose total parameter
   count is closest to the planned N, trains it on the planned D tokens, and prints the predicted loss
   (at the trained shape's own N and D, with its prediction interval), the measured loss and the
   relative error.

    python benchmarks/ladder_extrapolation.py [--store quickstart-out/runs.db] [--factor 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np

from scalinglab import quickstart as qs
from scalinglab import units
from scalinglab.execute import cpu_count
from scalinglab.fit import LawFit
from scalinglab.fit.predict import predict
from scalinglab.ladder import ladderfile
from scalinglab.ladder.corpus import load_tokens
from scalinglab.ladder.train import train
from scalinglab.plan import plan
from scalinglab.quickstart import MAX_EPOCHS, RATIOS, SETTINGS, own_runs, quickstart
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store
from scalinglab.table import near_optimal


def shape_for_total(n_total: float, context: int, vocab: int) -> dict[str, int]:
    """The quickstart shape rule's shape (quickstart.SHAPE, a design.ShapeRule) whose N_total is
    closest to ``n_total``."""
    best, err = None, np.inf
    for target in np.geomspace(n_total / 20, n_total, 200):
        s = qs.SHAPE.shape(float(target))
        tot = units.param_counts(s["n_layer"], s["d_model"], context, vocab)["N_total"]
        e = abs(np.log(tot / n_total))
        if e < err:
            best, err = s, e
    assert best is not None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=Path("quickstart-out/runs.db"))
    ap.add_argument("--minutes", type=float, default=None, help="train a fresh quickstart ladder first")
    ap.add_argument("--out", type=Path, default=Path("extrapolation-out"))
    ap.add_argument("--ratios", default=",".join(f"{r:g}" for r in RATIOS),
                    help="with --minutes: the ladder's budget ratios (default: the quickstart's)")
    ap.add_argument("--corpus", default=None,
                    help="with --minutes: train the ladder and the big run on this corpus (default: embedded)")
    ap.add_argument("--min-layers", type=int, default=None,
                    help="with --minutes: override the quickstart shape rule's fewest layers")
    ap.add_argument("--factor", type=float, default=10.0)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="seed of the ladder (with --minutes), the bootstrap and the big run")
    ap.add_argument("--law", default="chinchilla", choices=["chinchilla", "chinchilla_tied"],
                    help="the law fitted and planned with (default: Chinchilla, as the quickstart; chinchilla_tied: "
                         "one exponent)")
    ap.add_argument("--near-optimal", type=int, default=0,
                    help="fit each budget's K lowest-loss points (table.near_optimal); 0 (default): every point")
    ap.add_argument("--max-epochs", type=float, default=MAX_EPOCHS,
                    help="plan with at most this many epochs of the corpus (plan(max_tokens=...)), as the quickstart "
                         "does (quickstart.MAX_EPOCHS, default %(default)g); 0: no limit")
    args = ap.parse_args()
    store_path = args.store
    if args.corpus is not None:
        SETTINGS["corpus"] = args.corpus        # the ladder and the big run train on it
    if args.min_layers is not None:
        # the ladder (quickstart.design_runs reads quickstart.SHAPE) and the trained shape follow the same rule
        qs.SHAPE = dataclasses.replace(qs.SHAPE, min_layers=args.min_layers)
    if args.minutes is not None:
        quickstart(args.minutes, args.out, progress=False, seed=args.seed,
                   ratios=tuple(float(r) for r in args.ratios.split(",")))
        store_path = args.out / "runs.db"
    with Store(store_path, create=False) as store:
        final = store.to_table(points="annealed")   # final points and cooldown-branch ends, each under its budget
    ladder_file = store_path.parent / "ladder.toml"
    if ladder_file.exists():                        # the quickstart's ladder only, as the quickstart fits it
        final = own_runs(final, ladderfile.read_toml(ladder_file), store_path)
    else:                                           # any store: its IsoFLOP points (those with a budget)
        final = final[final["budget_flops"] > 0]
    top = float(final["budget_flops"].max())
    largest = final[final["budget_flops"] == top]
    used = final if args.near_optimal == 0 else near_optimal(final, args.near_optimal)
    warnings.simplefilter("ignore")
    fit = LawFit(args.law, bootstrap=args.bootstrap, seed=args.seed).fit(used).result_
    c_big = args.factor * float(np.mean(6 * largest["N"] * largest["D"]))
    unique = len(load_tokens(SETTINGS.get("corpus", "default"), SETTINGS["vocab"]).train)
    max_tokens = None if args.max_epochs <= 0 else args.max_epochs * unique
    p = plan(fit, c_big, seed=args.seed, max_tokens=max_tokens)
    context, vocab = SETTINGS["context"], SETTINGS["vocab"]
    shape = shape_for_total(p["N"], context, vocab)
    n_total = units.param_counts(shape["n_layer"], shape["d_model"], context, vocab)["N_total"]
    bt = SETTINGS["batch_tokens"]
    tokens = round(c_big / (6 * n_total) / bt) * bt
    lr = qs.SHAPE.lr(SETTINGS["lr"], shape["d_model"])
    cfg = RunConfig.from_dict({**SETTINGS, "n_layer": shape["n_layer"], "d_model": shape["d_model"],
                               "n_head": shape["n_head"], "lr": lr, "tokens": tokens, "seed": args.seed,
                               "group": "extrapolation"})
    pred = predict(fit, {"N": [n_total], "D": [cfg.steps * bt]}, seed=args.seed)
    budgets = ", ".join(f"{b:.3g}" for b in sorted(final["budget_flops"].unique()))
    print(f"ladder: {len(final)} points (final points and cooldown-branch ends), budgets {budgets} (full FLOPs); "
          f"fitted on {len(used)}" + ("" if args.near_optimal == 0 else f", each budget's {args.near_optimal} best"))
    print(f"fit ({args.law}): {', '.join(f'{k}={v:.4g}' for k, v in fit.params.items())}")
    print(f"plan at C = {c_big:.3g} (6 N_total D, {args.factor:g}x the largest budget): N = {p['N']:.3g}, "
          f"D = {p['D']:.3g}, loss {p['loss']:.4f}" + (
              f"; data-constrained to {args.max_epochs:g} epochs of the corpus's {unique:,} tokens (unconstrained: "
              f"N = {p['unconstrained']['N']:.3g}, D = {p['unconstrained']['D']:.3g}, "
              f"{p['unconstrained']['D'] / unique:.2f} epochs)" if p["data_constrained"] else ""))
    print(f"trained shape: n_layer={shape['n_layer']} d_model={shape['d_model']} n_head={shape['n_head']} "
          f"N_total={n_total}, lr {lr:g}, D = {cfg.steps * bt} tokens ({cfg.steps} steps)")
    t0 = time.perf_counter()
    summary = train(cfg, on_point=lambda _: None, threads=cpu_count())
    measured = summary["final_loss"]
    yhat = float(pred["prediction"].iloc[0])
    lo, hi = float(pred["lo"].iloc[0]), float(pred["hi"].iloc[0])
    print(f"trained in {time.perf_counter() - t0:.0f} s; {summary['epochs']:.2f} epochs of the corpus's "
          f"{summary['unique_tokens']:,} training tokens (the ladder's largest run: "
          f"{final['D'].max() / summary['unique_tokens']:.2f})")
    print(f"predicted loss {yhat:.4f} [{lo:.4f}, {hi:.4f}]  measured {measured:.4f}  "
          f"relative error {100 * abs(yhat - measured) / measured:.2f}%  inside interval: {lo <= measured <= hi}")


if __name__ == "__main__":
    main()
