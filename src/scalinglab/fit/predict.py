"""Predictions from a fit, with intervals from its bootstrap.

Two intervals are computed at each point, both from the bootstrap replicates of the fit:

* ``mean_interval``: the percentile interval of the law's prediction over the replicates
  (uncertainty of the fitted curve only);
* ``interval``: a prediction interval for a new observation: each replicate's prediction with one
  residual of the fit added on the residual scale (multiplied by ``exp(r)`` for log residuals),
  residuals drawn with a seeded generator. This is the interval a back-test's coverage checks.
  A fit with an extrapolation calibration (``LawFit(calibrate=KEY)``, :mod:`scalinglab.fit.calibrate`)
  widens it beyond its data by the error its own internal rollouts made at that distance: the
  extrapolation-calibrated interval. ``calibrated=False`` gives the plain one.

``result.attrs["interval"]`` names the interval given (:func:`interval_kind`) and
``result.attrs["level"]`` its nominal level.

A fit without bootstrap draws (a published preset, or ``--bootstrap 0``) has no intervals: they are
reported as ``None``, never invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import table as _table
from ..errors import ParameterError, invalid
from .calibrate import EXTRAPOLATION, OBSERVATION, calibrated_interval
from .result import Fit


def interval_kind(fit: Fit, calibrated: bool = True) -> str | None:
    """The prediction interval ``predict`` gives for ``fit``: ``"extrapolation-calibrated"``,
    ``"observation"``, or None (no bootstrap draws: no interval)."""
    if fit.draws() is None:
        return None
    cal = fit.calibration or {}
    return EXTRAPOLATION if calibrated and cal.get("method") == "internal-rollout" else OBSERVATION


def input_names(fit: Fit) -> list[str]:
    """The input names a prediction point may give: the law's inputs and what its derivations read
    (``C`` for ``D = C / (6 N)``; the overtraining law's ``M = D/N``)."""
    law = fit.law_
    probe = pd.DataFrame({c: [1.0] for c in law.inputs})
    probe = _table.derive_standard(probe)
    if law.derive is not None:
        probe = law.derive(probe)
    return list(law.inputs) + [c for c in probe.columns if c not in law.inputs]


def check_input_names(fit: Fit, names: Any, what: str = "The input of the prediction point") -> None:
    """A ParameterError naming the first of ``names`` that the fit's law does not have."""
    allowed = input_names(fit)
    for name in names:
        if name not in allowed:
            raise ParameterError(invalid(f"{what} for law {fit.law!r}", name, f"one of {allowed}"))


def _inputs_frame(fit: Fit, points: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    law = fit.law_
    if isinstance(points, pd.DataFrame):
        df = points
    else:
        check_input_names(fit, list(points))
        df = pd.DataFrame({k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in points.items()})
    df = _table.derive_standard(df)
    if law.derive is not None:
        df = law.derive(df)
    return _table.validate(df, list(law.inputs), source="prediction points")


#: the point predictions :func:`predict` gives: the fitted parameters' law, or the median of the law over the
#: bootstrap fits (bagging)
POINTS = ("fit", "bagged")


def predict(fit: Fit, points: pd.DataFrame | Mapping[str, Any], *, level: float | None = None,
            seed: int = 0, calibrated: bool = True, point: str = "fit") -> pd.DataFrame:
    """Predict the law's target at ``points``; returns the inputs plus ``prediction``, ``lo``, ``hi``
    (prediction interval), ``mean_lo``, ``mean_hi`` (interval of the fitted curve).

    ``point="fit"`` (default): the prediction is the law at the fitted parameters. ``point="bagged"``: the
    median over the bootstrap fits of the law at each point (bagging, Breiman 1996, "Bagging predictors",
    Machine Learning 24: where the fit of a small ladder swings with its noise, the median of the refits on
    resampled data swings less); it needs bootstrap draws, and the intervals are the same draws' (a calibrated
    interval is placed around the bagged prediction as around the fit's). ``result.attrs["point"]`` says which
    (and ``result.attrs["bagged_from"]`` how many bootstrap fits a bagged one is the median of).

    Points given as a mapping must use the law's input names (:func:`input_names`). The fit's warnings
    travel with the result, in ``result.attrs["warnings"]``; a fit with too few points
    (:meth:`Fit.too_few_points`) has no intervals."""
    law = fit.law_
    if point not in POINTS:
        raise ParameterError(invalid("The point prediction", point, f"one of {list(POINTS)}"))
    df = _inputs_frame(fit, points)
    x = {c: df[c].to_numpy(dtype=float) for c in law.inputs}
    out = df[list(law.inputs)].copy()
    out["prediction"] = law.predict(fit.params, x)
    out.attrs["warnings"] = list(fit.warnings)
    out.attrs["point"] = point
    level = fit.ci_level if level is None else level
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise ParameterError(invalid("The interval level", level, "a number in (0, 1)"))
    out.attrs["level"] = float(level)
    draws = fit.draws()
    out.attrs["interval"] = interval_kind(fit, calibrated) if draws is not None and len(draws) >= 2 else None
    if point == "bagged" and out.attrs["interval"] is None:
        raise ParameterError(invalid("The point prediction", point, "'fit' for a fit without bootstrap draws (a "
                                     "bagged prediction is the median over the bootstrap fits; refit with a "
                                     "bootstrap)"))
    if draws is None or out.attrs["interval"] is None:
        for c in ("lo", "hi", "mean_lo", "mean_hi"):
            out[c] = np.nan
        _floor_at_zero(out, law.target, None)
        return out
    P = {k: draws[k].to_numpy(dtype=float)[:, None] for k in law.param_names}
    preds = law.predict(P, x)  # (K, n)
    if point == "bagged":
        with np.errstate(invalid="ignore"):
            out["prediction"] = np.nanmedian(preds, axis=0)
        out.attrs["bagged_from"] = len(draws)       # the number of bootstrap fits the median is over
    q = [(1 - level) / 2, (1 + level) / 2]
    with np.errstate(invalid="ignore", over="ignore"):
        out["mean_lo"], out["mean_hi"] = np.nanquantile(preds, q, axis=0)
        resid = np.asarray(fit.residuals, dtype=float)
        if resid.size:
            rng = np.random.default_rng(seed)
            # residuals of a fit are smaller than its errors by about sqrt((n - p) / n): rescaled
            # (Davison & Hinkley 1997, Bootstrap Methods, eq. 6.9, the leverage-free form)
            n, p_free = resid.size, max(fit.n_free, 0)
            inflate = np.sqrt(n / (n - p_free)) if n > p_free else 1.0
            eps = inflate * rng.choice(resid, size=preds.shape, replace=True)
            noisy = preds * np.exp(eps) if fit.objective.get("space") == "log" else preds + eps
        else:
            noisy = preds
        out["lo"], out["hi"] = np.nanquantile(noisy, q, axis=0)
        if out.attrs["interval"] == EXTRAPOLATION:
            cal = calibrated_interval(fit.calibration, df, out["prediction"].to_numpy(dtype=float),
                                      out["lo"].to_numpy(dtype=float), out["hi"].to_numpy(dtype=float), level,
                                      mean=(out["mean_lo"].to_numpy(dtype=float), out["mean_hi"].to_numpy(dtype=float)))
            if cal is None:                   # the points lack the calibration's axis
                out.attrs["interval"] = OBSERVATION
            else:
                out["lo"], out["hi"] = cal
    _floor_at_zero(out, law.target, noisy)
    return out


def _floor_at_zero(out: pd.DataFrame, target: str, draws: np.ndarray | None) -> None:
    """A target that cannot be negative (a loss, a step count: ``table.COLUMNS``) gets no interval below 0:
    the ends are clipped at 0 and a warning says where and what share of the predictive draws (``draws``: each
    replicate's prediction with a residual added) is <= 0 (a
    law such as the multi-power one, whose loss drop grows with the decay, can fall below 0 far from its
    data); a point prediction <= 0 is kept as it is and warned about. The warnings go to
    ``out.attrs["warnings"]``."""
    if _table.COLUMNS.get(target, ("", "", "any"))[2] not in ("positive", "nonnegative"):
        return
    warns = out.attrs["warnings"]
    pred = out["prediction"].to_numpy(dtype=float)
    low = np.flatnonzero(pred <= 0)
    if low.size:
        warns.append(f"the predicted {target} is <= 0 at {low.size} of {len(pred)} points (lowest {pred.min():.4g}); "
                     f"a {target} cannot be negative, so the law does not hold there (far outside its data).")
    ends = out[["lo", "hi", "mean_lo", "mean_hi"]].to_numpy(dtype=float)
    below = np.flatnonzero(np.any(ends < 0, axis=1))
    if not below.size or draws is None:
        return
    share = float(np.max(np.mean(draws[:, below] <= 0, axis=0)))
    for c in ("lo", "hi", "mean_lo", "mean_hi"):
        out[c] = out[c].clip(lower=0.0)
    why = (f"up to {100 * share:.0f}% of the bootstrap predictions are <= 0 (the fit does not constrain these "
           "points)" if share > 0 else "its width comes from the extrapolation calibration, not the draws")
    warns.append(f"the interval of the {target} reached below 0 at {below.size} of {len(pred)} points: clipped at 0 "
                 f"(a {target} cannot be negative), and unreliable there: {why}.")

