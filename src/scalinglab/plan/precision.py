"""The number format a training run should use, under the floating-point quantization law (Sun et al. 2025).

* :func:`optimal_layout`: the integer exponent/mantissa split (E, M), E + M + 1 = P, that minimises the
  law's precision penalty (every split compared exactly: FP4 -> E2M1, FP8 -> E4M3, FP16 -> E8M7 with
  the paper's fit).
* :func:`optimal_precision`: the total bits P that minimise the loss at a FLOP budget
  C = k P N D (k = 6/16 FLOPs per parameter, token and bit), with N or D held, or the compute-optimal
  (P, N, D) jointly; bounded scalar minimisations (``scipy``).

The law and its closed forms (critical data size, the continuous layout, P_opt at fixed data) are in
:mod:`scalinglab.laws.precision`. Units: N parameters (count), D tokens, E/M/P bits, B elements per
scaling factor, loss nats/token.

Reference: Sun et al. 2025, "Scaling Laws for Floating-Point Quantization Training", arXiv 2501.02423
(ICML 2025), section 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import optimize

from ..errors import ParameterError, invalid
from ..laws import positive_array, resolve_params
from ..laws import precision as _precision


def _params(params: Any) -> dict[str, float]:
    return resolve_params("precision", _precision.PARAM_NAMES, params)


def _total_bits(total_bits: Any) -> int:
    try:
        ok = not isinstance(total_bits, bool) and float(total_bits).is_integer() and int(total_bits) >= 2
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ParameterError(invalid("The total number of bits 'total_bits'", total_bits,
                                     "an integer >= 2 (sign + exponent + mantissa)"))
    return int(total_bits)


def optimal_layout(params: Any, total_bits: int) -> tuple[int, int]:
    """The integer format (E, M) with E + M + 1 = P that minimises the precision penalty.

    Every split is compared exactly (the penalty is what the law charges), which is the correct
    rounding of ``laws.precision.optimal_layout_continuous``. With the paper's fit: FP4 -> E2M1, FP8 -> E4M3,
    FP16 -> E8M7. Returns ``(e_bits, m_bits)``.
    """
    p = _params(params)
    P = _total_bits(total_bits)
    e = np.arange(0, P)                       # E = 0 .. P-1, M = P-1-E
    m = P - 1 - e
    log_pen = -p["delta"] * np.log(e + 0.5) - p["nu"] * np.log(m + 0.5)
    i = int(np.argmin(log_pen))
    return int(e[i]), int(m[i])


def _loss_at_bits(p: Mapping[str, float], P: float, N: Any, D: Any, b: float) -> Any:
    e, m = _precision.optimal_layout_continuous(p, P)
    return _precision.loss(p, {"N": N, "D": D, "e_bits": e, "m_bits": m, "block": b})


def optimal_precision(params: Any, C: float, *, N: float | None = None, D: float | None = None,
                      block: float = 128, k: float = _precision.K_FLOPS_PER_BIT,
                      bits_range: tuple[float, float] = (2.0, 32.0)) -> dict[str, float]:
    """The total bits P that minimise the loss at a FLOP budget C = k P N D.

    Exactly one of N and D may be fixed; the other follows from C. With neither, N is optimised too
    (D = C/(k P N)): the compute-optimal (P, N, D). The format at each P is the continuous optimal
    layout (``laws.precision.optimal_layout_continuous``). Bounded scalar minimisations (``scipy``).

    Args:
        params: the precision law's parameters (a mapping, a preset's ``params`` or a fitted ``Fit``).
        C: training FLOPs.
        N, D: a fixed parameter count or token count (at most one).
        block: scaling block size B.
        k: FLOPs per parameter, token and bit (6/16: C = 6 N D at 16 bits).
        bits_range: the interval of P searched.

    Returns:
        ``{"P", "e_bits", "m_bits", "N", "D", "loss"}`` at the optimum (bits real-valued).
    """
    p = _params(params)
    c = float(positive_array("The FLOP budget 'C'", C))
    b = float(_precision.check_block(block))
    kk = float(positive_array("The 'k' parameter (FLOPs per parameter, token and bit)", k))
    if N is not None and D is not None:
        raise ParameterError(invalid("The fixed quantities of optimal_precision", "both N and D",
                                     "at most one of N and D (the other follows from C)"))
    lo, hi = (float(v) for v in bits_range)
    if not (1.0 < lo < hi and np.isfinite(hi)):
        raise ParameterError(invalid("The 'bits_range' parameter", bits_range,
                                     "an interval (lo, hi) with 1 < lo < hi"))

    def best_n(P: float) -> tuple[float, float]:
        """The loss-minimising N at P bits (D = C/(k P N)), searched over ln N."""
        def f(lnN: float) -> float:
            n_ = np.exp(lnN)
            return float(_loss_at_bits(p, P, n_, c / (kk * P * n_), b))
        top = np.log(c / (kk * P))                 # D >= 1 token
        r = optimize.minimize_scalar(f, bounds=(0.0, top), method="bounded", options={"xatol": 1e-8})
        return float(np.exp(r.x)), float(r.fun)

    def at(P: float) -> tuple[float, float, float]:
        if N is not None:
            n_ = float(positive_array("The parameter count 'N'", N))
            d_ = c / (kk * P * n_)
        elif D is not None:
            d_ = float(positive_array("The token count 'D'", D))
            n_ = c / (kk * P * d_)
        else:
            n_, _ = best_n(P)
            d_ = c / (kk * P * n_)
        return n_, d_, float(_loss_at_bits(p, P, n_, d_, b))

    r = optimize.minimize_scalar(lambda P: at(P)[2], bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-6})
    P = float(r.x)
    n_, d_, L = at(P)
    e, m = _precision.optimal_layout_continuous(p, P)
    return {"P": P, "e_bits": e, "m_bits": m, "N": n_, "D": d_, "loss": L}


__all__ = ["optimal_layout", "optimal_precision"]
