"""The precision laws of Kumar et al. 2024 (``kumar``, ``kumar_ptq``) and Ouyang et al. 2024
(``ouyang_qid``): published magnitudes, closed forms against brute force, synthetic refits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.fit import LawFit
from scalinglab.fit._optimize import fd_jacobian
from scalinglab.fit.core import Problem
from scalinglab.laws import kumar, ouyang

KUMAR = dict(laws.get("kumar").preset("kumar2024").params)
PTQ = dict(laws.get("kumar_ptq").preset("kumar2024").params)
QID = dict(laws.get("ouyang_qid").preset("ouyang2024").params)


@pytest.mark.parametrize("law, params, bits, expected, rel", [
    # ../shared/PRECISION.md section 5: at N = 1e5, D = 2e7 the published laws give ~0.19 / 0.02-0.04 /
    # < 0.01 nats at 2 / 3 / 4 bits (by hand: Ouyang 0.1900, 0.0205, 0.0042; Kumar 0.1936, 0.0356, 0.00655)
    ("ouyang_qid", QID, 2, 0.19, 0.01), ("ouyang_qid", QID, 3, 0.0205, 0.02), ("ouyang_qid", QID, 4, 0.0042, 0.03),
    ("kumar_ptq", PTQ, 2, 0.1936, 0.001), ("kumar_ptq", PTQ, 3, 0.03562, 0.001), ("kumar_ptq", PTQ, 4, 0.006554, 0.001),
])
def test_published_magnitudes_at_our_scale(law: str, params: dict[str, float], bits: int, expected: float,
                                           rel: float) -> None:
    value = float(laws.get(law).predict(params, {"N": 1e5, "D": 2e7, "P_post": bits})[()])
    assert value == pytest.approx(expected, rel=rel)
    assert {2: 0.17 < value < 0.21, 3: 0.02 <= value <= 0.04, 4: value < 0.01}[bits]


def test_ptq_closed_forms_by_hand() -> None:
    N, D, P = 3e7, 4e9, 3.0
    assert float(kumar.ptq_delta(PTQ, {"N": N, "D": D, "P_post": P})) == pytest.approx(
        0.0598 * D ** 0.5068 / N ** 0.3439 * math.exp(-P / 0.5907), rel=1e-12)
    assert float(ouyang.qid(QID, {"N": N, "D": D, "P_post": P})) == pytest.approx(
        0.017 * D ** 0.5251 / (N ** 0.2261 * P ** 5.4967), rel=1e-12)
    # more data hurts, more parameters and more bits help
    f = laws.get("ouyang_qid").predict
    assert f(QID, {"N": N, "D": 2 * D, "P_post": P}) > f(QID, {"N": N, "D": D, "P_post": P}) \
        > f(QID, {"N": 2 * N, "D": D, "P_post": P}) > f(QID, {"N": 2 * N, "D": D, "P_post": P + 1})


def test_critical_tokens_inverts_the_law() -> None:
    D = ouyang.critical_tokens(QID, 1e9, 4, 0.05)
    assert float(ouyang.qid(QID, {"N": 1e9, "D": D, "P_post": 4})) == pytest.approx(0.05, rel=1e-10)
    with pytest.raises(ParameterError, match="'tolerance'"):
        ouyang.critical_tokens(QID, 1e9, 4, 0.0)


def test_effective_parameters() -> None:
    by_hand = 1e8 * math.prod(1 - math.exp(-bits / g) for bits, g in ((4, 2.6745), (8, 2.2102), (16, 0.9578)))
    assert float(kumar.n_eff(KUMAR, 1e8, 4, 8, 16)) == pytest.approx(by_hand, rel=1e-12)
    assert float(kumar.n_eff(KUMAR, 1e8, 64)) == pytest.approx(1e8, rel=1e-9)   # high precision: all of N
    assert kumar.n_eff(KUMAR, 1e8, 3) < kumar.n_eff(KUMAR, 1e8, 4) < kumar.n_eff(KUMAR, 1e8, 8)
    # at infinite precision the law is Chinchilla's with alpha = beta
    L = laws.get("kumar").predict(KUMAR, {"N": 1e8, "D": 2e9, "P_w": 200, "P_a": 200, "P_kv": 200})
    assert float(L[()]) == pytest.approx(4.299e3 * 1e8 ** -0.4965 + 1.806e4 * 2e9 ** -0.4965 + 2.7648, rel=1e-12)
    with pytest.raises(ParameterError, match="'P_w'"):
        kumar.n_eff(KUMAR, 1e8, 0)


def test_compute_optimal_training_precision_is_independent_of_compute() -> None:
    """argmax f(P)/P against a brute-force minimum of the loss over (N, P) at C = (6/16) P N D."""
    p_star = kumar.optimal_training_precision(KUMAR)
    assert p_star == pytest.approx(3.4689, abs=2e-3)
    law = laws.get("kumar")
    for C in (1e19, 1e23):
        P = np.linspace(2.0, 8.0, 601)[:, None]
        N = np.geomspace(1e6, 1e12, 2001)[None, :]
        D = C / (6 / 16 * P * N)
        L = law.predict(KUMAR, {"N": N, "D": D, "P_w": P, "P_a": P, "P_kv": P})
        i, _ = np.unravel_index(np.argmin(L), L.shape)
        assert float(P[i, 0]) == pytest.approx(p_star, abs=0.02)


def _synthetic(law: str, params: dict[str, float], grid: dict[str, list[float]], noise: float) -> pd.DataFrame:
    df = pd.DataFrame([dict(zip(grid, v)) for v in itertools.product(*grid.values())])
    L = laws.get(law)
    clean = L.predict(params, {k: df[k].to_numpy() for k in L.inputs})
    return df.assign(**{L.target: clean * np.exp(np.random.default_rng(0).normal(0.0, noise, len(df)))})


def test_kumar_log_jacobian_matches_finite_differences() -> None:
    df = _synthetic("kumar", KUMAR, {"N": [3e7, 2e8], "D": [1e9, 3e10], "P_w": [3, 8], "P_a": [2, 16],
                                     "P_kv": [1, 4]}, 0.0)
    law = laws.get("kumar")
    prob = Problem(law, df, law.objective, {})
    theta = np.array([[np.log(4.3e3), 0.5, np.log(1.8e4), np.log(2.7), 2.7, 2.2, 0.96],
                      [np.log(50.0), 0.3, np.log(300.0), np.log(1.5), 1.0, 4.0, 2.0]])
    _, J = prob.jac(theta)
    _, J_fd = fd_jacobian(prob.residual, theta, prob.lower, prob.upper)
    np.testing.assert_allclose(J, J_fd, atol=1e-7)


def test_kumar_refit_recovers_the_parameters() -> None:
    grid = {"N": [3e7, 6e7, 1.2e8, 2.2e8], "D": [1e9, 3e9, 1e10, 3e10],
            "P_w": [3, 4, 6, 8, 16], "P_a": [3, 4, 6, 8, 16], "P_kv": [2, 4, 16]}
    fit = LawFit("kumar").fit(_synthetic("kumar", KUMAR, grid, 0.0)).result_
    for name, value in KUMAR.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-3), name


@pytest.mark.parametrize("law, params", [("kumar_ptq", PTQ), ("ouyang_qid", QID)])
def test_ptq_refits_recover_the_parameters(law: str, params: dict[str, float]) -> None:
    grid = {"N": [1e5, 3e5, 1e6, 3e6], "D": [2e6, 6e6, 2e7, 6e7], "P_post": [2, 3, 4]}
    exact = LawFit(law).fit(_synthetic(law, params, grid, 0.0)).result_
    for name, value in params.items():
        assert exact.params[name] == pytest.approx(value, rel=1e-6), name
    noisy = LawFit(law).fit(_synthetic(law, params, grid, 0.01)).result_   # 1% multiplicative noise
    for name, value in params.items():   # the scale trades off against the exponents (ln D ~ 17)
        assert noisy.params[name] == pytest.approx(value, rel=0.3 if name in ("k", "C_T") else 0.05), name


def test_laws_are_registered_with_their_conventions() -> None:
    for name in ("kumar", "kumar_ptq", "ouyang_qid"):
        law = laws.get(name)
        assert law.n_convention == "non-embedding" and law.presets
    assert laws.get("kumar_ptq").target == laws.get("ouyang_qid").target == "dL_ptq"
