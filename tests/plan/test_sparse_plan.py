"""The optimal-sparsity planner and optimisers on the Frantar et al. 2023 T5 runs, units, intervals, report."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import datasets, laws
from scalinglab.errors import DataError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.laws import sparse
from scalinglab.plan import optimum, plan_sparse, sparsity_contour
from scalinglab.plan.sparsity import d_unit, optimal_sparsity, optimal_sparsity_grid
from scalinglab.report import ladder_report

#: tokens per T5 step, as the preset's note and LAWS.md section 4 infer it (128 x 512)
T5_TOKENS_PER_STEP = 65_536.0
#: the largest non-zero count of the T5 runs (tests/laws/test_sparse.py)
N_T5 = 84_934_656.0
LAW = laws.get("sparse")
PRESET = dict(LAW.preset("frantar2023_t5").params)


@pytest.fixture(scope="module")
def t5() -> pd.DataFrame:
    return datasets.load("sparsity-frantar:t5")[["S", "N_nonzero", "steps", "loss"]].rename(columns={"steps": "D"})


@pytest.fixture(scope="module")
def t5_fit(t5: pd.DataFrame) -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LawFit("sparse", bootstrap=30, seed=0, source="t5_c4.csv").fit(t5).result_


def test_optimal_sparsity_at_fixed_n_rises_with_the_training_tokens(t5_fit: Fit) -> None:
    # Frantar et al. 2023 (abstract): for a fixed number of non-zero parameters, the optimal sparsity
    # increases with the amount of data used for training. Monotone over a grid of budgets.
    plans = [plan_sparse(t5_fit, C, n_nonzero=N_T5, tokens_per_d=T5_TOKENS_PER_STEP)
             for C in np.logspace(19, 24, 11)]
    S = np.array([p["S"] for p in plans])
    tokens = np.array([p["tokens"] for p in plans])
    assert np.all(np.diff(tokens) > 0) and np.all(np.diff(S) > 0)
    assert S[0] < 0.6 and S[-1] > 0.95                      # measured 0.556 -> 0.959
    for p in plans:   # the budget is spent exactly: C = 6 N D tokens_per_d c_mul(S)
        assert 6 * p["N_nonzero"] * p["D"] * T5_TOKENS_PER_STEP * p["c_mul"] == pytest.approx(p["flops"], rel=1e-9)
        assert p["tokens"] == pytest.approx(p["D"] * T5_TOKENS_PER_STEP)
        assert p["D_unit"] == "units of 65536 tokens" and p["loss"] <= p["dense"]["loss"] + 1e-12


def test_the_contour_rises_with_compute_and_falls_with_size(t5_fit: Fit) -> None:
    n = np.geomspace(1e6, 1e9, 7)
    c = np.geomspace(1e18, 1e24, 9)
    ct = sparsity_contour(t5_fit, n, c, tokens_per_d=T5_TOKENS_PER_STEP)
    S = np.array(ct["S_opt"])
    assert S.shape == (9, 7) and ct["rows"] == "flops" and ct["columns"] == "N_nonzero"
    assert np.all(np.diff(S, axis=0) >= 0)                  # down a column: more compute
    assert np.all(np.diff(S, axis=1) <= 0)                  # along a row: more parameters
    assert S.min() == 0.0 and S.max() > 0.95                # dense is optimal at small budgets for large N
    # each entry is the grid minimum of the law along the budget line
    p = t5_fit.params
    s_grid = np.linspace(0, 0.99, 991)
    d = sparse.data_at_budget(s_grid, n[3], c[4], tokens_per_d=T5_TOKENS_PER_STEP)
    assert S[4, 3] == pytest.approx(s_grid[np.argmin(LAW.predict(p, {"S": s_grid, "N_nonzero": n[3], "D": d}))])


def test_the_joint_optimum_beats_a_grid_and_the_dense_optimum(t5_fit: Fit) -> None:
    C = 1e21
    res = plan_sparse(t5_fit, C, tokens_per_d=T5_TOKENS_PER_STEP)
    assert res["held"] == {} and 0 < res["S"] < 0.99
    n, s = np.meshgrid(np.geomspace(1e7, 1e11, 200), np.linspace(0, 0.95, 96))
    d = sparse.data_at_budget(s, n, C, tokens_per_d=T5_TOKENS_PER_STEP)
    grid_best = np.nanmin(LAW.predict(t5_fit.params, {"S": s.ravel(), "N_nonzero": n.ravel(), "D": d.ravel()}))
    assert res["loss"] <= grid_best + 1e-9 and res["loss"] < res["dense"]["loss"]
    # intervals from the bootstrap replicates bracket the estimate
    assert res["interval"][0] < res["loss"] < res["interval"][1]
    assert res["S_interval"][0] <= res["S"] <= res["S_interval"][1] and res["n_draws"] >= 20
    assert res["N_interval"][0] < res["N_nonzero"] < res["N_interval"][1]


def test_held_dense_matches_the_generic_planner(t5_fit: Fit) -> None:
    # with S = 0 held and D in tokens, the plan is the generic compute-optimal N along C = 6 N D
    res = plan_sparse(t5_fit, 1e13, sparsity=0.0, tokens_per_d=1.0)
    n_generic, d_generic = optimum(LAW, t5_fit.params, 1e13, {"S": 0.0})
    assert res["S"] == 0.0 and res["c_mul"] == 1.0 and res["held"] == {"S": 0.0}
    assert res["N_nonzero"] == pytest.approx(n_generic, rel=1e-4)
    assert res["D"] == pytest.approx(d_generic, rel=1e-4)
    both = plan_sparse(t5_fit, 1e21, sparsity=0.5, n_nonzero=N_T5, tokens_per_d=T5_TOKENS_PER_STEP)
    assert both["S"] == 0.5 and both["N_nonzero"] == N_T5 and both["S_interval"] is None


def test_units_of_d() -> None:
    t5 = Fit.from_preset("sparse", "frantar2023_t5")
    assert d_unit(t5) == (65_536.0, "steps")
    assert d_unit(t5, 1.0) == (1.0, "tokens")
    assert d_unit(Fit(law="sparse", params=dict(t5.params))) == (1.0, "tokens")     # scalinglab runs: tokens
    assert d_unit(Fit(law="sparse", params=dict(t5.params), data={"tokens_per_d": 512, "D_unit": "steps"})) \
        == (512.0, "steps")
    with pytest.raises(ParameterError, match="measures D in images"):
        d_unit(Fit.from_preset("sparse", "frantar2023_vit"))
    with pytest.raises(ParameterError, match="tokens per unit of D"):
        d_unit(t5, -1.0)
    res = plan_sparse(t5, 1e21, n_nonzero=N_T5)
    assert res["D_unit"] == "steps" and res["tokens"] == pytest.approx(res["D"] * 65_536)
    assert res["interval"] is None          # a preset has no bootstrap


def test_planner_errors() -> None:
    t5 = Fit.from_preset("sparse", "frantar2023_t5")
    with pytest.raises(DataError, match="needs a fit of law 'sparse'"):
        plan_sparse(Fit.from_preset("chinchilla", "hoffmann2022"), 1e21)
    with pytest.raises(ParameterError, match="FLOP budget"):
        plan_sparse(t5, -1.0)
    with pytest.raises(ParameterError, match="non-zero parameter count"):
        plan_sparse(t5, 1e21, n_nonzero=0.0)
    with pytest.raises(ParameterError, match="sparsity S"):
        plan_sparse(t5, 1e21, sparsity=1.0)
    with pytest.raises(ParameterError, match="max_sparsity"):
        plan_sparse(t5, 1e21, max_sparsity=1.5)
    with pytest.raises(ParameterError, match="contour"):
        sparsity_contour(t5, [], [1e20])


def test_report_shows_the_sparse_sections(tmp_path: Path, t5: pd.DataFrame, t5_fit: Fit) -> None:
    res = plan_sparse(t5_fit, 1e21, n_nonzero=N_T5, tokens_per_d=T5_TOKENS_PER_STEP)
    out = ladder_report(tmp_path / "index.html", final=t5.assign(run=[f"r{i}" for i in range(len(t5))]),
                        points=None, fit=t5_fit, backtest=None, plan=None, sparse_plan=res)
    text = out.read_text()
    assert text.count("<figure class='sl-fig'") == 2 and "data:image/png" not in text   # N_nonzero, contour (SVG)
    # the contour as 41 x 41 cells, each with its S_opt on hover, and the plan starred
    contour = text[text.index("Optimal sparsity"):]
    assert len(re.findall(r"<rect x=[^>]*data-tip=", contour)) == 41 * 41 and "&quot;S_opt&quot;" in contour and "the plan" in contour
    assert "Sparse runs: loss against non-zero parameters" in text and "Optimal sparsity" in text
    assert "http" not in text.replace("http-equiv", "")
    assert math.isfinite(res["loss"])


def test_optimal_sparsity_rises_with_compute(t5_fit):
    # Frantar et al. (abstract): at fixed non-zero parameters, the optimal sparsity increases with the
    # training data (here: the compute budget).
    N = 84_934_656.0                                    # the largest non-zero count of the T5 runs
    Cs = np.logspace(18, 24, 13)
    s_opt = np.array([optimal_sparsity(t5_fit, N, C, tokens_per_d=T5_TOKENS_PER_STEP) for C in Cs])
    assert np.all(np.diff(s_opt) > 0)
    assert s_opt[0] < 0.5 and s_opt[-1] > 0.9          # measured 0.31 -> 0.96
    grid, loss = optimal_sparsity_grid(t5_fit, N, Cs, tokens_per_d=T5_TOKENS_PER_STEP)
    np.testing.assert_allclose(grid, s_opt, atol=1.5e-3)
    d = sparse.data_at_budget(grid, N, Cs, tokens_per_d=T5_TOKENS_PER_STEP)
    np.testing.assert_allclose(loss, LAW.predict(t5_fit.params, {"S": grid, "N_nonzero": N, "D": d}), rtol=1e-12)


def test_optimal_sparsity_is_a_minimum():
    N, C = 2e7, 1e20
    s = optimal_sparsity(PRESET, N, C, tokens_per_d=T5_TOKENS_PER_STEP)

    def L(x: float) -> float:
        d = sparse.data_at_budget(x, N, C, tokens_per_d=T5_TOKENS_PER_STEP)
        return float(LAW.predict(PRESET, {"S": x, "N_nonzero": N, "D": d}))

    assert 0 < s < 0.99
    assert L(s) <= min(L(s - 1e-3), L(s + 1e-3), L(0.0))


def test_optimal_sparsity_grid_broadcasts():
    out, loss = optimal_sparsity_grid(PRESET, np.array([[1e6], [1e8]]), np.array([1e18, 1e20, 1e22]),
                                      tokens_per_d=T5_TOKENS_PER_STEP)
    assert out.shape == (2, 3) and loss.shape == (2, 3)
    assert np.all(np.diff(out, axis=1) >= 0)


def test_optimal_sparsity_rejects_bad_input():
    with pytest.raises(ParameterError, match=r"missing \['c'\]"):
        optimal_sparsity({k: v for k, v in PRESET.items() if k != "c"}, 1e7, 1e20)
    with pytest.raises(ParameterError, match="The FLOP budget 'C' must be a positive finite number"):
        optimal_sparsity(PRESET, 1e7, -1.0)
    with pytest.raises(ParameterError, match="'max_sparsity' parameter must be a float in"):
        optimal_sparsity(PRESET, 1e7, 1e20, max_sparsity=1.0)
    with pytest.raises(ParameterError, match="sparsity grid must be"):
        optimal_sparsity_grid(PRESET, 1e7, 1e20, grid=[0.5, 1.2])
