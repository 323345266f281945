"""Step Law: optimal peak learning rate and batch size (Li et al. 2025).

.. math:: \\eta_{opt}(N, D) = s_\\eta N^{e_N} D^{e_D}, \\qquad B_{opt}(D) = s_B D^{e_B}

with ``lr_scale`` = s_eta, ``lr_exp_N`` = e_N, ``lr_exp_D`` = e_D, ``batch_scale`` = s_B and
``batch_exp_D`` = e_B.

* N: parameters excluding the vocabulary / embedding matrices (the released rows count
  ``layers x (4 h^2 + 3 h ffn)``); D: training tokens; eta: peak AdamW learning rate (warmup, then
  cosine decay to a fixed minimum); B: batch size in **tokens** (the released files give sequences
  of 2048 tokens: map ``batch='bs * 2048'``).
* A hyperparameter law: the law's target is ``lr`` (inputs N, D); the batch part is
  :func:`optimal_batch`. Both are fitted together by :func:`fit_steplaw`, the Step-Law procedure of the
  official code (``step-law/steplaw``, ``code/fit_tool.py``): in every (N, D) cell keep the runs whose
  smoothed final loss is within 0.25% of the cell's best, regress ``ln lr`` on ``ln N`` and ``ln D``
  and ``ln B`` on ``ln D`` by ordinary least squares, and average the coefficients over bootstrap
  resamples of the kept runs. The table needs the canonical columns N, D, lr, batch (tokens) and
  loss (use the *smoothed* final training loss: ``--map loss='`smooth loss`'``).

Reference: Li et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in Large
Language Model Pretraining", arXiv 2503.04715; official code and data step-law/steplaw @ 32a8f4c
(LAWS.md section 5: coefficients [S], method [P]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import table as _table
from ..errors import FitError, ParameterError, invalid
from ._base import (
    Array,
    Inputs,
    Law,
    Objective,
    Param,
    Params,
    Preset,
    positive_array,
    register,
    resolve_params,
)

#: parameter names of the law, in order
PARAM_NAMES = ("lr_scale", "lr_exp_N", "lr_exp_D", "batch_scale", "batch_exp_D")

#: runs within this relative distance of their (N, D) cell's best loss count as optimal (fit_tool.py)
FILTER_THRESHOLD = 0.0025
#: bootstrap resamples of the official procedure
N_BOOTSTRAP = 1000


def lr(p: Params, x: Inputs) -> Any:
    """eta_opt = lr_scale N^lr_exp_N D^lr_exp_D; N non-embedding parameters, D tokens."""
    n = np.asarray(x["N"], dtype=float)
    d = np.asarray(x["D"], dtype=float)
    return p["lr_scale"] * n ** p["lr_exp_N"] * d ** p["lr_exp_D"]


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln eta and its derivatives w.r.t. (ln lr_scale, lr_exp_N, lr_exp_D, ln batch_scale, batch_exp_D)."""
    lnN = np.log(np.asarray(x["N"], dtype=float))
    lnD = np.log(np.asarray(x["D"], dtype=float))
    ln_eta = np.log(p["lr_scale"]) + p["lr_exp_N"] * lnN + p["lr_exp_D"] * lnD
    one = np.ones_like(ln_eta)
    J = np.stack(np.broadcast_arrays(one, lnN * one, lnD * one, 0.0 * one, 0.0 * one), axis=-1)
    return ln_eta, J


def _params(params: Any) -> dict[str, float]:
    return resolve_params('steplaw', PARAM_NAMES, params)


_positive = positive_array


def optimal_lr(params: Any, N: Any, D: Any) -> Any:
    """Peak learning rate eta_opt(N, D) = lr_scale N^lr_exp_N D^lr_exp_D (N non-embedding params, D tokens)."""
    p = _params(params)
    return lr(p, {"N": _positive("The parameter count 'N'", N), "D": _positive("The token count 'D'", D)})


def optimal_batch(params: Any, D: Any) -> Any:
    """Batch size in tokens B_opt(D) = batch_scale D^batch_exp_D (D training tokens); no N dependence."""
    p = _params(params)
    return p["batch_scale"] * _positive("The token count 'D'", D) ** p["batch_exp_D"]


# -- the Step-Law fitting procedure --------------------------------------------------------------
def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ParameterError(invalid("The 'threshold' parameter (relative loss window)", threshold, "a float in (0, 1)"))


