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


def split(df: pd.DataFrame, train_where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows selected by ``train_where`` (an expression, :mod:`scalinglab.expr`) and the rest."""
    train = _table.apply_where(df, train_where)
    test = df.drop(index=train.index)
    if train.empty:
        raise DataError(f"the training filter {train_where!r} selects no rows.")
    if test.empty:
        raise DataError(f"the training filter {train_where!r} selects every row: nothing is left to test on.")
    return train, test


def backtest(df: pd.DataFrame, law: str | Law, train_where: str, *, seed: int = 0,
             **fit_kwargs: Any) -> dict[str, Any]:
    """Fit ``law`` on ``train_where`` rows of ``df`` and score its predictions on the other rows.

    Returns a JSON-ready dict: ``train_points``, ``test_points``, ``are_mean``, ``are_max``,
    ``coverage`` (None without bootstrap), ``per_point`` and ``fit`` (the Fit as a dict).
    """
    lw = _laws.get(law)
    train, test = split(df, train_where)
    result = LawFit(lw, seed=seed, **fit_kwargs).fit(train).result_
    if lw.derive is not None:
        test = lw.derive(test)
    test = _table.validate(test, list(lw.inputs) + [lw.target], source="held-out rows")
    pred = predict(result, test[list(lw.inputs)], seed=seed)
    actual = test[lw.target].to_numpy(dtype=float)
    yhat = pred["prediction"].to_numpy(dtype=float)
    are = np.abs(yhat - actual) / np.abs(actual)
    lo, hi = pred["lo"].to_numpy(dtype=float), pred["hi"].to_numpy(dtype=float)
    has_interval = bool(np.all(np.isfinite(lo)))
    inside = (actual >= lo) & (actual <= hi)
    per_point = []
    for i in range(len(test)):
        per_point.append({
            "inputs": {c: float(test[c].iloc[i]) for c in lw.inputs},
            "actual": float(actual[i]),
            "predicted": float(yhat[i]),
            "interval": [float(lo[i]), float(hi[i])] if has_interval else None,
            "are": float(are[i]),
            "inside": bool(inside[i]) if has_interval else None,
        })
    return {
        "law": lw.name,
        "train_where": train_where,
        "train_points": int(result.n_points),
        "test_points": len(test),
        "are_mean": float(np.mean(are)),
        "are_max": float(np.max(are)),
        "coverage": float(np.mean(inside)) if has_interval else None,
        "per_point": per_point,
        "fit": result.to_dict(),
    }
