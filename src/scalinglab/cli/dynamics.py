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
from ..errors import DataError, ParameterError, invalid, row_label
from ..fit import Fit, LawFit
from ..fit.anneal import (
    ANCHOR_MODES,
    CURVE_LAWS,
    add_store_areas,
    anchored_curve,
    fit_decay,
    fit_decay_profile,
    predict_curve,
    schedule_curve,
)
from ..fit.critical import critical_batch_study
from ..ladder.schedules import WSD_SHAPES
from ..laws.anneal import curve_areas_for_points, lr_curves_of_points
from ..laws.multipower import derive_curves
from ..plan.anneal import best_wsd_decay
from ..plan.hparams import plan_hparams
from ..plan.su import METHODS, SCORES, fit_su, fit_su_method, su_backtest, su_score_runs, su_select
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
        click.option("--anchor", "anchor", type=click.Path(dir_okay=False), default=None, metavar="REF.csv",
                     help="Curve fit with --schedule or --points: anchor the prediction on a measured reference run "
                          "(rows run, step, lr, loss; an empty loss: a row giving the lr only): loss = reference's "
                          "measured loss + the law's difference between the two schedules (--anchor-mode; "
                          "fit.anneal.anchored_curve)."),
        click.option("--anchor-run", "anchor_run", default=None, metavar="RUN",
                     help="With --anchor: the reference run, when the file has several."),
        click.option("--anchor-mode", "anchor_mode", type=click.Choice(ANCHOR_MODES), default="branch",
                     show_default=True,
                     help="With --anchor: how much of the law's residual on the reference is carried (branch: the "
                          "reference's curve up to the step the schedule departs from it, then its measured loss "
                          "there + the law's change, so steps after the reference's end are predicted too; full: "
                          "the residual at every step; lr: scaled by lr / reference lr; smooth: a cubic in ln step "
                          "of it; none: the plain law)."),
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
    return kw.get("schedule") is not None or bool(kw.get("best_decay")) or kw.get("anchor") is not None


def predict_anneal(fit: Fit, points: str | None, mapping: Sequence[str], seed: int, as_json: bool,
                   kw: dict[str, Any]) -> None:
    """``predict`` for a curve-law fit (anneal, multipower): the predicted loss along a schedule or along
    a file's curves."""
    if fit.law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the fit given --schedule" + (" / --anchor" if kw.get("anchor") else ""),
                                     fit.law,
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
    for name in ("anchor_run", "anchor_mode"):
        if kw.get("anchor") is None and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            raise ParameterError(invalid(f"The --{name.replace('_', '-')} option", kw[name], "given only with --anchor REF.csv"))
    if kw.get("anchor") is not None:
        if kw.get("best_decay"):
            raise ParameterError(invalid("The --anchor option", kw["anchor"], "given with --schedule or --points, "
                                         "not --best-decay"))
        return _predict_anchored(fit, points, mapping, seed, as_json, kw)
    if kw.get("best_decay"):
        if sched != "wsd":
            raise ParameterError(invalid("The --schedule of --best-decay", sched if sched else "(none given)",
                                         "'wsd' (give --schedule wsd)"))
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
        emit_json({"law": fit.law, "ci_level": fit.ci_level, "anchored": False, **kind, "predictions": rows,
                   "warnings": warns})
        return
    print_rows(rows, ["run", "step", "lr", "loss", "interval"], title=f"{fit.law} law: predicted loss along the curve")
    console().print(interval_line(kind["interval_kind"], kind["level"]))
    for w in warns:
        console().print(f"warning: {w}")


