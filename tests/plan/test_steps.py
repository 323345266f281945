"""The prediction recipes of Su et al. 2024 over Kaplan et al.'s laws: steps to a loss, the loss curve."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.errors import ParameterError
from scalinglab.plan.steps import loss_floor, loss_trajectory, steps_to_loss


def test_steps_to_loss_closed_form():
    L, N, B = 3.0, 1e8, 5e5
    floor = (6.5e13 / N) ** 0.077
    assert loss_floor(N) == pytest.approx(floor, rel=1e-12)
    r = steps_to_loss(L, N, batch=B)
    S_min = 2.1e3 / (L - floor) ** (1 / 0.76)
    Bc = 2e8 / L ** (1 / 0.21)
    assert r.S_min == pytest.approx(S_min, rel=1e-12)
    assert r.B_crit == pytest.approx(Bc, rel=1e-12)
    assert r.E_min == pytest.approx(Bc * S_min, rel=1e-12)
    assert r.S == pytest.approx(S_min * (1 + Bc / B), rel=1e-12)
    assert r.E == pytest.approx(B * r.S, rel=1e-12)
    assert steps_to_loss(L, N).S is None


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
