"""Extrapolation-calibrated prediction intervals, from a fit's own internal rollouts.

A bootstrap over rows describes the uncertainty of the fitted curve and the scatter of the fitted
rows, not the error of extrapolating beyond them: on ladders held out for checking, fitted on the
smaller budgets and predicting a budget 3.3x larger, its 95% intervals covered 57-77% of the points.
Here the ladder estimates its own extrapolation error. With groups g_1 < ... < g_m of a key (IsoFLOP
budgets, model sizes), fit on g_1..g_k for k = 2 .. m-1 and predict every later group; each predicted
point gives a log error ``e_i = ln(L_i / L_pred)`` at a distance ``d_i = log10(x_i / x_max)`` decades
beyond the largest training value of the axis x (compute C for budget keys, else the key itself).
The errors are modelled as ``e_i ~ Normal(0, sigma(d_i)^2)``, ``sigma(d)^2 = s^2 + (a + tau d)^2``,
s the fit's residual RMS, a the error of stepping beyond the data at all and tau its growth per
decade, both at their maximum-likelihood values. The interval's width then comes from split-conformal
calibration on the same errors: the multiplier c is the finite-sample quantile of the scores
``|e_i| / sigma(d_i)`` at the nominal level, so the interval ``L_pred * exp(+-c sigma(d))`` covers
the internal rollouts' errors at that level whatever their distribution (heavy tails, a bias, the
correlated errors of one budget's points). A prediction d > 0 decades beyond the full fit's data
gets the observation interval joined with that one; inside the data, the observation interval.
The internal fits have fewer groups than the full fit, so the interval errs on the wide side.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from .. import laws as _laws
from .. import table as _table
from ..laws import Law
from .rollout import compute_of, group_labels

#: internal rollout fits use this many starts of the law's grid (a seeded sample) plus the full fit's optimum
INTERNAL_STARTS = 256
#: the kinds of interval a prediction can carry
OBSERVATION = "observation"
EXTRAPOLATION = "extrapolation-calibrated"


def axis_of(key: str) -> str:
    """The column whose decades measure the distance of an extrapolation over ``key``."""
    return "C" if key in ("budget_flops", "C") else key


def axis_values(df: pd.DataFrame, axis: str) -> np.ndarray:
    """The axis of every row: compute C (its column, or 6 N D) or the named column."""
    if axis == "C":
        return compute_of(df)
    d = _table.derive_standard(df)
    return pd.to_numeric(d[axis], errors="coerce").to_numpy(dtype=float) if axis in d else np.full(len(df), np.nan)


def ml_error_model(e: np.ndarray, d: np.ndarray, s: float) -> tuple[float, float]:
    """Maximum-likelihood (a, tau) >= 0 of ``e ~ Normal(0, s^2 + (a + tau d)^2)``, d >= 0 decades."""
    dd = np.maximum(d, 0.0)
    s2 = max(s * s, 1e-300)
    floor = np.log(1e-8)

    def nll(x: np.ndarray) -> float:
        v = s2 + (np.exp(x[0]) + np.exp(x[1]) * dd) ** 2
        return float(np.sum(np.log(v) + e * e / v))

    best = None
    for x0 in ([np.log(1e-3), np.log(1e-2)], [np.log(1e-2), np.log(1e-4)], [floor, np.log(0.05)]):
        res = optimize.minimize(nll, np.array(x0), method="L-BFGS-B", bounds=[(floor, np.log(10.0))] * 2)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    a, tau = (float(v) for v in np.exp(best.x))
    # values at the floor are zero: the term is not needed
    return (0.0 if best.x[0] <= floor + 1e-6 else a), (0.0 if best.x[1] <= floor + 1e-6 else tau)


def estimate(df: pd.DataFrame, law: str | Law, key: str, *, decades: float | None, seed: int,
             residual_rms: float, fit_kwargs: Mapping[str, Any], best: np.ndarray | None = None) -> dict[str, Any]:
    """The calibration record of a fit on ``df``: internal rollouts over ``key`` (module docstring).

    ``fit_kwargs`` are the full fit's own options (objective, fixed, bounds, weights); ``best`` its
    optimum on the optimisation scale, used as one start of each internal fit. Returns the JSON-ready
    ``Fit.calibration``: ``method``, ``key``, ``decades``, ``axis``, ``x_max``, ``tau``, ``s``,
    ``n_errors``, ``errors``, ``distances``; or, with fewer than 3 groups, ``method = "none"`` and
    ``reason``.
    """
    from .core import LawFit  # core calls this module
    lw = _laws.get(law)
    labels = group_labels(df, key, decades)
    groups = sorted(set(labels.tolist()))
    axis = axis_of(key)
    x = axis_values(df, axis)
    base: dict[str, Any] = {"key": key, "decades": decades, "axis": axis,
                            "x_max": float(np.nanmax(x)) if np.isfinite(x).any() else None}
    if len(groups) < 3 or not np.isfinite(x).all():
        why = (f"{len(groups)} group(s) of {key!r}: internal rollouts need 3 or more" if len(groups) < 3
               else f"the rows lack the axis {axis!r} the distance is measured on")
        return {"method": "none", "reason": why, **base}
    free = [p.name for p in lw.params if p.name not in dict(fit_kwargs.get("fixed") or {})]
    grid = lw.init_grid(free)
    rng = np.random.default_rng(seed)
    starts = grid[np.sort(rng.choice(len(grid), size=min(INTERNAL_STARTS, len(grid)), replace=False))]
    if best is not None:
        starts = np.vstack([best[None, :], starts])
    opts = {k: v for k, v in fit_kwargs.items() if k not in ("bootstrap", "calibrate", "calibrate_decades", "starts")}
    errors: list[float] = []
    dists: list[float] = []
    for k in range(2, len(groups)):
        tr = labels <= groups[k - 1]
        train, test = df[tr], df[~tr]
        with warnings.catch_warnings():   # an internal fit's trouble shows in the errors it makes
            warnings.simplefilter("ignore")
            f = LawFit(lw, bootstrap=0, seed=seed, starts=starts, **opts).fit(train).result_
        t = test if lw.derive is None else lw.derive(test)
        pred = lw.predict(f.params, {c: t[c].to_numpy(dtype=float) for c in lw.inputs})
        y = t[lw.target].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            e = np.log(y / pred)
        dd = np.log10(x[~tr.to_numpy()] / np.max(x[tr.to_numpy()]))
        ok = np.isfinite(e) & np.isfinite(dd)
        errors += e[ok].tolist()
        dists += dd[ok].tolist()
    e_a, d_a = np.array(errors), np.array(dists)
    a, tau = ml_error_model(e_a, d_a, residual_rms) if e_a.size else (0.0, 0.0)
    return {"method": "internal-rollout", **base, "a": a, "tau": tau, "s": float(residual_rms),
            "n_errors": int(e_a.size),
            "errors": e_a.tolist(), "distances": d_a.tolist()}


def _sigma(cal: Mapping[str, Any], d: np.ndarray) -> np.ndarray:
    """The modelled sd of the log error d > 0 decades out: ``sqrt(s^2 + (a + tau d)^2)``."""
    a, tau, s = (float(cal.get(k, 0.0)) for k in ("a", "tau", "s"))
    return np.asarray(np.sqrt(s * s + (a + tau * np.maximum(d, 0.0)) ** 2), dtype=float)


def conformal_factor(cal: Mapping[str, Any], level: float) -> float:
    """The split-conformal multiplier of the level-``level`` interval: the ceil((n + 1) level)-th
    smallest score ``|e_i| / sigma(d_i)`` of the internal rollout errors (Vovk et al. 2005; the
    finite-sample rank of Lei et al. 2018), or the normal quantile when there are too few errors
    for that rank."""
    e = np.abs(np.asarray(cal.get("errors", []), dtype=float))
    d = np.asarray(cal.get("distances", []), dtype=float)
    z = float(special.ndtri(0.5 + level / 2))
    if e.size == 0:
        return z
    scores = np.sort(e / np.maximum(_sigma(cal, d), 1e-300))
    rank = int(np.ceil((e.size + 1) * level))
    return float(scores[rank - 1]) if rank <= e.size else max(z, float(scores[-1]))


def distance(cal: Mapping[str, Any], points: pd.DataFrame) -> np.ndarray | None:
    """Decades of the calibration's axis from the fit's data to each point (<= 0 inside), or None
    when the calibration has none (no internal rollouts) or the points lack its axis."""
    if not cal or cal.get("method") != "internal-rollout" or cal.get("x_max") is None:
        return None
    x = axis_values(points, str(cal["axis"]))
    if not np.isfinite(x).any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.log10(x / float(cal["x_max"])), dtype=float)


def calibrated_interval(cal: Mapping[str, Any], points: pd.DataFrame, center: np.ndarray, lo: np.ndarray,
                        hi: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The extrapolation-calibrated interval: inside the data (d <= 0) the observation interval
    ``[lo, hi]``; beyond it, that interval joined with ``center * exp(+-c sigma(d))``, c the
    conformal factor at ``level``. None when the calibration cannot say (:func:`distance`)."""
    d = distance(cal, points)
    if d is None:
        return None
    half = conformal_factor(cal, level) * _sigma(cal, d)
    beyond = np.isfinite(d) & (d > 0)
    with np.errstate(over="ignore", invalid="ignore"):
        c_lo, c_hi = center * np.exp(-half), center * np.exp(half)
    return np.where(beyond, np.fmin(lo, c_lo), lo), np.where(beyond, np.fmax(hi, c_hi), hi)
