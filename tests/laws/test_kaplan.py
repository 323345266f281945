"""Kaplan et al. 2020 laws and the critical batch size (the Su et al. 2024 recipes: tests/plan/test_steps.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.fit.core import LawFit
from scalinglab.laws import kaplan as K

STEPS = laws.get("kaplan_steps").preset("kaplan2020").params


def _fd_log_jacobian(law, params, inputs, h=1e-6):
    """Central differences of ln f with respect to every parameter on its optimisation scale."""
    cols = []
    for p in law.params:
        t = p.to_scaled(params[p.name])
        up, dn = dict(params), dict(params)
        up[p.name], dn[p.name] = p.from_scaled(t + h), p.from_scaled(t - h)
        cols.append((law.log_predict(up, inputs) - law.log_predict(dn, inputs)) / (2 * h))
    return np.stack(cols, axis=-1)


def test_registry_and_conventions():
    k = laws.get("kaplan")
    assert (k.n_input, k.d_input, k.inputs) == ("N", "D", ("N", "D"))
    for name in ("kaplan", "kaplan_n", "kaplan_steps"):
        assert laws.get(name).n_convention == "non-embedding"
    assert laws.get("kaplan_steps").inputs == ("N", "steps")
    cb = laws.get("critical_batch")
    assert (cb.target, cb.inputs, cb.param_names) == ("steps", ("batch",), ("S_min", "B_crit"))
    for name in ("kaplan", "kaplan_n", "kaplan_d", "kaplan_steps", "critical_batch"):
        assert (laws.get(name).objective.kind, laws.get(name).objective.space,
                laws.get(name).objective.delta) == ("huber", "log", 1e-3)
        for p in laws.get(name).params:
            if p.name in ("N_c", "D_c", "S_c", "S_min", "B_crit"):
                assert p.log


def test_presets_are_the_published_tables():
    # Kaplan et al. 2020: Table 2 (joint), Table 3 (learning curves), Table 5 / Eq. 1.1-1.2 (single)
    assert laws.get("kaplan").preset("kaplan2020").params == {
        "N_c": 6.4e13, "alpha_N": 0.076, "D_c": 1.8e13, "alpha_D": 0.103}
    assert STEPS == {"N_c": 6.5e13, "alpha_N": 0.077, "S_c": 2.1e3, "alpha_S": 0.76}
    assert laws.get("kaplan_n").preset("kaplan2020").params == {"N_c": 8.8e13, "alpha_N": 0.076}
    assert laws.get("kaplan_d").preset("kaplan2020").params == {"D_c": 5.4e13, "alpha_D": 0.095}
    assert (K.B_STAR, K.ALPHA_B) == (2e8, 0.21)


def test_doubling_n_multiplies_the_loss_by_0_95():
    law = laws.get("kaplan_n")
    p = law.preset("kaplan2020").params
    L = law.predict(p, {"N": np.array([1e8, 2e8])})
    assert L[1] / L[0] == pytest.approx(0.9486843151404539, rel=1e-12)   # 2^-0.076 (bc -l)
    assert round(L[1] / L[0], 2) == 0.95                                   # Kaplan et al. 2020, Sec. 1.2
    assert law.predict(p, {"N": 8.8e13}) == pytest.approx(1.0, rel=1e-12)
    d = laws.get("kaplan_d")
    assert d.predict(d.preset("kaplan2020").params, {"D": 5.4e13 / 2 ** (1 / 0.095)}) == pytest.approx(2.0)


def test_joint_law_limits_and_value():
    law = laws.get("kaplan")
    p = law.preset("kaplan2020").params
    assert law.predict(p, {"N": 1e9, "D": 1e40}) == pytest.approx((6.4e13 / 1e9) ** 0.076, rel=1e-9)
    assert law.predict(p, {"N": 1e40, "D": 1e10}) == pytest.approx((1.8e13 / 1e10) ** 0.103, rel=1e-9)
    # where each term of [(N_c/N)^(a_N/a_D) + D_c/D] is exactly 2, the loss is 4^0.103 = 1.153485605060022
    # (bc -l); a general point, N = 1e9, D = 2e10, evaluated with bc -l from Eq. 1.5: 2.373882448217487
    half = {"N": 6.4e13 / 2 ** (0.103 / 0.076), "D": 1.8e13 / 2}
    assert law.predict(p, half) == pytest.approx(1.153485605060022, rel=1e-12)
    assert law.predict(p, {"N": 1e9, "D": 2e10}) == pytest.approx(2.373882448217487, rel=1e-12)
    assert np.exp(law.log_predict(p, {"N": 1e9, "D": 2e10})) == pytest.approx(2.373882448217487, rel=1e-12)


def test_overfitting_rule_d_5e3_n_0_74():
    # Kaplan Sec. 4: with seed noise ~0.02, D >~ 5e3 N^0.74 tokens keeps dL = L(N,D)/L(N,inf) - 1 near 0.02
    law = laws.get("kaplan")
    p = law.preset("kaplan2020").params
    N = np.logspace(6, 9.5, 8)
    dL = law.predict(p, {"N": N, "D": 5e3 * N ** 0.74}) / (6.4e13 / N) ** 0.076 - 1
    assert np.all(np.abs(dL - 0.021) < 0.001)


def test_b_crit_doubles_per_13_percent_lower_loss():
    assert K.b_crit(1.0) == pytest.approx(2e8)
    assert K.b_crit(2 ** 0.21) == pytest.approx(1e8, rel=1e-12)         # L^(1/alpha_B) = 2 exactly
    assert K.b_crit(3.0) == pytest.approx(1069114.010235652, rel=1e-12)  # 2e8 / 3^(1/0.21), bc -l
    ratio = K.b_crit(0.87 * 3.0) / K.b_crit(3.0)
    assert ratio == pytest.approx(1.940901782840885, rel=1e-12)          # 0.87^(-1/0.21), bc -l
    assert 1.9 < ratio < 2.0          # "approximately doubles for every 13% decrease in loss"


def test_step_and_token_conversions_satisfy_mccandlish():
    # Runs worked by hand for S_min = 1e4 steps, B_crit = 3e5 tokens (so E_min = 3e9 tokens): at B = 1e5
    # a run takes 1e4 (1 + 3) = 4e4 steps and 4e9 tokens; at B = B_crit twice the minimum of each; at
    # B = 1e6, 1.3e4 steps and 1.3e10 tokens. Every one must give back S_min = 1e4 and E_min = 3e9.
    Bc = 3e5
    B = np.array([1e5, 3e5, 1e6])
    S = np.array([4e4, 2e4, 1.3e4])
    E = np.array([4e9, 6e9, 1.3e10])
    s_min, e_min = K.s_min(S, B, Bc), K.e_min(E, B, Bc)
    np.testing.assert_allclose(s_min, 1e4, rtol=1e-12)
    np.testing.assert_allclose(e_min, 3e9, rtol=1e-12)
    # McCandlish et al. 2018 (Eq. 2.11): (S/S_min - 1)(E/E_min - 1) = 1, on the library's S_min and E_min
    np.testing.assert_allclose((S / s_min - 1) * (E / e_min - 1), 1.0, rtol=1e-12)


def test_b_crit_rejects_bad_values():
    with pytest.raises(ParameterError, match="positive finite number"):
        K.b_crit(-1.0)


@pytest.mark.parametrize("name, inputs", [
    ("kaplan", {"N": np.logspace(6, 10, 5), "D": np.logspace(7, 11, 5)}),
    ("kaplan_n", {"N": np.logspace(6, 10, 5)}),
    ("kaplan_d", {"D": np.logspace(7, 11, 5)}),
    ("kaplan_steps", {"N": np.logspace(6, 10, 5), "steps": np.logspace(2, 6, 5)}),
    ("critical_batch", {"batch": np.logspace(4, 8, 5)}),
])
def test_log_jacobian_matches_finite_differences(name, inputs):
    law = laws.get(name)
    params = (law.preset("kaplan2020").params if law.presets else {"S_min": 3e3, "B_crit": 2.5e5})
    lnf, J = law.log_jacobian(params, inputs)
    np.testing.assert_allclose(lnf, law.log_predict(params, inputs), rtol=1e-12)
    np.testing.assert_allclose(J, _fd_log_jacobian(law, params, inputs), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, second, values", [
    ("kaplan", "D", np.logspace(7, 10.5, 8)),
    ("kaplan_steps", "steps", np.logspace(2.5, 5.5, 8)),
])
def test_fit_recovers_published_parameters_from_their_own_curve(name, second, values):
    law = laws.get(name)
    p = law.preset("kaplan2020").params
    grid = np.array([(n, x) for n in np.logspace(6, 9.5, 8) for x in values])
    df = pd.DataFrame(grid, columns=["N", second])
    df["loss"] = law.predict(p, df)
    fit = LawFit(name).fit(df).result_
    for k, v in p.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k
    assert fit.warnings == []


def test_critical_batch_fit_from_steps_to_target_loss():
    law = laws.get("critical_batch")
    true = {"S_min": 3000.0, "B_crit": 2.5e5}
    df = pd.DataFrame({"batch": 2.0 ** np.arange(14, 24)})
    rng = np.random.default_rng(0)
    df["steps"] = law.predict(true, df) * np.exp(rng.normal(0, 1e-4, len(df)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = LawFit("critical_batch").fit(df).result_
    assert fit.params["S_min"] == pytest.approx(3000.0, rel=1e-3)
    assert fit.params["B_crit"] == pytest.approx(2.5e5, rel=1e-3)
