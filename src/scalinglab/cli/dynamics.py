"""Training dynamics on the command line: whole predicted curves of the annealing law (``predict
--schedule`` / ``--points`` for an anneal fit, ``--best-decay``), ``critical-batch``, and the
hyperparameter part of ``plan`` (``--hparams``, ``--critical-batch``)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import click
import pandas as pd

from .. import table as _table
from ..errors import DataError, ParameterError, invalid
from ..fit import Fit, LawFit
from ..fit.anneal import (
    CURVE_LAWS,
    add_store_areas,
    fit_decay,
    fit_decay_profile,
    predict_curve,
    schedule_curve,
)
from ..fit.critical import critical_batch_study
from ..ladder.schedules import WSD_SHAPES
from ..laws.anneal import curve_areas_for_points
from ..laws.multipower import derive_curves
from ..plan.anneal import best_wsd_decay
from ..plan.hparams import plan_hparams
from ..plan.su import fit_su, fit_su_joint, su_backtest, su_select
from . import main
from .output import console, emit_json, flags, fmt, interval_line, print_rows
from .paths import check_out_file, write_error


# -- predict: whole curves of the annealing law -------------------------------------------------------
def schedule_options(f: Any) -> Any:
    """The options of ``predict`` that describe a learning-rate schedule (for an anneal fit)."""
    opts = [
        click.option("--schedule", "schedule", default=None,
                     help="Anneal fit: predict the whole curve of this schedule (constant, cosine, linear, wsd, or "
                          "any the trainer knows)."),
        click.option("--steps", "sched_steps", type=int, default=None, help="With --schedule: optimizer steps."),
        click.option("--lr", "sched_lr", type=float, default=None, help="With --schedule: the peak learning rate."),
        click.option("--warmup", "sched_warmup", type=int, default=0, show_default=True,
                     help="With --schedule: warmup steps."),
        click.option("--warmup-frac", "sched_warmup_frac", type=float, default=0.0, show_default=True,
                     help="With --schedule: warmup as a fraction of the steps (when --warmup is 0)."),
        click.option("--decay-frac", "sched_decay_frac", type=float, default=0.2, show_default=True,
                     help="With --schedule wsd: the fraction of steps in the final decay."),
        click.option("--decay-shape", "sched_decay_shape", default="linear", show_default=True,
                     help="With --schedule wsd: linear, cosine or sqrt."),
        click.option("--final-lr-frac", "sched_final", type=float, default=0.1, show_default=True,
                     help="With --schedule: the cosine / WSD floor as a fraction of the peak."),
        click.option("--batch-tokens", "sched_batch", type=int, default=None,
                     help="With --schedule power: the run's batch in tokens (the Power scheduler follows the batch)."),
        click.option("--context", "sched_context", type=int, default=None,
                     help="With --schedule power: tokens per sequence (the batch in sequences is batch / context)."),
        click.option("--stride", type=int, default=None,
                     help="Anneal fit: predict every STRIDE-th step (default: about 50 points per curve)."),
        click.option("--best-decay", is_flag=True,
                     help="With --schedule wsd: the decay fraction and shape with the lowest predicted final loss."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def anneal_store_fit(fitter: LawFit, store_path: str, df: pd.DataFrame) -> Fit:
    """``fit --store --law anneal``: the fit with the momentum factor lambda of S2 profiled over
    ``fit.anneal.DECAYS`` (``fit_decay_profile``), every setting of the fitter kept (--bound, --weight
    and --calibrate too: they were dropped)."""
    from ..store import Store
    with Store(store_path, create=False) as store:
        configs = store.run_configs()
    return fit_decay_profile(df, configs, objective=fitter.objective, fixed=fitter.fixed, bootstrap=fitter.bootstrap,
                             seed=fitter.seed, ci_level=fitter.ci_level, source=fitter.source, bounds=fitter.bounds,
                             weight_by=fitter.weight_by, calibrate=fitter.calibrate,
                             calibrate_decades=fitter.calibrate_decades, calibrate_scheme=fitter.calibrate_scheme)


def anneal_requested(kw: dict[str, Any]) -> bool:
    """Whether ``predict`` was given a schedule option (only an anneal fit reads them)."""
    return kw.get("schedule") is not None or bool(kw.get("best_decay"))


def predict_anneal(fit: Fit, points: str | None, mapping: Sequence[str], seed: int, as_json: bool,
                   kw: dict[str, Any]) -> None:
    """``predict`` for a curve-law fit (anneal, multipower): the predicted loss along a schedule or along
    a file's curves."""
    if fit.law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the fit given --schedule", fit.law,
                                     f"one of {CURVE_LAWS} (only the annealing and multi-power laws read a schedule)"))
    with flags(SCHEDULE_FLAGS):
        _predict_anneal(fit, points, mapping, seed, as_json, kw)


