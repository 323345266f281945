"""The Step-Law fitting procedure (Li et al. 2025), which replaces the generic fit for law ``steplaw``.

The official code (``step-law/steplaw``, ``code/fit_tool.py``) does not minimise a loss over the law's
parameters: in every (N, D) cell it keeps the runs whose smoothed final loss is within 0.25% of the
cell's best (:func:`select_optimal`), regresses ``ln lr`` on ``ln N`` and ``ln D`` and ``ln B`` on
``ln D`` by ordinary least squares, and averages the coefficients over bootstrap resamples of the kept
runs (:func:`fit_steplaw`). The law itself (formula, closed forms, presets) is
:mod:`scalinglab.laws.steplaw`; it names this procedure with ``procedure="steplaw"``.

Units: N non-embedding parameters, D training tokens, lr the peak AdamW learning rate, batch in tokens,
loss the smoothed final training loss (nats/token).

Reference: Li et al. 2025, arXiv 2503.04715; official code and data step-law/steplaw @ 32a8f4c
(LAWS.md section 5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import table as _table
from ..errors import FitError, ParameterError, invalid
from ..laws import Law
from ..laws.steplaw import PARAM_NAMES
from ._optimize import Array
from .result import Fit, too_few_points_warning

#: runs within this relative distance of their (N, D) cell's best loss count as optimal (fit_tool.py)
FILTER_THRESHOLD = 0.0025
#: bootstrap resamples of the official procedure
N_BOOTSTRAP = 1000


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ParameterError(invalid("The 'threshold' parameter (relative loss window)", threshold,
                                     "a float in (0, 1)"))


def select_optimal(df: pd.DataFrame, threshold: float = FILTER_THRESHOLD, *,
                   source: str = "data") -> pd.DataFrame:
    """The near-optimal runs of every (N, D) cell: ``|loss / min_cell(loss) - 1| < threshold``.

    ``df`` needs the canonical columns N, D, lr, batch (tokens) and loss (the smoothed final loss).
    Returns those rows (validated, float columns), in their original order.
    """
    _check_threshold(threshold)
    out = _table.validate(df, ["N", "D", "lr", "batch", "loss"], source=source)
    best = out.groupby(["N", "D"])["loss"].transform("min")
    keep = np.abs(out["loss"] / best - 1.0) < threshold
    return out[keep.to_numpy()]


def _design(sel: pd.DataFrame) -> tuple[Array, Array, Array, Array]:
    lnN = np.log(sel["N"].to_numpy(dtype=float))
    lnD = np.log(sel["D"].to_numpy(dtype=float))
    X_lr = np.column_stack([np.ones_like(lnN), lnN, lnD])
    X_b = np.column_stack([np.ones_like(lnD), lnD])
    return X_lr, np.log(sel["lr"].to_numpy(dtype=float)), X_b, np.log(sel["batch"].to_numpy(dtype=float))


def _ols(X: Array, y: Array) -> Array:
    """Least-squares coefficients for a batch of designs: X (K, n, p), y (K, n) -> (K, p)."""
    return np.asarray(np.einsum("kpn,kn->kp", np.linalg.pinv(X), y), dtype=float)


def _to_params(c_lr: Array, c_b: Array) -> dict[str, Array]:
    return {"lr_scale": np.exp(c_lr[..., 0]), "lr_exp_N": c_lr[..., 1], "lr_exp_D": c_lr[..., 2],
            "batch_scale": np.exp(c_b[..., 0]), "batch_exp_D": c_b[..., 1]}


def fit_steplaw(df: pd.DataFrame, *, law: Law | None = None, bootstrap: int = N_BOOTSTRAP, seed: int = 0,
                ci_level: float = 0.95, source: str = "", threshold: float = FILTER_THRESHOLD) -> Fit:
    """Fit the Step Law to a learning-rate x batch-size grid (the official procedure; module docstring).

    Args:
        df: runs with canonical columns N, D, lr, batch (tokens), loss (smoothed final loss).
        law: the law (``steplaw``); accepted for the ``Law.fitter`` interface.
        bootstrap: resamples of the kept runs (with replacement, seeded). With K > 0 the parameters are
            the bootstrap means of the regression coefficients (intercepts averaged in log space), as in
            ``fit_tool.py``; stderr and percentile intervals come from the draws. With 0, the
            full-sample least-squares coefficients, without uncertainty.
        seed: seed of the bootstrap.
        ci_level: level of the percentile intervals.
        source: description of the data, stored in the result.
        threshold: the relative loss window of :func:`select_optimal`.

    Returns:
        a :class:`~scalinglab.fit.Fit` with all five parameters; ``residuals`` are those of ln lr.
    """
    if isinstance(bootstrap, bool) or not (isinstance(bootstrap, (int, np.integer)) and bootstrap >= 0):
        raise ParameterError(invalid("The 'bootstrap' parameter of the Step-Law fit", bootstrap,
                                     "a non-negative integer"))
    if not (0 < ci_level < 1):
        raise ParameterError(invalid("The 'ci_level' parameter of the Step-Law fit", ci_level,
                                     "a float in (0, 1)"))
    name = (law.name if law is not None else "steplaw")
    sel = select_optimal(df, threshold, source=source or "data")
    n_N, n_D = sel["N"].nunique(), sel["D"].nunique()
    if n_N < 2 or n_D < 2:
        raise FitError(f"law {name!r}: the near-optimal runs span {n_N} model size(s) and {n_D} token "
                       "count(s); the Step-Law regression needs at least 2 of each.")
    X_lr, y_lr, X_b, y_b = _design(sel)
    c_lr = _ols(X_lr[None], y_lr[None])[0]
    c_b = _ols(X_b[None], y_b[None])[0]
    r_lr = y_lr - X_lr @ c_lr
    r_b = y_b - X_b @ c_b
    warns: list[str] = []
    too_few = len(sel) <= 3
    if too_few:
        warns.append(too_few_points_warning(len(sel), 3))
    elif len(sel) < 3 * 3:
        warns.append(f"few points: {len(sel)} near-optimal runs for 3 learning-rate coefficients; "
                     "the fit is weakly determined.")

    params = {k: float(v) for k, v in _to_params(c_lr, c_b).items()}
    stderr: dict[str, float | None] = {k: None for k in PARAM_NAMES}
    ci: dict[str, list[float] | None] = {k: None for k in PARAM_NAMES}
    corr: dict[str, dict[str, float]] = {}
    boot: dict[str, Any] = {}
    if bootstrap and too_few:   # every resample interpolates the points: no interval to report
        boot = {"n": int(bootstrap), "seed": int(seed), "n_failed": 0, "draws": {}, "skipped": "too few points"}
    elif bootstrap:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(sel), size=(int(bootstrap), len(sel)))
        b_lr = _ols(X_lr[idx], y_lr[idx])
        b_b = _ols(X_b[idx], y_b[idx])
        ok = np.all(np.isfinite(b_lr), axis=1) & np.all(np.isfinite(b_b), axis=1)
        n_failed = int(np.sum(~ok))
        if n_failed:
            warns.append(f"{n_failed} of {bootstrap} bootstrap resamples gave no regression; "
                         "they are excluded.")
        b_lr, b_b = b_lr[ok], b_b[ok]
        params = {k: float(v) for k, v in _to_params(b_lr.mean(axis=0), b_b.mean(axis=0)).items()}
        draws = _to_params(b_lr, b_b)
        lo_q, hi_q = (1 - ci_level) / 2, (1 + ci_level) / 2
        if len(b_lr) > 1:
            for k in PARAM_NAMES:
                stderr[k] = float(np.std(draws[k], ddof=1))
                ci[k] = [float(np.quantile(draws[k], lo_q)), float(np.quantile(draws[k], hi_q))]
        if len(b_lr) > 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                C = np.corrcoef(np.array([draws[k] for k in PARAM_NAMES]))
            corr = {a: {b: float(C[i, j]) for j, b in enumerate(PARAM_NAMES)}
                    for i, a in enumerate(PARAM_NAMES)}
        boot = {"n": int(bootstrap), "seed": int(seed), "n_failed": n_failed,
                "draws": {k: v.tolist() for k, v in draws.items()}}

    return Fit(
        law=name, params=params, stderr=stderr, ci=ci, ci_level=ci_level, n_points=len(sel),
        objective={"name": "steplaw_ols", "kind": "ls", "space": "log", "delta": None,
                   "value": float(0.5 * np.sum(r_lr ** 2)), "value_batch": float(0.5 * np.sum(r_b ** 2))},
        converged=True, n_starts=0, n_at_best=0, warnings=warns, fixed=[], correlations=corr,
        data={"source": source, "rows": len(df), "rows_used": len(sel),
              "filters": {"within_best_loss": threshold, "group_by": ["N", "D"]}},
        bootstrap=boot, residuals=r_lr.tolist(),
    )


def batch_exponents(df: pd.DataFrame, threshold: float = FILTER_THRESHOLD) -> dict[str, float]:
    """Regress ln B on ln N *and* ln D over the near-optimal runs, to check that B does not depend on N.

    The official code regresses the batch size on both; the paper drops N because its coefficient
    comes out near 0 on the authors' full grid. On the released dense rows it does not (about -0.27,
    SE 0.05), so check it on your own data. Returns ``batch_scale``, ``batch_exp_N``, ``batch_exp_D``
    (full-sample OLS) and the classical OLS standard errors ``batch_exp_N_stderr``, ``batch_exp_D_stderr``.
    """
    sel = select_optimal(df, threshold)
    if sel["N"].nunique() < 2 or sel["D"].nunique() < 2:
        raise FitError("the near-optimal runs need at least 2 model sizes and 2 token counts to regress "
                       "the batch size on both.")
    X, _, _, y = _design(sel)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ coef
    dof = max(len(y) - X.shape[1], 1)
    cov = np.linalg.pinv(X.T @ X) * float(r @ r) / dof
    se = np.sqrt(np.diag(cov))
    return {"batch_scale": float(np.exp(coef[0])), "batch_exp_N": float(coef[1]),
            "batch_exp_D": float(coef[2]),
            "batch_exp_N_stderr": float(se[1]), "batch_exp_D_stderr": float(se[2])}


def lr_batch_exponent(df: pd.DataFrame, *, level: float = 0.95, d_rtol: float = 0.05,
                      drop_edges: bool = False) -> dict[str, Any]:
    """The Adam learning-rate-vs-batch exponent of a learning-rate x batch grid: ``lr_opt ~ B^k``.

    In every (N, D, batch) cell the best learning rate is the vertex of a parabola in ``ln lr``
    through the lowest-loss grid point and its two neighbours (the grid point itself at an edge of
    the grid); ``ln lr_opt`` is then regressed on ``ln B`` with one intercept per (N, D) cell (OLS),
    and, per (N, D) cell with two or more batches, on ``ln B`` alone (that cell's own exponent).
    Intervals are Student-t intervals at ``level`` from the OLS standard error (None without a
    residual degree of freedom). The square-root rule (Malladi et al. 2022 for Adam) predicts k = 1/2,
    linear scaling k = 1.

    D values within ``d_rtol`` of each other (relative) form one cell: a batch sweep at fixed tokens
    trains ``floor(D / B)`` whole batches, so the tokens differ slightly between batches.
    ``drop_edges`` leaves out the batches whose best learning rate is at an edge of the grid.

    Returns ``{"exponent", "stderr", "interval", "level", "n_cells", "n_edges", "by_cell": [{"N", "D",
    "exponent", "stderr", "interval", "batches", "edges"}], "points": [{"N", "D", "batch", "lr_opt",
    "edge"}]}``; ``edge`` marks a best learning rate at the edge of the grid (a bound, not an optimum).
    """
    from scipy import stats

    if not (0 < level < 1):
        raise ParameterError(invalid("The interval level", level, "a number in (0, 1)"))
    if not (d_rtol >= 0 and np.isfinite(d_rtol)):
        raise ParameterError(invalid("The relative tolerance 'd_rtol' of D", d_rtol, "a number >= 0"))
    out = _table.validate(df, ["N", "D", "lr", "batch", "loss"], source="data")
    out = out.assign(D=_merge_close(out["D"].to_numpy(dtype=float), d_rtol))
    pts = []
    for (n, d, b), g in out.groupby(["N", "D", "batch"], sort=True):
        g = g.groupby("lr", as_index=False)["loss"].min().sort_values("lr")
        x, y = np.log(g["lr"].to_numpy(dtype=float)), g["loss"].to_numpy(dtype=float)
        i = int(np.argmin(y))
        edge = i == 0 or i == len(y) - 1
        lr_opt = x[i]
        if not edge:
            c2, c1, _ = np.polyfit(x[i - 1:i + 2], y[i - 1:i + 2], 2)
            if c2 > 0:
                lr_opt = float(np.clip(-c1 / (2 * c2), x[i - 1], x[i + 1]))
        pts.append({"N": float(n), "D": float(d), "batch": float(b), "lr_opt": float(np.exp(lr_opt)), "edge": edge})
    p = pd.DataFrame(pts)
    n_edges = int(p["edge"].sum())
    if drop_edges:
        p = p[~p["edge"]]
    if p.empty or p.groupby(["N", "D"])["batch"].nunique().max() < 2:
        raise FitError("the learning-rate x batch grid needs at least 2 batch sizes in one (N, D) cell with a best "
                       f"learning rate{' inside the grid' if drop_edges else ''} to measure the exponent "
                       f"(batches: {sorted(set(p['batch'])) if not p.empty else []}).")
    cells = p.groupby(["N", "D"]).ngroup().to_numpy()
    X = np.column_stack([np.log(p["batch"].to_numpy(dtype=float))] +
                        [(cells == c).astype(float) for c in range(cells.max() + 1)])
    y = np.log(p["lr_opt"].to_numpy(dtype=float))
    k, se, iv = _slope(X, y, level, stats)
    by_cell = []
    for (n, d), g in p.groupby(["N", "D"], sort=True):
        row: dict[str, Any] = {"N": float(n), "D": float(d), "batches": int(g["batch"].nunique()),
                               "edges": int(g["edge"].sum()), "exponent": None, "stderr": None, "interval": None}
        if g["batch"].nunique() >= 2:
            Xc = np.column_stack([np.log(g["batch"].to_numpy(dtype=float)), np.ones(len(g))])
            row["exponent"], row["stderr"], row["interval"] = _slope(Xc, np.log(g["lr_opt"].to_numpy(dtype=float)),
                                                                     level, stats)
        by_cell.append(row)
    return {"exponent": k, "stderr": se, "interval": iv, "level": float(level), "n_cells": int(cells.max() + 1),
            "n_edges": n_edges, "by_cell": by_cell, "points": pts}


def _slope(X: Any, y: Any, level: float, stats: Any) -> tuple[float, float | None, list[float] | None]:
    """OLS coefficient of X's first column, its standard error and Student-t interval."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ coef
    dof = len(y) - X.shape[1]
    if dof <= 0:
        return float(coef[0]), None, None
    se = float(np.sqrt(np.linalg.pinv(X.T @ X)[0, 0] * float(r @ r) / dof))
    t = float(stats.t.ppf((1 + level) / 2, dof))
    return float(coef[0]), se, [float(coef[0] - t * se), float(coef[0] + t * se)]


def _merge_close(D: Any, rtol: float) -> Any:
    """Each D replaced by the largest D of its cluster: sorted values within ``rtol`` of the cluster's first."""
    order = np.argsort(D, kind="stable")
    out = np.empty_like(D)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and D[order[j + 1]] <= D[order[i]] * (1 + rtol):
            j += 1
        out[order[i:j + 1]] = D[order[j]]
        i = j + 1
    return out
