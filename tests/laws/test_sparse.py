"""The sparse law (Frantar et al. 2023) against the released T5/C4 runs and the official notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab import datasets, laws
from scalinglab.errors import ParameterError
from scalinglab.fit import LawFit
from scalinglab.fit._optimize import fd_jacobian
from scalinglab.fit.core import Problem
from scalinglab.laws import sparse

#: the held-out run of the official notebook: S = 0.75, N_nonzero = 48 * 12 * 1024^2, 500k steps
HELD_OUT = {"S": np.array([0.75]), "N_nonzero": np.array([48 * 12 * 1024**2]), "D": np.array([5e5])}
HELD_OUT_LOSS = 1.4827780204906797
T5_TOKENS_PER_STEP = 128 * 512

LAW = laws.get("sparse")
PRESET = dict(LAW.preset("frantar2023_t5").params)


@pytest.fixture(scope="module")
def t5() -> pd.DataFrame:
    raw = datasets.load("sparsity-frantar:t5")     # N_nonzero = scale (1 - S) 24 x 12 x 768^2
    return raw[["S", "N_nonzero", "steps", "loss"]].rename(columns={"steps": "D"})    # the notebook's D: steps


@pytest.fixture(scope="module")
def t5_fit(t5: pd.DataFrame):
    return LawFit("sparse", source="t5_c4.csv").fit(t5).result_


def _objective(df: pd.DataFrame, p: dict[str, float]) -> float:
    prob = Problem(LAW, df, LAW.objective, {})
    theta = np.array([[float(q.to_scaled(p[q.name])) for q in LAW.params]])
    return float(prob.values(theta)[0])


def test_preset_reproduces_the_notebook_extrapolation():
    # LAWS.md section 4: the notebook's law predicts 1.468 for the held-out run.
    assert LAW.predict(PRESET, HELD_OUT)[0] == pytest.approx(1.4685, abs=5e-4)


def test_fit_predicts_the_held_out_run_within_2_percent(t5_fit):
    pred = LAW.predict(t5_fit.params, HELD_OUT)[0]
    # measured: 1.4551, 1.87% low, for a model ~7x larger in non-zero N than any fitted run
    assert pred == pytest.approx(1.4551, abs=2e-3)
    assert abs(pred / HELD_OUT_LOSS - 1) < 0.02


def test_fit_reaches_the_true_huber_minimum(t5, t5_fit):
    # The exact minimum of the summed Huber(1e-3, log) objective, confirmed independently with 200
    # Nelder-Mead restarts in the notebook's normalised units, is 2.3425e-4. The notebook's published
    # coefficients sit at 3.650e-4 (its best *mean* Huber, 7.6036e-6, x 48 rows): BFGS on the mean
    # objective stops at its default gtol=1e-5 before the minimum, the failure Besiroglu et al. (2024)
    # diagnosed for Chinchilla.
    assert t5_fit.objective["value"] == pytest.approx(2.3425e-4, rel=1e-3)
    assert _objective(t5, PRESET) == pytest.approx(48 * 7.603605281507622e-06, rel=1e-3)
    assert t5_fit.converged and t5_fit.n_at_best > 10


def test_fitted_parameters_close_to_the_preset(t5_fit):
    p = t5_fit.params
    # well-determined parameters agree with the published ones
    assert p["b_N"] == pytest.approx(PRESET["b_N"], abs=0.02)        # 0.2317 vs 0.2451
    assert p["c_S"] == pytest.approx(PRESET["c_S"], rel=0.10)        # 41.6 vs 45.0
    assert p["a_D"] == pytest.approx(PRESET["a_D"], rel=0.05)        # 10329 vs 10528 steps
    # The poorly determined ones move with the early-stopped optimiser (see the test above): b_S,
    # b_D and c are pinned to the values of the true minimum instead.
    assert p["b_S"] == pytest.approx(1.3450, abs=5e-3)               # preset 0.7216
    assert p["b_D"] == pytest.approx(0.3846, abs=5e-3)               # preset 0.2027
    assert p["c"] == pytest.approx(0.8304, abs=5e-3)                 # preset 0.6507


def test_log_jacobian_matches_finite_differences(t5):
    prob = Problem(LAW, t5, LAW.objective, {})
    theta = np.array([[np.log(16.8), 0.72, np.log(45.0), 0.245, np.log(1.05e4), 0.2, np.log(0.65)],
                      [np.log(3.0), 1.5, np.log(200.0), 0.4, np.log(50.0), 0.9, np.log(1.2)]])
    _, J = prob.jac(theta)
    _, J_fd = fd_jacobian(prob.residual, theta, prob.lower, prob.upper)
    np.testing.assert_allclose(J, J_fd, atol=1e-7)


def test_cost_multiplier_of_the_25_50_25_schedule():
    # c_mul(S) = [0.25 + 0.5 (1 - 0.75 S)] / (1 - S) + 0.25 (LAWS.md section 4)
    np.testing.assert_allclose(sparse.cost_multiplier([0.0, 0.5, 0.75, 0.875]), [1.0, 1.375, 2.125, 3.625])
    # pruning at step 0 costs the sparse model only; never pruning costs the dense model
    assert sparse.cost_multiplier(0.9, 0.0, 0.0) == pytest.approx(1.0)
    assert sparse.cost_multiplier(0.9, 1.0, 1.0) == pytest.approx(10.0)


def test_cost_multiplier_rejects_bad_input():
    with pytest.raises(ParameterError, match=r"sparsity S of cost_multiplier must be a fraction in \[0, 1\)"):
        sparse.cost_multiplier(1.0)
    with pytest.raises(ParameterError, match="pruning window"):
        sparse.cost_multiplier(0.5, 0.8, 0.2)


def test_vit_preset_reproduces_the_notebook_objective():
    raw = datasets.load("sparsity-frantar:vit")
    x = {"S": raw["S"].to_numpy(), "D": raw["examples"].to_numpy(),
         "N_nonzero": (12 * 12 * 768**2 * raw["scale"] * (1 - raw["S"])).to_numpy()}
    r = np.abs(LAW.predict(dict(LAW.preset("frantar2023_vit").params), x) - raw["loss"].to_numpy())
    mean_huber = np.mean(np.where(r <= 0.01, 0.5 * r * r, 0.01 * (r - 0.005)))
    # the notebook's best ViT fit: mean Huber(0.01, linear) = 4.929088e-4 (normalised units); the
    # preset is its conversion to raw units, rounded to 5 significant figures
    assert mean_huber == pytest.approx(4.929088e-4, rel=1e-3)
