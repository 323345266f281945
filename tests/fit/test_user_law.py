"""A law of the user's own, registered from Python, goes through fit, predict, back-test and plan."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError, UnknownLawError
from scalinglab.fit import LawFit
from scalinglab.fit.backtest import backtest
from scalinglab.fit.predict import predict
from scalinglab.laws import Law, Param
from scalinglab.plan import plan


def _kaplan_like(p, x):  # type: ignore[no-untyped-def]
    """L = E + (Nc/N)^a + (Dc/D)^b, a Kaplan-style additive law (no analytic Jacobian: finite differences)."""
    return p["E"] + (p["Nc"] / x["N"]) ** p["a"] + (p["Dc"] / x["D"]) ** p["b"]


USER = Law(
    name="test_additive", formula=_kaplan_like,
    params=(Param("E", 0.0, 10.0, (0.5, 1.5)), Param("Nc", 1.0, 1e20, (10.0, 20.0), log=True),
            Param("a", 0.01, 2.0, (0.3,)), Param("Dc", 1.0, 1e20, (10.0, 20.0), log=True),
            Param("b", 0.01, 2.0, (0.3,))),
    inputs=("N", "D"), n_input="N", d_input="D", title="test law", formula_text="E + (Nc/N)^a + (Dc/D)^b",
    units="-", citation="test",
)
TRUE = {"E": 1.6, "Nc": 3e7, "a": 0.35, "Dc": 5e8, "b": 0.3}


@pytest.fixture(scope="module")
def user_law() -> Law:
    laws.register(USER, replace=True)
    return USER


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), 80))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 80))
    L = _kaplan_like(TRUE, {"N": N, "D": D}) * np.exp(rng.normal(0, 0.002, 80))
    return pd.DataFrame({"N": N, "D": D, "loss": L})


def test_register_rules(user_law: Law) -> None:
    assert "test_additive" in laws.available()
    with pytest.raises(ParameterError, match="already registered"):
        laws.register(USER)
    with pytest.raises(UnknownLawError, match="The law name must be one of"):
        laws.get("no_such_law")


def test_user_law_recovers_its_parameters(user_law: Law, data: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("test_additive", bootstrap=50, seed=1).fit(data).result_
    assert fit.n_starts == 2 * 2 * 2
    for k in ("E", "a", "b"):
        assert fit.params[k] == pytest.approx(TRUE[k], rel=0.05), k
    assert fit.params["Nc"] == pytest.approx(TRUE["Nc"], rel=0.5)
    pred = predict(fit, {"N": [1e10], "D": [1e12]})
    truth = _kaplan_like(TRUE, {"N": 1e10, "D": 1e12})
    assert pred["prediction"].iloc[0] == pytest.approx(truth, rel=0.01)
    assert pred["lo"].iloc[0] < pred["prediction"].iloc[0] < pred["hi"].iloc[0]
    out = plan(fit, 1e21)
    assert 6 * out["N"] * out["D"] == pytest.approx(1e21)
    # at the optimum, the loss along the iso-FLOP line is not lower on either side
    law = fit.law_
    for f in (0.9, 1.1):
        n = out["N"] * f
        assert law.predict(fit.params, {"N": np.array([n]), "D": np.array([1e21 / (6 * n)])})[0] >= out["loss"] - 1e-12


def test_fixed_parameters_stay_fixed(user_law: Law, data: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("test_additive", fixed={"E": 1.6}).fit(data).result_
    assert fit.params["E"] == 1.6 and fit.fixed == ["E"]
    assert fit.stderr["E"] is None
    with pytest.raises(ParameterError, match="within its bounds"):
        LawFit("test_additive", fixed={"E": 11.0}).fit(data)


def test_backtest_all_but_largest(user_law: Law, data: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(data, "test_additive", "N < quantile(N, 0.8)", bootstrap=30)
    assert res["test_points"] == 16
    assert res["are_mean"] < 0.01


def test_a_user_law_can_bring_its_own_fitting_procedure(data: pd.DataFrame) -> None:
    # The law names the procedure; scalinglab.fit holds it (laws carry no fitting code).
    import dataclasses

    from scalinglab.fit import Fit, register_procedure

    calls = []

    def least_rows(df: pd.DataFrame, *, law: Law, bootstrap: int, seed: int, ci_level: float,
                   source: str) -> Fit:
        calls.append((len(df), bootstrap, seed, source))
        return Fit(law=law.name, params=dict(TRUE), n_points=len(df), data={"source": source})

    register_procedure("test_truth", least_rows, replace=True)
    with pytest.raises(ParameterError, match="already registered"):
        register_procedure("test_truth", least_rows)
    law = laws.register(dataclasses.replace(USER, name="test_with_procedure", procedure="test_truth"), replace=True)
    est = LawFit(law.name, bootstrap=7, seed=3, source="synthetic").fit(data)
    assert calls == [(len(data), 7, 3, "synthetic")]
    assert est.result_.params == TRUE and est.params_ == TRUE
    missing = laws.register(dataclasses.replace(USER, name="test_unknown_procedure", procedure="nosuch"),
                            replace=True)
    with pytest.raises(UnknownLawError, match="fitting procedure name must be one of"):
        LawFit(missing.name).fit(data)
