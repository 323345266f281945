"""Rollout calibration of prediction intervals on public ladders, before and after calibration.

For each set: a rollout back-test (``scalinglab.fit.rollout``) over its groups, once with the plain
bootstrap observation interval ("plain") and once with the extrapolation-calibrated interval
(``LawFit(calibrate=KEY)``, "calibrated"), and any other fit variants asked for. Prints per set and
variant the pooled mean ARE and the coverage of the nominal 80% and 95% intervals.

Sets (read from ``../shared/data``; a set whose file is missing is skipped):

* ``porian-*``: Porian et al. 2024 IsoFLOP points, one set per (dataset, hparams, warmup, decay,
  param_count, val) configuration of ``summary_df_isoflop_points.csv`` and the OWT2 file; Chinchilla
  law, groups = IsoFLOP budgets (``flops``), N = ``n``, D = ``t``.
* ``gadre-*``: Gadre et al. 2024 over-training testbed, one set per corpus; the over-training law
  on (N, D, C4 validation loss), groups = model sizes N.
* ``datablations``: Muennighoff et al. 2023's 182 fitted runs; the data-constrained law with the
  base Chinchilla part fixed at the authors' values (their set-up), groups = N in quarter decades.
* ``epoch``: Hoffmann et al. 2022's points digitised by Epoch (5 highest losses dropped); Chinchilla,
  groups = C in half decades.
* ``quickstart-SEED``: a quickstart store (``--quickstart-store PATH``, repeatable); Chinchilla on
  its annealed points (``-final``: its final points only), groups = IsoFLOP budgets.

    python benchmarks/calibration.py [--sets porian,gadre,datablations,epoch] [--bootstrap 100]
                                     [--variants plain,calibrated] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from scalinglab.errors import DataError
from scalinglab.fit.rollout import rollout

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

#: fit variants: LawFit keyword arguments added to the set's own; "calibrated" also sets calibrate=KEY
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "calibrated": {"calibrate": True},
    "asym2": {"asymmetry": 2.0},
    "compute": {"weight_by": "compute"},
    "asym2-calibrated": {"asymmetry": 2.0, "calibrate": True},
}


def porian_sets() -> dict[str, dict[str, Any]]:
    out = {}
    cols = ["dataset", "hparams", "warmup", "decay", "param_count", "val"]
    for fname in ("summary_df_isoflop_points.csv", "summary_df_owt2_isoflop_points.csv"):
        path = DATA / "isoflops-porian" / fname
        if not path.exists():
            continue
        p = pd.read_csv(path)
        for cfg, g in p.groupby(cols):
            name = "porian-" + "-".join(str(c) for c in cfg)
            df = pd.DataFrame({"N": g["n"], "D": g["t"], "loss": g["loss"], "budget_flops": g["flops"]})
            out[name] = {"df": df.reset_index(drop=True), "law": "chinchilla", "key": "budget_flops",
                         "decades": None, "fit": {}}
    return out


def gadre_sets() -> dict[str, dict[str, Any]]:
    path = DATA / "overtraining-gadre" / "models_flat.csv"
    if not path.exists():
        return {}
    m = pd.read_csv(path)
    out = {}
    for ds, g in m.groupby("dataset"):
        df = pd.DataFrame({"N": g["N"], "D": g["D"], "loss": g["loss_c4_val"]}).reset_index(drop=True)
        out[f"gadre-{ds}"] = {"df": df, "law": "overtrain", "key": "N", "decades": None, "fit": {}}
    return out


def datablations_sets() -> dict[str, dict[str, Any]]:
    path = DATA / "datablations" / "datablations_fit_set_182.csv"
    if not path.exists():
        return {}
    from scalinglab import laws
    base = {k: v for k, v in laws.get("datablations").preset("muennighoff2023").params.items()
            if k in ("E", "A", "B", "alpha", "beta")}
    df = pd.read_csv(path).rename(columns={"val_loss": "loss"})[["N", "D", "U", "loss"]]
    return {"datablations": {"df": df, "law": "datablations", "key": "N", "decades": 0.25,
                             "fit": {"fixed": base}}}


def epoch_sets() -> dict[str, dict[str, Any]]:
    path = DATA / "chinchilla-epoch" / "svg_extracted_data.csv"
    if not path.exists():
        return {}
    df = pd.read_csv(path).rename(columns={"Model Size": "N", "Training FLOP": "C"})
    df = df[df["loss"].rank(ascending=False) > 5].copy()   # Epoch drop the 5 highest-loss points
    df["D"] = df["C"] / (6 * df["N"])
    return {"epoch": {"df": df[["N", "D", "C", "loss"]].reset_index(drop=True), "law": "chinchilla",
                      "key": "C", "decades": 0.5, "fit": {}}}


def quickstart_sets(paths: list[str]) -> dict[str, dict[str, Any]]:
    """Each store twice: its annealed points (final points and cooldown-branch ends, the default of
    ``fit --store``) and its final points only (the question "does more of each curve help")."""
    from scalinglab.store import Store
    out = {}
    for path in paths:
        for points in ("annealed", "final"):
            with Store(path, create=False) as store:
                df = store.to_table(points=points, failed=False)
            df = df[df["budget_flops"] > 0]
            name = f"quickstart-{Path(path).parent.name}" + ("" if points == "annealed" else "-final")
            out[name] = {"df": df[["N", "D", "loss", "budget_flops"]].reset_index(drop=True), "law": "chinchilla",
                         "key": "budget_flops", "decades": None, "fit": {}}
    return out


def run_set(spec: dict[str, Any], variant: str, bootstrap: int, seed: int) -> dict[str, Any]:
    kw = dict(spec["fit"])
    extra = dict(VARIANTS[variant])
    if extra.pop("calibrate", False):
        kw.update(calibrate=spec["key"], calibrate_decades=spec["decades"])
    if "asymmetry" in extra:
        from scalinglab import laws
        from scalinglab.laws import Objective
        o = laws.get(spec["law"]).objective
        kw["objective"] = Objective(o.kind, o.delta, o.space, extra.pop("asymmetry"))
    kw.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rollout(spec["df"], spec["law"], spec["key"], decades=spec["decades"], bootstrap=bootstrap,
                       seed=seed, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="porian,gadre,datablations,epoch",
                    help="comma-separated families or set names (porian, gadre, datablations, epoch, quickstart)")
    ap.add_argument("--variants", default="plain,calibrated", help=f"comma-separated, of {sorted(VARIANTS)}")
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quickstart-store", action="append", default=[], help="a quickstart runs.db (repeatable)")
    ap.add_argument("--json", type=Path, default=None, help="write every rollout result here")
    args = ap.parse_args()
    wanted = args.sets.split(",")
    sets: dict[str, dict[str, Any]] = {}
    for fam, make in (("porian", porian_sets), ("gadre", gadre_sets), ("datablations", datablations_sets),
                      ("epoch", epoch_sets)):
        for name, spec in make().items():
            if fam in wanted or name in wanted:
                sets[name] = spec
    sets.update(quickstart_sets(args.quickstart_store))
    variants = args.variants.split(",")
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; bootstrap {args.bootstrap}, seed {args.seed}")
    print(f"{'set':<44} {'variant':<18} {'groups':>6} {'points':>6} {'ARE':>7} {'cov80':>6} {'cov95':>6} {'s':>6}")
    results: dict[str, dict[str, Any]] = {}
    with threadpool_limits(1):
        for name, spec in sets.items():
            for v in variants:
                t0 = time.perf_counter()
                try:
                    r = run_set(spec, v, args.bootstrap, args.seed)
                except DataError as exc:      # e.g. a store whose final points span 2 budgets only
                    print(f"{name:<44} {v:<18} skipped: {exc}")
                    continue
                dt = time.perf_counter() - t0
                results.setdefault(name, {})[v] = r

                def pct(x: float | None) -> str:
                    return "   -" if x is None else f"{100 * x:5.1f}"
                print(f"{name:<44} {v:<18} {len(r['groups']):>6} {r['n_points']:>6} {100 * r['are_mean']:6.2f}% "
                      f"{pct(r['coverage_80']):>6} {pct(r['coverage_95']):>6} {dt:6.1f}", flush=True)
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
