"""chinchilla_tied: Chinchilla's form with one exponent (beta = alpha), as Muennighoff et al. (2023,
App. A) fit it: the same law as Chinchilla at beta = alpha, recovered from exact and noisy data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.fit import Fit, LawFit
from scalinglab.fit._optimize import fd_jacobian
from scalinglab.fit.core import Problem
from scalinglab.fit.predict import predict
from scalinglab.laws import get
from scalinglab.plan import plan
from scalinglab.plan.compute import _numeric_optimum

TIED = Fit.from_preset("chinchilla_tied", "muennighoff2023")
FREE = Fit.from_preset("chinchilla", "muennighoff2023")     # the same numbers, with beta = alpha given


def _grid(noise: float, seed: int = 0) -> pd.DataFrame:
    n, d = np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(2e8, 2e11, 6))
    df = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    loss = predict(TIED, df)["prediction"].to_numpy()
    return df.assign(loss=loss * np.exp(np.random.default_rng(seed).normal(0, noise, len(df))))


def test_it_is_chinchilla_with_beta_equal_to_alpha() -> None:
    assert FREE.params["beta"] == FREE.params["alpha"] == TIED.params["alpha"]
    x = _grid(0.0)[["N", "D"]]
    np.testing.assert_allclose(predict(TIED, x)["prediction"], predict(FREE, x)["prediction"], rtol=1e-12)
    for c in (1e19, 1e22):                 # the closed-form plan is Chinchilla's at beta = alpha
        a, b = plan(TIED, c), plan(FREE, c)
        assert a["N"] == pytest.approx(b["N"], rel=1e-12) and a["loss"] == pytest.approx(b["loss"], rel=1e-12)
        n_num, _ = _numeric_optimum(TIED.law_, TIED.params, c, {})
        assert n_num == pytest.approx(a["N"], rel=1e-6)
    # with one exponent the compute-optimal split is N ~ C^0.5 (tokens per parameter constant)
    assert plan(TIED, 1e19)["tokens_per_param"] == pytest.approx(plan(TIED, 1e23)["tokens_per_param"], rel=1e-9)


def test_fit_recovers_the_preset() -> None:
    exact = LawFit("chinchilla_tied").fit(_grid(0.0)).result_
    for k, v in TIED.params.items():
        assert exact.params[k] == pytest.approx(v, rel=1e-4), k
    noisy = LawFit("chinchilla_tied").fit(_grid(2e-3)).result_
    assert noisy.params["alpha"] == pytest.approx(TIED.params["alpha"], rel=0.05)
    assert noisy.params["E"] == pytest.approx(TIED.params["E"], rel=0.05)
    assert set(noisy.params) == {"E", "A", "B", "alpha"}


def test_log_jacobian_matches_finite_differences() -> None:
    law = get("chinchilla_tied")
    prob = Problem(law, _grid(0.0).iloc[::3], law.objective, {})
    theta = np.array([[np.log(1.8), np.log(500.0), np.log(2000.0), 0.35],
                      [np.log(0.5), np.log(20.0), np.log(3.0), 1.2]])
    _, J = prob.jac(theta)
    _, J_fd = fd_jacobian(prob.residual, theta, prob.lower, prob.upper)
    np.testing.assert_allclose(J, J_fd, atol=1e-7)
