"""Tissue et al. 2024 learning-rate annealing law: the schedule areas and a synthetic fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import DataError, ParameterError
from scalinglab.fit.core import LawFit
from scalinglab.laws import anneal as AN

LAW = laws.get("anneal")
TRUE = {"L0": 2.4, "A": 0.6, "alpha": 0.45, "C": 0.25}


def test_areas_of_a_tiny_schedule_by_hand():
    # eta = 1, 1, .5, .5, 0 and lambda = 0.5:
    #   drops eta_{i-1} - eta_i = 0, 0, .5, 0, .5
    #   m = 0, 0, .5, .25, .625   (m_i = .5 m_{i-1} + drop_i)
    #   S2 = cumsum m = 0, 0, .5, .75, 1.375;  S1 = cumsum eta = 1, 2, 2.5, 3, 3
    S1, S2 = AN.schedule_areas([1.0, 1.0, 0.5, 0.5, 0.0], decay=0.5)
    np.testing.assert_allclose(S1, [1.0, 2.0, 2.5, 3.0, 3.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(S2, [0.0, 0.0, 0.5, 0.75, 1.375], rtol=0, atol=1e-15)


def test_constant_schedule_has_no_annealing_area():
    S1, S2 = AN.schedule_areas(np.full(1000, 3e-4))
    assert np.all(S2 == 0.0)
    np.testing.assert_allclose(S1, 3e-4 * np.arange(1, 1001), rtol=1e-12)


def test_decay_one_gives_the_plain_annealed_area():
    eta = 1e-3 * np.cos(np.linspace(0, np.pi / 2, 200))
    _, S2 = AN.schedule_areas(eta, decay=1.0)
    np.testing.assert_allclose(S2, np.cumsum(eta[0] - eta), rtol=1e-12, atol=1e-18)


def test_warmup_steps_count_at_the_peak():
    eta = np.concatenate([np.linspace(1e-4, 1e-3, 10), np.full(5, 1e-3), np.linspace(1e-3, 0, 5)])
    S1, S2 = AN.schedule_areas(eta, warmup_steps=10)
    S1_ref, S2_ref = AN.schedule_areas(np.concatenate([np.full(15, 1e-3), eta[15:]]))
    np.testing.assert_allclose(S1, S1_ref, rtol=1e-12)
    np.testing.assert_allclose(S2, S2_ref, rtol=1e-12)
    assert np.all(AN.schedule_areas(eta)[1][1:10] < 0)     # without it, the ramp is "negative annealing"


def test_areas_for_points_interpolate_the_lr_linearly_between_logged_steps():
    # a piecewise-linear schedule logged at its knots is rebuilt exactly
    steps = np.arange(1, 401)
    lr_a = np.interp(steps, [1, 100, 300, 400], [1e-3, 1e-3, 2e-4, 2e-4])
    lr_b = np.full(400, 5e-4)
    logged_a = [1, 50, 100, 200, 300, 400]
    logged_b = [100, 400]
    df = pd.DataFrame({"run": ["a"] * 6 + ["b"] * 2, "step": logged_a + logged_b,
                       "lr": list(lr_a[np.array(logged_a) - 1]) + list(lr_b[np.array(logged_b) - 1])})
    df = df.iloc[[5, 6, 0, 3, 7, 1, 4, 2]]             # rows in any order
    out = AN.areas_for_points(df, decay=0.99)
    assert list(out.index) == list(df.index)
    S1a, S2a = AN.schedule_areas(lr_a, decay=0.99)
    for _, row in out.iterrows():
        if row["run"] == "a":
            assert row["S1"] == pytest.approx(S1a[row["step"] - 1], rel=1e-12)
            assert row["S2"] == pytest.approx(S2a[row["step"] - 1], rel=1e-12, abs=1e-18)
        else:
            assert row["S1"] == pytest.approx(5e-4 * row["step"], rel=1e-12) and row["S2"] == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ParameterError, match="'decay' parameter"):
        AN.schedule_areas([1e-3], decay=1.5)
    with pytest.raises(ParameterError, match="non-empty 1-D"):
        AN.schedule_areas([])
    with pytest.raises(ParameterError, match="non-negative"):
        AN.schedule_areas([1e-3, -1e-3])
    with pytest.raises(DataError, match="lacks column"):
        AN.areas_for_points(pd.DataFrame({"step": [1], "lr": [1e-3]}))
    with pytest.raises(DataError, match="integer >= 1"):
        AN.areas_for_points(pd.DataFrame({"run": ["a"], "step": [0], "lr": [1e-3]}))
    with pytest.raises(DataError, match="logs step 5 twice"):
        AN.areas_for_points(pd.DataFrame({"run": ["a", "a"], "step": [5, 5], "lr": [1e-3, 1e-3]}))


def _curves() -> pd.DataFrame:
    T, peak = 5000, 3e-3
    s = np.arange(1, T + 1)
    schedules = {
        "constant": np.full(T, peak),
        "cosine": peak * (0.1 + 0.45 * (1 + np.cos(np.pi * (s - 1) / (T - 1)))),
        "wsd": np.where(s <= 4000, peak, peak * (0.01 + 0.99 * (T - s) / 1000)),
    }
    rows = []
    for name, lr in schedules.items():
        S1, S2 = AN.schedule_areas(lr)
        for st in range(100, T + 1, 100):
            rows.append({"run": name, "step": st, "S1": S1[st - 1], "S2": S2[st - 1]})
    df = pd.DataFrame(rows)
    df["loss"] = LAW.predict(TRUE, df)
    return df


def test_fit_recovers_known_parameters_and_predicts_another_schedule():
    df = _curves()
    fit = LawFit("anneal").fit(df[df["run"] != "wsd"]).result_       # one constant, one cosine run
    for k, v in TRUE.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k
    wsd = df[df["run"] == "wsd"]
    np.testing.assert_allclose(LAW.predict(fit.params, wsd), wsd["loss"], rtol=1e-9)


def test_log_jacobian_matches_finite_differences(check_log_jacobian):
    check_log_jacobian(LAW, TRUE, _curves().iloc[::7])