def select_optimal(df: pd.DataFrame, threshold: float = FILTER_THRESHOLD, *, source: str = "data") -> pd.DataFrame:
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
                ci_level: float = 0.95, source: str = "", threshold: float = FILTER_THRESHOLD) -> Any:
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
        a :class:`scalinglab.fit.Fit` with all five parameters; ``residuals`` are those of ln lr.
    """
    from ..fit.result import Fit  # deferred: scalinglab.fit imports the laws

    if isinstance(bootstrap, bool) or not (isinstance(bootstrap, (int, np.integer)) and bootstrap >= 0):
        raise ParameterError(invalid("The 'bootstrap' parameter of the Step-Law fit", bootstrap,
                                     "a non-negative integer"))
    if not (0 < ci_level < 1):
        raise ParameterError(invalid("The 'ci_level' parameter of the Step-Law fit", ci_level, "a float in (0, 1)"))
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
    if len(sel) < 3 * 3:
        warns.append(f"few points: {len(sel)} near-optimal runs for 3 learning-rate coefficients; "
                     "the fit is weakly determined.")

    params = {k: float(v) for k, v in _to_params(c_lr, c_b).items()}
    stderr: dict[str, float | None] = {k: None for k in PARAM_NAMES}
    ci: dict[str, list[float] | None] = {k: None for k in PARAM_NAMES}
    corr: dict[str, dict[str, float]] = {}
    boot: dict[str, Any] = {}
    if bootstrap:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(sel), size=(int(bootstrap), len(sel)))
        b_lr = _ols(X_lr[idx], y_lr[idx])
        b_b = _ols(X_b[idx], y_b[idx])
        ok = np.all(np.isfinite(b_lr), axis=1) & np.all(np.isfinite(b_b), axis=1)
        n_failed = int(np.sum(~ok))
        if n_failed:
            warns.append(f"{n_failed} of {bootstrap} bootstrap resamples gave no regression; they are excluded.")
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
            corr = {a: {b: float(C[i, j]) for j, b in enumerate(PARAM_NAMES)} for i, a in enumerate(PARAM_NAMES)}
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
    SE 0.05), so check it on your own data. Returns ``batch_scale``, ``batch_exp_N``, ``batch_exp_D`` (full-sample OLS) and
    the classical OLS standard errors ``batch_exp_N_stderr``, ``batch_exp_D_stderr``.
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
    return {"batch_scale": float(np.exp(coef[0])), "batch_exp_N": float(coef[1]), "batch_exp_D": float(coef[2]),
            "batch_exp_N_stderr": float(se[1]), "batch_exp_D_stderr": float(se[2])}


PRESETS = {
    "li2025": Preset(
        "li2025",
        {"lr_scale": 1.79, "lr_exp_N": -0.713, "lr_exp_D": 0.307, "batch_scale": 0.58, "batch_exp_D": 0.571},
        "Li et al. 2025, arXiv 2503.04715, as reported by several agreeing secondary sources "
        "(LAWS.md section 5, coefficients [S]; the paper body was not read)",
        "The paper's headline fit over its full dense grid. N: non-embedding parameters; D: tokens; "
        "batch in tokens.",
    ),
    "li2025_released_refit": Preset(
        "li2025_released_refit",
        {"lr_scale": 78.43, "lr_exp_N": -0.7677, "lr_exp_D": 0.1978, "batch_scale": 0.2144, "batch_exp_D": 0.6113},
        "scalinglab refit of step-law/steplaw dense_lr_bs_loss.csv @ 32a8f4c (fit_steplaw: 0.25% window "
        "on the smoothed loss, OLS, 1000 bootstrap resamples, seed 0)",
        "The 1,911 released dense runs (17 (N, D) cells, N 2.1e8-1.1e9, D 4e9-1e11 tokens; 129 runs kept "
        "by the 0.25% window) do not give the paper's coefficients: lr ~ N^-0.77 D^0.20 and B ~ D^0.61 "
        "against li2025's N^-0.713 D^0.307 and D^0.571 (an independent refit agrees: -0.77, 0.20, 0.61); "
        "a gap also reported against the authors' repository (as relayed in scalinglab issue 2; not checked here). Bootstrap SE: lr_exp_N 0.054, lr_exp_D 0.033, "
        "batch_exp_D 0.038; lr_scale and batch_scale are poorly determined (95% CI 10-670 and 0.03-1.3). "
        "Regressing ln B on ln N as well gives an N exponent of -0.27 (SE 0.05), not 0 "
        "(batch_exponents). Batch in tokens (bs x 2048).",
    ),
}

STEPLAW = register(Law(
    name="steplaw",
    formula=lr,
    log_jacobian=log_jacobian,
    params=(
        Param("lr_scale", 0.0, 1e30, (0.0,), log=True, doc="learning-rate scale"),
        Param("lr_exp_N", -5.0, 5.0, (-0.5,), doc="learning-rate exponent of N"),
        Param("lr_exp_D", -5.0, 5.0, (0.3,), doc="learning-rate exponent of D"),
        Param("batch_scale", 0.0, 1e30, (0.0,), log=True, doc="batch-size scale (tokens)"),
        Param("batch_exp_D", -5.0, 5.0, (0.5,), doc="batch-size exponent of D"),
    ),
    inputs=("N", "D"),
    target="lr",
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Step Law: optimal learning rate and batch size (Li et al. 2025)",
    formula_text="lr = lr_scale N^lr_exp_N D^lr_exp_D;  B = batch_scale D^batch_exp_D (tokens)",
    units="N: non-embedding parameters (count); D: training tokens; lr: peak AdamW learning rate; "
          "B: batch size in tokens",
    citation="Li et al. 2025, arXiv 2503.04715; step-law/steplaw code/fit_tool.py",
    objective=Objective("ls", 1e-3, "log"),
    fitter=fit_steplaw,
    presets=PRESETS,
    grid_note="not used: the Step-Law fitter is a closed-form least-squares procedure",
))
