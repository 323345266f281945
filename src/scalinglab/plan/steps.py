"""Steps, tokens and loss curves of a run at a batch size: the prediction recipes of Su et al. 2024.

Su et al. 2024 ("Unraveling the Mystery of Scaling Laws: Part I", arXiv 2403.06563) plan a run from
Kaplan et al.'s learning-curve law ``L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S`` and the
critical batch ``B_crit(L) = B_* / L^(1/alpha_B)`` (:mod:`scalinglab.laws.kaplan`, Eq. 1.4, 1.6, 5.4):

* recipe 1, :func:`loss_floor`: the converged loss of a model of N parameters;
* recipe 2, :func:`steps_to_loss`: the steps and tokens to reach a target loss (closed form);
* recipe 4, :func:`loss_trajectory`: the loss curve L(S) at a batch size (a root of the law at every
  step, Brent's method).

Units: N non-embedding parameters; S optimizer steps; B, B_crit and E tokens; L nats per token
(WebText2 for the ``kaplan2020`` preset).

Reference: Su et al. 2024, arXiv 2403.06563; Kaplan et al. 2020, arXiv 2001.08361; McCandlish et al.
2018, arXiv 1812.06162.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from ..errors import ParameterError, invalid
from ..laws import kaplan as _kaplan
from ..laws import positive_array

Array = NDArray[np.float64]


@dataclass(frozen=True)
class StepsToLoss:
    """What reaching a target loss costs (Su et al. 2024, recipe 2).

    Attributes:
        S_min: minimum optimizer steps (the ``B >> B_crit`` limit).
        E_min: minimum tokens, ``B_crit(L) * S_min`` (the ``B << B_crit`` limit).
        B_crit: critical batch size at the target loss (tokens).
        S, E: steps and tokens at the requested batch size, ``S_min (1 + B_crit/B)`` and
            ``E_min (1 + B/B_crit)``; ``None`` when no batch size was given.
    """

    S_min: Array
    E_min: Array
    B_crit: Array
    S: Array | None = None
    E: Array | None = None


def _steps_params(params: Mapping[str, float] | None) -> tuple[float, float, float, float]:
    p = _kaplan.KAPLAN_STEPS.preset("kaplan2020").params if params is None else params
    missing = [k for k in ("N_c", "alpha_N", "S_c", "alpha_S") if k not in p]
    if missing:
        raise ParameterError(invalid("The 'params' argument", sorted(p),
                                     "a mapping with N_c, alpha_N, S_c and alpha_S (a kaplan_steps fit)"))
    return float(p["N_c"]), float(p["alpha_N"]), float(p["S_c"]), float(p["alpha_S"])


def loss_floor(N: Any, params: Mapping[str, float] | None = None) -> Any:
    """The converged (minimum possible) loss ``L_min(N) = (N_c/N)^alpha_N`` (nats/token), Su et al. recipe 1.

    ``params`` is a ``kaplan_steps`` parameter set (its ``kaplan2020`` preset by default); N is
    non-embedding parameters.
    """
    N_c, alpha_N, _, _ = _steps_params(params)
    return (N_c / positive_array("The parameter count 'N'", N)) ** alpha_N


def steps_to_loss(L: Any, N: Any, *, batch: Any = None, params: Mapping[str, float] | None = None,
                  B_star: float = _kaplan.B_STAR, alpha_B: float = _kaplan.ALPHA_B) -> StepsToLoss:
    """Steps and tokens needed to reach loss L with a model of N parameters (Su et al. 2024, recipe 2).

    Inverting ``L = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S``:

        S_min = S_c / (L - (N_c/N)^alpha_N)^(1/alpha_S),   E_min = B_crit(L) S_min,
        at batch B:  S = S_min (1 + B_crit/B),   E = E_min (1 + B/B_crit) = B S.

    Args:
        L: target loss (nats/token); must lie above the loss floor of N.
        N: non-embedding parameters.
        batch: batch size in tokens, for S and E at that batch size (optional).
        params: a ``kaplan_steps`` parameter set (its ``kaplan2020`` preset by default).
        B_star, alpha_B: the critical-batch law (Kaplan's values by default).
    """
    _, _, S_c, alpha_S = _steps_params(params)
    L = positive_array("The target loss 'L'", L)
    floor = loss_floor(N, params)
    Lb, fb = np.broadcast_arrays(L, floor)
    below = Lb <= fb
    if np.any(below):
        i = int(np.argmax(below))
        raise ParameterError(invalid("The target loss 'L'", float(Lb.flat[i]),
                                     f"above the loss floor (N_c/N)^alpha_N = {float(fb.flat[i]):.6g} of that N"))
    gap = L - floor
    S_min_ = S_c / gap ** (1.0 / alpha_S)
    Bc = _kaplan.b_crit(L, B_star, alpha_B)
    E_min_ = Bc * S_min_
    if batch is None:
        return StepsToLoss(S_min_, E_min_, Bc)
    B = positive_array("The batch 'batch'", batch)
    return StepsToLoss(S_min_, E_min_, Bc, S_min_ * (1.0 + Bc / B), E_min_ * (1.0 + B / Bc))


def loss_trajectory(steps: Any, N: float, batch: float, *, params: Mapping[str, float] | None = None,
                    B_star: float = _kaplan.B_STAR, alpha_B: float = _kaplan.ALPHA_B) -> Array:
    """The loss curve L(S) of a model of N parameters trained at batch size B (Su et al. 2024, recipe 4).

    At every step S, solves ``L = (N_c/N)^alpha_N + (S_c (1 + B_crit(L)/B) / S)^alpha_S`` for L with
    Brent's method. The right-hand side falls as L rises (B_crit(L) shrinks), so the root is unique and
    lies between the floor ``L_inf = (N_c/N)^alpha_N`` and ``L_inf + (S_c (1 + B_crit(L_inf)/B)/S)^alpha_S``.

    Args:
        steps: optimizer steps (after warmup), positive.
        N: non-embedding parameters.
        batch: batch size in tokens.
        params: a ``kaplan_steps`` parameter set (its ``kaplan2020`` preset by default).
        B_star, alpha_B: the critical-batch law.

    Returns:
        The loss (nats/token) at each step, an array shaped like ``steps``.
    """
    _, _, S_c, alpha_S = _steps_params(params)
    S = positive_array("The steps 'steps'", steps)
    for what, v in (("parameter count 'N'", N), ("batch 'batch'", batch)):
        if np.size(v) != 1:
            raise ParameterError(invalid(f"The {what} of loss_trajectory", f"{np.size(v)} values", "one number"))
    B = float(positive_array("The batch 'batch'", batch))
    if not (np.isfinite(alpha_B) and alpha_B > 0):
        raise ParameterError(invalid("The exponent 'alpha_B' of B_crit(L) = B_*/L^(1/alpha_B)", alpha_B,
                                     "a positive number (B_crit falling as the loss rises)"))
    L_inf = float(loss_floor(N, params))
    out = np.empty(S.shape)
    for idx, s in np.ndenumerate(S):
        def f(L: float, s: float = float(s)) -> float:
            # in logs: L^(1/alpha_B) overflows a float for a small alpha_B (B_crit then ~0, not an error)
            with np.errstate(over="ignore", divide="ignore"):
                bc = B_star * np.exp(-np.log(np.float64(L)) / alpha_B)
                return float(L_inf + (S_c * (1.0 + bc / B) / s) ** alpha_S - L)

        # bracket: f(L_inf) > 0 (f -> +inf as L -> 0 when the floor is 0, N_c at its bound), and f falls to
        # -inf as L grows; the upper end by doubling from the constant-batch value, so the bracket stays
        # narrow even when B_crit(L_inf) is huge (a tiny floor)
        hi = L_inf + (S_c / s) ** alpha_S + 1.0
        while f(hi) > 0.0:
            hi *= 2.0
        lo = L_inf
        if lo <= 0.0:
            lo = hi / 2.0
            while f(lo) <= 0.0 and lo > 0.0:
                lo /= 2.0
            if lo == 0.0:   # pragma: no cover  (f(L) -> +inf as L -> 0 for alpha_S, alpha_B > 0)
                raise ParameterError(f"loss_trajectory found no root at step {float(s):g}: the loss floor is 0 "
                                     "and the steps term stays below L down to the smallest float.")
        out[idx] = hi if f(hi) == 0.0 else brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps,
                                                   maxiter=200)
    return out


__all__ = ["StepsToLoss", "loss_floor", "loss_trajectory", "steps_to_loss"]
