"""``kaplan_steps_batch``: Kaplan's learning curve at a batch size, L(N, S, B), the root of
L = (N_c/N)^alpha_N + (S_c (1 + B_crit(L)/B) / S)^alpha_S with B_crit(L) = B_*/L^(1/alpha_B)."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.fit.core import LawFit
from scalinglab.plan.steps import loss_trajectory

LAW = laws.get("kaplan_steps_batch")
TRUE = {"N_c": 1e5, "alpha_N": 0.3, "S_c": 50.0, "alpha_S": 0.7, "B_star": 2000 * 1.3 ** 5, "alpha_B": 0.2}


def _x(N, S, B):
    S = np.asarray(S, dtype=float)
    return {"N": np.broadcast_to(np.asarray(N, dtype=float), S.shape),
            "step": S, "batch": np.broadcast_to(np.asarray(B, dtype=float), S.shape)}


def test_root_against_exact_rational_arithmetic():
    # alpha_S = 1/2, 1/alpha_B = 2 and N = N_c / 2 with alpha_N = 1 (floor exactly 2): the law is rational,
    # L - 2 = sqrt(S_c Q / S), Q = 1 + B_*/(B L^2); pick L and solve for S exactly with Fractions
    p = {"N_c": 2e5, "alpha_N": 1.0, "S_c": 50.0, "alpha_S": 0.5, "B_star": 2500.0, "alpha_B": 0.5}
    B = 1000
    cases = [Fraction(5, 2), Fraction(3), Fraction(21, 8), Fraction(9, 4)]
    S = []
    for L in cases:
        Q = 1 + Fraction(2500) / (B * L * L)
        S.append(float(Fraction(50) * Q / (L - 2) ** 2))     # S = S_c Q / (L - floor)^2 exactly
    got = LAW.predict(p, _x(1e5, S, B))
    np.testing.assert_allclose(got, [float(c) for c in cases], rtol=1e-14)
    # L = 5/2: B_crit = 2500/(25/4) = 400 tokens, Q = 1.4, S = 50 * 1.4 / 0.25 = 280 steps (by hand)
    assert S[0] == pytest.approx(280.0, rel=1e-15)


def test_matches_the_brent_trajectory_and_limits():
    S = np.geomspace(10, 2e4, 40)
    for B in (256.0, 2048.0, 65536.0):
        ref = loss_trajectory(S, 6e5, B, params=TRUE, B_star=TRUE["B_star"], alpha_B=TRUE["alpha_B"])
        np.testing.assert_allclose(LAW.predict(TRUE, _x(6e5, S, B)), ref, rtol=1e-12)
    # B -> infinity: S_min = S, the kaplan_steps curve
    ks = laws.get("kaplan_steps").predict(TRUE, {"N": np.full(40, 6e5), "steps": S})
    np.testing.assert_allclose(LAW.predict(TRUE, _x(6e5, S, 1e30)), ks, rtol=1e-12)
    # batched parameters (K, 1) broadcast against (n,) inputs, as the fitter calls it
    P = {k: np.array([[v], [v * 1.1]]) for k, v in TRUE.items()}
    assert LAW.predict(P, _x(6e5, S, 2048.0)).shape == (2, 40)
    # a zero floor (N_c = 0) and a huge B_* still give finite, falling curves
    z = LAW.predict({**TRUE, "N_c": 0.0, "B_star": 1e40}, _x(6e5, S, 512.0))
    assert np.all(np.isfinite(z)) and np.all(np.diff(z) < 0)


def test_analytic_jacobian_matches_central_differences(check_log_jacobian):
    S = np.geomspace(20, 1e4, 15)
    x = {"N": np.repeat([2e5, 6e5], 15), "step": np.tile(S, 2), "batch": np.repeat([512.0, 4096.0], 15)}
    lnL, _ = LAW.log_jacobian(TRUE, x)
    np.testing.assert_allclose(lnL, np.log(LAW.predict(TRUE, x)), rtol=1e-14)
    check_log_jacobian(LAW, TRUE, x)


def test_fit_recovers_known_parameters_from_synthetic_curves():
    S = np.unique(np.geomspace(10, 20000, 10).astype(int)).astype(float)
    rows = [pd.DataFrame({**_x(N, S, B), "loss": LAW.predict(TRUE, _x(N, S, B))})
            for N in (2e5, 6e5) for B in (256, 1024, 4096, 16384)]
    df = pd.concat(rows, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("kaplan_steps_batch").fit(df).result_
    for k, v in TRUE.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), k
    assert fit.converged


def test_registry_entry():
    assert LAW.inputs == ("N", "step", "batch") and LAW.n_convention == "non-embedding"
    assert LAW.param_names == ("N_c", "alpha_N", "S_c", "alpha_S", "B_star", "alpha_B")
    k = LAW.preset("kaplan2020").params
    assert (k["B_star"], k["alpha_B"], k["alpha_S"]) == (2e8, 0.21, 0.76)