#: the run-config and schedule names of a schedule's fields -> predict's options
SCHEDULE_FLAGS = {"The 'batch_tokens' and 'context' of a 'power' schedule": "--batch-tokens and --context of --schedule power",
                  "The 'schedule.name' field": "--schedule", "'schedule.name' field": "--schedule", "'schedule.decay_shape' field": "--decay-shape",
                  "'schedule.decay_frac' field": "--decay-frac", "'schedule.warmup_frac' field": "--warmup-frac",
                  "'schedule.warmup_steps' field": "--warmup", "'schedule.final_lr_frac' field": "--final-lr-frac",
                  "The 'peak' learning rate": "--lr", "'total_steps' parameter": "--steps",
                  "'warmup_steps' parameter": "--warmup",
                  "The 'steps' of the schedule": "--steps", "The 'stride'": "--stride"}


def _predict_anneal(fit: Fit, points: str | None, mapping: Sequence[str], seed: int, as_json: bool,
                    kw: dict[str, Any]) -> None:
    sched = kw.get("schedule")
    if points and sched:
        raise ParameterError("give either --points CURVE or --schedule, not both.")
    if kw.get("stride") is not None and kw["stride"] < 1:     # 0 read as "the default", -k as reversed rows
        raise ParameterError(invalid("The 'stride'", kw["stride"], "a positive integer"))
    ctx = click.get_current_context()
    given = {n for n in ("sched_decay_frac", "sched_decay_shape", "sched_batch", "sched_context")
             if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT}
    opt = {"sched_decay_frac": "--decay-frac", "sched_decay_shape": "--decay-shape", "sched_batch": "--batch-tokens",
           "sched_context": "--context"}
    for name, modes in (("sched_decay_frac", ("wsd", "power")), ("sched_decay_shape", ("wsd", "power")),
                        ("sched_batch", ("power",)), ("sched_context", ("power",))):
        if name in given and (sched not in modes or (kw.get("best_decay") and name == "sched_decay_frac")):
            why = "--best-decay tries every fraction" if sched in modes else f"--schedule {sched} ignores it"
            raise ParameterError(invalid(f"The {opt[name]} option", kw[name],
                                         f"given only with --schedule {' or '.join(modes)} ({why})"))
    if kw.get("best_decay"):
        if sched != "wsd":
            raise ParameterError(invalid("The --schedule of --best-decay", sched, "'wsd'"))
        if kw["sched_decay_shape"] not in WSD_SHAPES:      # --best-decay tries every shape: a typo is still one
            raise ParameterError(invalid("The --decay-shape", kw["sched_decay_shape"], f"one of {WSD_SHAPES}"))
        res = best_wsd_decay(fit, _steps(kw), _lr(kw), warmup_steps=kw["sched_warmup"],
                             warmup_frac=kw["sched_warmup_frac"], final_lr_frac=kw["sched_final"], seed=seed)
        if as_json:
            emit_json({"law": fit.law, "ci_level": fit.ci_level, **res})
            return
        print_rows(list(res["by_shape"].values()), ["decay_shape", "decay_frac", "loss", "interval", "reliable"],
                   title=f"best WSD decay for {res['steps']} steps at lr {res['lr']:g} (predicted final loss)")
        b = res["best"]
        console().print(f"best: {b['decay_shape']} decay over {b['decay_frac']:g} of the run, loss {fmt(b['loss'])}")
        console().print(interval_line(res["interval_kind"], res["level"]))
        for w in res["warnings"]:   # the fit's (were not printed), and any interval clipped at 0
            console().print(f"warning: {w}")
        return
    if sched:
        eta = schedule_curve(sched, _steps(kw), _lr(kw), warmup_steps=kw["sched_warmup"],
                             warmup_frac=kw["sched_warmup_frac"], decay_frac=kw["sched_decay_frac"],
                             decay_shape=kw["sched_decay_shape"], final_lr_frac=kw["sched_final"],
                             batch_tokens=kw.get("sched_batch") or 0, context=kw.get("sched_context") or 0)
        stride = kw.get("stride") or max(1, len(eta) // 50)
        out = predict_curve(fit, eta, stride=stride, seed=seed)
        warns = list(out.attrs["warnings"])
        kind = {"interval_kind": out.attrs["interval"], "level": out.attrs["level"]}
        out.insert(0, "run", sched)
    elif points:
        pts = _table.load(points, mapping=_table.parse_assignments(mapping, "--map"))
        if "lr" not in pts.columns:
            raise DataError(f"the curve file {points!r} has no column 'lr' (columns: {list(pts.columns)}); "
                            "an anneal prediction needs run, step and lr.")
        if "run" not in pts.columns:
            pts = pts.assign(run="run")
        pts = derive_curves(curve_areas_for_points(pts, fit_decay(fit)))
        from ..fit.predict import predict
        pred = predict(fit, pts[list(fit.law_.inputs)], seed=seed)
        warns = list(pred.attrs["warnings"])
        kind = {"interval_kind": pred.attrs["interval"], "level": pred.attrs["level"]}
        pred = pred.drop(columns=list(fit.law_.inputs))
        pts = pts.assign(S2=pts["S2"] if fit.law == "anneal" else float("nan"))
        out = pd.concat([pts[["run", "step", "lr", "S1", "S2"]].reset_index(drop=True), pred.reset_index(drop=True)],
                        axis=1)
        if kw.get("stride"):
            out = out.iloc[::kw["stride"]]
    else:
        raise ParameterError("give an anneal fit --schedule NAME --steps N --lr X, or --points CURVE (run, step, lr).")
    rows = [{"run": r.run, "step": int(r.step), "lr": float(r.lr), "S1": float(r.S1),
             **({"S2": float(r.S2)} if fit.law == "anneal" else {}), "loss": float(r.prediction),
             "interval": None if math.isnan(r.lo) else [float(r.lo), float(r.hi)]} for r in out.itertuples()]
    if as_json:
        emit_json({"law": fit.law, "ci_level": fit.ci_level, **kind, "predictions": rows, "warnings": warns})
        return
    print_rows(rows, ["run", "step", "lr", "loss", "interval"], title=f"{fit.law} law: predicted loss along the curve")
    console().print(interval_line(kind["interval_kind"], kind["level"]))
    for w in warns:
        console().print(f"warning: {w}")


def _steps(kw: dict[str, Any]) -> int:
    if kw.get("sched_steps") is None:
        raise ParameterError("--schedule needs --steps N (optimizer steps).")
    return int(kw["sched_steps"])


def _lr(kw: dict[str, Any]) -> float:
    if kw.get("sched_lr") is None:
        raise ParameterError("--schedule needs --lr X (the peak learning rate).")
    return float(kw["sched_lr"])


# -- critical-batch ---------------------------------------------------------------------------------
@main.command("critical-batch")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
              help="The run store with the batch sweeps (every point of every run is read).")