def _anchor_rows(path: str, run: str | None) -> tuple[str, Any, Any, Any]:
    """The reference run of an anchor file (rows run, step, lr, loss): its name, the learning rate of every
    update 1..its last step (linear between logged steps, held before the first, as for --points), its
    measured steps and losses. A row with an empty loss gives the learning rate only (rows for every
    update make the reference's curve exact). Bad input: a one-line DataError naming the field and value."""
    import numpy as np

    ref = _table.load(path)
    for col in ("step", "lr", "loss"):
        if col not in ref.columns:
            raise DataError(f"the anchor file {path!r} has no column {col!r} (columns: {list(ref.columns)}); "
                            "an anchored prediction needs the measured reference run's step, lr and loss.")
    if "run" not in ref.columns:
        ref = ref.assign(run="reference")
    runs = list(dict.fromkeys(str(r) for r in ref["run"]))
    if run is None and len(runs) > 1:
        raise DataError(invalid(f"The runs of the anchor file {path!r}", runs, "one run, or one chosen with "
                                "--anchor-run RUN"))
    name = runs[0] if run is None else run
    if name not in runs:
        raise DataError(invalid("The --anchor-run", name, f"one of the anchor file's runs {runs}"))
    ref = ref[ref["run"].astype(str) == name]
    vals = {}
    for col, what in (("step", "an integer >= 1"), ("lr", "a non-negative number"), ("loss", "a positive number (nats)")):
        v = pd.to_numeric(ref[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | ((v < 1) | (v != np.round(v)) if col == "step" else (v < 0) if col == "lr" else (v <= 0))
        if col == "loss":   # an empty loss: a row that gives the learning rate only
            bad &= ~ref[col].isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(invalid(f"Column {col!r} of the anchor file (run {name!r}, {row_label(ref, ref.index[i])})",
                                    ref[col].iloc[i], what))
        vals[col] = v
    st = vals["step"].astype(np.int64)
    order = np.argsort(st, kind="stable")
    st, lr, loss = st[order], vals["lr"][order], vals["loss"][order]
    if np.any(np.diff(st) == 0):
        raise DataError(invalid(f"Column 'step' of the anchor file (run {name!r})", int(st[np.flatnonzero(np.diff(st) == 0)[0]]),
                                "each step once (one loss per step)"))
    eta = np.interp(np.arange(1, int(st[-1]) + 1, dtype=float), st.astype(float), lr)
    measured = ~np.isnan(loss)
    if not measured.any():
        raise DataError(invalid(f"Column 'loss' of the anchor file (run {name!r})", "no value",
                                "a measured loss on at least one row"))
    return name, eta, st[measured], loss[measured]


def _predict_anchored(fit: Fit, points: str | None, mapping: Sequence[str], seed: int, as_json: bool,
                      kw: dict[str, Any]) -> None:
    """``predict --schedule ... --anchor REF.csv`` / ``--points CURVE --anchor REF.csv``."""
    import numpy as np

    sched = kw.get("schedule")
    mode = kw["anchor_mode"]
    name, ref_eta, ref_st, ref_loss = _anchor_rows(kw["anchor"], kw.get("anchor_run"))
    lo, hi = int(ref_st[0]), int(ref_st[-1])

    def one(run: str, eta: Any, steps: Any) -> pd.DataFrame:
        # branch: steps after the departure need no reference; anchored_curve checks the departure, then the rest
        bad = ((steps < lo) | (steps > hi)) & (mode != "branch")
        if bad.any():
            raise DataError(invalid(f"The step of run {run!r}", int(steps[np.argmax(bad)]),
                                    f"a step the anchor run {name!r} covers ({lo}..{hi})"))
        out = anchored_curve(fit, eta, steps, ref_eta, ref_st, ref_loss, mode=mode, seed=seed)
        out.insert(0, "run", run)
        return out

    if sched:
        n = _steps(kw)
        if n > hi and mode != "branch":
            raise DataError(invalid("The --steps", n, f"at most {hi}, the last step the anchor run {name!r} covers "
                                    "(or --anchor-mode branch)"))
        eta = schedule_curve(sched, n, _lr(kw), warmup_steps=kw["sched_warmup"], warmup_frac=kw["sched_warmup_frac"],
                             decay_frac=kw["sched_decay_frac"], decay_shape=kw["sched_decay_shape"],
                             final_lr_frac=kw["sched_final"], batch_tokens=kw.get("sched_batch") or 0,
                             context=kw.get("sched_context") or 0)
        st = ref_st[ref_st <= n]
        if n > hi:   # branch: past the reference's end, on its last spacing, and the last step
            gap = int(ref_st[-1] - ref_st[-2]) if len(ref_st) > 1 else 1
            st = np.unique(np.r_[st, np.arange(hi + gap, n + 1, gap), n])
        stride = kw.get("stride") or max(1, len(st) // 50)
        st = np.unique(np.r_[st[::stride], st[-1]])
        frames = [one(sched, eta, st)]
    elif points:
        pts = _table.load(points, mapping=_table.parse_assignments(mapping, "--map"))
        for col in ("step", "lr"):
            if col not in pts.columns:
                raise DataError(f"the curve file {points!r} has no column {col!r} (columns: {list(pts.columns)}); "
                                "an anneal prediction needs run, step and lr.")
        if "run" not in pts.columns:
            pts = pts.assign(run="run")
        frames = [one(run, eta, st) for run, (st, eta) in lr_curves_of_points(pts).items()]
    else:
        raise ParameterError("give --anchor REF.csv with --schedule NAME --steps N --lr X, or --points CURVE (run, step, lr).")
    out = pd.concat(frames, ignore_index=True)
    if points and kw.get("stride"):
        out = out.iloc[::kw["stride"]]
    warns = list(dict.fromkeys(w for f in frames for w in f.attrs["warnings"]))
    rows = [{"run": r.run, "step": int(r.step), "lr": float(r.lr), "loss": float(r.prediction),
             "plain": float(r.plain), "residual": float(r.residual),
             "interval": None if math.isnan(r.lo) else [float(r.lo), float(r.hi)]} for r in out.itertuples()]
    anchor = {"file": kw["anchor"], "run": name, "mode": mode, "steps": [lo, hi],
              "noise": float(frames[0].attrs["ref_noise"]),
              "departure": [f.attrs["departure"] for f in frames] if mode == "branch" else None}
    if as_json:
        emit_json({"law": fit.law, "ci_level": fit.ci_level, "anchored": True, "anchor": anchor,
                   "interval_kind": frames[0].attrs["interval"], "level": frames[0].attrs["level"],
                   "predictions": rows, "warnings": warns})
        return
    print_rows(rows, ["run", "step", "lr", "loss", "plain", "interval"],
               title=f"{fit.law} law anchored on run {name!r} ({mode}): predicted loss along the curve")
    how = ("up to the step the schedule departs from it, then the law's change from there" if mode == "branch"
           else "at the same step")
    console().print(f"loss = the law + its residual on the measured reference {name!r} {how} ({mode}); "
                    f"plain = the law alone; reference point noise {100 * anchor['noise']:.2f}%")
    console().print(interval_line(frames[0].attrs["interval"], frames[0].attrs["level"]))
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
@click.option("--su-fit", "su_fit", type=click.Choice(["two-stage", "joint", "joint-width", "joint-trimmed", "auto"]),
              default="two-stage", show_default=True,
              help="With --su-held-out: two-stage = B_crit(L) from the hyperbolas, then kaplan_steps on S_min; joint = "
                   "kaplan_steps_batch (B_* and alpha_B fitted with the trajectory law on the curves); joint-width = "
                   "the same on the runs of the held-out run's N only (alpha_N held at 1); joint-trimmed = joint "
                   "without the fit runs whose joint leave-one-out error exceeds --su-trim x the median; auto = the one (of "
                   "--su-methods, at each of --su-windows) with the lowest leave-one-run-out error over the fit runs.")
@click.option("--su-window", "su_window", type=float, default=1.0, show_default=True,
              help="With a joint --su-fit: fit the points after this many x each run's warmup (>= 1).")
@click.option("--su-windows", "su_windows", default="1,2,3,4", show_default=True,
              help="With --su-fit auto: the joint windows tried (comma-separated, besides two-stage).")
@click.option("--su-methods", "su_methods", default="joint", show_default=True,
              help="With --su-fit auto: the joint methods tried at each window besides two-stage "
                   "(comma-separated: joint, joint-width, joint-trimmed).")
@click.option("--su-trim", "su_trim", type=float, default=3.0, show_default=True,
              help="With --su-fit joint-trimmed or auto: a fit run whose joint leave-one-out error exceeds this many "
                   "times the median is left out of the joint-trimmed fit (> 1).")
@click.option("--su-score", "su_score", default="interior", show_default=True,
              help="With --su-fit auto: the leave-one-out folds that choose: interior (batches inside the sweep), "
                   "all, same-width (the held-out run's N), same-width-interior.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON here (CB.json).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def critical_batch_cmd(store_path: str, targets: Sequence[float], where: str | None, seed: int, ci_level: float,
                       held_out: str | None, su_fit: str, su_window: float, su_windows: str, su_methods: str,
                       su_score: str, su_trim: float, out: str | None, as_json: bool) -> None:
    """Critical batch per target loss from the stored curves (McCandlish hyperbola, Zhang's 20% rule,
    B_simple), and B_crit against the loss (Kaplan) and the tokens (Zhang, Bergsma); with
    --su-held-out, Su et al.'s trajectory of a held-out run."""
    if out:
        check_out_file(out)
    ctx = click.get_current_context()
    given = [f"--{n.replace('_', '-')}" for n in ("su_fit", "su_window", "su_windows", "su_methods", "su_score",
                                                         "su_trim")
             if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
    if held_out is None and given:   # were silently ignored
        raise ParameterError(invalid(f"The {given[0]} option", ctx.params[given[0][2:].replace('-', '_')],
                                     "given only with --su-held-out RUN"))
    if "--su-window" in given and su_fit not in ("joint", "joint-width", "joint-trimmed"):
        raise ParameterError(invalid("The --su-window option", su_window, f"given only with a joint --su-fit "
                                     f"(got --su-fit {su_fit}"
                                     f"{'; auto tries --su-windows' if su_fit == 'auto' else ''})"))
    for opt, val in (("--su-windows", su_windows), ("--su-methods", su_methods), ("--su-score", su_score)):
        if opt in given and su_fit != "auto":
            raise ParameterError(invalid(f"The {opt} option", val, f"given only with --su-fit auto (got --su-fit {su_fit})"))
    windows = _windows(su_windows)
    methods = [m.strip() for m in su_methods.split(",") if m.strip()]
    if not methods or any(m not in METHODS[1:] for m in methods) or len(set(methods)) < len(methods):
        raise ParameterError(invalid("The --su-methods", su_methods,
                                     f"distinct comma-separated names among {list(METHODS[1:])} (two-stage is always tried)"))
    if su_score not in SCORES:
        raise ParameterError(invalid("The --su-score", su_score, f"one of {list(SCORES)}"))
    if "--su-trim" in given and su_fit not in ("joint-trimmed", "auto"):
        raise ParameterError(invalid("The --su-trim option", su_trim,
                                     f"given only with --su-fit joint-trimmed or auto (got --su-fit {su_fit})"))
    if not (math.isfinite(su_trim) and su_trim > 1):
        raise ParameterError(invalid("The --su-trim", su_trim, "a number > 1 (times the median leave-one-out error)"))
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
        N_held = float(df.loc[df["run"] == held_out, "N_nonembed"].iloc[0])
        if su_fit == "auto":
            score_runs = su_score_runs(fit_df, su_score, held_out, N_held)
            sel = su_select(fit_df, [("two-stage", 1.0)] + [(m, w) for m in methods for w in windows],
                            targets=list(targets), seed=seed, score_runs=score_runs, trim=su_trim)
            (su_fit, su_window), selection = sel["chosen"], sel["scores"]
            trimmed = next((sc.get("trimmed") for sc in selection
                            if (sc["method"], sc["window"]) == (su_fit, su_window)), None)
        else:
            trimmed = None
        if su_fit != "two-stage":
            su, bs, ab = fit_su_method(fit_df, su_fit, window=su_window, N=N_held, trimmed=trimmed, trim=su_trim)
        else:
            if not law or not law.get("alpha_B") or law["alpha_B"] <= 0:
                raise DataError("Su et al.'s two-stage trajectory needs a B_crit(L) that falls as L rises (alpha_B > 0) "
                                f"from 2 or more target losses; got {law} (try --su-fit joint).")
            su, bs, ab = fit_su(fit_df, law["B_star"], law["alpha_B"]), law["B_star"], law["alpha_B"]
        res["su"] = {"method": su_fit, "window": su_window if su_fit != "two-stage" else 1.0,
                     "kaplan_steps": {k: su.params[k] for k in ("N_c", "alpha_N", "S_c", "alpha_S")},
                     "B_crit_law": {"B_star": bs, "alpha_B": ab, "inverse_alpha_B": 1.0 / ab},
                     "warnings": su.warnings, **su_backtest(df, held_out, su, bs, ab, min(targets))}
        if "trimmed" in su.data:
            res["su"]["trimmed"] = su.data["trimmed"]
        if selection is not None:
            res["su"]["selection"] = [{k: v for k, v in sc.items()} for sc in selection]
            res["su"]["score"] = su_score
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
                                + (f" (window {fmt(sc['window'])} x warmup)" if sc["method"] != "two-stage" else "")
                                + f": could not be fitted ({sc['failed']['every fold']})")
                continue
            console().print(f"Su et al. leave-one-run-out, {sc['method']}"
                            + (f" (window {fmt(sc['window'])} x warmup)" if sc["method"] != "two-stage" else "")
                            + f": mean |rel err| {100 * sc['mean']:.2f}% over {len(sc['runs'])} fit runs"
                            + ("" if sc["interior_mean"] is None else
                               f", {100 * sc['interior_mean']:.2f}% over the interior batches")
                            + (f"; {len(sc['failed'])} fold(s) could not be fitted: {sorted(sc['failed'])}"
                               if sc["failed"] else ""))
        bl = su["B_crit_law"]
        if "score" in su:
            console().print(f"Su et al. chosen by the {su['score']} leave-one-out folds")
        if "trimmed" in su:
            console().print(f"Su et al. joint-trimmed: fitted without {su['trimmed'] or 'no run'}")
        console().print(f"Su et al. ({su['method']}"
                        + (f", window {fmt(su['window'])} x warmup" if su["method"] != "two-stage" else "")
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
