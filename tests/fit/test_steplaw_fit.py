"""The Step-Law fitting procedure (Li et al. 2025, scalinglab.fit.steplaw) on the released dense grid."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import DataError, FitError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit import steplaw as procedure
from scalinglab.laws import steplaw

LAW = laws.get("steplaw")
PAPER = dict(LAW.preset("li2025").params)
REFIT = dict(LAW.preset("li2025_released_refit").params)


@pytest.fixture(scope="module")
def dense(shared_data: Path) -> pd.DataFrame:
    raw = pd.read_csv(shared_data / "steplaw" / "dense_lr_bs_loss.csv")
    # --map batch='bs * 2048' loss='`smooth loss`'
    return raw.assign(batch=raw["bs"] * 2048, loss=raw["smooth loss"])


@pytest.fixture(scope="module")
def dense_fit(dense: pd.DataFrame) -> Fit:
    return LawFit("steplaw", bootstrap=1000, seed=0, source="dense_lr_bs_loss.csv").fit(dense).result_


def test_refit_matches_an_independent_refit(dense_fit):
    # An independent refit of the released rows: lr ~ N^-0.77 D^0.20, batch ~ D^0.61.
    p = dense_fit.params
    assert p["lr_exp_N"] == pytest.approx(-0.77, abs=0.03)     # measured -0.7677
    assert p["lr_exp_D"] == pytest.approx(0.20, abs=0.03)      # measured 0.1978
    assert p["batch_exp_D"] == pytest.approx(0.61, abs=0.03)   # measured 0.6113


def test_refit_preset_is_what_the_fitter_measures(dense_fit):
    for name, value in REFIT.items():
        assert dense_fit.params[name] == pytest.approx(value, rel=1e-3), name


def test_released_rows_do_not_give_the_paper_coefficients(dense_fit):
    # the D exponent of the learning rate sits about 3 bootstrap SE below the paper's 0.307
    _lo, hi = dense_fit.ci["lr_exp_D"]
    assert hi < PAPER["lr_exp_D"]
    assert dense_fit.stderr["lr_exp_D"] == pytest.approx(0.033, abs=0.005)


def test_fit_result_shape(dense_fit):
    assert set(dense_fit.params) == set(steplaw.PARAM_NAMES)
    assert dense_fit.n_points == 129
    assert dense_fit.data["rows"] == 1911 and dense_fit.data["rows_used"] == 129
    assert dense_fit.bootstrap["n"] == 1000 and len(dense_fit.bootstrap["draws"]["lr_exp_N"]) == 1000
    assert all(dense_fit.ci[k][0] < dense_fit.params[k] < dense_fit.ci[k][1] for k in steplaw.PARAM_NAMES)
    assert Fit.from_dict(dense_fit.to_dict()).params == dense_fit.params


def test_the_procedure_sets_the_estimators_params():
    # LawFit's contract: learned attributes end in "_"; the Step-Law route sets params_ as the generic fit does
    df, truth = _synthetic_grid()
    est = LawFit("steplaw").fit(df)
    assert est.params_ == est.result_.params
    assert set(est.params_) == set(steplaw.PARAM_NAMES)
    assert est.params_["lr_exp_N"] == pytest.approx(truth["lr_exp_N"], rel=1e-9)
    assert LAW.procedure == "steplaw"


def test_without_bootstrap_the_fit_is_plain_least_squares(dense):
    fit = LawFit("steplaw").fit(dense).result_
    assert fit.stderr["lr_exp_N"] is None
    sel = procedure.select_optimal(dense)
    X = np.column_stack([np.ones(len(sel)), np.log(sel["N"]), np.log(sel["D"])])
    coef, *_ = np.linalg.lstsq(X, np.log(sel["lr"]), rcond=None)
    assert fit.params["lr_exp_N"] == pytest.approx(coef[1], rel=1e-10)
    assert fit.params["lr_scale"] == pytest.approx(np.exp(coef[0]), rel=1e-10)


def test_select_optimal_keeps_the_runs_near_each_cells_best(dense):
    sel = procedure.select_optimal(dense)
    assert len(sel) == 129
    assert sel.groupby(["N", "D"]).ngroups == 17
    best = dense.groupby(["N", "D"])["loss"].min()
    assert np.all(sel["loss"].to_numpy() / best.loc[list(zip(sel["N"], sel["D"]))].to_numpy() < 1.0025)


def test_batch_exponent_of_n_on_the_released_rows(dense):
    # The paper drops N from B(D) because its coefficient is ~0 on the authors' grid; on the released
    # dense rows it is -0.266 (OLS SE 0.054).
    b = procedure.batch_exponents(dense)
    assert b["batch_exp_N"] == pytest.approx(-0.266, abs=0.01)
    assert b["batch_exp_N_stderr"] == pytest.approx(0.054, abs=0.005)
    assert b["batch_exp_D"] == pytest.approx(0.623, abs=0.01)


def _synthetic_grid() -> tuple[pd.DataFrame, dict[str, float]]:
    """A grid whose best run in every cell sits exactly on a known law (the others are 1% worse)."""
    truth = {"lr_scale": 1.5, "lr_exp_N": -0.7, "lr_exp_D": 0.3, "batch_scale": 0.5, "batch_exp_D": 0.55}
    rows = []
    for N, D in itertools.product([1e8, 3e8, 1e9], [1e10, 3e10, 1e11]):
        lr0, b0 = steplaw.optimal_lr(truth, N, D), steplaw.optimal_batch(truth, D)
        for f_lr, f_b in itertools.product([0.5, 1.0, 2.0], [0.5, 1.0, 2.0]):
            loss = 2.0 * (1 + 0.01 * (np.log2(f_lr) ** 2 + np.log2(f_b) ** 2))
            rows.append({"N": N, "D": D, "lr": lr0 * f_lr, "batch": b0 * f_b, "loss": loss})
    return pd.DataFrame(rows), truth


def test_synthetic_grid_recovers_the_law():
    df, truth = _synthetic_grid()
    fit = LawFit("steplaw", bootstrap=200, seed=1).fit(df).result_
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-9), name
    assert fit.stderr["lr_exp_N"] == pytest.approx(0.0, abs=1e-9)


def test_errors_name_the_problem():
    df, _ = _synthetic_grid()
    with pytest.raises(DataError, match=r"lacks column\(s\) \['batch'\]"):
        LawFit("steplaw").fit(df.drop(columns="batch"))
    with pytest.raises(FitError, match="span 1 model size"):
        LawFit("steplaw").fit(df[df["N"] == 1e8])
    with pytest.raises(ParameterError, match="'threshold' parameter"):
        procedure.select_optimal(df, threshold=0.0)


def test_a_steplaw_fit_round_trips_through_its_json(dense_fit, tmp_path):
    """The FIT.json checks (names, bounds, draws) accept every fit the procedure writes."""
    path = tmp_path / "fit.json"
    dense_fit.to_json(path)
    back = Fit.from_json(path)
    assert back.to_json() == dense_fit.to_json() and len(back.draws()) == 1000


def test_lr_batch_exponent_of_a_parabolic_grid() -> None:
    from scalinglab.fit.steplaw import lr_batch_exponent

    rows = []
    for n, d in ((1e6, 1e8), (4e6, 2e8)):
        for b in (256, 1024, 4096):
            best = 0.01 * (n / 1e6) ** -0.5 * (b / 256) ** 0.5      # lr_opt ~ B^0.5
            for lr in np.geomspace(1e-4, 1e-1, 13):
                rows.append({"N": n, "D": d, "batch": b, "lr": lr,
                             "loss": 3.0 + 0.05 * (np.log(lr) - np.log(best)) ** 2})
    res = lr_batch_exponent(pd.DataFrame(rows))
    assert res["exponent"] == pytest.approx(0.5, abs=1e-9)   # a parabola's vertex is exact
    assert res["n_cells"] == 2 and not any(p["edge"] for p in res["points"])
