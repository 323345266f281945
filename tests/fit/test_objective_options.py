"""The asymmetric Huber penalty, user bounds and compute weights of LawFit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ParameterError
from scalinglab.fit import LawFit
from scalinglab.fit._optimize import irls_weight, objective_values, rho
from scalinglab.laws import Objective


def test_asymmetric_rho_weights_over_prediction_k_times() -> None:
    r = np.array([-0.5, -1e-4, 0.0, 1e-4, 0.5])
    sym = rho(r, "huber", 1e-3)
    assert rho(r, "huber", 1e-3, 3.0) == pytest.approx(sym * np.array([1, 1, 1, 3, 3]))
    assert rho(r, "ls", 1e-3, 2.0) == pytest.approx(0.5 * r * r * np.array([1, 1, 1, 2, 2]))


@pytest.mark.parametrize("kind", ["huber", "ls"])
def test_asymmetric_gradient_is_the_derivative(kind: str) -> None:
    # rho'(r) = w(r) r: central differences of rho against the IRLS weight, both sides of 0 and of delta
    r = np.array([-2e-3, -5e-4, 3e-4, 8e-4, 2e-3, 0.3])
    h = 1e-9
    num = (rho(r + h, kind, 1e-3, 2.5) - rho(r - h, kind, 1e-3, 2.5)) / (2 * h)
    assert num == pytest.approx(irls_weight(r, kind, 1e-3, 2.5) * r, rel=1e-5)


def test_asymmetric_objective_value() -> None:
    r = np.array([[0.01, -0.01]])
    assert objective_values(r, np.ones(2), "huber", 1e-3, 4.0)[0] == pytest.approx(5 * 1e-3 * (0.01 - 0.5e-3))


def test_objective_asymmetry_must_be_positive() -> None:
    with pytest.raises(ParameterError, match="'asymmetry'.*Got -1"):
        Objective(asymmetry=-1.0)


def _line(noise: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e10, 40)
    D = 20 * N
    loss = (1.7 + 400 / N ** 0.34 + 410 / D ** 0.28) * np.exp(noise * rng.standard_normal(40))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


START = [[np.log(1.7), np.log(400), np.log(410), 0.34, 0.28]]


def test_asymmetry_pulls_the_curve_below_the_points() -> None:
    df = _line()
    kw = {"fixed": {"A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}, "starts": [[np.log(1.7)]]}
    e1 = LawFit("chinchilla", **kw).fit(df).result_.params["E"]
    e4 = LawFit("chinchilla", objective=Objective(asymmetry=4.0), **kw).fit(df).result_.params["E"]
    assert e4 < e1   # over-prediction costs 4x: the fitted curve moves down


def test_bounds_are_held_and_validated() -> None:
    df = _line(0.005)
    fit = LawFit("chinchilla", bounds={"E": (1.8, 1.9)}, starts=START).fit(df).result_
    assert fit.params["E"] == pytest.approx(1.8)
    assert any("lower bound 1.8" in w for w in fit.warnings)
    with pytest.raises(ParameterError, match="'E'.*LO < HI"):
        LawFit("chinchilla", bounds={"E": (1.9, 1.8)}).check()
    with pytest.raises(ParameterError, match="not also fixed"):
        LawFit("chinchilla", bounds={"E": (1.5, 1.9)}, fixed={"E": 1.7}).check()


def test_compute_weights_equal_explicit_weights() -> None:
    df = _line()
    w = (6 * df["N"] * df["D"]).to_numpy()
    a = LawFit("chinchilla", weight_by="compute", starts=START).fit(df).result_.params
    b = LawFit("chinchilla", weights=w / w.mean(), starts=START).fit(df).result_.params
    assert a == b
    with pytest.raises(ParameterError, match="'weight_by'"):
        LawFit("chinchilla", weight_by="flops").check()
