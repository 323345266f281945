"""Plan the number format of a training run over a range of bit widths, from a precision-law fit.

``plan FIT.json --flops C --bits 4..16`` calls :func:`plan_bits`. The compute model is
``C = k P N D`` (k = 6/16 FLOPs per parameter, token and bit: 6 N D at 16 bits; Sun et al. 2025
section 5, Kumar et al. 2024 section 4.3), so a narrower format buys a larger model or more data.

* Sun et al.'s law (``precision``): for every bit width P, the best integer split E + M + 1 = P
  (:func:`scalinglab.plan.precision.optimal_layout`), the loss-minimising N and D = C/(k P N) at that
  format, the loss there and the critical data size D_crit of that N and format
  (:func:`scalinglab.laws.precision.critical_data`, Eq. 21: beyond it more tokens raise the loss);
  then the compute-optimal precision over the range (the integer P of least loss, and the continuous
  optimum of :func:`scalinglab.plan.precision.optimal_precision`). The scaling block B is held
  (default 128, the paper's D_crit setting).
* Kumar et al.'s law (``kumar``), one precision P = P_w = P_a = P_kv: for every P the effective
  fraction N_eff/N, the optimal N and D (closed form for alpha = beta:
  ``N* = (A/B)^(1/(2 alpha)) (C/(k P))^(1/2) f(P)^(-1/2)``) and the loss; the compute-optimal
  precision ``P* = argmax f(P)/P``, which does not depend on C
  (:func:`scalinglab.laws.kumar.optimal_training_precision`). More data never raises this law's
  loss: it has no critical data size.

Intervals: every bootstrap replicate of the fit is planned as well; an interval is the central
``ci_level`` quantile range of the replicates' values (percentile bootstrap). The best split of a
replicate is an integer: the plan reports the fraction of replicates that agree with the fit's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ..fit.result import Fit
from ..laws import kumar as _kumar
from ..laws import precision as _precision
from .precision import optimal_layout, optimal_precision

K_FLOPS_PER_BIT = _precision.K_FLOPS_PER_BIT
#: the laws this planner serves
LAWS = ("precision", "kumar")
#: the ladder's emulated float formats (ladder/precision.py: E0-E8 x M0-M7)
MAX_EMULATED_E, MAX_EMULATED_M = 8, 7
_GRID = 4001   # ln N grid of the Sun plan, refined by a parabola through the best three points


def check_bits(bits: Sequence[Any], law: str) -> list[int]:
    """Integer bit widths, sorted, distinct; at least 2 for Sun's law (a sign and one more bit), 1 for Kumar's; at most 64."""
    lo = 2 if law == "precision" else 1
    expected = f"an integer from {lo} to 64 (total bits of the format)"
    out = []
    for b in bits:
        ok = not isinstance(b, bool) and isinstance(b, (int, float)) and float(b).is_integer() and lo <= b <= 64
        if not ok:
            shown = int(b) if isinstance(b, float) and b.is_integer() else b
            raise ParameterError(invalid("Each value of the 'bits' parameter", shown, expected))
        out.append(int(b))
    if not out:
        raise ParameterError(invalid("The 'bits' parameter", list(bits), "a non-empty list of bit widths, e.g. 4..16"))
    return sorted(set(out))


def _sun_at(p: Mapping[str, float], P: int, C: float, block: float, k: float) -> dict[str, Any]:
    """Sun's law at P bits: the best split, the optimal N (grid over ln N with a parabolic refinement),
    D = C/(k P N), the loss, D_crit."""
    e, m = optimal_layout(p, P)
    top = float(np.log(C / (k * P)))
    lnN = np.linspace(0.0, top, _GRID)
    N = np.exp(lnN)
    x = {"N": N, "D": C / (k * P * N), "e_bits": e, "m_bits": m, "block": block}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        L = np.asarray(_precision.loss(p, x), dtype=float)
    L = np.where(np.isfinite(L), L, np.inf)
    i = int(np.argmin(L))
    t = float(lnN[i])
    if 0 < i < _GRID - 1 and np.all(np.isfinite(L[i - 1:i + 2])):
        y0, y1, y2 = L[i - 1:i + 2]
        denom = y0 - 2 * y1 + y2
        if denom > 0:
            t += 0.5 * (lnN[1] - lnN[0]) * (y0 - y2) / denom
    n = float(np.exp(t))
    d = C / (k * P * n)
    loss = float(_precision.loss(p, {"N": n, "D": d, "e_bits": e, "m_bits": m, "block": block}))
    d_crit = float(_precision.critical_data(p, n, e, m, block))
    m_cont = _precision.optimal_layout_continuous(p, P)[1]
    return {"P": P, "e_bits": e, "m_bits": m, "m_opt": m_cont, "N": n, "D": d, "loss": loss, "D_crit": d_crit}


def _kumar_at(p: Mapping[str, float], P: float, C: float, k: float) -> dict[str, Any]:
    f = float(_kumar.effective_fraction(p, P, P, P))
    al = p["alpha"]
    n = (p["A"] / p["B"]) ** (1 / (2 * al)) * (C / (k * P)) ** 0.5 * f ** -0.5
    d = C / (k * P * n)
    loss = float(_kumar.loss(p, {"N": n, "D": d, "P_w": P, "P_a": P, "P_kv": P}))
    return {"P": P, "N_eff_fraction": f, "N": n, "D": d, "loss": loss}


def _interval(values: Sequence[float], q: Sequence[float]) -> list[float] | None:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return [float(v) for v in np.quantile(arr, q)] if arr.size >= 2 else None


def plan_bits(fit: Fit, flops: float, bits: Sequence[Any], *, block: float = 128.0,
              k: float = K_FLOPS_PER_BIT, level: float | None = None) -> dict[str, Any]:
    """The format plan of ``fit`` (law ``precision`` or ``kumar``) at ``flops`` FLOPs over ``bits``.

    Returns ``{"law", "flops", "k", "block", "n_convention", "rows": [per bit width], "optimum": {...},
    "ci_level", "warnings"}``; a row holds the values at that P with ``*_interval`` entries (and, for
    Sun's law, ``split_agreement``); ``optimum`` the compute-optimal precision: ``P`` (continuous) and
    ``P_interval``, ``best_bits`` (the row of least loss) and its N, D, loss. Without bootstrap draws
    the intervals are None and a warning says so.
    """
    law = fit.law_.name
    if law not in LAWS:
        raise ParameterError(invalid("The law of a format plan over bit widths", law, f"one of {list(LAWS)} (precision laws)"))
    if isinstance(flops, bool) or not (isinstance(flops, (int, float)) and np.isfinite(flops) and flops > 0):
        raise ParameterError(invalid("The FLOP budget 'flops'", flops, "a positive number of FLOPs"))
    bits_ = check_bits(bits, law)
    b = float(_precision.check_block(block))
    C = float(flops)
    level = fit.ci_level if level is None else level
    q = [(1 - level) / 2, (1 + level) / 2]

    def plan_one(p: Mapping[str, float]) -> tuple[list[dict[str, Any]], dict[str, float]]:
        if law == "precision":
            rows = [_sun_at(p, P, C, b, k) for P in bits_]
            opt = optimal_precision(p, C, block=b, k=k, bits_range=(max(1.01, bits_[0] - 0.5), bits_[-1] + 0.5))
            return rows, {"P": opt["P"], "e_bits": opt["e_bits"], "m_bits": opt["m_bits"]}
        rows = [_kumar_at(p, P, C, k) for P in bits_]
        p_star = _kumar.optimal_training_precision(p, (max(0.5, bits_[0] - 0.5), bits_[-1] + 0.5))
        return rows, {"P": p_star, "N_eff_fraction": float(_kumar.effective_fraction(p, p_star, p_star, p_star))}

    params = {k_: float(v) for k_, v in fit.params.items()}
    rows, cont = plan_one(params)
    best = min(rows, key=lambda r: r["loss"])
    optimum: dict[str, Any] = {**cont, "P_interval": None, "best_bits": best["P"], "N": best["N"], "D": best["D"],
                               "loss": best["loss"]}
    out: dict[str, Any] = {
        "law": law, "flops": C, "k": k, "n_convention": fit.law_.n_convention, "ci_level": level,
        "block": b if law == "precision" else None, "rows": rows, "preset": fit.preset,
        "optimum": optimum,
        "warnings": list(fit.warnings),
    }
    if law == "kumar":
        out["note"] = "Kumar et al.'s training law has no critical data size (more data never raises its loss)."
    beyond = [f"E{r['e_bits']}M{r['m_bits']}" for r in rows
              if law == "precision" and (r["m_bits"] > MAX_EMULATED_M or r["e_bits"] > MAX_EMULATED_E)]
    if beyond:
        out["warnings"].append(f"the law's best splits {', '.join(beyond)} lie beyond what the ladder can train "
                               f"(E0-E{MAX_EMULATED_E}, M0-M{MAX_EMULATED_M}): they are the closed form's, "
                               "not measurable on our own ladders.")
    draws = fit.draws()
    if draws is None or len(draws) < 2:
        if fit.preset:
            out["warnings"].append(f"no intervals: preset {fit.preset!r} has no bootstrap draws.")
        elif not fit.too_few_points():   # too few points: the fit's own warning says why
            out["warnings"].append("no intervals: the fit has no bootstrap draws (fit with --bootstrap K).")
        return out
    reps, conts, failed = [], [], 0
    for _, row in draws.iterrows():
        try:
            r, c = plan_one({k_: float(v) for k_, v in row.to_dict().items()})
        except (ParameterError, ValueError, FloatingPointError, ZeroDivisionError):
            failed += 1
            continue
        reps.append(r)
        conts.append(c["P"])
    if failed:
        out["warnings"].append(f"{failed} of {len(draws)} bootstrap replicates could not be planned; the "
                               f"intervals come from the other {len(reps)}.")
    keys = ["N", "D", "loss"] + (["D_crit", "m_opt"] if law == "precision" else ["N_eff_fraction"])
    for i, row in enumerate(rows):
        for key in keys:
            row[f"{key}_interval"] = _interval([r[i][key] for r in reps], q)
        if law == "precision":
            row["split_agreement"] = float(np.mean([r[i]["m_bits"] == row["m_bits"] for r in reps])) if reps else None
    optimum["P_interval"] = _interval(conts, q)
    optimum["best_bits_agreement"] = float(np.mean(
        [min(r, key=lambda x: x["loss"])["P"] == best["P"] for r in reps])) if reps else None
    return out


__all__ = ["LAWS", "check_bits", "plan_bits"]