@click.option("--target-loss", "targets", type=float, multiple=True, required=True,
              help="A target loss (nats/token); repeat for several.")
@click.option("--where", default=None, help="Keep curve points where an expression is true (README, 'Expressions').")
@click.option("--seed", default=0, type=int, show_default=True, help="Seed of the bootstraps.")
@click.option("--ci-level", default=0.95, type=float, show_default=True, help="Interval level.")
@click.option("--su-held-out", "held_out", default=None, metavar="RUN",
              help="Su et al.'s recipe: leave RUN out, fit kaplan_steps on S_min of the other curves, and "
                   "back-test RUN's predicted trajectory against its curve.")
@click.option("--su-fit", "su_fit", type=click.Choice(["two-stage", "joint", "auto"]), default="two-stage",
              show_default=True,
              help="With --su-held-out: two-stage = B_crit(L) from the hyperbolas, then kaplan_steps on S_min; joint = "
                   "kaplan_steps_batch (B_* and alpha_B fitted with the trajectory law on the curves); auto = the "
                   "one (and --su-windows) with the lowest leave-one-run-out error over the fit runs.")
@click.option("--su-window", "su_window", type=float, default=1.0, show_default=True,
              help="With --su-fit joint: fit the points after this many x each run's warmup (>= 1).")
