"""Fitting a law to a run table: multi-start, local refinement, bootstrap and diagnostics.

>>> from scalinglab.fit import LawFit
>>> result = LawFit("chinchilla", bootstrap=1000, seed=0).fit(table).result_   # doctest: +SKIP

The estimator follows scikit-learn's contract: arguments are stored untouched in ``__init__``,
``fit`` validates them and returns ``self``, learned attributes end in ``_``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from .. import laws as _laws
from .. import table as _table
from ..errors import (
    BoundWarning,
    ConvergenceWarning,
    FitError,
    IdentifiabilityWarning,
    ParameterError,
    invalid,
)
from ..laws import Law, Objective
from ._optimize import Array, fd_jacobian, irls_weight, minimize_batched, objective_values
from .procedures import get_procedure
from .result import Fit, too_few_points_warning

log = logging.getLogger(__name__)

#: starts whose objective is within this relative tolerance of the best count as reaching it
BEST_RTOL = 1e-6
#: |correlation| of two parameters' bootstrap draws above which the direction is reported as flat
FLAT_CORR = 0.99
#: condition number of the scaled curvature matrix above which the fit is reported ill-conditioned
FLAT_COND = 1e10
#: a parameter whose curvature is below this fraction of the largest one is reported as not identified
FLAT_DIAG = 1e-14
#: elements of the K x n residual matrix evaluated in one chunk of starts
_CHUNK = 1_500_000
#: starts of one fit whose optimisation-scale parameters agree to this have joined one basin and are
#: merged (``minimize_batched(merge_tol=...)``): the same descent is not repeated
MERGE_TOL = 1e-4


class Problem:
    """A law bound to data: residuals and Jacobians on the optimisation scale of the free parameters."""

    def __init__(self, law: Law, df: pd.DataFrame, objective: Objective, fixed: Mapping[str, float],
                 weights: np.ndarray | None = None,
                 bounds: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.law = law
        self.objective = objective
        self.fixed = dict(fixed)
        self.free = [p for p in law.params if p.name not in self.fixed]
        if not self.free:
            raise ParameterError(f"every parameter of law {law.name!r} is fixed: nothing to fit.")
        self.inputs = {c: df[c].to_numpy(dtype=float) for c in law.inputs}
        self.y: Array = df[law.target].to_numpy(dtype=float)
        self.log_y: Array | None = np.log(self.y) if objective.space == "log" else None
        self.n = len(self.y)
        self.weights = np.ones(self.n) if weights is None else np.asarray(weights, dtype=float)
        self.asym = float(objective.asymmetry)
        lo, hi = zip(*(p.scaled_bounds for p in self.free))
        self.lower = np.array(lo, dtype=float)
        self.upper = np.array(hi, dtype=float)
        for j, p in enumerate(self.free):     # user bounds (validated by LawFit) narrow the law's
            if bounds and p.name in bounds:
                b_lo, b_hi = bounds[p.name]
                self.lower[j] = max(self.lower[j], float(p.to_scaled(b_lo)) if b_lo > 0 or not p.log
                                    else self.lower[j])
                self.upper[j] = float(p.to_scaled(b_hi))
        self._free_idx = [law.param_names.index(p.name) for p in self.free]

    def params_of(self, theta: Array) -> dict[str, Any]:
        """Natural-unit parameters for a (K, P) batch of free-parameter vectors: (K, 1) arrays."""
        out: dict[str, Any] = {k: float(v) for k, v in self.fixed.items()}
        for j, p in enumerate(self.free):
            out[p.name] = p.from_scaled(theta[:, j])[:, None]
        return out

    def natural(self, theta: Array) -> dict[str, float]:
        """Natural-unit parameters of one vector theta (P,), fixed ones included, in law order."""
        d = {k: float(v[0, 0]) if isinstance(v, np.ndarray) else float(v)
             for k, v in self.params_of(theta[None, :]).items()}
        return {name: d[name] for name in self.law.param_names}

    def residual(self, theta: Array) -> Array:
        p = self.params_of(theta)
        if self.log_y is not None:          # log residuals
            return self.law.log_predict(p, self.inputs) - self.log_y
        return self.law.predict(p, self.inputs) - self.y

    def jac(self, theta: Array) -> tuple[Array, Array]:
        if self.law.log_jacobian is None:
            return fd_jacobian(self.residual, theta, self.lower, self.upper)
        p = self.params_of(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            lp, Jlog = self.law.log_jacobian(p, self.inputs)
            if len(self._free_idx) != Jlog.shape[-1]:
                Jlog = Jlog[..., self._free_idx]
            if self.log_y is not None:      # log residuals
                return lp - self.log_y, Jlog
            pred = np.exp(lp)
            return pred - self.y, pred[..., None] * Jlog

    def values(self, theta: Array, weights: Array | None = None) -> Array:
        w = self.weights if weights is None else weights
        return objective_values(self.residual(theta), w, self.objective.kind, self.objective.delta, self.asym)

    def minimize(self, starts: Array, weights: Array | None = None, max_iter: int = 300) -> Any:
        """Batched minimisation in chunks that keep the K x n x P Jacobian in memory bounds."""
        W = self.weights if weights is None else weights
        K = len(starts)
        chunk = max(1, _CHUNK // max(1, self.n * (len(self.free) if W.ndim > 1 else 1)))
        thetas, vals, conv = [], [], []
        for s in range(0, K, chunk):
            w = W if W.ndim == 1 else W[s:s + chunk]
            res = minimize_batched(self.jac, self.residual, starts[s:s + chunk], self.lower, self.upper, w,
                                   kind=self.objective.kind, delta=self.objective.delta, max_iter=max_iter,
                                   asym=self.asym, merge_tol=MERGE_TOL if W.ndim == 1 else 0.0)
            thetas.append(res.theta)
            vals.append(res.value)
            conv.append(res.converged)
        return np.concatenate(thetas), np.concatenate(vals), np.concatenate(conv)

    def polish(self, theta: Array) -> tuple[Array, float, bool]:
        """Refine one vector with L-BFGS-B on the exact objective, gradient J^T rho'(r)."""
        kind, delta = self.objective.kind, self.objective.delta

        def fun(t: Array) -> tuple[float, Array]:
            r, J = self.jac(t[None, :])
            f = objective_values(r, self.weights, kind, delta, self.asym)[0]
            g = np.einsum("n,np->p", irls_weight(r[0], kind, delta, self.asym) * r[0] * self.weights, J[0])
            if not np.isfinite(f):
                return 1e300, np.zeros_like(t)
            return float(f), g

        bounds = [(None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi)
                  for lo, hi in zip(self.lower, self.upper)]
        res = optimize.minimize(fun, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
        return np.asarray(res.x, dtype=float), float(res.fun), bool(res.success)

    def curvature(self, theta: Array) -> Array:
        """The IRLS (Gauss-Newton) curvature matrix J^T diag(w) J at theta, (P, P)."""
        r, J = self.jac(theta[None, :])
        w = irls_weight(r[0], self.objective.kind, self.objective.delta, self.asym) * self.weights
        return np.asarray(np.einsum("n,np,nq->pq", w, J[0], J[0]), dtype=float)


class LawFit:
    """Fit a scaling law to a table of runs.

    Args:
        law: a law name from the catalog or a :class:`~scalinglab.laws.Law`.
        objective: the objective; the law's published choice by default (Huber delta=1e-3 on log
            residuals, summed, for Chinchilla).
        fixed: parameters held at given values (natural units), e.g. the base law of Muennighoff.
        starts: initial points (K x P_free, optimisation scale); the law's grid by default.
        bootstrap: number of bootstrap replicates over rows (0 for none).
        seed: seed of the bootstrap (and of anything else random).
        ci_level: level of the percentile intervals.
        weights: optional observation weights (one per row).
        source: a description of where the data came from, stored in the result.
        bounds: narrower bounds for parameters, name -> (lo, hi) in natural units, inside the law's
            own (e.g. ``{"E": (1.5, 1.9)}``, marin#4447's bounded irreducible loss).
        weight_by: ``"compute"``: row weights proportional to training compute C (normalised to mean
            1, times ``weights`` when both are given), so the largest budgets pull hardest.
        calibrate: a group key (``budget_flops``, ``C``, ``N``...): estimate the error of
            extrapolating from the fit's own internal rollouts over those groups and store it
            (``Fit.calibration``), so that predictions beyond the data get an extrapolation-calibrated
            interval (:mod:`scalinglab.fit.calibrate`).
        calibrate_decades: with ``calibrate``, bin the key into groups this many decades wide
            (for keys with a value per row, like Epoch's C); None: one group per distinct value.
        calibrate_scheme: how the calibrated interval is built from the internal rollout errors,
            one of :data:`scalinglab.fit.calibrate.SCHEMES` (default ``DEFAULT_SCHEME``).
    """

    def __init__(self, law: str | Law, *, objective: Objective | None = None,
                 fixed: Mapping[str, float] | None = None, starts: Array | None = None,
                 bootstrap: int = 0, seed: int = 0, ci_level: float = 0.95,
                 weights: Sequence[float] | None = None, source: str = "", max_iter: int = 300,
                 bounds: Mapping[str, tuple[float, float]] | None = None, weight_by: str | None = None,
                 calibrate: str | None = None, calibrate_decades: float | None = None,
                 calibrate_scheme: str | None = None) -> None:
        self.law = law
        self.objective = objective
        self.fixed = fixed
        self.starts = starts
        self.bootstrap = bootstrap
        self.seed = seed
        self.ci_level = ci_level
        self.weights = weights
        self.source = source
        self.max_iter = max_iter
        self.bounds = bounds
        self.weight_by = weight_by
        self.calibrate = calibrate
        self.calibrate_decades = calibrate_decades
        self.calibrate_scheme = calibrate_scheme

    def _validate(self) -> tuple[Law, Objective, dict[str, float]]:
        law = _laws.get(self.law)
        objective = self.objective or law.objective
        if not (isinstance(self.bootstrap, (int, np.integer)) and self.bootstrap >= 0):
            raise ParameterError(invalid("The 'bootstrap' parameter of LawFit", self.bootstrap,
                                         "a non-negative integer"))
        if not (0 < self.ci_level < 1):
            raise ParameterError(invalid("The 'ci_level' parameter of LawFit", self.ci_level, "a float in (0, 1)"))
        fixed = dict(self.fixed or {})
        for name, value in fixed.items():
            p = law.param(name)
            if not (p.lower <= value <= p.upper):
                raise ParameterError(invalid(f"The fixed value of parameter {name!r}", value,
                                             f"within its bounds [{p.lower}, {p.upper}]"))
        for name, (lo, hi) in dict(self.bounds or {}).items():
            p = law.param(name)
            if name in fixed:
                raise ParameterError(invalid(f"The bound of parameter {name!r}", f"{lo}:{hi}",
                                             "a parameter that is not also fixed"))
            if not (np.isfinite(lo) and np.isfinite(hi) and p.lower <= lo < hi <= p.upper):
                raise ParameterError(invalid(f"The bound of parameter {name!r}", f"{lo}:{hi}",
                                             f"LO:HI with LO < HI inside the law's range [{p.lower:g}, {p.upper:g}]"))
        if self.weight_by not in (None, "compute"):
            raise ParameterError(invalid("The 'weight_by' parameter of LawFit", self.weight_by,
                                         "None or 'compute'"))
        if self.calibrate_scheme is not None:
            from .calibrate import SCHEMES
            if self.calibrate_scheme not in SCHEMES:
                raise ParameterError(invalid("The 'calibrate_scheme' parameter of LawFit", self.calibrate_scheme,
                                             f"one of {list(SCHEMES)}"))
        return law, objective, fixed

    def check(self) -> LawFit:
        """Validate the arguments (as ``fit`` does first) without fitting; returns ``self``."""
        self._validate()
        return self

    def fit(self, df: pd.DataFrame) -> LawFit:
        """Fit the law to ``df`` (canonical columns). Returns ``self``; the result is ``result_``."""
        law, objective, fixed = self._validate()
        if law.derive is not None:
            df = law.derive(df)
        df = _table.validate(df, list(law.inputs) + [law.target], source=self.source or "data")
        if law.procedure is not None:
            procedure = get_procedure(law.procedure)
            self.result_ = procedure(df, law=law, bootstrap=self.bootstrap, seed=self.seed,
                                     ci_level=self.ci_level, source=self.source)
            self.params_ = dict(self.result_.params)
            return self
        weights = None if self.weights is None else np.asarray(self.weights, dtype=float)
        if weights is not None and (weights.shape != (len(df),) or np.any(weights < 0)):
            raise ParameterError(invalid("The observation weights", f"shape {weights.shape}",
                                         f"{len(df)} non-negative numbers, one per row"))
        if self.weight_by == "compute":
            C = _table.derive_standard(df).get("C")
            if C is None:
                raise ParameterError(invalid("The compute weighting", "rows without C",
                                             "rows with C, or N and D (C = 6 N D)"))
            wc = np.asarray(pd.to_numeric(C, errors="coerce"), dtype=float)
            bad = ~(np.isfinite(wc) & (wc > 0))   # NaN weights made every start's objective non-finite
            if bad.any():
                raise ParameterError(invalid("The compute weighting (weight_by='compute')",
                                             f"{int(bad.sum())} of {len(wc)} rows without C",
                                             "rows with a finite positive C (a table without a C column gets "
                                             "C = 6 N D)"))
            wc = wc / np.mean(wc)
            weights = wc if weights is None else weights * wc
        prob = Problem(law, df, objective, fixed, weights, self.bounds)
        starts = law.init_grid([p.name for p in prob.free]) if self.starts is None else np.atleast_2d(
            np.asarray(self.starts, dtype=float))
        if starts.shape[1] != len(prob.free):
            raise ParameterError(invalid("The starts", f"{starts.shape[1]} columns",
                                         f"{len(prob.free)} (one per free parameter)"))
        warns: list[str] = []

        # 1. every start at once
        thetas, vals, conv = prob.minimize(starts, max_iter=self.max_iter)
        finite = np.isfinite(vals)
        if not finite.any():
            raise FitError(f"law {law.name!r}: the objective is not finite at any of the {len(starts)} starts; "
                           "check the data's units and the law's inputs.")
        best_i = int(np.nanargmin(np.where(finite, vals, np.inf)))
        log.debug("law %s: %d starts, best objective %.10g", law.name, len(starts), vals[best_i])
        theta, value = thetas[best_i], float(vals[best_i])
        # 2. local refinement of the best
        t2, v2, ok2 = prob.polish(theta)
        if np.isfinite(v2) and v2 < value:
            theta, value = t2, v2
        converged = bool(conv[best_i]) or ok2
        if not converged:
            warns.append("the best start did not converge (iteration limit reached): treat the parameters "
                         "as approximate.")
        n_at_best = int(np.sum(vals <= value + BEST_RTOL * abs(value) + 1e-300))
        params = prob.natural(theta)

        # 3. bootstrap
        boot: dict[str, Any] = {}
        stderr: dict[str, float | None] = {p: None for p in law.param_names}
        ci: dict[str, list[float] | None] = {p: None for p in law.param_names}
        corr: dict[str, dict[str, float]] = {}
        too_few = prob.n <= len(prob.free)
        if self.bootstrap and too_few:   # every replicate interpolates the points: no interval to report
            boot = {"n": int(self.bootstrap), "seed": int(self.seed), "n_failed": 0, "draws": {},
                    "skipped": "too few points"}
        elif self.bootstrap:
            rng = np.random.default_rng(self.seed)
            counts = rng.multinomial(prob.n, np.full(prob.n, 1.0 / prob.n), size=int(self.bootstrap))
            W = counts * prob.weights
            bt, bv, bc = prob.minimize(np.repeat(theta[None, :], len(W), axis=0), W, max_iter=2 * self.max_iter)
            ok = bc & np.isfinite(bv)
            n_failed = int(np.sum(~ok))
            if n_failed:
                warns.append(f"{n_failed} of {len(W)} bootstrap refits did not converge; they are excluded.")
            nat = prob.params_of(bt[ok])
            draws = {name: (np.broadcast_to(np.asarray(nat[name], dtype=float).reshape(-1), (int(ok.sum()),)))
                     for name in law.param_names}
            lo_q, hi_q = (1 - self.ci_level) / 2, (1 + self.ci_level) / 2
            for p in prob.free:
                x = draws[p.name]
                if len(x) > 1:
                    stderr[p.name] = float(np.std(x, ddof=1))
                    ci[p.name] = [float(np.quantile(x, lo_q)), float(np.quantile(x, hi_q))]
            free_names = [p.name for p in prob.free]
            if int(ok.sum()) > 2:
                M = np.array([draws[n] for n in free_names])
                with np.errstate(invalid="ignore", divide="ignore"):
                    C = np.corrcoef(M)
                C = np.atleast_2d(C)
                corr = {a: {b: float(C[i, j]) for j, b in enumerate(free_names)} for i, a in enumerate(free_names)}
                for i, a in enumerate(free_names):
                    for j in range(i + 1, len(free_names)):
                        if np.isfinite(C[i, j]) and abs(C[i, j]) > FLAT_CORR:
                            warns.append(f"flat direction: the bootstrap correlation of {a!r} and "
                                         f"{free_names[j]!r} is {C[i, j]:+.3f}; the data pin down a "
                                         f"combination of them better than either.")
            boot = {"n": int(self.bootstrap), "seed": int(self.seed), "n_failed": n_failed,
                    "draws": {k: v.tolist() for k, v in draws.items()}}

        # 4. diagnostics
        warns += _bound_warnings(prob, theta)
        warns += _conditioning_warnings(prob, theta)
        if too_few:
            warns.append(too_few_points_warning(prob.n, len(prob.free)))
        elif prob.n < 3 * len(prob.free):
            warns.append(f"few points: {prob.n} rows for {len(prob.free)} free parameters "
                         f"(fewer than 3 per parameter); the fit is weakly determined.")
        for w in warns:
            category = (BoundWarning if "bound" in w else ConvergenceWarning if "converge" in w
                        else IdentifiabilityWarning)
            warnings.warn(w, category, stacklevel=2)

        r = prob.residual(theta[None, :])[0]
        calibration: dict[str, Any] = {}
        if self.calibrate:
            from .calibrate import DEFAULT_SCHEME, estimate  # calibrate fits internal rollouts with LawFit
            with np.errstate(invalid="ignore", divide="ignore"):
                log_r = np.log(law.predict(params, prob.inputs) / prob.y)
            calibration = estimate(
                df, law, self.calibrate, decades=self.calibrate_decades, seed=self.seed,
                residual_rms=float(np.sqrt(np.mean(log_r ** 2))), best=theta,
                scheme=self.calibrate_scheme or DEFAULT_SCHEME,
                fit_kwargs={"objective": objective, "fixed": fixed, "bounds": self.bounds,
                            "weight_by": self.weight_by, "max_iter": self.max_iter})
            if calibration["method"] == "none":
                warns.append(f"no extrapolation calibration: {calibration['reason']}; intervals are "
                             "observation intervals only.")
        self.result_ = Fit(
            law=law.name, params=params, stderr=stderr, ci=ci, ci_level=self.ci_level, n_points=prob.n,
            objective={"name": objective.name, "kind": objective.kind, "space": objective.space,
                       "delta": objective.delta if objective.kind == "huber" else None, "value": value,
                       "asymmetry": objective.asymmetry},
            converged=converged, n_starts=len(starts), n_at_best=n_at_best, warnings=warns,
            fixed=sorted(fixed), correlations=corr,
            data={"source": self.source, "rows": prob.n, "weight_by": self.weight_by,
                  "bounds": {k: [float(v[0]), float(v[1])] for k, v in dict(self.bounds or {}).items()}},
            bootstrap=boot, residuals=r.tolist(), calibration=calibration,
        )
        self.params_ = params
        return self


def _bound_warnings(prob: Problem, theta: Array) -> list[str]:
    out = []
    for j, p in enumerate(prob.free):
        t, lo, hi = theta[j], prob.lower[j], prob.upper[j]
        v = float(p.from_scaled(t))
        tol = 1e-6 * (1.0 + abs(t))
        if np.isfinite(lo) and t - lo <= tol:
            floor = " (its term has vanished)" if p.log and p.lower == 0 else ""
            lo_nat = p.lower if lo == p.scaled_bounds[0] else float(p.from_scaled(lo))
            out.append(f"parameter {p.name!r} = {v:.6g} is at its lower bound {lo_nat:g}{floor}.")
        elif np.isfinite(hi) and hi - t <= tol:
            out.append(f"parameter {p.name!r} = {v:.6g} is at its upper bound {float(p.from_scaled(hi)):g}.")
    return out


def _conditioning_warnings(prob: Problem, theta: Array) -> list[str]:
    H = prob.curvature(theta)
    if not np.all(np.isfinite(H)):
        return ["the curvature at the optimum is not finite; uncertainties from it are meaningless."]
    diag = np.abs(np.diag(H))
    # a parameter the objective barely responds to (relative to the best-determined one) is not identified
    dead = diag <= FLAT_DIAG * max(float(diag.max()), 1e-300)
    if dead.any():
        names = [p.name for p, z in zip(prob.free, dead) if z]
        return [(f"flat direction: the objective does not respond to {names} at the optimum (their terms "
                 "contribute nothing); those parameters are not identified by the data.")]
    d = np.sqrt(diag)
    Hn = H / np.outer(d, d)
    ev, vec = np.linalg.eigh(Hn)
    cond = float(ev[-1] / max(ev[0], 1e-300))
    if cond > FLAT_COND:
        names = [p.name for p, c in zip(prob.free, vec[:, 0]) if abs(c) > 0.3]
        how = "singular" if ev[0] <= 1e-16 * ev[-1] else f"ill-conditioned (condition number {cond:.2g})"
        return [f"flat direction: the curvature is {how} along a combination of {names}."]
    return []


def fit(df: pd.DataFrame, law: str | Law, **kwargs: Any) -> Fit:
    """Functional form: ``LawFit(law, **kwargs).fit(df).result_``."""
    return LawFit(law, **kwargs).fit(df).result_
