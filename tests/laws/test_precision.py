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


def _synthetic(noise: float) -> pd.DataFrame:
    formats = [(8, 7), (5, 2), (4, 3), (3, 2), (2, 1), (1, 2)]
    rows = [{"N_nonembed": N, "D": D, "e_bits": e, "m_bits": m, "block": B}
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


def test_n_is_the_non_embedding_count():
    # Sun et al. 2025, Table 3: the smallest model's N = 40,894,464 = 12 (4 * 512^2 + 3 * 512 * 1536),
    # attention and SwiGLU weights only (../shared/PRECISION.md section 3)
    assert 12 * (4 * 512 ** 2 + 3 * 512 * 1536) == 40_894_464
    assert LAW.n_convention == "non-embedding" and LAW.n_input == "N_nonembed" and "N_nonembed" in LAW.inputs
    x = {"D": 1e10, "e_bits": 4, "m_bits": 3, "block": 128}
    assert float(LAW.predict(PRESET, {**x, "N_nonembed": 4e7})) == float(LAW.predict(PRESET, {**x, "N": 4e7}))


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
    with pytest.raises(ParameterError, match=r"missing \['nu'\]"):
        precision.critical_data({k: v for k, v in PRESET.items() if k != "nu"}, 1e9, 4, 3)