@click.option("--su-windows", "su_windows", default="1,2,3,4", show_default=True,
              help="With --su-fit auto: the joint windows tried (comma-separated, besides two-stage).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON here (CB.json).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def critical_batch_cmd(store_path: str, targets: Sequence[float], where: str | None, seed: int, ci_level: float,
                       held_out: str | None, su_fit: str, su_window: float, su_windows: str, out: str | None,
                       as_json: bool) -> None:
    """Critical batch per target loss from the stored curves (McCandlish hyperbola, Zhang's 20% rule,
    B_simple), and B_crit against the loss (Kaplan) and the tokens (Zhang, Bergsma); with
    --su-held-out, Su et al.'s trajectory of a held-out run."""
    if out:
        check_out_file(out)
    ctx = click.get_current_context()
    given = [f"--{n.replace('_', '-')}" for n in ("su_fit", "su_window", "su_windows")
             if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
    if held_out is None and given:   # were silently ignored
        raise ParameterError(invalid(f"The {given[0]} option", ctx.params[given[0][2:].replace('-', '_')],
                                     "given only with --su-held-out RUN"))
    if "--su-window" in given and su_fit != "joint":
        raise ParameterError(invalid("The --su-window option", su_window, f"given only with --su-fit joint (got "
                                     f"--su-fit {su_fit}{'; auto tries --su-windows' if su_fit == 'auto' else ''})"))
    if "--su-windows" in given and su_fit != "auto":
        raise ParameterError(invalid("The --su-windows option", su_windows,
                                     f"given only with --su-fit auto (got --su-fit {su_fit})"))
    windows = _windows(su_windows)
    if not (math.isfinite(ci_level) and 0 < ci_level < 1):   # else checked only once a hyperbola is fitted
        raise ParameterError(invalid("--ci-level", ci_level, "a float in (0, 1)"))
    if not (math.isfinite(su_window) and su_window >= 1):
        raise ParameterError(invalid("The --su-window", su_window, "a number >= 1 (multiples of the warmup)"))
    from ..store import Store
    with Store(store_path, create=False) as store:
        df = add_store_areas(store.to_table(points="all", failed=False), store.run_configs())
    df = _table.apply_where(df, where)
    if held_out is not None and held_out not in set(df["run"]):
        raise DataError(invalid("The --su-held-out run", held_out, "a run of the store with curve points"))
    fit_df = df if held_out is None else df[df["run"] != held_out]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = critical_batch_study(fit_df, list(targets), seed=seed, ci_level=ci_level)
    res["source"] = f"store {store_path}"
    if held_out is not None:
        law = res["pooled"].get("vs_loss") or next(iter(res["vs_loss"].values()), None)
        selection = None
        if su_fit == "auto":
            sel = su_select(fit_df, [("two-stage", 1.0)] + [("joint", w) for w in windows], targets=list(targets),
                            seed=seed)
            (su_fit, su_window), selection = sel["chosen"], sel["scores"]
        if su_fit == "joint":
            su = fit_su_joint(fit_df, window=su_window)
            bs, ab = su.params["B_star"], su.params["alpha_B"]
        else:
            if not law or not law.get("alpha_B") or law["alpha_B"] <= 0:
                raise DataError("Su et al.'s two-stage trajectory needs a B_crit(L) that falls as L rises (alpha_B > 0) "
                                f"from 2 or more target losses; got {law} (try --su-fit joint).")
            su, bs, ab = fit_su(fit_df, law["B_star"], law["alpha_B"]), law["B_star"], law["alpha_B"]
        res["su"] = {"method": su_fit, "window": su_window if su_fit == "joint" else 1.0,
                     "kaplan_steps": {k: su.params[k] for k in ("N_c", "alpha_N", "S_c", "alpha_S")},
                     "B_crit_law": {"B_star": bs, "alpha_B": ab, "inverse_alpha_B": 1.0 / ab},
                     "warnings": su.warnings, **su_backtest(df, held_out, su, bs, ab, min(targets))}
        if selection is not None:
            res["su"]["selection"] = [{k: v for k, v in sc.items()} for sc in selection]
    if out:
        try:
            with open(out, "w") as fh:
                json.dump(res, fh, indent=2, default=float)
        except OSError as exc:
            raise write_error(exc, out) from None
    if as_json:
        emit_json(res)
        return
    print_rows(res["fits"], ["N_nonembed", "target", "n_runs", "S_min", "S_min_interval", "B_crit", "B_crit_interval",
                             "E_min", "B_zhang", "B_zhang_hyperbola", "B_simple"],
               title="critical batch per target loss (batch, B_crit, E_min in tokens; S_min in steps)")
    for n, v in res["vs_loss"].items():
        console().print(f"N_nonembed {n}: B_crit = {fmt(v['B_star'])} / L^{fmt(v['inverse_alpha_B'])} "
                        f"(1/alpha_B interval {fmt(v['inverse_alpha_B_interval'])}); "
                        f"vs tokens: B_crit ~ D^{fmt(res['vs_tokens'][n]['exponent'])} "
                        f"(interval {fmt(res['vs_tokens'][n]['exponent_interval'])})")
    if "su" in res:
        su = res["su"]
        for sc in su.get("selection", []):
            if sc["mean"] is None:   # no fold could be fitted
                console().print(f"Su et al. leave-one-run-out, {sc['method']}"
                                + (f" (window {fmt(sc['window'])} x warmup)" if sc["method"] == "joint" else "")
                                + f": could not be fitted ({sc['failed']['every fold']})")
                continue
            console().print(f"Su et al. leave-one-run-out, {sc['method']}"
                            + (f" (window {fmt(sc['window'])} x warmup)" if sc["method"] == "joint" else "")
                            + f": mean |rel err| {100 * sc['mean']:.2f}% over {len(sc['runs'])} fit runs"
                            + ("" if sc["interior_mean"] is None else
                               f", {100 * sc['interior_mean']:.2f}% over the interior batches")
                            + (f"; {len(sc['failed'])} fold(s) could not be fitted: {sorted(sc['failed'])}"
                               if sc["failed"] else ""))
        bl = su["B_crit_law"]
        console().print(f"Su et al. ({su['method']}"
                        + (f", window {fmt(su['window'])} x warmup" if su["method"] == "joint" else "")
                        + f"): B_crit = {fmt(bl['B_star'])} / L^{fmt(bl['inverse_alpha_B'])}; "
                        f"kaplan_steps {', '.join(f'{k} = {fmt(v)}' for k, v in su['kaplan_steps'].items())}; "
                        f"held-out {su['run']} ({su['points']} points): mean |rel err| "
                        f"{100 * su['mean_abs_rel_error']:.2f}%, max {100 * su['max_abs_rel_error']:.2f}%; "
                        f"loss floor {fmt(su['loss_floor'])}; to {fmt(su['to_target']['target'])}: "
                        f"{fmt(su['to_target']['steps'])} steps, {fmt(su['to_target']['tokens'])} tokens")
    for w in res["warnings"]:
        console().print(f"warning: {w}")
    if out:
        console().print(f"result written to {out}")


def _windows(text: str) -> list[float]:
    try:
        ws = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        ws = []
    if not ws or any(not (math.isfinite(w) and w >= 1) for w in ws):
        raise ParameterError(invalid("The --su-windows", text, "comma-separated numbers >= 1 (multiples of the warmup)"))
    return ws


# -- plan: learning rate and batch ------------------------------------------------------------------
def hparam_options(f: Any) -> Any:
    """``plan``'s options for the learning rate and batch of the planned run."""
    f = click.option("--hparams", default=None, metavar="li2025|deepseek2024|FIT.json",
                     help="Also plan the peak lr and batch (tokens): a Step-Law preset, DeepSeek's, or a steplaw fit.")(f)
    f = click.option("--critical-batch", "critical_batch", type=click.Path(dir_okay=False), default=None,
                     help="A critical-batch result (critical-batch --out): B_crit at the planned loss.")(f)
    return f


def add_hparams(res: dict[str, Any], hparams: str | None, critical_batch: str | None, seed: int) -> dict[str, Any]:
    """The plan with ``lr``, ``batch_tokens`` and ``b_crit_tokens`` (and where each came from) added."""
    if hparams is None and critical_batch is None:
        return res
    cb = None
    if critical_batch is not None:
        try:
            with open(critical_batch) as fh:
                cb = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read --critical-batch {critical_batch!r}: {exc}") from None
    return plan_hparams(res, hparams, cb, seed=seed)


def print_hparams(res: dict[str, Any]) -> None:
    """The learning-rate and batch lines of a plan, when it has them (from --hparams, --critical-batch)."""
    if "hparams_source" not in res:
        return
    for key, unit in (("lr", ""), ("batch_tokens", " tokens"), ("b_crit_tokens", " tokens")):
        if key in res and res[key] is not None:
            console().print(f"{key}: {fmt(res[key])}{unit} (interval {fmt(res.get(key + '_interval'))}; "
                            f"from {res['hparams_source'].get(key)})")
            kind = res.get("hparams_interval", {}).get(key)
            if kind:
                console().print(f"  {key} interval: {kind}")


# -- lr-batch: the Adam learning-rate-vs-batch exponent ----------------------------------------------
@main.command("lr-batch")
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
              help="A run store with a learning-rate x batch grid (its final points are read).")
