"""The prediction recipes of Su et al. 2024 over Kaplan et al.'s laws: steps to a loss, the loss curve."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.errors import ParameterError
from scalinglab.plan.steps import loss_floor, loss_trajectory, steps_to_loss


def test_steps_to_loss_at_points_worked_by_hand():
    # Kaplan et al. 2020 Table 3 (N_c = 6.5e13, alpha_N = 0.077, S_c = 2.1e3, alpha_S = 0.76) and
    # B_crit(L) = 2e8 / L^(1/0.21). At N = N_c the floor is exactly 1, so at L = 2 the reducible loss is 1
    # and S_min = S_c = 2100 steps; at N = N_c / 2^(1/0.077) the floor is 2.
    assert loss_floor(6.5e13) == pytest.approx(1.0, rel=1e-12)
    assert loss_floor(6.5e13 / 2 ** (1 / 0.077)) == pytest.approx(2.0, rel=1e-12)
    r = steps_to_loss(2.0, 6.5e13)
    assert r.S_min == pytest.approx(2100.0, rel=1e-12)
    assert r.B_crit == pytest.approx(7371465.305608527, rel=1e-12)          # 2e8 / 2^(1/0.21), bc -l
    assert r.E_min == pytest.approx(2100.0 * 7371465.305608527, rel=1e-12)  # E_min = B_crit S_min
    assert r.S is None and r.E is None
    # training at B = B_crit costs twice the minimum steps and tokens; at B_crit / 3, 4x the steps
    at_crit = steps_to_loss(2.0, 6.5e13, batch=7371465.305608527)
    assert (at_crit.S, at_crit.E) == (pytest.approx(4200.0, rel=1e-12), pytest.approx(2 * r.E_min, rel=1e-12))
    assert steps_to_loss(2.0, 6.5e13, batch=7371465.305608527 / 3).S == pytest.approx(8400.0, rel=1e-12)
    # a general point, L = 3, N = 1e8, B = 5e5, evaluated with bc -l from the formulas of LAWS.md section 2
    r = steps_to_loss(3.0, 1e8, batch=5e5)
    assert loss_floor(1e8) == pytest.approx(2.802814324894842, rel=1e-12)
    assert r.S_min == pytest.approx(17783.40304414794, rel=1e-11)
    assert r.B_crit == pytest.approx(1069114.010235652, rel=1e-12)
    assert r.E_min == pytest.approx(19012485344.16591, rel=1e-11)
    assert r.S == pytest.approx(55808.37373247976, rel=1e-11)
    assert r.E == pytest.approx(27904186866.23988, rel=1e-11)


def test_loss_trajectory_inverts_steps_to_loss():
    N, B = 1e8, 5e5
    targets = np.array([2.9, 3.0, 3.5, 4.5])
    S = steps_to_loss(targets, N, batch=B).S
    np.testing.assert_allclose(loss_trajectory(S, N, B), targets, rtol=1e-10)
    curve = loss_trajectory(np.logspace(2, 8, 25), N, B)
    assert np.all(np.diff(curve) < 0)
    assert curve[-1] == pytest.approx(loss_floor(N), rel=1e-3)
    # a larger batch needs fewer steps: at the same step count the loss is lower
    assert np.all(loss_trajectory(S, N, 4 * B) < targets)


def test_recipes_reject_bad_values():
    with pytest.raises(ParameterError, match="above the loss floor"):
        steps_to_loss(2.0, 1e8)
    with pytest.raises(ParameterError, match="positive finite number"):
        loss_trajectory([10.0, 0.0], 1e8, 5e5)
    with pytest.raises(ParameterError, match="must be one number"):
        loss_trajectory([10.0], [1e8, 1e9], 5e5)
    with pytest.raises(ParameterError, match="N_c, alpha_N, S_c and alpha_S"):
        loss_floor(1e8, params={"N_c": 1e13})


def test_loss_trajectory_with_a_zero_loss_floor():
    # a kaplan_steps fit can put N_c at its bound 0: the floor is 0 and B_crit(L_inf) infinite; the
    # trajectory still solves L = (S_c (1 + B_*/L^(1/alpha_B) / B) / S)^alpha_S (no ZeroDivisionError)
    from scalinglab.laws.kaplan import ALPHA_B, B_STAR

    p = {"N_c": 0.0, "alpha_N": 0.076, "S_c": 2.1e3, "alpha_S": 0.76}
    S, B = np.logspace(2, 6, 9), 2.0e5
    L = loss_trajectory(S, 1e8, B, params=p)
    resid = (p["S_c"] * (1 + B_STAR / L ** (1 / ALPHA_B) / B) / S) ** p["alpha_S"] - L
    np.testing.assert_allclose(resid, 0.0, atol=1e-12)
    assert np.all(np.diff(L) < 0) and np.all(L > 0)
    # the limit of a tiny positive floor (the ordinary bracket) gives the same curve
    tiny = loss_trajectory(S, 1e8, B, params={**p, "N_c": 1e-200})
    np.testing.assert_allclose(L, tiny, rtol=1e-9)


def test_loss_trajectory_with_a_tiny_alpha_B_does_not_overflow():
    # alpha_B at its lower bound 1e-3: L^(1/alpha_B) = 3^1000 is beyond a float (was an OverflowError in a
    # leave-one-out fold); B_crit(L) = B_*/L^1000 is then ~0 for L >= 1.5 (1e6 x 1.5^-1000 ~ 1e-170), so
    # the curve is the constant-batch law L = L_inf + (S_c/S)^alpha_S, floor L_inf = 1.5
    p = {"N_c": 6e5 * 1.5 ** (1 / 0.3), "alpha_N": 0.3, "S_c": 50.0, "alpha_S": 0.7}
    S = np.array([10.0, 100.0, 1000.0])
    L = loss_trajectory(S, 6e5, 1024.0, params=p, B_star=1e6, alpha_B=1e-3)
    assert L[0] > 3.0                                        # 3^1000 overflows
    np.testing.assert_allclose(L, 1.5 + (50.0 / S) ** 0.7, rtol=1e-12)
