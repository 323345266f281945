"""The drift calibration schemes: a signed, persistent one-step bias with its own uncertainty."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special

from scalinglab.errors import DataError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit.calibrate import (
    calibrated_interval,
    drift_band,
    drift_model,
    drift_sd_df,
    offset_prior,
    one_step_pairs,
    welch_df,
    with_scheme,
)
from scalinglab.fit.predict import predict
from scalinglab.fit.report import fit_report

TRUE = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}


def bent_ladder(budgets: np.ndarray) -> pd.DataFrame:
    """An IsoFLOP ladder on the Chinchilla surface TRUE (4 sizes per budget, seeded 0.5% noise), its
    loss bent up by 3% per decade of budget: a bias the law cannot follow."""
    rng = np.random.default_rng(4)
    rows = []
    for c in budgets:
        for n in (c / 6) ** 0.5 / 4 * np.geomspace(0.3, 3, 4):
            d = c / (6 * n)
            loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
            rows.append({"N": n, "D": d, "budget_flops": c,
                         "loss": loss * np.exp(0.005 * rng.standard_normal()) * (1 + 0.03 * np.log10(c / 1e17))})
    return pd.DataFrame(rows)

# Two internal prefixes: prefix 1 (span 0.3 decades) predicts one group at 0.3 decades (pair 0);
# prefix 2 (span 0.6) predicts the next group at 0.3 (pair 1) and the one after at 0.6 (pair 2).
RECORD = {"errors": [-0.01, -0.03, 0.01, 0.03, 0.05, 0.2], "distances": [0.3, 0.3, 0.3, 0.3, 0.3, 0.6],
          "spans": [0.3, 0.3, 0.6, 0.6, 0.6, 0.6], "pairs": [0, 0, 1, 1, 1, 2]}


def arrays(rec: dict) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(rec[k], dtype=float) for k in ("errors", "distances", "pairs", "spans"))


def test_one_step_pairs_and_the_drift_model_by_hand() -> None:
    e, d, p, w = arrays(RECORD)
    one = one_step_pairs(e, d, p.astype(int), w)
    # pair 2 (0.6 decades out) is not a one-step pair
    assert [(m, x) for m, x, _ in one] == [(pytest.approx(-0.02), pytest.approx(0.3)),
                                           (pytest.approx(0.03), pytest.approx(0.3))]
    assert one[1][2] == pytest.approx([-0.02, 0.0, 0.02])
    beta, sd2, m, s1, dof = drift_model(e, d, p.astype(int), w)
    # slopes -0.02/0.3 and 0.03/0.3 per decade; innovations from 0: -1/15, then 0.1 + 1/15 = 1/6
    assert beta == pytest.approx(0.1) and m == 2
    assert sd2 == pytest.approx(((1 / 15) ** 2 + (1 / 6) ** 2) / 2)
    # row noise: deviations (0.01, -0.01) and (-0.02, 0, 0.02): 0.001 over 3 degrees of freedom
    assert (s1, dof) == (pytest.approx(np.sqrt(0.001 / 3)), 3)
    assert drift_model(np.array([]), np.array([]), np.array([], dtype=int), np.array([])) == (0.0, 0.0, 0, 0.0, 0)


def test_welch_satterthwaite_degrees_of_freedom() -> None:
    # two equal variances of 5 degrees of freedom each: a chi-square of 10
    assert welch_df(1.0, 5, 1.0, 5) == pytest.approx(10.0)
    # a known part (no degrees of freedom) adds none: (1 + 1)^2 / (1 / 2) = 8
    assert welch_df(1.0, 2, 1.0, 0) == pytest.approx(8.0)
    assert welch_df(1.0, 0, 2.0, 0) == float("inf")


def test_drift_band_closed_form() -> None:
    # beta 0.1 per decade, sd_d 0.02 per decade over 4 innovations, row noise 0.01 known; at 0.5 decades:
    # shift 0.05, variances 0.0001 + 0.0001, Welch df (0.0002)^2 / (1e-8 / 4) = 16
    cal = {"x_min": 1e18, "x_max": 1e20, "drift_beta": 0.1, "drift_sd": 0.02, "drift_n": 4,
           "drift_row_s": 0.01, "drift_row_n": 0}
    shift, half = drift_band(cal, np.array([0.5, -1.0]), 0.8)
    t16 = special.stdtrit(16, 0.9)
    assert t16 == pytest.approx(1.3367568, rel=1e-6)           # the table value of t_16(0.9)
    assert shift[0] == pytest.approx(0.05) and half[0] == pytest.approx(t16 * np.sqrt(0.0002))
    # inside the data (x = 0): no shift; the row noise alone, known: the normal quantile
    assert shift[1] == 0.0 and half[1] == pytest.approx(special.ndtri(0.9) * 0.01)


def test_drift_prior_is_a_conjugate_pool() -> None:
    # own sd 0.03 over 2 innovations, prior 0.06 worth 1: sqrt((2 * 0.0009 + 0.0036) / 3), 3 degrees of freedom
    sd, df = drift_sd_df({"drift_sd": 0.03, "drift_n": 2, "drift_prior_sd": 0.06, "drift_prior_n": 1.0})
    assert (sd, df) == (pytest.approx(np.sqrt(0.0018)), 3.0)
    assert drift_sd_df({"drift_sd": 0.03, "drift_n": 2}) == (pytest.approx(0.03), 2.0)


def test_drift_interval_moves_with_the_bias() -> None:
    cal = {"method": "internal-rollout", "scheme": "drift", "axis": "C", "x_min": 1e18, "x_max": 1e20,
           "drift_beta": -0.04, "drift_sd": 0.0, "drift_n": 3, "drift_row_s": 0.01, "drift_row_n": 0}
    pts = pd.DataFrame({"C": [1e21, 1e19]})
    center = np.full(2, 3.0)
    lo, hi = calibrated_interval(cal, pts, center, center * 0.98, center * 1.02, 0.8)
    z = special.ndtri(0.9)
    # one decade out: centred on 3 exp(-0.04), half-width z * 0.01 in log loss; the prediction 3 lies outside
    assert np.log(lo[0] / 3.0) == pytest.approx(-0.04 - z * 0.01)
    assert np.log(hi[0] / 3.0) == pytest.approx(-0.04 + z * 0.01)
    assert hi[0] < 3.0
    assert (lo[1], hi[1]) == (pytest.approx(2.94), pytest.approx(3.06))   # inside the data: observation
    # the curve's own interval, moved by the same bias, is never cut
    mean = (np.full(2, 2.8), np.full(2, 3.1))
    lo_m, hi_m = calibrated_interval(cal, pts, center, center * 0.98, center * 1.02, 0.8, mean=mean)
    assert (lo_m[0], hi_m[0]) == (pytest.approx(2.8 * np.exp(-0.04)), pytest.approx(3.1 * np.exp(-0.04)))


def test_a_drift_fit_round_trips_and_rejects_bad_fields() -> None:
    df = bent_ladder(np.geomspace(1e17, 1e20, 5))
    starts = [[np.log(TRUE["E"]), np.log(TRUE["A"]), np.log(TRUE["B"]), TRUE["alpha"], TRUE["beta"]]]
    fit = LawFit("chinchilla", bootstrap=30, starts=starts, calibrate="budget_flops",
                 calibrate_scheme="drift").fit(df).result_
    cal = fit.calibration
    assert cal["scheme"] == "drift" and cal["drift_n"] == 3          # prefixes of 2, 3 and 4 budgets
    e, d, p, w = arrays(cal)
    assert cal["drift_beta"] == pytest.approx(drift_model(e, d, p.astype(int), w)[0])
    far = pd.DataFrame({"N": [1e10], "D": [1e22 / 6e10]})
    a = predict(fit, far, level=0.8)
    b = predict(Fit.from_dict(json.loads(fit.to_json())), far, level=0.8)
    assert a.attrs["interval"] == "extrapolation-calibrated"
    assert (a["lo"].iloc[0], a["hi"].iloc[0]) == (b["lo"].iloc[0], b["hi"].iloc[0])
    text = fit_report(fit)
    assert "extrapolation calibration (drift)" in text and "from 3 drift step(s)" in text
    for key, bad in (("drift_sd", -1.0), ("drift_beta", float("nan"))):
        dd = json.loads(fit.to_json())
        dd["calibration"][key] = bad
        with pytest.raises(DataError, match=f"calibration.{key}"):
            Fit.from_dict(dd)


def test_drift_p_copies_the_shipped_prior() -> None:
    prior = offset_prior()
    assert prior["drift_pairs"] == 1.0 and 0 < prior["drift_sd"] < 0.5 and prior["n_drift"] > 10
    cal = with_scheme({"method": "internal-rollout", "x_min": 1e18, "x_max": 1e20, "axis": "C", **RECORD},
                      "drift-p")
    assert (cal["drift_prior_sd"], cal["drift_prior_n"]) == (prior["drift_sd"], 1.0)
    sd, df = drift_sd_df(cal)
    assert df == 3.0
    assert sd ** 2 == pytest.approx((2 * cal["drift_sd"] ** 2 + prior["drift_sd"] ** 2) / 3)
