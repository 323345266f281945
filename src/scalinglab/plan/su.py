"""Su et al.'s recipe end to end on stored runs: ``kaplan_steps`` fitted on S_min, then the minimum
loss, the steps and tokens to a target loss at any batch, and the loss trajectory at a batch size.

Su et al. 2024 ("Unraveling the Mystery of Scaling Laws: Part I", arXiv 2403.06563) estimate every
constant of Kaplan et al.'s formulas from small runs (LAWS.md section 2):

1. ``B_crit(L) = B_* / L^(1/alpha_B)`` from batch sweeps (:func:`scalinglab.fit.critical.critical_batch_study`);
2. every curve point after warmup turned into ``S_min = S / (1 + B_crit(L)/B)`` (Kaplan Eq. 5.4), and
   ``L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S`` fitted on them (:func:`fit_su`; N is
   ``N_nonembed``);
3. the predictions of :mod:`scalinglab.plan.steps` (loss floor, steps to a loss, trajectory), and
   :func:`su_backtest` scores the trajectory of a run held out of both fits against its curve.

The joint variant (:func:`fit_su_joint`) fits the six constants of steps 1-2 together, on the curves
themselves: the law ``kaplan_steps_batch`` is the root L of ``L = (N_c/N)^alpha_N + (S_c (1 +
B_crit(L)/B) / S)^alpha_S``, i.e. the trajectory of step 3, so each point's residual is the error of the
curve it predicts. Kaplan et al. (Sec. 5.1) fit B_crit(L) from steps to a target and then L(N, S_min);
when the steps-to-target hyperbolas are noisy (few batch sizes reach each target) their B_crit(L) must
be extrapolated below the lowest target, which the joint fit avoids. :func:`su_leave_one_out` scores
either variant by leaving each fit run out in turn (every stage refitted without it), so that a
method or a fit window can be chosen from the fit runs alone (:func:`su_select`).

The per-width variant (``joint-width``) fits ``kaplan_steps_batch`` on the runs of the predicted run's
N only: with one N, only the floor ``(N_c/N)^alpha_N`` of the law is identified, so alpha_N is held at 1
and N_c/N is that width's floor; B_*, alpha_B, S_c and alpha_S are that width's own. It trades the
constraint across widths (one alpha_N for every N) for freedom from it where the widths disagree.

The trimmed variant (``joint-trimmed``) fits ``joint`` on the runs that follow the law: the run whose
joint leave-one-out error is more than :data:`TRIM` times the median over the runs (e.g. one held back
by too high a learning rate: the law has no learning rate) is left out of the fit, one run at a time
(:func:`su_trimmed`), decided on the fit runs alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError, invalid
from ..fit.core import LawFit
from ..fit.result import Fit
from ..laws.kaplan import s_min
from .steps import loss_floor, loss_trajectory, steps_to_loss

__all__ = ["METHODS", "SCORES", "TRIM", "fit_su", "fit_su_joint", "fit_su_method", "su_backtest", "su_choose",
           "su_leave_one_out", "su_score_runs", "su_select", "su_trimmed"]

#: the ways of fitting the recipe's constants: B_crit(L) first then kaplan_steps (Kaplan, Su), jointly
#: on every width, or jointly on the predicted run's width alone (alpha_N held at 1)
METHODS = ("two-stage", "joint", "joint-width", "joint-trimmed")
#: joint-trimmed: a run whose joint leave-one-out error exceeds this many times the median is off the law
TRIM = 3.0
#: which leave-one-run-out folds choose a candidate (:func:`su_score_runs`)
SCORES = ("interior", "all", "same-width", "same-width-interior")


def _after_warmup(curves: pd.DataFrame, window: float = 1.0) -> pd.DataFrame:
    """Main-line points with a loss after ``window`` x the run's warmup (column ``warmup``, steps)."""
    df = curves[curves.get("branch", 0) == 0]
    if "warmup" in df.columns:
        df = df[df["step"] > window * df["warmup"]]
    return df.dropna(subset=["loss"])


def _check_window(window: float) -> float:
    if not (isinstance(window, (int, float)) and np.isfinite(window) and window >= 1.0):
        raise ParameterError(invalid("The fit window (multiples of the warmup) 'window'", window,
                                     "a number >= 1 (fit the points after window x each run's warmup)"))
    return float(window)


