"""Rollout back-tests: fit on the first k groups of a ladder, predict the next ones.

The groups are the distinct values of a key column (IsoFLOP budgets ``budget_flops``, model sizes
``N``, or the compute ``C`` binned into ``decades``-wide bins), sorted ascending. Step (k, h) fits on
groups 1..k and predicts group k + h, for k = ``min_train`` .. m - 1 and h = 1 .. ``horizon``
(OLMo-core's ladder analysis back-tests this way over increasing model size). Each step reports the
mean absolute relative error ``|L_pred - L| / L`` and the fraction of its points inside the nominal
80% and 95% prediction intervals; over all steps the same figures pooled over every predicted point.

The distance of a step is ``log10(median C of the test group / max C of the training rows)``, in
decades of compute (C = 6 N D when the table has no C column).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import laws as _laws
from .. import table as _table
from ..errors import DataError, ParameterError, invalid
from ..laws import Law

#: the nominal levels whose coverage a back-test reports
LEVELS = (0.8, 0.95)


def group_labels(df: pd.DataFrame, key: str, decades: float | None = None) -> pd.Series:
    """The group of every row: the key's value, or with ``decades`` the lower edge of its bin
    ``10 ** (decades * floor(log10(value) / decades))``."""
    if key not in df.columns:
        raise DataError(invalid("The rollout key", key, f"a column of the data (columns: {list(df.columns)})"))
    x = pd.to_numeric(df[key], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(x)):
        raise DataError(invalid(f"The rollout key column {key!r}", "a non-numeric or missing value",
                                "finite numbers in every row"))
    if decades is None:
        return pd.Series(x, index=df.index)
    if not (decades > 0 and np.isfinite(decades)):
        raise ParameterError(invalid("The rollout bin width (decades)", decades, "a number > 0"))
    if np.any(x <= 0):
        raise DataError(invalid(f"The rollout key column {key!r}", float(x.min()), "positive values to bin by decades"))
    # a small tolerance keeps values on a bin edge (1e18 with decades 0.5) in their own bin
    return pd.Series(10.0 ** (decades * np.floor(np.log10(x) / decades + 1e-9)), index=df.index)


def sorted_groups(labels: pd.Series, key: str, min_groups: int = 3) -> list[float]:
    """The distinct group labels, ascending; fewer than ``min_groups`` is a DataError."""
    groups = sorted(set(labels.tolist()))
    if len(groups) < min_groups:
        raise DataError(invalid(f"The rollout key {key!r}", f"{len(groups)} group(s)",
                                f"a column with at least {min_groups} distinct values (fit on 2 or more, predict the next)"))
    return groups


def steps(n_groups: int, horizon: int = 1, min_train: int = 2) -> list[tuple[int, int]]:
    """The (k, h) pairs of a rollout: train on the first k groups, test on group k + h (1-based)."""
    if not (isinstance(horizon, (int, np.integer)) and horizon >= 1):
        raise ParameterError(invalid("The rollout horizon", horizon, "an integer >= 1"))
    return [(k, h) for k in range(min_train, n_groups) for h in range(1, horizon + 1) if k + h <= n_groups]


def compute_of(df: pd.DataFrame) -> np.ndarray:
    """Training compute C of every row (the C column, or 6 N D), FLOPs; NaN where unknown."""
    d = _table.derive_standard(df)
    if "C" in d:
        return np.asarray(pd.to_numeric(d["C"], errors="coerce"), dtype=float)
    return np.full(len(df), np.nan)


def distance_decades(train: pd.DataFrame, test: pd.DataFrame) -> float | None:
    """log10(median compute of ``test`` / max compute of ``train``), or None without compute."""
    c_tr, c_te = compute_of(train), compute_of(test)
    if not (np.isfinite(c_tr).any() and np.isfinite(c_te).any()):
        return None
    return float(np.log10(np.nanmedian(c_te) / np.nanmax(c_tr)))


def rollout(df: pd.DataFrame, law: str | Law, key: str, *, horizon: int = 1, decades: float | None = None,
            min_train: int = 2, seed: int = 0, **fit_kwargs: Any) -> dict[str, Any]:
    """The rollout back-test of ``law`` over the groups of ``key`` (module docstring).

    ``fit_kwargs`` go to :class:`~scalinglab.fit.LawFit` (a bootstrap is needed for intervals).
    Returns a JSON-ready dict: ``key``, ``groups``, ``rollout`` (one entry per step: ``train_groups``,
    ``test_group``, ``horizon``, ``distance_decades``, ``train_points``, ``test_points``, ``are_mean``,
    ``coverage_80``, ``coverage_95``, ``interval``), and pooled over the steps ``are_mean``,
    ``coverage_80``, ``coverage_95`` (None where no step had an interval) and ``n_points``.
    """
    from .backtest import score  # backtest imports this module's LEVELS
    from .core import LawFit
    lw = _laws.get(law)
    labels = group_labels(df, key, decades)
    groups = sorted_groups(labels, key)
    out_steps: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {"are": [], "in_80": [], "in_95": []}
    fits: dict[int, Any] = {}
    for k, h in steps(len(groups), horizon, min_train):
        train = df[labels <= groups[k - 1]]
        test = df[labels == groups[k + h - 1]]
        if k not in fits:
            fits[k] = LawFit(lw, seed=seed, **fit_kwargs).fit(train).result_
        sc = score(fits[k], test, seed=seed)
        pooled["are"] += sc["are"]
        for lev in ("80", "95"):
            pooled[f"in_{lev}"] += [float(x) for x in sc[f"inside_{lev}"] if x is not None]
        out_steps.append({
            "train_groups": [float(g) for g in groups[:k]], "test_group": float(groups[k + h - 1]), "horizon": h,
            "distance_decades": distance_decades(train, test), "train_points": len(train),
            "test_points": len(test), "are_mean": float(np.mean(sc["are"])), "are_max": float(np.max(sc["are"])),
            "coverage_80": sc["coverage_80"], "coverage_95": sc["coverage_95"], "interval": sc["interval"],
            "warnings": list(fits[k].warnings),
        })
    return {
        "law": lw.name, "key": key, "decades": decades, "horizon": horizon, "groups": [float(g) for g in groups],
        "rollout": out_steps, "n_points": len(pooled["are"]),
        "are_mean": float(np.mean(pooled["are"])),
        "coverage_80": float(np.mean(pooled["in_80"])) if pooled["in_80"] else None,
        "coverage_95": float(np.mean(pooled["in_95"])) if pooled["in_95"] else None,
        "interval": out_steps[-1]["interval"] if out_steps else None,
    }
