"""The learning rate, batch and critical batch of a planned run.

Given a compute-optimal plan (N, D, loss, with intervals: :func:`scalinglab.plan.compute.plan`),
:func:`plan_hparams` adds

* ``lr`` and ``batch_tokens`` from a Step Law (Li et al. 2025, ``eta = s N^a D^b``, ``B = s_B D^c``:
  a fit of ours or the ``li2025`` preset) or from DeepSeek's compute laws (``deepseek2024``:
  ``eta = 0.3118 C^-0.125``, ``B = 0.2920 C^0.3271``, DeepSeek-AI 2024);
* ``b_crit_tokens``, the critical batch at the plan's predicted loss, from a critical-batch result
  (``B_crit = B_* / L^(1/alpha_B)``, Kaplan et al. 2020 Eq. 1.4, fitted by
  :func:`scalinglab.fit.critical.critical_batch_study`).

Intervals: for a fit with bootstrap draws, the percentile interval of the draws' values at the planned
(N, D), widened to cover the central law at the ends of the plan's N and D intervals; for the critical
batch, the law at the ends of the plan's loss interval. A preset has no interval of its own. The
result says where each number came from (``hparams_source``) and what each interval is, with its
nominal level (``hparams_interval``; None where there is none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError, invalid
from ..fit.result import Fit
from ..laws import deepseek as _deepseek
from ..laws import steplaw as _steplaw

__all__ = ["plan_hparams"]

HPARAM_PRESETS = ("li2025", "li2025_released_refit", "deepseek2024")


def _steplaw_fit(spec: str | Fit) -> Fit:
    if isinstance(spec, Fit):
        fit = spec
    elif spec in _steplaw.PRESETS:
        return Fit.from_preset("steplaw", spec)
    else:
        fit = Fit.from_json(spec)
    if fit.law != "steplaw":
        raise ParameterError(invalid("The law of the hyperparameter fit", fit.law, "'steplaw'"))
    return fit


def _span(values: list[float], draws: Any, fn: Any, level: float) -> list[float] | None:
    """The draws' percentile interval of ``fn`` united with ``values`` (the central law at the plan's ends)."""
    out: list[float] = list(values)
    if draws is not None and len(draws) > 1:
        q = [(1 - level) / 2, (1 + level) / 2]
        with np.errstate(over="ignore", invalid="ignore"):
            v = np.array([fn(row) for row in draws.to_dict("records")])
        v = v[np.isfinite(v)]   # a replicate whose law overflows at this (N, D) has no value there
        if v.size > 1:
            out += [float(np.quantile(v, q[0])), float(np.quantile(v, q[1]))]
    return [min(out), max(out)] if len(out) > 1 else None


def _is_finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))


def _bcrit_law(critical: Any) -> Mapping[str, Any]:
    """The B_crit(L) law of a critical-batch result (``critical_batch_study``'s JSON): the pooled one, else
    the first model's; every field on the way checked (a hand-edited file was a traceback)."""
    what = "The critical-batch result"
    if not isinstance(critical, Mapping):
        raise DataError(invalid(what, type(critical).__name__, "a JSON object (the critical batch study's result)"))
    for fld in ("pooled", "vs_loss"):
        if critical.get(fld) is not None and not isinstance(critical[fld], Mapping):
            raise DataError(invalid(f"{what}'s field {fld!r}", critical[fld], "an object or null"))
    law, where = (critical.get("pooled") or {}).get("vs_loss"), "pooled.vs_loss"
    if not law:
        per = critical.get("vs_loss") or {}
        model, law = next(iter(per.items()), ("", None))
        where = f"vs_loss.{model}"
    if not law:
        raise DataError("the critical-batch result has no B_crit(L) law (vs_loss): fit it at 2 or more target "
                        "losses.")
    if not isinstance(law, Mapping):
        raise DataError(invalid(f"{what}'s field {where!r}", law, "an object with B_star and inverse_alpha_B"))
    for key, ok, expected in (("B_star", lambda v: _is_finite(v) and v > 0, "a finite positive number (tokens)"),
                              ("inverse_alpha_B", _is_finite, "a finite number (1/alpha_B)")):
        if key not in law:
            raise DataError("the critical-batch result has no B_crit(L) law (vs_loss): fit it at 2 or more target "
                            "losses.")
        if not ok(law[key]):
            raise DataError(invalid(f"{what}'s field '{where}.{key}'", law[key], expected))
    return law


def plan_hparams(res: dict[str, Any], hparams: str | Fit | None, critical: Mapping[str, Any] | None, *,
                 seed: int = 0) -> dict[str, Any]:
    """``res`` (a plan) with ``lr``, ``batch_tokens``, ``b_crit_tokens``, their intervals and
    ``hparams_source``. ``hparams`` is a Step-Law preset name, ``deepseek2024``, a steplaw FIT.json or
    a steplaw :class:`Fit`."""
    del seed   # the intervals use no random draws
    if not all(isinstance(res.get(k), (int, float)) for k in ("N", "D", "flops", "loss")):
        raise ParameterError(invalid("The plan given to plan_hparams", sorted(res),
                                     f"a compute-optimal plan with N, D, flops and loss (the {res.get('law')!r} "
                                     "law's plan has none)"))
    out = dict(res)
    N, D, C = float(res["N"]), float(res["D"]), float(res["flops"])
    src: dict[str, str] = {}
    kinds: dict[str, str | None] = {}   # what each interval is, with its nominal level
    plan_level = f"{100 * float(res.get('ci_level') or 0.95):g}%"
    warns = list(res.get("warnings", []))
    Ns = res.get("N_interval") or []
    Ds = res.get("D_interval") or []
    if hparams == "deepseek2024":
        out["lr"] = float(_deepseek.optimal_lr(C))
        out["batch_tokens"] = float(_deepseek.optimal_batch(C))
        out["lr_interval"] = out["batch_tokens_interval"] = None
        src["lr"] = src["batch_tokens"] = f"deepseek2024 at C = {C:.4g} FLOPs ({_deepseek.CITATION})"
        kinds["lr"] = kinds["batch_tokens"] = None   # the law reads C alone, which the plan does not vary
        warns.append("deepseek2024 counts C as non-embedding FLOPs per token (attention included) x D; the plan's "
                     "C is used as is.")
    elif hparams is not None:
        fit = _steplaw_fit(hparams)
        p = fit.params
        out["lr"] = float(_steplaw.optimal_lr(p, N, D))
        out["batch_tokens"] = float(_steplaw.optimal_batch(p, D))
        draws = fit.draws()
        ends_lr = [float(_steplaw.optimal_lr(p, n, d)) for n in (Ns or [N]) for d in (Ds or [D])] if Ns else []
        ends_b = [float(_steplaw.optimal_batch(p, d)) for d in Ds]
        out["lr_interval"] = _span(ends_lr, draws, lambda r: float(_steplaw.optimal_lr(r, N, D)), fit.ci_level)
        out["batch_tokens_interval"] = _span(ends_b, draws, lambda r: float(_steplaw.optimal_batch(r, D)),
                                             fit.ci_level)
        what = (f"steplaw preset {fit.preset}" if fit.preset else
                f"steplaw fit {hparams if isinstance(hparams, str) else fit.data.get('source', '')}")
        src["lr"] = f"{what} at N = {N:.4g}, D = {D:.4g}"
        src["batch_tokens"] = f"{what} at D = {D:.4g}"
        spread = (f"the {100 * fit.ci_level:g}% percentile interval of the Step-Law fit's bootstrap draws at the planned "
                  "(N, D)" if draws is not None and len(draws) > 1 else "")
        for key, over, ends in (("lr", "N and D intervals", ends_lr), ("batch_tokens", "D interval", ends_b)):
            parts = [x for x in (spread, f"the law at the ends of the plan's {plan_level} {over}" if ends else "") if x]
            kinds[key] = None if out[f"{key}_interval"] is None else ", joined with ".join(parts)
        warns += [f"hyperparameter fit: {w}" for w in fit.warnings]
        if res.get("n_convention") not in (None, "none", "non-embedding"):
            warns.append(f"the Step Law's N is non-embedding parameters; the plan's N is {res['n_convention']} "
                         "parameters, used as is.")
    if critical is not None:
        law = _bcrit_law(critical)

        def bc(L: float) -> float:
            return float(law["B_star"] * L ** (-law["inverse_alpha_B"]))
        L = float(res["loss"])
        out["b_crit_tokens"] = bc(L)
        iv = res.get("interval")
        out["b_crit_tokens_interval"] = None if not iv else sorted([bc(iv[0]), bc(iv[1])])
        src["b_crit_tokens"] = (f"B_crit = {law['B_star']:.4g} / L^{law['inverse_alpha_B']:.4g} at the planned loss "
                                f"{L:.4g} ({critical.get('source', 'critical-batch result')})")
        kinds["b_crit_tokens"] = (None if not iv else f"B_crit(L) at the ends of the plan's nominal {plan_level} "
                                  f"{res.get('interval_kind') or ''} loss interval (B_crit(L)'s own uncertainty "
                                  "not included)".replace("  ", " "))
    out["hparams_source"] = src
    out["hparams_interval"] = kinds
    out["warnings"] = warns
    return out
