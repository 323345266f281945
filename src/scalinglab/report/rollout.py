"""The report's rollout section (issue 15): the error and the interval coverage of a rollout back-test
(fit on the first k groups of a key, predict the next: ``scalinglab backtest --rollout KEY --json``,
``fit.rollout.rollout``) against the extrapolation distance in decades of compute, with the nominal
80% and 95% levels drawn as reference lines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from .html import Section
from .svg import PALETTE, Chart, fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["rollout_charts", "rollout_section"]

_MARKS = ("circle", "square", "diamond", "triangle", "star")


#: rollout keys that are themselves compute (FLOPs): a step without a measured distance gets
#: log10(test group / largest training group) instead
COMPUTE_KEYS = ("budget_flops", "C", "flops")


def _steps(roll: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps with a distance. A table without compute has none; when the key is itself compute
    (:data:`COMPUTE_KEYS`), the distance is log10 of the test group over the largest training group
    (``distance from`` says which); other steps cannot be placed."""
    out = []
    for s in roll.get("rollout", []):
        if s.get("distance_decades") is not None:
            out.append({**s, "distance from": "compute of the rows"})
        elif roll.get("key") in COMPUTE_KEYS and s.get("train_groups") and s["train_groups"][-1] > 0 \
                and s.get("test_group", 0) > 0:
            out.append({**s, "distance_decades": math.log10(s["test_group"] / s["train_groups"][-1]),
                        "distance from": f"the {roll.get('key')} groups"})
    return out


def _kind(roll: Mapping[str, Any]) -> str:
    iv = roll.get("interval") or {}
    return str(iv.get("kind") or "no") if isinstance(iv, Mapping) else "no"


def _tip(s: Mapping[str, Any]) -> list[tuple[str, Any]]:
    cov = [(f"coverage {lv}%", "-" if s.get(f"coverage_{lv}") is None else f"{100 * s[f'coverage_{lv}']:.0f}%")
           for lv in ("80", "95")]
    return [("train groups", len(s["train_groups"])), ("up to", s["train_groups"][-1]), ("test group", s["test_group"]),
            ("horizon", s.get("horizon", 1)), ("decades of C", s["distance_decades"]),
            ("distance from", s.get("distance from", "-")),
            ("train points", s.get("train_points")), ("test points", s.get("test_points")),
            ("mean ARE %", 100 * s["are_mean"]), ("max ARE %", 100 * s["are_max"]) if "are_max" in s else
            ("max ARE %", "-"), *cov]


def rollout_charts(roll: Mapping[str, Any]) -> list[Chart | Figure]:
    """Mean absolute relative error (%) per step against decades of compute beyond the training data
    (one series per horizon); and the coverage of the nominal 80% and 95% prediction intervals per
    step against the same distance, with the nominal levels as dashed lines."""
    steps = _steps(roll)
    horizons = sorted({int(s.get("horizon", 1)) for s in steps})
    err = Chart(f"rollout over {roll.get('key')}: error against extrapolation distance",
                "extrapolation distance (decades of compute)", "mean |predicted - measured| / measured (%)")
    for i, h in enumerate(horizons):
        ss = [s for s in steps if int(s.get("horizon", 1)) == h]
        key = err.add_series(f"h-{h}", f"horizon {h}" + (f" (pooled mean {100 * roll['are_mean']:.2f}%)"
                                                          if i == 0 and roll.get("are_mean") is not None else ""),
                             PALETTE[i % len(PALETTE)])
        err.scatter([s["distance_decades"] for s in ss], [100 * s["are_mean"] for s in ss], series=key,
                    marker=_MARKS[i % len(_MARKS)], tips=[_tip(s) for s in ss])
    cov = Chart(f"rollout over {roll.get('key')}: coverage of the {_kind(roll)} prediction intervals",
                "extrapolation distance (decades of compute)", "fraction of test points inside")
    xs = [s["distance_decades"] for s in steps]
    for i, lv in enumerate(("80", "95")):
        pooled = roll.get(f"coverage_{lv}")
        label = f"{lv}% interval" + ("" if pooled is None else f" (pooled {100 * pooled:.0f}%)")
        key = cov.add_series(f"cov-{lv}", label, PALETTE[(i + 1) % len(PALETTE)])
        ss = [s for s in steps if s.get(f"coverage_{lv}") is not None]
        for j, h in enumerate(horizons):
            sh = [s for s in ss if int(s.get("horizon", 1)) == h]
            cov.scatter([s["distance_decades"] for s in sh], [s[f"coverage_{lv}"] for s in sh], series=key,
                        marker=_MARKS[j % len(_MARKS)], tips=[[("interval", f"nominal {lv}%"), *_tip(s)] for s in sh])
        if xs:
            lo, hi = min(xs), max(xs)
            pad = 0.05 * (hi - lo or 1.0)
            nom = cov.add_series(f"nominal-{lv}", f"nominal {lv}%", PALETTE[(i + 1) % len(PALETTE)], legend=False)
            cov.line([lo - pad, hi + pad], [int(lv) / 100] * 2, series=nom, dash="5 3", width=1.0)
    return [err, cov]


def rollout_section(roll: Mapping[str, Any]) -> Section:
    """The section: both charts, a table of the steps and the pooled figures."""
    placed = {(len(s["train_groups"]), s.get("horizon", 1)): s["distance_decades"] for s in _steps(roll)}
    rows = [{"train groups": len(s["train_groups"]), "up to": s["train_groups"][-1], "test group": s["test_group"],
             "horizon": s.get("horizon", 1),
             "decades of C": placed.get((len(s["train_groups"]), s.get("horizon", 1))),
             "test points": s.get("test_points"), "mean ARE %": 100 * s["are_mean"],
             "coverage 80%": s.get("coverage_80"), "coverage 95%": s.get("coverage_95")}
            for s in roll.get("rollout", [])]
    warns = sorted({w for s in roll.get("rollout", []) for w in s.get("warnings", [])})
    c80, c95 = roll.get("coverage_80"), roll.get("coverage_95")
    cov = ("no intervals (fit with a bootstrap)" if c80 is None else
           f"{100 * c80:.0f}% inside the nominal 80% and {100 * (c95 or 0):.0f}% inside the nominal 95% "
           f"{_kind(roll)} prediction intervals")
    missing = len(roll.get("rollout", [])) - len(_steps(roll))
    return Section(
        f"Rollout back-test over {roll.get('key')}", figures=rollout_charts(roll), tables=[pd.DataFrame(rows)],
        anchor="rollout", pre="\n".join(warns),
        pre_summary=f"{len(warns)} distinct warning(s) of the step fits (small training sets are weakly determined)",
        text=f"The {roll.get('law')} law fitted on the first k groups of {roll.get('key')} (sorted; "
             f"{len(roll.get('groups', []))} groups) predicts the next ones (up to {roll.get('horizon', 1)} ahead), "
             "for every k. Distance: log10 of the test group's median compute over the training rows' largest "
             "(where the rows have no compute and the key is a FLOP budget: of the test budget over the largest "
             "training budget). "
             f"Over all {roll.get('n_points')} predicted points: mean ARE {fmt(100 * float(roll.get('are_mean', 0)))}%, "
             f"{cov}." + (f" {missing} step(s) without compute are in the table only." if missing else ""))
