"""The text report of a fit, in fixed sections (after lmfit's ``fit_report``).

It always says when a parameter sits at a bound, when the optimisation did not converge, when a
direction is flat, and when uncertainties could not be computed.
"""

from __future__ import annotations

import math
from typing import Any

from .calibrate import DRIFT_SCHEMES, T_FALLBACK, drift_sd_df, n_pairs_of
from .result import Fit


def _g(x: float | None, digits: int = 6) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def _pct(levels: list[float]) -> str:
    return " and ".join(f"{100 * v:g}%" for v in levels)


def _multiplier_note(cal: dict[str, Any], ci_level: float) -> str:
    """Where a group scheme's multiplier comes from at the levels the commands use (80% and 95% in the
    back-tests, the fit's own level in predict and plan): the conformal rank when the P pairs allow it
    (``level (P + 1) / P <= 1``), else, for the ``-t`` schemes, Student t with P (+ the prior's) degrees
    of freedom (``calibrate.group_conformal_factor``). Only the levels where it applies are named."""
    if cal["scheme"] not in T_FALLBACK:
        return ""
    p = n_pairs_of(cal)
    if p == 0:
        return "; no internal pairs: the normal quantile"
    levels = sorted({0.8, 0.95, float(ci_level)})
    few = [v for v in levels if v * (p + 1) / p > 1 + 1e-12]
    rank = [v for v in levels if v not in few]
    parts = [f"conformal rank at {_pct(rank)}"] if rank else []
    if few:
        dof = p + float(cal.get("group_prior_pairs", 0.0))
        parts.append(f"too few pairs for a conformal rank at {_pct(few)}: Student t with {dof:g} degrees of freedom")
    return "; " + "; ".join(parts)


def fit_report(fit: Fit) -> str:
    """A plain-text report: fit statistics, parameters with errors, correlations, warnings."""
    law = fit.law_
    lines = [f"[[Fit]] {law.name}: {law.formula_text}"]
    if fit.preset:
        lines.append(f"    preset: {fit.preset} ({fit.data.get('source', '')})")
    else:
        obj = fit.objective
        delta = f", delta={obj['delta']:g}" if obj.get("delta") else ""
        lines += [
            f"    data: {fit.data.get('source', '')} ({fit.n_points} points)",
            (f"    objective: {obj.get('kind')}{delta} on {obj.get('space')} residuals, summed; "
             f"value {_g(obj.get('value'), 8)}"),
            (f"    starts: {fit.n_starts}, reaching the best value: {fit.n_at_best}; "
             f"converged: {'yes' if fit.converged else 'NO'}"),
        ]
        b = fit.bootstrap
        if b:
            lines.append(f"    bootstrap: {b.get('n')} replicates (seed {b.get('seed')}), "
                         + ("skipped: too few points" if fit.too_few_points() else f"{b.get('n_failed', 0)} failed"))
    cal = fit.calibration or {}
    if cal.get("method") == "internal-rollout" and cal.get("scheme") in DRIFT_SCHEMES:
        sd, df = drift_sd_df(cal)
        lines.append(f"    extrapolation calibration ({cal['scheme']}): log error Normal(beta x, sd^2 x^2 + s_w^2) at x "
                     f"decades of {cal.get('axis')} beyond {_g(cal.get('x_max'))}, beta = {_g(cal.get('drift_beta'))} "
                     f"per decade (the latest internal one-step bias), sd = {_g(sd)} per decade from "
                     f"{cal.get('drift_n')} drift step(s)"
                     + (f" and a prior {_g(cal.get('drift_prior_sd'))} worth {_g(cal.get('drift_prior_n'))}"
                        if cal.get("drift_prior_n") else "")
                     + f", Student t with {_g(df)} degrees of freedom; row noise s = {_g(cal.get('group_s'))} "
                       f"w^-{_g(cal.get('group_gamma'))}; the interval is centred on the prediction times exp(beta x)")
    elif cal.get("method") == "internal-rollout" and cal.get("scheme", "row") != "row":
        dist = "d / w" if str(cal["scheme"]).startswith("group-rel") else "d"
        lines.append(f"    extrapolation calibration ({cal['scheme']}): log-loss sd sqrt((s w^-gamma)^2 + (a + tau x)^2), "
                     f"s = {_g(cal.get('group_s'))}, gamma = {_g(cal.get('group_gamma'))}, a = {_g(cal.get('group_a'))}, "
                     f"tau = {_g(cal.get('group_tau'))}, w the decades of {cal.get('axis')} the data span, x = {dist}, "
                     f"d the decades beyond {_g(cal.get('x_max'))}; from {cal.get('n_errors')} internal rollout "
                     f"errors in {len(set(cal.get('pairs', [])))} (prefix, group) pairs over {cal.get('key')}"
                     + _multiplier_note(cal, fit.ci_level)
                     + (f"; offset variance shrunk towards the public ladders' prior a0 + tau0 x, a0 = "
                        f"{_g(cal.get('group_prior_a'))}, tau0 = {_g(cal.get('group_prior_tau'))}, worth "
                        f"{_g(cal.get('group_prior_pairs'))} pair(s) (also added to the t degrees of freedom)"
                        if cal.get("group_prior_pairs") else ""))
    elif cal.get("method") == "internal-rollout":
        lines.append(f"    extrapolation calibration: log-loss sd a + tau d, a = {_g(cal.get('a', 0.0))}, "
                     f"tau = {_g(cal.get('tau'))} per decade d of {cal.get('axis')} beyond "
                     f"{_g(cal.get('x_max'))}, from {cal.get('n_errors')} internal "
                     f"rollout errors over {cal.get('key')}")
    elif cal.get("method") == "none":
        lines.append(f"    extrapolation calibration: none ({cal.get('reason')})")
    lines.append("[[Parameters]]")
    width = max(len(n) for n in law.param_names)
    level = f"{100 * fit.ci_level:.0f}%"
    for name in law.param_names:
        v = fit.params[name]
        if name in fit.fixed:
            lines.append(f"    {name:<{width}} = {_g(v)} (fixed)")
            continue
        se = fit.stderr.get(name)
        ci = fit.ci.get(name)
        none = " (no uncertainty: too few points)" if fit.too_few_points() else " (no uncertainty: fit with --bootstrap)"
        extra = f" +/- {_g(se, 4)}" if se is not None else none if not fit.preset else ""
        if ci:
            extra += f"   {level} [{_g(ci[0])}, {_g(ci[1])}]"
        lines.append(f"    {name:<{width}} = {_g(v)}{extra}")
    if fit.correlations:
        pairs = []
        names = list(fit.correlations)
        for i, a in enumerate(names):
            for bname in names[i + 1:]:
                c = fit.correlations[a][bname]
                if c is not None and abs(c) >= 0.5:
                    pairs.append((abs(c), f"    C({a}, {bname}) = {c:+.3f}"))
        if pairs:
            lines.append("[[Correlations]] (bootstrap, |C| >= 0.5)")
            lines += [p for _, p in sorted(pairs, reverse=True)]
    if fit.warnings:
        lines.append("[[Warnings]]")
        lines += [f"    {w}" for w in fit.warnings]
    return "\n".join(lines)
