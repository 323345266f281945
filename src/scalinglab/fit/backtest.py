"""Extrapolation back-tests: fit on the rows a filter selects, predict the others.

The figure of merit is the absolute relative error ``ARE = |L_pred - L_actual| / L_actual``
(Choshen et al. 2024), per held-out point and on average, and the fraction of held-out points inside
their prediction interval (the honesty of the interval).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import laws as _laws
from .. import table as _table
from ..errors import DataError
from ..laws import Law
from .core import LawFit
from .predict import predict
from .result import Fit
from .rollout import LEVELS


def split(df: pd.DataFrame, train_where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows selected by ``train_where`` (an expression, :mod:`scalinglab.expr`) and the rest."""
    train = _table.apply_where(df, train_where)
    test = df.drop(index=train.index)
    if train.empty:
        raise DataError(f"the training filter {train_where!r} selects no rows.")
    if test.empty:
        raise DataError(f"the training filter {train_where!r} selects every row: nothing is left to test on.")
    return train, test


def score(fit: Fit, test: pd.DataFrame, *, seed: int = 0, calibrated: bool = True) -> dict[str, Any]:
    """Score ``fit``'s predictions of the ``test`` rows: per point the ARE and whether the nominal
    80% and 95% prediction intervals (and the fit's own ``ci_level`` one) hold the actual value.

    Returns ``are`` (list), ``inside_80``, ``inside_95`` (lists of bool, or of None without
    intervals), ``coverage_80``, ``coverage_95`` (None without intervals), ``interval`` (which
    interval and its levels: :func:`~scalinglab.fit.predict.interval_kind`), ``per_point``."""
    lw = fit.law_
    if lw.derive is not None:
        test = lw.derive(test)
    test = _table.validate(test, list(lw.inputs) + [lw.target], source="held-out rows")
    actual = test[lw.target].to_numpy(dtype=float)
    preds = {lev: predict(fit, test, level=lev, seed=seed, calibrated=calibrated)
             for lev in (*LEVELS, fit.ci_level)}
    yhat = preds[fit.ci_level]["prediction"].to_numpy(dtype=float)
    are = np.abs(yhat - actual) / np.abs(actual)
    kind = preds[fit.ci_level].attrs["interval"]
    inside: dict[float, list[bool | None]] = {}
    bounds: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for lev, pr in preds.items():
        lo, hi = pr["lo"].to_numpy(dtype=float), pr["hi"].to_numpy(dtype=float)
        bounds[lev] = lo, hi
        inside[lev] = ([bool(a) for a in (actual >= lo) & (actual <= hi)] if kind is not None
                       else [None] * len(actual))
    per_point = []
    for i in range(len(test)):
        lo, hi = bounds[fit.ci_level]
        per_point.append({
            "inputs": {c: float(test[c].iloc[i]) for c in lw.inputs},
            "actual": float(actual[i]),
            "predicted": float(yhat[i]),
            "interval": [float(lo[i]), float(hi[i])] if kind is not None else None,
            "are": float(are[i]),
            "inside": inside[fit.ci_level][i],
            "inside_80": inside[0.8][i],
            "inside_95": inside[0.95][i],
        })

    def cov(lev: float) -> float | None:
        return None if kind is None else float(np.mean([bool(x) for x in inside[lev]]))

    return {"are": are.tolist(), "inside_80": inside[0.8], "inside_95": inside[0.95],
            "coverage": cov(fit.ci_level), "coverage_80": cov(0.8), "coverage_95": cov(0.95),
            "interval": {"kind": kind, "levels": [*LEVELS], "ci_level": fit.ci_level},
            "per_point": per_point}


def backtest(df: pd.DataFrame, law: str | Law, train_where: str, *, seed: int = 0,
             calibrated: bool = True, **fit_kwargs: Any) -> dict[str, Any]:
    """Fit ``law`` on ``train_where`` rows of ``df`` and score its predictions on the other rows.

    Returns a JSON-ready dict: ``train_points``, ``test_points``, ``are_mean``, ``are_max``,
    ``coverage`` (of the fit's ``ci_level`` interval), ``coverage_80``, ``coverage_95`` (None without
    bootstrap), ``interval`` (which interval: kind and levels), ``per_point`` and ``fit``.
    """
    lw = _laws.get(law)
    train, test = split(df, train_where)
    result = LawFit(lw, seed=seed, **fit_kwargs).fit(train).result_
    sc = score(result, test, seed=seed, calibrated=calibrated)
    are = np.asarray(sc["are"])
    return {
        "law": lw.name,
        "train_where": train_where,
        "train_points": int(result.n_points),
        "test_points": len(test),
        "are_mean": float(np.mean(are)),
        "are_max": float(np.max(are)),
        "coverage": sc["coverage"],
        "coverage_80": sc["coverage_80"],
        "coverage_95": sc["coverage_95"],
        "interval": sc["interval"],
        "per_point": sc["per_point"],
        "fit": result.to_dict(),
    }
