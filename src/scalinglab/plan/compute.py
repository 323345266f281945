"""Compute-optimal allocation of a FLOP budget C between parameters N and tokens D.

Training compute is taken as ``C = 6 N D`` (Kaplan et al. 2020; Hoffmann et al. 2022), with N the
parameter count the law uses (total for Chinchilla, non-embedding for Kaplan, non-zero for the sparse
law): the plan reports which.

* Chinchilla has a closed form (Hoffmann et al. 2022, Eq. 4):
  ``N_opt = G (C/6)^a``, ``D_opt = G^-1 (C/6)^b``, ``G = (alpha A / (beta B))^(1/(alpha+beta))``,
  ``a = beta/(alpha+beta)``, ``b = alpha/(alpha+beta)``.
* Any other law with N and D inputs is minimised numerically over ``ln N`` along ``D = C/(6N)``,
  its other inputs held at values the user gives.

Intervals: every bootstrap replicate of the fit is planned too; the loss interval combines those
optima with the fit's residual scatter, as ``predict`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from ..errors import DataError, ParameterError, invalid
from ..fit.calibrate import EXTRAPOLATION, OBSERVATION, calibrated_interval
from ..fit.predict import interval_kind
from ..fit.result import Fit
from ..laws import Law

_GRID = 2001  # ln N grid points for the numeric search, before refinement


def chinchilla_optimum(params: Mapping[str, Any], C: float) -> tuple[Any, Any]:
    """Closed-form (N_opt, D_opt) for Chinchilla parameters (arrays broadcast)."""
    A, B = np.asarray(params["A"], dtype=float), np.asarray(params["B"], dtype=float)
    al, be = np.asarray(params["alpha"], dtype=float), np.asarray(params["beta"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        G = (al * A / (be * B)) ** (1.0 / (al + be))
        N = G * (C / 6.0) ** (be / (al + be))
        D = C / (6.0 * N)
    return N, D


def _numeric_optimum(law: Law, params: Mapping[str, Any], C: float, fixed: Mapping[str, float]) -> tuple[float, float]:
    n_in, d_in = law.n_input, law.d_input
    assert n_in and d_in  # checked by the caller
    lo, hi = 0.0, float(np.log(C / 6.0))
    lnN = np.linspace(lo, hi, _GRID)
    N = np.exp(lnN)
    x = {n_in: N, d_in: C / (6.0 * N)}
    for k, v in fixed.items():
        x[k] = np.full_like(N, float(v))
    loss = law.predict(params, x)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    i = int(np.argmin(loss))
    if not np.isfinite(loss[i]):
        return float("nan"), float("nan")
    a, b = lnN[max(i - 1, 0)], lnN[min(i + 1, _GRID - 1)]

    def f(t: float) -> float:
        n = np.array([np.exp(t)])
        xx = {n_in: n, d_in: C / (6.0 * n)}
        for k, v in fixed.items():
            xx[k] = np.array([float(v)])
        return float(law.predict(params, xx)[0])

    if b > a:
        res = optimize.minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-10})
        t = float(res.x) if res.fun <= loss[i] else float(lnN[i])
    else:
        t = float(lnN[i])
    n_opt = float(np.exp(t))
    return n_opt, C / (6.0 * n_opt)


def optimum(law: Law, params: Mapping[str, Any], C: float, fixed: Mapping[str, float] | None = None) -> tuple[float, float]:
    """(N_opt, D_opt) of ``law`` with ``params`` at budget ``C`` FLOPs."""
    if law.name == "chinchilla":
        N, D = chinchilla_optimum(params, C)
        return float(N), float(D)
    if law.name == "chinchilla_tied":        # the same closed form with beta = alpha
        N, D = chinchilla_optimum({**params, "beta": params["alpha"]}, C)
        return float(N), float(D)
    return _numeric_optimum(law, params, C, fixed or {})


def capped(N: float, D: float, C: float, max_tokens: float | None) -> tuple[float, float]:
    """(N, D) with D held to at most ``max_tokens``: the data-constrained optimum along ``D = C/(6N)``.
    The loss along an IsoFLOP line is unimodal in N for these laws, so when the optimum wants more
    tokens than there are, the best allowed point is the boundary ``D = max_tokens, N = C/(6 D)``."""
    if max_tokens is None or np.isnan(D) or D <= max_tokens:
        return N, D
    return C / (6.0 * max_tokens), float(max_tokens)


def plan(fit: Fit, flops: float, *, fixed: Mapping[str, float] | None = None, level: float | None = None,
         seed: int = 0, max_tokens: float | None = None) -> dict[str, Any]:
    """The compute-optimal N, D, tokens per parameter and loss (with intervals) at ``flops`` FLOPs.

    ``max_tokens``: the most training tokens the run may use (e.g. 4 epochs of a corpus's unique
    tokens: Muennighoff et al. 2023 find up to ~4 epochs of repeated data nearly as good as unique
    data, and a law fitted on unique data says nothing past that). When the optimum needs more, the plan
    takes ``D = max_tokens`` and the larger ``N = C/(6 D)`` (the data-constrained optimum; every
    bootstrap replicate too), sets ``data_constrained`` and keeps the unconstrained optimum under
    ``unconstrained``."""
    law = fit.law_
    if not (np.isfinite(flops) and flops > 0):
        raise ParameterError(invalid("The FLOP budget 'flops'", flops, "a positive number of FLOPs"))
    if max_tokens is not None and not (np.isfinite(max_tokens) and max_tokens > 0):
        raise ParameterError(invalid("The token limit 'max_tokens'", max_tokens, "a positive number of tokens"))
    n_in, d_in = law.n_input, law.d_input
    if not (n_in and d_in):
        raise DataError(f"law {law.name!r} has no N and D inputs: it cannot allocate a FLOP budget.")
    if not law.target.startswith("loss"):   # minimising a learning rate or a PTQ degradation over N, D is no plan
        hint = " (a Step-Law fit gives the learning rate and batch of another law's plan)" if law.name == "steplaw" else ""
        raise DataError(f"law {law.name!r} predicts {law.target!r}, not a loss: a compute-optimal plan minimises the "
                        f"loss at a fixed FLOP budget{hint}.")
    fixed = dict(fixed or {})
    need = [c for c in law.inputs if c not in (n_in, d_in) and c not in fixed]
    if law.derive is None and need:
        raise DataError(f"law {law.name!r} also needs {need} to plan; give their values in 'fixed'.")
    def loss_at(p: Mapping[str, Any], n: float, d: float) -> float:
        x = {n_in: np.array([n]), d_in: np.array([d])}
        x.update({k: np.array([float(v)]) for k, v in fixed.items()})
        if law.derive is not None:
            import pandas as pd
            x = {k: np.asarray(v) for k, v in law.derive(pd.DataFrame(x)).items()}
        return float(law.predict(p, x)[0])

    N0, D0 = optimum(law, fit.params, flops, fixed)
    N, D = capped(N0, D0, flops, max_tokens)
    loss = loss_at(fit.params, N, D)
    out: dict[str, Any] = {
        "law": law.name, "flops": float(flops), "n_convention": law.n_convention,
        "N": N, "D": D, "tokens_per_param": D / N, law.target: loss, "loss": loss,
        "interval": None, "N_interval": None, "D_interval": None, "fixed": fixed,
        "preset": fit.preset, "max_tokens": max_tokens, "data_constrained": (N, D) != (N0, D0),
    }
    if out["data_constrained"]:
        out["unconstrained"] = {"N": N0, "D": D0, "loss": loss_at(fit.params, N0, D0)}
    draws = fit.draws()
    if draws is None or len(draws) < 2:
        return out
    level = fit.ci_level if level is None else level
    q = [(1 - level) / 2, (1 + level) / 2]
    Ns, Ls = [], []
    for _, row in draws.iterrows():
        p = row.to_dict()
        n_b, d_b = capped(*optimum(law, p, flops, fixed), flops, max_tokens)
        Ns.append(n_b)
        Ls.append(loss_at(p, n_b, d_b))
    Ns_a, Ls_a = np.array(Ns), np.array(Ls)
    rng = np.random.default_rng(seed)
    resid = np.asarray(fit.residuals, dtype=float)
    eps = rng.choice(resid, size=Ls_a.shape) if resid.size else np.zeros_like(Ls_a)
    with np.errstate(over="ignore", invalid="ignore"):
        noisy = Ls_a * np.exp(eps) if fit.objective.get("space") == "log" else Ls_a + eps
    kind = interval_kind(fit)
    # a replicate whose N term vanished (A or alpha at 0) puts its optimum at N = 0 or infinity:
    # it has no allocation to report; the intervals come from the others, and the plan says how many
    ok = np.isfinite(Ns_a) & (Ns_a > 0) & np.isfinite(noisy)
    if not ok.all():
        out["warnings"] = [(f"{int((~ok).sum())} of {ok.size} bootstrap replicates have no finite optimum "
                           "(a term of the law vanished); the intervals come from the other "
                           f"{int(ok.sum())}.")]
    if ok.sum() < 2:
        return out
    out["interval"] = [float(v) for v in np.quantile(noisy[ok], q)]
    if kind == EXTRAPOLATION:   # the planned run, d decades beyond the fit's data
        cal = calibrated_interval(fit.calibration, pd.DataFrame({"N": [N], "D": [D], "C": [float(flops)]}),
                                  np.array([loss]), np.array(out["interval"][:1]), np.array(out["interval"][1:]),
                                  level, mean=tuple(np.quantile(Ls_a[ok], q)[:, None]))
        if cal is None:
            kind = OBSERVATION
        else:
            out["interval"] = [float(cal[0][0]), float(cal[1][0])]
    out["mean_interval"] = [float(v) for v in np.quantile(Ls_a[ok], q)]
    out["N_interval"] = [float(v) for v in np.quantile(Ns_a[ok], q)]
    out["D_interval"] = [float(v) for v in np.quantile(flops / (6 * Ns_a[ok]), q)]
    out["ci_level"] = level
    out["interval_kind"] = kind
    return out
