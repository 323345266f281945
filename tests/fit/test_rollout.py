"""Rollout back-tests, coverage scoring and the extrapolation calibration, against exact answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit.backtest import score
from scalinglab.fit.calibrate import calibrated_interval, conformal_factor, estimate, ml_error_model
from scalinglab.fit.predict import predict
from scalinglab.fit.rollout import distance_decades, group_labels, rollout, sorted_groups, steps

TRUE = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}


def ladder(noise: float = 0.0, seed: int = 0, budgets: tuple[float, ...] = (1e17, 1e18, 1e19, 1e20)) -> pd.DataFrame:
    """An IsoFLOP ladder on the Chinchilla surface TRUE: 6 sizes per budget, D = C / (6 N)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        n_opt = (c / 6) ** 0.5 / 4
        for n in n_opt * np.geomspace(0.2, 5, 6):
            d = c / (6 * n)
            loss = (TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"])
            rows.append({"N": n, "D": d, "budget_flops": c, "loss": loss * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def start() -> list[list[float]]:
    return [[np.log(TRUE["E"]), np.log(TRUE["A"]), np.log(TRUE["B"]), TRUE["alpha"], TRUE["beta"]]]


def test_groups_and_steps_are_exact() -> None:
    df = pd.DataFrame({"C": [3e18, 1e18, 1.2e19, 1e18, 3.1e18, 9.9e19]})
    assert group_labels(df, "C").tolist() == [3e18, 1e18, 1.2e19, 1e18, 3.1e18, 9.9e19]
    half = group_labels(df, "C", decades=0.5)
    assert np.allclose(half, [10 ** 18.0, 1e18, 1e19, 1e18, 10 ** 18.0, 10 ** 19.5])
    assert sorted_groups(half, "C") == pytest.approx([1e18, 1e19, 10 ** 19.5])
    assert steps(5) == [(2, 1), (3, 1), (4, 1)]
    assert steps(5, horizon=2) == [(2, 1), (2, 2), (3, 1), (3, 2), (4, 1)]
    with pytest.raises(ParameterError, match="horizon"):
        steps(5, horizon=0)


def test_fewer_than_three_groups_is_one_line_error() -> None:
    df = ladder(budgets=(1e17, 1e18))
    with pytest.raises(DataError, match=r"'budget_flops' must be a column with at least 3 distinct.*Got '2 group\(s\)'"):
        rollout(df, "chinchilla", "budget_flops")
    with pytest.raises(DataError, match="rollout key.*'nope'"):
        group_labels(df, "nope")


def test_distance_in_decades_of_compute() -> None:
    df = ladder()
    assert distance_decades(df[df.budget_flops <= 1e18], df[df.budget_flops == 1e20]) == pytest.approx(2.0)


def test_rollout_on_an_exact_surface_has_no_error() -> None:
    r = rollout(ladder(), "chinchilla", "budget_flops", horizon=2, starts=start())
    assert [(len(s["train_groups"]), s["test_group"]) for s in r["rollout"]] == [(2, 1e19), (2, 1e20), (3, 1e20)]
    assert [s["test_points"] for s in r["rollout"]] == [6, 6, 6]
    assert [s["distance_decades"] for s in r["rollout"]] == pytest.approx([1.0, 2.0, 1.0])
    assert r["n_points"] == 18 and r["are_mean"] < 1e-6
    assert r["coverage_80"] is None and r["rollout"][0]["coverage_95"] is None   # no bootstrap, no interval


def _fixed_fit(residuals: list[float]) -> Fit:
    """A Fit whose bootstrap draws all equal TRUE: its observation interval is the prediction times
    exp of the residuals' quantiles (an exact oracle for the coverage)."""
    draws = {k: [v] * 200 for k, v in TRUE.items()}
    return Fit(law="chinchilla", params=dict(TRUE), n_points=100, objective={"space": "log"},
               bootstrap={"n": 200, "draws": draws}, residuals=residuals)


def test_coverage_is_counted_against_the_exact_interval() -> None:
    # residuals uniform on [-0.1, 0.1]: the 80% interval is pred * exp([-0.08, 0.08]), the 95% one
    # pred * exp([-0.095, 0.095]) (to the resolution of the draws)
    fit = _fixed_fit(np.linspace(-0.1, 0.1, 2001).tolist())
    pts = ladder().iloc[:4].copy()
    pred = predict(fit, pts)["prediction"].to_numpy()
    pts["loss"] = pred * np.exp([0.0, 0.07, 0.09, 0.2])   # inside both, both, only 95, neither
    sc = score(fit, pts, seed=3)
    assert sc["inside_80"] == [True, True, False, False]
    assert sc["inside_95"] == [True, True, True, False]
    assert (sc["coverage_80"], sc["coverage_95"]) == (0.5, 0.75)
    assert sc["interval"]["kind"] == "observation"


def test_coverage_on_noisy_data_matches_nominal() -> None:
    # interpolation with known 1% noise: a new draw of the same points falls in the nominal
    # intervals at about the nominal rate (binomial sd ~ 2.4 points at n = 288)
    train = ladder(0.01, seed=1, budgets=tuple(np.geomspace(1e17, 1e20, 12)))
    fit = LawFit("chinchilla", bootstrap=200, starts=start()).fit(train).result_
    test = ladder(0.01, seed=2, budgets=tuple(np.geomspace(1e17, 1e20, 12)))
    tests = pd.concat([test, ladder(0.01, seed=3, budgets=tuple(np.geomspace(1e17, 1e20, 12)))])
    sc = score(fit, tests, seed=0)
    assert sc["coverage_80"] == pytest.approx(0.8, abs=0.08)
    assert sc["coverage_95"] == pytest.approx(0.95, abs=0.05)


def test_ml_tau_recovers_the_extrapolation_error() -> None:
    rng = np.random.default_rng(0)
    d = rng.uniform(0.2, 2.0, 4000)
    e = rng.standard_normal(4000) * np.sqrt(0.01 ** 2 + (0.02 + 0.03 * d) ** 2)
    a, tau = ml_error_model(e, d, 0.01)
    assert (a, tau) == (pytest.approx(0.02, rel=0.15), pytest.approx(0.03, rel=0.1))
    a0, tau0 = ml_error_model(rng.standard_normal(4000) * 0.01, d, 0.01)   # no excess error
    assert a0 + 2 * tau0 < 0.004


def test_conformal_factor_is_the_finite_sample_rank() -> None:
    cal = {"method": "internal-rollout", "s": 1.0, "a": 0.0, "tau": 0.0,
           "errors": [float(v) * (-1) ** v for v in range(1, 20)], "distances": [1.0] * 19}
    assert conformal_factor(cal, 0.8) == 16.0          # ceil(20 * 0.8) = 16th of |e| = 1..19
    assert conformal_factor(cal, 0.95) == 19.0         # ceil(20 * 0.95) = 19th
    few = {**cal, "errors": [0.1, 0.2, 0.3], "distances": [1.0] * 3}
    assert conformal_factor(few, 0.95) == pytest.approx(1.959964, rel=1e-6)   # rank 4 of 3: the normal quantile


def test_calibrated_interval_widens_linearly_beyond_the_data_only() -> None:
    # sigma(d) = a + tau d with s = 0; scores |e| / sigma = 2 for every error: c = 2
    cal = {"method": "internal-rollout", "axis": "C", "x_max": 1e20, "s": 0.0, "a": 0.01, "tau": 0.02,
           "errors": [0.06, -0.06, 0.1], "distances": [1.0, 1.0, 2.0]}
    pts = pd.DataFrame({"C": [1e19, 1e20, 1e21, 1e22]})
    center = np.full(4, 2.0)
    lo, hi = calibrated_interval(cal, pts, center, center * 0.99, center * 1.01, 0.5)
    assert lo == pytest.approx([1.98, 1.98, 2 * np.exp(-0.06), 2 * np.exp(-0.10)])
    assert hi == pytest.approx([2.02, 2.02, 2 * np.exp(0.06), 2 * np.exp(0.10)])
    assert calibrated_interval({"method": "none"}, pts, center, center, center, 0.5) is None


def test_calibration_of_a_biased_ladder_widens_only_beyond_the_data() -> None:
    # the true surface bends beyond what the law can follow: a loss floor rising with C
    df = ladder(0.005, seed=4, budgets=tuple(np.geomspace(1e17, 1e20, 6)))
    df["loss"] *= 1 + 0.03 * np.log10(df["budget_flops"] / 1e17)
    fit = LawFit("chinchilla", bootstrap=50, starts=start(), calibrate="budget_flops").fit(df).result_
    cal = fit.calibration
    assert cal["method"] == "internal-rollout" and cal["n_errors"] == sum(6 * j for j in range(1, 5))
    assert cal["x_max"] == pytest.approx(1e20) and cal["a"] + cal["tau"] > 0
    inside = pd.DataFrame({"N": [1e9], "D": [1e20 / 6e9]})
    far = pd.DataFrame({"N": [1e10], "D": [1e22 / 6e10]})
    w = {}
    for name, pts in (("inside", inside), ("far", far)):
        a, b = predict(fit, pts), predict(fit, pts, calibrated=False)
        assert a.attrs["interval"] == "extrapolation-calibrated" and b.attrs["interval"] == "observation"
        w[name] = (float(a["hi"].iloc[0] - a["lo"].iloc[0]), float(b["hi"].iloc[0] - b["lo"].iloc[0]))
    assert w["inside"][0] == pytest.approx(w["inside"][1], rel=0.05)
    assert w["far"][0] > 1.3 * w["far"][1]
    again = Fit.from_dict(json.loads(fit.to_json()))
    assert again.calibration["tau"] == cal["tau"]


def test_calibration_with_two_groups_says_so() -> None:
    df = ladder(budgets=(1e17, 1e18))
    cal = estimate(df, "chinchilla", "budget_flops", decades=None, seed=0, residual_rms=0.0, fit_kwargs={})
    assert cal["method"] == "none" and "2 group(s)" in cal["reason"]