@click.option("--map", "mapping", multiple=True, metavar="COL=SOURCE",
              help="Column mapping (e.g. --map N=N_nonembed); DATA needs N, D, lr, batch, loss.")
@click.option("--where", default=None, help="Keep rows where an expression is true (README, 'Expressions').")
@click.option("--ci-level", default=0.95, type=float, show_default=True, help="Interval level.")
@click.option("--d-rtol", default=0.05, type=float, show_default=True,
              help="Token counts D within this relative tolerance form one (N, D) cell.")
@click.option("--drop-edges", is_flag=True, help="Leave out batches whose best lr is at an edge of the lr grid.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lr_batch_cmd(data: str | None, store_path: str | None, mapping: Sequence[str], where: str | None,
                 ci_level: float, d_rtol: float, drop_edges: bool, out: str | None, as_json: bool) -> None:
    """The Adam learning-rate-vs-batch exponent k (lr_opt ~ B^k; square-root rule k = 1/2) of a
    learning-rate x batch grid: per (N, D) cell the best lr of each batch (parabola in ln lr), then k
    pooled over the cells (one intercept each) and per cell, with Student-t intervals."""
    from ..fit.steplaw import lr_batch_exponent
    if out:
        check_out_file(out)
    if (data is None) == (store_path is None):
        raise DataError("give either a DATA file or --store PATH (exactly one).")
    if store_path is not None:
        from ..store import Store
        with Store(store_path, create=False) as store:
            df = store.to_table(points="final", failed=False)
        if mapping:
            df = _table.apply_map(df, _table.parse_assignments(mapping, "--map"))
        df = _table.derive_standard(df)
        source = f"store {store_path} (final points)"
    else:
        df = _table.load(data, mapping=_table.parse_assignments(mapping, "--map"))   # type: ignore[arg-type]
        source = str(data)
    df = _table.apply_where(df, where)
    with flags({"d_rtol": "--d-rtol", "The interval level": "--ci-level"}):
        res = lr_batch_exponent(df, level=ci_level, d_rtol=d_rtol, drop_edges=drop_edges)
    res["source"] = source
    if out:
        try:
            with open(out, "w") as fh:
                json.dump(res, fh, indent=1)
        except OSError as exc:
            raise write_error(exc, out) from None
    if as_json:
        emit_json(res)
        return
    print_rows(res["by_cell"], ["N", "D", "batches", "edges", "exponent", "interval"],
               title="learning-rate-vs-batch exponent per (N, D) cell: lr_opt ~ B^k")
    console().print(f"pooled over {res['n_cells']} cell(s): k = {fmt(res['exponent'])}, "
                    f"{100 * res['level']:g}% interval {fmt(res['interval'])} "
                    f"(square-root rule: 0.5; linear: 1); {res['n_edges']} best lr at a grid edge"
                    + (" (left out)" if drop_edges else ""))