def fit_su(curves: pd.DataFrame, B_star: float, alpha_B: float, **lawfit: Any) -> Fit:
    """``kaplan_steps`` fitted on every main-line point after warmup (column ``warmup``, steps) of
    ``curves`` (a store table of all points), with ``steps = S_min`` from the critical-batch law."""
    df = _after_warmup(curves)
    if df.empty:
        raise DataError("no curve point after warmup to fit kaplan_steps on.")
    L = df["loss"].to_numpy(dtype=float)
    rows = pd.DataFrame({"N": df["N_nonembed"].to_numpy(dtype=float), "loss": L,
                         "steps": s_min(df["step"].to_numpy(dtype=float), df["batch"].to_numpy(dtype=float),
                                        B_star / L ** (1.0 / alpha_B))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("kaplan_steps", source="Su et al. recipe: S_min of stored curves", **lawfit).fit(rows).result_
    fit.data.update({"B_star": B_star, "alpha_B": alpha_B})
    return fit


def fit_su_joint(curves: pd.DataFrame, *, window: float = 1.0, **lawfit: Any) -> Fit:
    """``kaplan_steps_batch`` (the trajectory law, B_* and alpha_B free) fitted on every main-line point
    after ``window`` x warmup of ``curves`` (a store table of all points, with column ``warmup``).

    The result's ``params`` hold the four ``kaplan_steps`` constants and ``B_star``, ``alpha_B``;
    ``data`` records them under ``B_star``/``alpha_B`` too, as :func:`fit_su` does. With curves of one N
    (one width) alpha_N is held at 1 (only the floor ``(N_c/N)^alpha_N`` is identified; ``fixed`` in
    ``lawfit`` overrides it)."""
    df = _after_warmup(curves, _check_window(window))
    if df.empty:
        raise DataError(f"no curve point after {window:g} x warmup to fit kaplan_steps_batch on.")
    if df["batch"].nunique() < 2:
        raise DataError(invalid("The batch sizes of the curves", sorted(df["batch"].unique().tolist()),
                                "2 or more (B_crit(L) is fitted from how the curves differ by batch)"))
    rows = pd.DataFrame({"N": df["N_nonembed"].to_numpy(dtype=float), "step": df["step"].to_numpy(dtype=float),
                         "batch": df["batch"].to_numpy(dtype=float), "loss": df["loss"].to_numpy(dtype=float)})
    if rows["N"].nunique() == 1 and "fixed" not in lawfit:
        lawfit = {**lawfit, "fixed": {"alpha_N": 1.0}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("kaplan_steps_batch", source="Su et al. recipe, joint: stored curves", **lawfit).fit(rows).result_
    fit.data.update({"B_star": fit.params["B_star"], "alpha_B": fit.params["alpha_B"], "window": float(window)})
    return fit


def _b_law(fit: Fit, B_star: float | None, alpha_B: float | None) -> tuple[float, float]:
    """The B_crit(L) law to predict with: given, or the fit's own (joint), or the one it was fitted on."""
    bs = B_star if B_star is not None else fit.params.get("B_star", fit.data.get("B_star"))
    ab = alpha_B if alpha_B is not None else fit.params.get("alpha_B", fit.data.get("alpha_B"))
    if bs is None or ab is None:
        raise ParameterError(invalid("The critical-batch law of the fit", {"B_star": bs, "alpha_B": ab},
                                     "B_star and alpha_B (given, or in the fit)"))
    return float(bs), float(ab)


def su_backtest(curves: pd.DataFrame, run: str, fit: Fit, B_star: float | None = None,
                alpha_B: float | None = None, target: float | None = None) -> dict[str, Any]:
    """The trajectory of ``run`` (held out of the fits) predicted at its batch and N, against its
    curve after warmup; with the loss floor of its N, and (``target``) the steps and tokens to reach
    ``target`` at its batch and at the limits. ``B_star``/``alpha_B`` default to the fit's own.
    ``thirds``: the mean |relative error| over the first, middle and last third of the points."""
    B_star, alpha_B = _b_law(fit, B_star, alpha_B)
    df = _after_warmup(curves)
    h = df[df["run"] == run].sort_values("step")
    if h.empty:
        raise DataError(f"run {run!r} has no curve point after warmup to back-test against.")
    N, B = float(h["N_nonembed"].iloc[0]), float(h["batch"].iloc[0])
    p: Mapping[str, float] = fit.params
    pred = loss_trajectory(h["step"].to_numpy(dtype=float), N, B, params=p, B_star=B_star, alpha_B=alpha_B)
    meas = h["loss"].to_numpy(dtype=float)
    rel = np.abs(pred / meas - 1.0)
    out: dict[str, Any] = {
        "run": run, "N_nonembed": N, "batch": B, "points": len(h), "mean_abs_rel_error": float(rel.mean()),
        "max_abs_rel_error": float(rel.max()), "loss_floor": float(loss_floor(N, p)),
        "thirds": [float(t.mean()) for t in np.array_split(rel, 3) if t.size],
        "curve": [{"step": int(s), "loss": float(m), "predicted": float(q)}
                  for s, m, q in zip(h["step"], meas, pred)]}
    if target is not None:
        st = steps_to_loss(target, N, batch=B, params=p, B_star=B_star, alpha_B=alpha_B)
        out["to_target"] = {"target": target, "S_min": float(st.S_min), "E_min": float(st.E_min),
                            "B_crit": float(st.B_crit), "steps": float(np.asarray(st.S)),
                            "tokens": float(np.asarray(st.E))}
    return out


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ParameterError(invalid("The Su et al. fitting method", method, f"one of {list(METHODS)}"))
    return method


def _width(curves: pd.DataFrame, N: float | None) -> pd.DataFrame:
    """The curves of the runs with ``N_nonembed`` N (joint-width)."""
    if N is None:
        raise ParameterError(invalid("The parameter count 'N' of a joint-width fit", N,
                                     "the N_nonembed of the run to predict (the fit uses that width's runs)"))
    return curves[np.isclose(curves["N_nonembed"].to_numpy(dtype=float), float(N), rtol=1e-9)]


def fit_su_method(curves: pd.DataFrame, method: str, *, window: float = 1.0, targets: Sequence[float] = (),
                  seed: int = 0, N: float | None = None, starts: Any = None,
                  trimmed: Sequence[str] | None = None, trim: float = TRIM) -> tuple[Fit, float, float]:
    """Fit the recipe's constants by ``method`` (one of :data:`METHODS`) on ``curves``: (fit, B_*, alpha_B).

    ``two-stage`` needs ``targets`` (the critical-batch study); the joint methods use the points after
    ``window`` x warmup; ``joint-width`` fits the runs whose ``N_nonembed`` is ``N`` (the width of the run
    to be predicted) alone; ``joint-trimmed`` fits ``joint`` without the runs ``trimmed`` (by default
    :func:`su_trimmed` of ``curves``, ``trim``), listed in the fit's ``data["trimmed"]``."""
    _check_method(method)
    if method == "joint-trimmed":
        if trimmed is None:
            trimmed = su_trimmed(curves, window=window, trim=trim, starts=starts)["trimmed"]
        fit = fit_su_joint(curves[~curves["run"].isin(list(trimmed))], window=window,
                           **({} if starts is None else {"starts": starts}))
        fit.data["trimmed"] = list(trimmed)
        return fit, float(fit.params["B_star"]), float(fit.params["alpha_B"])
    if method == "joint-width":
        curves = _width(curves, N)
        if curves.empty:
            raise DataError(f"no fit run has N_nonembed {N:g}: joint-width has nothing to fit.")
        if starts is not None and np.shape(starts)[-1] == 6:   # a full start: drop alpha_N (held at 1)
            starts = np.delete(np.atleast_2d(starts), 1, axis=1)
    if method in ("joint", "joint-width"):
        fit = fit_su_joint(curves, window=window, **({} if starts is None else {"starts": starts}))
        return fit, float(fit.params["B_star"]), float(fit.params["alpha_B"])
    if not targets:
        raise ParameterError(invalid("The target losses of the two-stage fit", list(targets),
                                     "at least one positive number (the critical-batch study needs them)"))
    from ..fit.critical import critical_batch_study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = critical_batch_study(curves, list(targets), seed=seed)
    law = res["pooled"].get("vs_loss") or next(iter(res["vs_loss"].values()), None)
    if not law or not law.get("alpha_B") or law["alpha_B"] <= 0:
        raise DataError("Su et al.'s two-stage recipe needs a B_crit(L) that falls as L rises (alpha_B > 0) from "
                        f"2 or more target losses; got {law}.")
    fit = fit_su(curves, law["B_star"], law["alpha_B"])
    return fit, float(law["B_star"]), float(law["alpha_B"])


def _warm_start(fit: Fit, fixed: Sequence[str] = ()) -> Any:
    """The free parameters of a kaplan_steps_batch fit as one start (optimisation scale)."""
    from .. import laws as _laws
    return np.array([[p.to_scaled(fit.params[p.name]) for p in _laws.get("kaplan_steps_batch").params
                      if p.name not in fixed]])


def su_trimmed(curves: pd.DataFrame, *, window: float = 1.0, trim: float = TRIM, starts: Any = None,
               joint_loo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The runs of ``curves`` off the law, one at a time: the run with the largest ``joint`` leave-one-out
    error (at ``window``) is off the law when that error is more than ``trim`` times the median over the
    runs; it is left out and the leave-one-out redone on the others, until the worst run is within ``trim``
    x the median (or fewer than 4 runs are left). One at a time, since a run off the law also spoils the
    folds of its neighbours while it is in them. ``joint_loo``: the first leave-one-out, when already
    computed. Returns ``{"trimmed": [runs, in the order found], "median" (of the last leave-one-out),
    "trim", "joint_loo" (the first)}``."""
    if not (isinstance(trim, (int, float)) and np.isfinite(trim) and trim > 1.0):
        raise ParameterError(invalid("The trimming factor 'trim'", trim,
                                     "a number > 1 (times the median leave-one-out error)"))
    first = loo = joint_loo if joint_loo is not None else su_leave_one_out(curves, method="joint", window=window,
                                                                           starts=starts)
    trimmed: list[str] = []
    while True:
        errs = {r: v["mean_abs_rel_error"] for r, v in loo["runs"].items()}
        med = float(np.median(list(errs.values())))
        worst = max(errs, key=lambda r: errs[r])
        if errs[worst] <= trim * med or len(errs) < 4:
            break
        trimmed.append(worst)
        loo = su_leave_one_out(curves[~curves["run"].isin(trimmed)], method="joint", window=window, starts=starts)
    return {"trimmed": trimmed, "median": med, "trim": float(trim), "joint_loo": first}


def su_leave_one_out(curves: pd.DataFrame, *, method: str = "joint", window: float = 1.0,
                     targets: Sequence[float] = (), seed: int = 0, starts: Any = None,
                     trim: float = TRIM, joint_loo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Leave each run of ``curves`` out in turn, fit the recipe by ``method`` on the others (the
    critical-batch study too, for ``two-stage``, which needs ``targets``; for ``joint-width``, the
    other runs of the left-out run's width only) and score the left-out run's trajectory after warmup
    (mean |relative error|).

    ``window`` (multiples of the warmup) applies to the joint fits; the two-stage fit uses every point
    after warmup. The joint folds start from the fit on every run (of the width, for ``joint-width``;
    itself from ``starts``, the law's grid by default): a warm start only, the left-out run enters no
    fold's objective. For ``joint-trimmed`` the runs off the law are found once, by :func:`su_trimmed`
    of ``curves`` (``trim``; ``joint_loo`` reuses a joint leave-one-out at the same window), left out of
    every fold's fit and listed under ``trimmed``; every run is still scored (a trimmed run's fold is
    fitted without it, as in ``joint``).

    A fold that cannot be fitted (a DataError, e.g. too few batch sizes left for a hyperbola) is
    listed under ``failed`` with its message and left out of the means.

    Returns ``{"method", "window", "runs": {run: {"batch", "N_nonembed", "mean_abs_rel_error",
    "max_abs_rel_error", "thirds"}}, "failed": {run: message}, "mean", "interior_mean"}``; *interior*
    runs are those whose batch lies strictly between the smallest and largest batch of the curves (the
    batches a held-out run inside the sweep is interpolated between); ``interior_mean`` is None when
    there is none."""
    _check_method(method)
    if method == "two-stage" and not targets:
        raise ParameterError(invalid("The target losses of the two-stage leave-one-out", list(targets),
                                     "at least one positive number (the critical-batch study needs them)"))
    _check_window(window)
    df = curves[curves.get("branch", 0) == 0]
    runs = sorted(set(_after_warmup(df)["run"]))
    if len(runs) < 3:
        raise DataError(invalid("The runs with curve points after warmup", runs, "3 or more for a leave-one-out"))
    n_of = df.groupby("run")["N_nonembed"].first()
    warm: dict[float | None, Any] = {}
    trimmed: list[str] | None = None
    if method == "joint-trimmed":
        trimmed = su_trimmed(df, window=window, trim=trim, starts=starts, joint_loo=joint_loo)["trimmed"]
    if method in ("joint", "joint-trimmed"):
        warm[None] = _warm_start(fit_su_method(df, method, window=window, starts=starts, trimmed=trimmed)[0])
    out: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for run in runs:
        N = float(n_of[run])
        try:
            if method == "joint-width" and N not in warm:
                warm[N] = _warm_start(fit_su_method(df, method, window=window, N=N, starts=starts)[0], ("alpha_N",))
            st = warm.get(N if method == "joint-width" else None, starts)
            fit, bs, ab = fit_su_method(df[df["run"] != run], method, window=window, targets=targets, seed=seed,
                                        N=N, starts=st, trimmed=trimmed)
        except DataError as exc:     # e.g. too few batch sizes left for a hyperbola without this run
            failed[run] = str(exc)
            continue
        bt = su_backtest(df, run, fit, bs, ab)
        out[run] = {k: bt[k] for k in ("batch", "N_nonembed", "mean_abs_rel_error", "max_abs_rel_error", "thirds")}
    if not out:
        raise DataError(f"Su et al. leave-one-out ({method}): no fold could be fitted; the first said: "
                        f"{next(iter(failed.values()))}")
    batches = df.groupby("run")["batch"].first()
    lo, hi = float(batches.min()), float(batches.max())
    inner = [v["mean_abs_rel_error"] for v in out.values() if lo < v["batch"] < hi]
    return {"method": method, "window": float(window), "runs": out, "failed": failed,
            "mean": float(np.mean([v["mean_abs_rel_error"] for v in out.values()])),
            "interior_mean": float(np.mean(inner)) if inner else None,
            **({"trimmed": trimmed} if trimmed is not None else {})}


def su_score_runs(curves: pd.DataFrame, score: str, held_out: str | None = None,
                  N: float | None = None) -> list[str] | None:
    """The fit runs whose leave-one-out errors choose a candidate (:func:`su_choose`), by ``score``:

    * ``interior``: None, i.e. the runs whose batch lies strictly inside the sweep (every run where none
      does), the choice of :func:`su_leave_one_out`'s ``interior_mean``;
    * ``all``: every run;
    * ``same-width``: the runs of the held-out run's width (``N``, N_nonembed);
    * ``same-width-interior``: those of them whose batch lies strictly inside the sweep of that width.

    ``held_out`` is only named in the errors."""
    if score not in SCORES:
        raise ParameterError(invalid("The leave-one-out score 'score'", score, f"one of {list(SCORES)}"))
    if score == "interior":
        return None
    df = _after_warmup(curves[curves.get("branch", 0) == 0])
    per = df.groupby("run").agg(N=("N_nonembed", "first"), batch=("batch", "first"))
    if score == "all":
        return sorted(per.index)
    if N is None:
        raise ParameterError(invalid(f"The N of the held-out run for score {score!r}", N,
                                     "the held-out run's N_nonembed"))
    same = per[np.isclose(per["N"].to_numpy(dtype=float), float(N), rtol=1e-9)]
    if score == "same-width-interior":
        same = same[(same["batch"] > same["batch"].min()) & (same["batch"] < same["batch"].max())]
    if same.empty:
        raise DataError(invalid(f"The fit runs scored by {score!r}" + (f" (held out: {held_out})" if held_out else ""),
                                [], f"one or more runs of N_nonembed {N:g}"
                                + (" with a batch inside that width's sweep" if score == "same-width-interior" else "")))
    return sorted(same.index)


def su_choose(scores: Sequence[Mapping[str, Any]], score_runs: Sequence[str] | None = None,
              tie: float = 1e-3) -> int:
    """The index of the candidate chosen from :func:`su_leave_one_out` results ``scores``: the lowest
    mean error over the folds of ``score_runs`` (None: the interior mean, the all-runs mean where no run
    is interior); a candidate within ``tie`` (absolute) of the best that comes earlier is kept instead.
    A candidate with a failed fold (among ``score_runs`` when given) is not chosen unless every candidate
    has one; one with no fold fitted (``mean`` None) never is."""
    def key_failed(s: Mapping[str, Any]) -> tuple[float, bool]:
        if s["mean"] is None:
            return np.inf, True
        if score_runs is None:
            return (s["interior_mean"] if s["interior_mean"] is not None else s["mean"]), bool(s["failed"])
        got = [s["runs"][r]["mean_abs_rel_error"] for r in score_runs if r in s["runs"]]
        return (float(np.mean(got)) if got else np.inf), len(got) < len(score_runs)

    kf = [key_failed(s) for s in scores]
    live = [f for (k, f), s in zip(kf, scores) if s["mean"] is not None]
    whole = all(live) or not any(live)
    key = [np.inf if (f and not whole) else k for k, f in kf]
    best = min(key)
    if not np.isfinite(best):
        raise DataError("Su et al. selection: no candidate has a scored fold among the runs "
                        f"{list(score_runs) if score_runs is not None else 'interior'}.")
    return next(j for j, k in enumerate(key) if k <= best + tie)


def su_select(curves: pd.DataFrame, candidates: Sequence[tuple[str, float]], *, targets: Sequence[float] = (),
              seed: int = 0, tie: float = 1e-3, starts: Any = None,
              score_runs: Sequence[str] | None = None, trim: float = TRIM) -> dict[str, Any]:
    """Choose a (method, window) from ``candidates`` by :func:`su_leave_one_out` on ``curves`` (the fit
    runs only), with :func:`su_choose`: the lowest interior mean (the all-runs mean where no run is
    interior), or with ``score_runs`` (:func:`su_score_runs`) the lowest mean over those runs' folds; a
    candidate within ``tie`` (absolute, 0.1 percentage point by default) of the best that comes earlier in
    ``candidates`` (list the simpler first) is kept instead. A candidate with a failed fold is scored on
    fewer runs than the others and is not chosen (unless every candidate has one); one with no fold fitted
    (a DataError: e.g. two-stage with too few batch sizes per target) is listed with ``mean`` None and
    ``failed`` {"every fold": message}, and never chosen (a DataError when no candidate is left). Returns
    ``{"chosen": (method, window), "scores": [leave-one-out results...]}``."""
    if not candidates:
        raise ParameterError(invalid("The Su et al. candidates", list(candidates), "one or more (method, window)"))
    for m, w in candidates:
        _check_method(m)
        _check_window(w)
    scores: list[dict[str, Any]] = []
    for m, w in candidates:
        joint = next((s for s in scores if s["method"] == "joint" and s["window"] == float(w)
                      and s["mean"] is not None and not s["failed"]), None)
        try:
            scores.append(su_leave_one_out(curves, method=m, window=w, targets=targets, seed=seed, starts=starts,
                                           trim=trim, joint_loo=joint))
        except DataError as exc:   # no fold of this candidate could be fitted: the others still compete
            scores.append({"method": m, "window": float(w), "runs": {}, "failed": {"every fold": str(exc)},
                           "mean": None, "interior_mean": None})
    if all(s["mean"] is None for s in scores):
        raise DataError("Su et al. selection: no candidate could be fitted; "
                        + "; ".join(f"{s['method']} (window {s['window']:g}): {s['failed']['every fold']}"
                                    for s in scores))
    i = su_choose(scores, score_runs, tie)
    return {"chosen": (scores[i]["method"], scores[i]["window"]), "scores": scores}
