"""The optimal sparsity for a training budget under the sparse law (Frantar et al. 2023).

With N the non-zero non-embedding parameters of the final model, S its sparsity, D the data in the
law's unit and ``tokens_per_d`` tokens per unit of D, gradual magnitude pruning costs

.. math:: C = 6 \\, N \\, D \\, \\text{tokens\\_per\\_d} \\; c_{mul}(S)

FLOPs (``laws.sparse.cost_multiplier``: the dense start and the cubic ramp of pruning cost more than
training the final sparse model throughout). At a budget C:

* with N given: ``S_opt(N, C) = argmin_S L(S, N, D(S))`` (:func:`optimal_sparsity`, bounded Brent;
  :func:`optimal_sparsity_grid` on a sparsity grid, vectorised over N and C);
* with S given: the compute-optimal N at that sparsity;
* with neither: the joint optimum over (N, S);
* the **contour** of S_opt over a grid of (N, C), which shows the paper's result: at fixed N the
  optimal sparsity rises with the compute (the data) spent.

Units. The law's D is in whatever unit it was fitted in: tokens for a scalinglab store (``D`` is
tokens seen), optimizer steps for the T5 preset (65,536 tokens per step, inferred: LAWS.md section 4),
images for the ViT preset (no token count: give ``tokens_per_d`` yourself). The plan reports D in the
law's unit and the training tokens ``D x tokens_per_d``.

Intervals: each bootstrap replicate of the fit is planned too (optimal sparsity, tokens and loss on
a sparsity grid of step 0.001); the loss interval adds the fit's residual scatter, as
``plan.compute.plan`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from ..errors import DataError, ParameterError, invalid
from ..fit.result import Fit
from ..laws import positive_array, resolve_params
from ..laws import sparse as _sparse

#: D units of the sparse law's presets: (unit, tokens per unit or None when tokens do not apply, note)
PRESET_D_UNITS: dict[str, tuple[str, float | None, str]] = {
    "frantar2023_t5": ("steps", 65_536.0, "128 sequences x 512 tokens per step, inferred (LAWS.md section 4)"),
    "frantar2023_vit": ("images", None, "ViT on JFT: D is images; give the tokens (patches) per image"),
}
#: candidate sparsities of the grid searches (bootstrap replicates, contour), step 0.001
S_GRID = np.round(np.linspace(0.0, 0.99, 991), 6)
_N_GRID = 241    # ln N grid of the joint search, before refinement

Array = NDArray[np.float64]


def _params(params: Any) -> dict[str, float]:
    return resolve_params("sparse", _sparse.PARAM_NAMES, params)


def _check_max_sparsity(max_sparsity: float) -> None:
    if not (0.0 < max_sparsity < 1.0):
        raise ParameterError(invalid("The 'max_sparsity' parameter", max_sparsity, "a float in (0, 1)"))


def d_unit(fit: Fit, tokens_per_d: float | None = None) -> tuple[float, str]:
    """Tokens per unit of the law's D, and the unit's name.

    ``tokens_per_d`` when given; else ``fit.data["tokens_per_d"]`` when the fit records one; else the
    preset's unit (:data:`PRESET_D_UNITS`); else 1 (D in tokens, as a scalinglab store gives it).
    """
    unit = "tokens"
    if tokens_per_d is None:
        recorded = (fit.data or {}).get("tokens_per_d")
        if recorded is not None:
            tokens_per_d, unit = float(recorded), str((fit.data or {}).get("D_unit", "units of D"))
        elif fit.preset in PRESET_D_UNITS:
            unit, tpd, note = PRESET_D_UNITS[fit.preset]
            if tpd is None:
                raise ParameterError(f"preset {fit.preset!r} measures D in {unit} ({note}): give the tokens per "
                                     "unit of D ('tokens_per_d') to plan a FLOP budget.")
            tokens_per_d = tpd
        else:
            tokens_per_d = 1.0
    elif tokens_per_d != 1.0:
        unit = f"units of {tokens_per_d:g} tokens"
    if isinstance(tokens_per_d, bool) or not (math.isfinite(tokens_per_d) and tokens_per_d > 0):
        raise ParameterError(invalid("The tokens per unit of D 'tokens_per_d'", tokens_per_d,
                                     "a positive number of tokens"))
    return float(tokens_per_d), unit


def _loss(p: Mapping[str, float], S: Any, N: Any, D: Any) -> Any:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _sparse.loss(p, {"S": S, "N_nonzero": N, "D": D})


def _data(S: Any, N: Any, C: Any, tpd: float, window: tuple[float, float]) -> Any:
    return _sparse.data_at_budget(S, N, C, tokens_per_d=tpd, start_frac=window[0], end_frac=window[1])


def _s_grid(max_sparsity: float) -> Array:
    return S_GRID[S_GRID <= max_sparsity + 1e-12]


def optimal_sparsity(params: Any, N_nonzero: float, C: float, *, tokens_per_d: float = 1.0,
                     max_sparsity: float = 0.99, start_frac: float = 0.25, end_frac: float = 0.75,
                     xatol: float = 1e-6) -> float:
    """The sparsity that minimises the loss at a fixed number of non-zero parameters and a FLOP budget.

    .. math:: S_{opt}(N, C) = \\arg\\min_{S \\in [0, S_{max}]} L(S, N, D(S)), \\quad
              C = 6 N D(S) c_{mul}(S)

    Args:
        params: the sparse law's parameters (a mapping, a preset's ``params`` or a fitted ``Fit``).
        N_nonzero: non-zero non-embedding parameters of the final sparse model.
        C: training FLOPs.
        tokens_per_d: tokens in one unit of the law's D (``laws.sparse.data_at_budget``).
        max_sparsity: the upper end of the search interval.
        start_frac, end_frac: the pruning window of ``laws.sparse.cost_multiplier``.
        xatol: absolute tolerance on S of the bounded scalar minimisation (``scipy``).

    Returns:
        S_opt in [0, max_sparsity]; 0 means dense training is best at this budget.
    """
    p = _params(params)
    n = float(positive_array("The non-zero parameter count 'N_nonzero'", N_nonzero))
    c = float(positive_array("The FLOP budget 'C'", C))
    positive_array("The 'tokens_per_d' parameter", tokens_per_d)
    _check_max_sparsity(max_sparsity)
    _sparse.cost_multiplier(0.0, start_frac, end_frac)            # validates the pruning window once

    def f(s: float) -> float:
        d = _sparse.data_at_budget(s, n, c, tokens_per_d=tokens_per_d, start_frac=start_frac,
                                   end_frac=end_frac)
        return float(_sparse.loss(p, {"S": s, "N_nonzero": n, "D": d}))

    # Bounded Brent on [0, S_max], then compare with the dense end point, which Brent never evaluates.
    res = optimize.minimize_scalar(f, bounds=(0.0, max_sparsity), method="bounded",
                                   options={"xatol": xatol})
    s_best = float(res.x)
    return 0.0 if f(0.0) <= f(s_best) else s_best


def optimal_sparsity_grid(params: Any, N_nonzero: Any, C: Any, *, tokens_per_d: float = 1.0,
                          grid: Any = None, start_frac: float = 0.25,
                          end_frac: float = 0.75) -> tuple[Array, Array]:
    """Vectorised :func:`optimal_sparsity`: the best sparsity on a grid, for arrays of N and C.

    ``N_nonzero`` (non-zero non-embedding parameters) and ``C`` (FLOPs) broadcast against each other;
    ``grid`` holds the candidate sparsities (default :data:`S_GRID`: 0, 0.001, ..., 0.99). Returns
    ``(S_opt, loss)``, each with the broadcast shape of N and C: the grid sparsity of least loss and
    that loss (nats/token); the resolution is that of the grid.
    """
    p = _params(params)
    n = positive_array("The non-zero parameter count 'N_nonzero'", N_nonzero)
    c = positive_array("The FLOP budget 'C'", C)
    positive_array("The 'tokens_per_d' parameter", tokens_per_d)
    s = S_GRID if grid is None else np.asarray(grid, dtype=float).ravel()
    if s.size == 0 or np.any(~np.isfinite(s)) or np.any((s < 0) | (s >= 1)):
        raise ParameterError(invalid("The sparsity grid", grid, "a non-empty array of fractions in [0, 1)"))
    _sparse.cost_multiplier(0.0, start_frac, end_frac)            # validates the pruning window
    return _grid_search(p, n, c, tokens_per_d, (start_frac, end_frac), s)


def _grid_search(p: Mapping[str, float], N: Any, C: Any, tpd: float, window: tuple[float, float],
                 grid: Array) -> tuple[Array, Array]:
    """The grid search of :func:`optimal_sparsity_grid` on checked arguments: (S_opt, loss) over N x C."""
    n_b, c_b = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(C, dtype=float))
    shape = n_b.shape
    n = n_b.reshape(-1, 1)
    L = _loss(p, grid[None, :], n, _data(grid[None, :], n, c_b.reshape(-1, 1), tpd, window))
    L = np.where(np.isfinite(L), L, np.inf)
    i = np.argmin(L, axis=1)
    return (np.asarray(grid[i].reshape(shape), dtype=float),
            np.asarray(L[np.arange(len(i)), i].reshape(shape), dtype=float))


def _optimum(p: Mapping[str, float], C: float, tpd: float, window: tuple[float, float], max_sparsity: float,
             n_nonzero: float | None, sparsity: float | None, refine: bool) -> tuple[float, float]:
    """(N, S) of least loss at budget C, with either, both or neither held."""
    if n_nonzero is not None and sparsity is not None:
        return n_nonzero, sparsity
    if n_nonzero is not None:
        if refine:
            s = optimal_sparsity(p, n_nonzero, C, tokens_per_d=tpd, max_sparsity=max_sparsity,
                                 start_frac=window[0], end_frac=window[1])
        else:
            s = float(_grid_search(p, n_nonzero, C, tpd, window, _s_grid(max_sparsity))[0])
        return n_nonzero, s
    # N free: a ln N grid (D from one unit to N = 1), then a bounded refinement around the best point
    hi = math.log(C / (6.0 * tpd))
    if not hi > 0:
        raise ParameterError(invalid("The FLOP budget 'flops'", C,
                                     f"more than 6 x tokens_per_d = {6 * tpd:g} FLOPs (one unit of D for N = 1)"))
    lnN = np.linspace(0.0, hi, _N_GRID)
    grid = np.array([sparsity]) if sparsity is not None else _s_grid(max_sparsity)
    s_best, L_best = _grid_search(p, np.exp(lnN), C, tpd, window, grid)
    i = int(np.argmin(L_best))
    if not np.isfinite(L_best[i]):
        return math.nan, math.nan
    t0, s0 = float(lnN[i]), float(s_best[i])
    if not refine:
        return math.exp(t0), s0
    step = lnN[1] - lnN[0]
    bounds_t = (max(0.0, t0 - step), min(hi, t0 + step))

    if sparsity is not None:
        def f1(t: float) -> float:
            return float(_loss(p, sparsity, math.exp(t), _data(sparsity, math.exp(t), C, tpd, window)))

        res = optimize.minimize_scalar(f1, bounds=bounds_t, method="bounded", options={"xatol": 1e-9})
        return (math.exp(float(res.x)), sparsity) if res.fun <= L_best[i] else (math.exp(t0), s0)

    def f2(v: np.ndarray) -> float:
        n, s = math.exp(v[0]), float(v[1])
        return float(_loss(p, s, n, _data(s, n, C, tpd, window)))

    res = optimize.minimize(f2, np.array([t0, s0]), method="L-BFGS-B",
                            bounds=[bounds_t, (max(0.0, s0 - 0.01), min(max_sparsity, s0 + 0.01))])
    if res.fun <= L_best[i] and f2(np.array([res.x[0], 0.0])) > res.fun:
        return math.exp(float(res.x[0])), float(res.x[1])
    return math.exp(t0), s0


def contour(params: Any, n_nonzero: Sequence[float], flops: Sequence[float], *, tokens_per_d: float = 1.0,
            max_sparsity: float = 0.99, start_frac: float = 0.25, end_frac: float = 0.75) -> dict[str, Any]:
    """The optimal sparsity over a grid of non-zero parameter counts and budgets.

    Returns ``{"N_nonzero": [...], "flops": [...], "S_opt": [[...]], "loss": [[...]], "tokens": [[...]]}``
    with one row per budget (FLOPs) and one column per N (non-zero parameters); ``loss`` (nats/token)
    and ``tokens`` (training tokens) are at S_opt. Resolution: 0.001 in S.
    """
    p = _params(params)
    n = positive_array("The non-zero parameter counts of the contour", list(n_nonzero))
    c = positive_array("The budgets (FLOPs) of the contour", list(flops))
    if n.ndim != 1 or c.ndim != 1 or n.size == 0 or c.size == 0:
        raise ParameterError(invalid("The contour grid", (list(n_nonzero), list(flops)),
                                     "two non-empty lists of positive numbers"))
    _check_max_sparsity(max_sparsity)
    window = (start_frac, end_frac)
    S, L, T = [], [], []
    for C in c:
        s, loss = _grid_search(p, n, float(C), tokens_per_d, window, _s_grid(max_sparsity))
        S.append(s.tolist())
        L.append(loss.tolist())
        T.append((_data(s, n, float(C), tokens_per_d, window) * tokens_per_d).tolist())
    return {"N_nonzero": n.tolist(), "flops": c.tolist(), "S_opt": S, "loss": L, "tokens": T,
            "tokens_per_d": tokens_per_d, "rows": "flops", "columns": "N_nonzero"}


def default_contour_grid(N: float, C: float, n_cols: int = 7, n_rows: int = 9) -> tuple[list[float], list[float]]:
    """The default contour axes: N over N x [1/30, 30] and C over C x [1/100, 100], log-spaced."""
    return (np.geomspace(N / 30.0, N * 30.0, n_cols).tolist(), np.geomspace(C / 100.0, C * 100.0, n_rows).tolist())


def plan_sparse(fit: Fit, flops: float, *, n_nonzero: float | None = None, sparsity: float | None = None,
                tokens_per_d: float | None = None, max_sparsity: float = 0.99, start_frac: float = 0.25,
                end_frac: float = 0.75, level: float | None = None, seed: int = 0,
                contour_n: Sequence[float] | None = None,
                contour_flops: Sequence[float] | None = None) -> dict[str, Any]:
    """The optimal sparsity, data and predicted loss (with intervals) at a budget of ``flops`` FLOPs.

    Args:
        fit: a fit (or preset) of the ``sparse`` law.
        flops: the training budget C, FLOPs, charged as ``6 N D tokens_per_d c_mul(S)``.
        n_nonzero: hold the non-zero non-embedding parameter count (else it is optimised too).
        sparsity: hold the sparsity (else it is optimised over ``[0, max_sparsity]``).
        tokens_per_d: tokens per unit of the law's D (:func:`d_unit` picks it when None).
        start_frac, end_frac: the pruning window of the cost multiplier (the trainer's defaults).
        level: interval level (default: the fit's).
        contour_n, contour_flops: the axes of the optimal-sparsity contour
            (default :func:`default_contour_grid` around the plan).

    Returns a dict: ``S`` (optimal or held), ``N_nonzero``, ``D`` (law unit ``D_unit``), ``tokens``,
    ``tokens_per_d``, ``tokens_per_param`` (tokens / N), ``c_mul``, ``loss`` (nats/token) and, with
    bootstrap draws, ``interval`` (prediction), ``mean_interval``, ``S_interval``, ``N_interval``,
    ``tokens_interval``; ``dense`` (the dense run of the same N, or the dense optimum, at the same
    budget: ``N_nonzero``, ``tokens``, ``loss``); ``contour`` (:func:`contour`).
    """
    if fit.law_.name != "sparse":
        raise DataError(f"the sparsity planner needs a fit of law 'sparse'; this fit is of law {fit.law!r}.")
    if isinstance(flops, bool) or not (isinstance(flops, (int, float)) and math.isfinite(flops) and flops > 0):
        raise ParameterError(invalid("The FLOP budget 'flops'", flops, "a positive number of FLOPs"))
    if n_nonzero is not None:
        n_nonzero = float(positive_array("The non-zero parameter count 'n_nonzero'", n_nonzero))
    if sparsity is not None and not (0.0 <= sparsity < 1.0):
        raise ParameterError(invalid("The sparsity S", sparsity, "a fraction in [0, 1)"))
    _check_max_sparsity(max_sparsity)
    _sparse.cost_multiplier(0.0, start_frac, end_frac)      # validates the window
    tpd, unit = d_unit(fit, tokens_per_d)
    window = (start_frac, end_frac)
    p = _params(fit)
    C = float(flops)

    N, S = _optimum(p, C, tpd, window, max_sparsity, n_nonzero, sparsity, refine=True)
    if not (math.isfinite(N) and math.isfinite(S)):
        raise DataError(f"the sparse law gives no finite loss at C = {C:.3g} FLOPs with these parameters.")
    D = float(_data(S, N, C, tpd, window))
    loss = float(_loss(p, S, N, D))
    Nd, _ = _optimum(p, C, tpd, window, max_sparsity, n_nonzero, 0.0, refine=True)
    Dd = float(_data(0.0, Nd, C, tpd, window))
    out: dict[str, Any] = {
        "law": "sparse", "flops": C, "n_convention": fit.law_.n_convention, "preset": fit.preset,
        "held": {k: v for k, v in (("N_nonzero", n_nonzero), ("S", sparsity)) if v is not None},
        "S": S, "N_nonzero": N, "D": D, "D_unit": unit, "tokens_per_d": tpd, "tokens": D * tpd,
        "tokens_per_param": D * tpd / N, "c_mul": float(_sparse.cost_multiplier(S, *window)), "loss": loss,
        "interval": None, "mean_interval": None, "S_interval": None, "N_interval": None, "tokens_interval": None,
        "dense": {"N_nonzero": Nd, "D": Dd, "tokens": Dd * tpd, "loss": float(_loss(p, 0.0, Nd, Dd))},
        "pruning_window": list(window), "max_sparsity": max_sparsity,
    }
    draws = fit.draws()
    if draws is not None and len(draws) >= 2:
        level = fit.ci_level if level is None else level
        q = [(1 - level) / 2, (1 + level) / 2]
        rows = []
        for _, row in draws.iterrows():
            pb = {k: float(v) for k, v in row.items()}
            nb, sb = _optimum(pb, C, tpd, window, max_sparsity, n_nonzero, sparsity, refine=False)
            db = float(_data(sb, nb, C, tpd, window))
            rows.append((nb, sb, db * tpd, float(_loss(pb, sb, nb, db))))
        arr = np.array(rows, dtype=float)
        ok = np.all(np.isfinite(arr), axis=1)
        arr = arr[ok]
        if len(arr) >= 2:
            rng = np.random.default_rng(seed)
            resid = np.asarray(fit.residuals, dtype=float)
            eps = rng.choice(resid, size=len(arr)) if resid.size else np.zeros(len(arr))
            noisy = arr[:, 3] * np.exp(eps) if fit.objective.get("space", "log") == "log" else arr[:, 3] + eps
            out.update({
                "interval": np.quantile(noisy, q).tolist(), "mean_interval": np.quantile(arr[:, 3], q).tolist(),
                "S_interval": None if sparsity is not None else np.quantile(arr[:, 1], q).tolist(),
                "N_interval": None if n_nonzero is not None else np.quantile(arr[:, 0], q).tolist(),
                "tokens_interval": np.quantile(arr[:, 2], q).tolist(), "ci_level": level,
                "n_draws": len(arr),
            })
    n_axis, c_axis = default_contour_grid(N, C)
    out["contour"] = contour(p, contour_n if contour_n is not None else n_axis,
                             contour_flops if contour_flops is not None else c_axis,
                             tokens_per_d=tpd, max_sparsity=max_sparsity, start_frac=start_frac, end_frac=end_frac)
    return out


__all__ = ["PRESET_D_UNITS", "S_GRID", "contour", "d_unit", "default_contour_grid", "optimal_sparsity",
           "optimal_sparsity_grid", "plan_sparse"]
