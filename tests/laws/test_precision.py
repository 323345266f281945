"""The floating-point quantization law (Sun et al. 2025): derived results and a synthetic refit."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.fit import LawFit
from scalinglab.fit._optimize import fd_jacobian
from scalinglab.fit.core import Problem
from scalinglab.laws import precision

LAW = laws.get("precision")
PRESET = dict(LAW.preset("sun2025").params)


@pytest.mark.parametrize("e_bits, m_bits, tokens", [(8, 7, 1730e12), (4, 3, 27e12), (2, 1, 0.4e12)])
def test_critical_data_size_of_a_1b_model(e_bits, m_bits, tokens):
    # Sun et al. 2025 (Eq. 21): N = 1B, B = 128: BF16 1730T, FP8-E4M3 27T, FP4-E2M1 0.4T tokens.
    # Measured: 1729.5T, 27.33T, 0.393T.
    assert precision.critical_data(PRESET, 1e9, e_bits, m_bits, 128) == pytest.approx(tokens, rel=0.02)


def test_critical_data_is_where_the_loss_turns_up():
    d_crit = precision.critical_data(PRESET, 1e9, 4, 3, 128)
    x = {"N": 1e9, "e_bits": 4, "m_bits": 3, "block": 128}
    L = [float(LAW.predict(PRESET, {**x, "D": d_crit * f})) for f in (0.99, 1.0, 1.01)]
    assert L[1] < L[0] and L[1] < L[2]


@pytest.mark.parametrize("bits, layout", [(4, (2, 1)), (8, (4, 3)), (16, (8, 7))])
def test_optimal_layout_of_common_formats(bits, layout):
    # Sun et al. 2025: FP4 -> E2M1, FP8 -> E4M3, FP16 -> E8M7 (BF16)
    assert precision.optimal_layout(PRESET, bits) == layout


def test_optimal_layout_is_the_rounded_continuous_optimum():
    for bits in range(3, 17):
        e_cont, m_cont = precision.optimal_layout_continuous(PRESET, bits)
        assert e_cont + m_cont == pytest.approx(bits - 1)
        assert precision.optimal_layout(PRESET, bits) == (round(e_cont), bits - 1 - round(e_cont))


def test_optimal_precision_at_fixed_data_matches_the_closed_form():
    for D in (1e11, 1e12, 1e13):
        closed = precision.optimal_precision_fixed_data(PRESET, D, 128)
        numeric = precision.optimal_precision(PRESET, 1e23, D=D, block=128)["P"]
        assert numeric == pytest.approx(closed, rel=1e-6)
    assert precision.optimal_precision_fixed_data(PRESET, 1e12) == pytest.approx(5.179, abs=1e-3)


def test_compute_optimal_precision_is_4_to_8_bits():
    # Sun et al. 2025: the cost-effective precision lies between 4 and 8 bits for C in 1e21-1e31 FLOPs
    # (B = 128) and grows with compute. Measured: 4.19 bits at 1e21, 7.58 at 1e31.
    P = [precision.optimal_precision(PRESET, C)["P"] for C in (1e21, 1e23, 1e25, 1e27, 1e29, 1e31)]
    assert all(4.0 <= p <= 8.0 for p in P)
    assert np.all(np.diff(P) > 0)
    best = precision.optimal_precision(PRESET, 1e23)
    assert 6 * best["N"] * best["D"] * best["P"] / 16 == pytest.approx(1e23, rel=1e-9)


def _synthetic(noise: float) -> pd.DataFrame:
    formats = [(8, 7), (5, 2), (4, 3), (3, 2), (2, 1), (1, 2)]
    rows = [{"N": N, "D": D, "e_bits": e, "m_bits": m, "block": B}
            for N, D, (e, m), B in itertools.product([41e6, 85e6, 154e6, 679e6], [10e9, 20e9, 50e9, 100e9],
                                                     formats, [32, 128, 2**13.1567])]
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    clean = LAW.predict(PRESET, {k: df[k].to_numpy() for k in LAW.inputs})
    return df.assign(loss=clean * np.exp(rng.normal(0.0, noise, len(df))))


def test_synthetic_refit_recovers_the_parameters_exactly():
    fit = LawFit("precision").fit(_synthetic(0.0)).result_
    for name, value in PRESET.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-4), name


def test_synthetic_refit_with_noise():
    # 288 runs on the paper's grid (N 41M-679M, D 10B-100B), 0.05% multiplicative noise.
    fit = LawFit("precision").fit(_synthetic(5e-4)).result_
    rel = {"n": 0.03, "alpha": 0.01, "d": 0.05, "beta": 0.01, "eps": 0.01, "gamma": 0.25, "delta": 0.06,
           "nu": 0.06}
    for name, tol in rel.items():
        assert fit.params[name] == pytest.approx(PRESET[name], rel=tol), name


def test_log_jacobian_matches_finite_differences():
    df = _synthetic(0.0).iloc[::7]
    prob = Problem(LAW, df, LAW.objective, {})
    theta = np.array([[np.log(69.0), 0.24, np.log(6.9e4), 0.5, np.log(1.9), np.log(1.1e4), 3.2, 2.9],
                      [np.log(5.0), 0.5, np.log(1e3), 0.3, np.log(1.0), np.log(10.0), 1.0, 2.0]])
    _, J = prob.jac(theta)
    _, J_fd = fd_jacobian(prob.residual, theta, prob.lower, prob.upper)
    np.testing.assert_allclose(J, J_fd, atol=1e-7)


def test_errors_name_the_bad_value():
    with pytest.raises(ParameterError, match="scaling block size 'block' must be a number of elements greater than 1"):
        precision.critical_data(PRESET, 1e9, 4, 3, 1)
    with pytest.raises(ParameterError, match=r"'total_bits' must be an integer >= 2 .*Got 7\.5 instead"):
        precision.optimal_layout(PRESET, 7.5)
    with pytest.raises(ParameterError, match="at most one of N and D"):
        precision.optimal_precision(PRESET, 1e23, N=1e9, D=1e12)
    with pytest.raises(ParameterError, match=r"missing \['nu'\]"):
        precision.critical_data({k: v for k, v in PRESET.items() if k != "nu"}, 1e9, 4, 3)
