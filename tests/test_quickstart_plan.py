"""The quickstart's plan step carries the fit's warnings (a parameter at a bound holds for the plan too)
into ``summary.json``'s plan and the printed summary, as ``scalinglab plan`` does; no ladder is trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab import quickstart as qs
from scalinglab.cli.quickstart import summary_lines
from scalinglab.fit import LawFit
from scalinglab.plan.dispatch import plan_fit


def isoflop(budgets: tuple[float, ...] = (1e17, 1e18, 1e19, 1e20)) -> pd.DataFrame:
    """An IsoFLOP ladder on a known Chinchilla surface (E = 1.7), 5 sizes per budget, seeded noise."""
    rng = np.random.default_rng(0)
    rows = []
    for c in budgets:
        for n in (c / 6) ** 0.5 / 4 * np.geomspace(0.25, 4, 5):
            d = c / (6 * n)
            rows.append({"N": n, "D": d, "budget_flops": c,
                         "loss": (1.7 + 400 / n ** 0.34 + 410 / d ** 0.28) * np.exp(0.005 * rng.standard_normal())})
    return pd.DataFrame(rows)


pytestmark = pytest.mark.filterwarnings("ignore:parameter .E. = 1.5 is at its upper bound")

AT_BOUND = "parameter 'E' = 1.5 is at its upper bound 1.5."


def test_the_plan_carries_the_fits_warnings_first() -> None:
    fit = LawFit("chinchilla", bounds={"E": (1.0, 1.5)}).fit(isoflop()).result_   # the truth, 1.7, is outside
    assert AT_BOUND in fit.warnings
    unique = 10**9
    plan = qs.quickstart_plan(fit, 1e22, unique)
    assert plan["warnings"][:len(fit.warnings)] == list(fit.warnings)
    ref = plan_fit(fit, 1e22, max_tokens=qs.MAX_EPOCHS * unique)
    assert (plan["N"], plan["D"], plan["loss"]) == (ref["N"], ref["D"], ref["loss"])
    # 1e22 FLOPs wants more than 4 epochs of 1e9 tokens: the data limit and the epochs follow the fit's
    assert plan["data_constrained"] and plan["D"] == pytest.approx(qs.MAX_EPOCHS * unique)
    own = plan["warnings"][len(fit.warnings):]
    assert len(own) == 2 and "holds D to 4 epochs" in own[0] and "4.0 epochs of the corpus" in own[1]

    # a fit with nothing to say: only the plan's own warnings (none, well inside the data)
    clean = LawFit("chinchilla").fit(isoflop()).result_
    assert not clean.warnings and not qs.quickstart_plan(clean, 1e20, 10**12).get("warnings")


def test_the_printed_summary_repeats_the_fits_warnings() -> None:
    fit = LawFit("chinchilla", bounds={"E": (1.0, 1.5)}).fit(isoflop()).result_
    plan = qs.quickstart_plan(fit, 1e22, 10**9)
    s = {"runs": 20, "points": 24, "fit": {"law": "chinchilla"}, "plan": plan, "report": "out/index.html",
         "backtest": {"train_points": 19, "test_points": 5, "are_mean": 0.0123, "are_max": 0.02},
         "backtest_alt": {"law": "chinchilla_tied", "are_mean": 0.015}, "failed": {"r1": "diverged"},
         "store": "out/runs.db"}
    out, err = summary_lines(s)
    assert out[0].endswith("mean ARE 1.23%, max 2.00% (chinchilla_tied: 1.50%)")
    assert out[1].startswith("plan at C = 1e+22 FLOPs (6 N_total D): N = ") and out[-1] == "report: out/index.html"
    assert err[0] == f"warning: {fit.warnings[0]}" and f"warning: {AT_BOUND}" in err
    assert err[-1] == "1 runs failed: see `scalinglab ladder status --store out/runs.db`"
    assert len(err) == len(plan["warnings"]) + 1


def test_the_printed_plan_names_its_interval() -> None:
    """The summary's plan line gave '[lo, hi]' without saying which interval (the quickstart's is
    extrapolation-calibrated) or its level."""
    fit = LawFit("chinchilla", bootstrap=20, seed=0, calibrate="budget_flops").fit(isoflop()).result_
    plan = qs.quickstart_plan(fit, 1e20, 10**12)
    s = {"runs": 20, "points": 24, "fit": {"law": "chinchilla"}, "plan": plan, "report": "out/index.html",
         "backtest": {"train_points": 19, "test_points": 5, "are_mean": 0.0123, "are_max": 0.02}, "store": "out/runs.db"}
    out, _ = summary_lines(s)
    assert plan["interval_kind"] == "extrapolation-calibrated"
    assert out[1].endswith("] (nominal 95% extrapolation-calibrated interval)"), out[1]
