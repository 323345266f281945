"""The Chinchilla fit on Epoch's extraction reproduces Besiroglu et al. (2024)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.fit import Fit, LawFit
from scalinglab.fit.backtest import backtest
from scalinglab.fit.predict import predict
from scalinglab.plan import plan

# Besiroglu et al. 2024 (arXiv 2404.10102) and Epoch's notebook; see LAWS.md section 3.
EPOCH_SE = {"A": 124.5, "B": 1293.0, "E": 0.026, "alpha": 0.015, "beta": 0.021}


@pytest.fixture(scope="module")
def fitted(epoch_chinchilla: pd.DataFrame) -> Fit:
    with _nowarn():
        return LawFit("chinchilla", bootstrap=1000, seed=0).fit(epoch_chinchilla).result_


class _nowarn:
    def __enter__(self) -> None:
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a: object) -> None:
        self._cm.__exit__(*a)


def test_point_estimates_match_the_replication(fitted: Fit) -> None:
    p = fitted.params
    assert fitted.n_points == 240
    assert p["E"] == pytest.approx(1.8172, rel=5e-3)
    assert p["alpha"] == pytest.approx(0.3473, rel=5e-3)
    assert p["beta"] == pytest.approx(0.3672, rel=5e-3)
    assert p["A"] == pytest.approx(477.8, rel=0.05)
    assert p["B"] == pytest.approx(2143, rel=0.05)
    assert fitted.converged
    assert fitted.n_starts == 4500
    assert fitted.n_at_best > 1
    assert fitted.objective["name"] == "huber_log" and fitted.objective["delta"] == 1e-3


def test_objective_is_summed_not_averaged(fitted: Fit, epoch_chinchilla: pd.DataFrame) -> None:
    law = fitted.law_
    r = law.log_predict(fitted.params, {"N": epoch_chinchilla["N"].to_numpy(), "D": epoch_chinchilla["D"].to_numpy()})
    r = r - np.log(epoch_chinchilla["loss"].to_numpy())
    a = np.abs(r)
    huber = np.where(a <= 1e-3, 0.5 * r * r, 1e-3 * (a - 0.5e-3))
    assert fitted.objective["value"] == pytest.approx(huber.sum(), rel=1e-9)


def test_bootstrap_standard_errors_match_epoch(fitted: Fit) -> None:
    for name, se in EPOCH_SE.items():
        assert fitted.stderr[name] == pytest.approx(se, rel=0.25), name
    lo, hi = fitted.ci["alpha"]
    assert lo < fitted.params["alpha"] < hi


def test_bootstrap_is_deterministic_given_the_seed(epoch_chinchilla: pd.DataFrame) -> None:
    small = epoch_chinchilla.iloc[::3]
    with _nowarn():
        a = LawFit("chinchilla", bootstrap=20, seed=7).fit(small).result_
        b = LawFit("chinchilla", bootstrap=20, seed=7).fit(small).result_
        c = LawFit("chinchilla", bootstrap=20, seed=8).fit(small).result_
    assert a.bootstrap["draws"] == b.bootstrap["draws"]
    assert a.bootstrap["draws"] != c.bootstrap["draws"]


def test_plan_reproduces_the_tokens_per_parameter_discrepancy(fitted: Fit) -> None:
    ours = plan(fitted, 5.76e23)
    assert ours["tokens_per_param"] == pytest.approx(18, abs=1.0)
    assert ours["N"] == pytest.approx(7.3e10, rel=0.05)
    lo, hi = ours["interval"]
    assert lo < ours["loss"] < hi
    assert plan(Fit.from_preset("chinchilla", "hoffmann2022_unrounded"), 5.76e23)["tokens_per_param"] == pytest.approx(59, abs=1.5)
    assert plan(Fit.from_preset("chinchilla", "hoffmann2022"), 5.76e23)["tokens_per_param"] == pytest.approx(93, abs=1.5)


def test_closed_form_plan_is_the_numeric_optimum(fitted: Fit) -> None:
    from scalinglab.plan.compute import _numeric_optimum
    law = fitted.law_
    n_closed = plan(fitted, 1e22)["N"]
    n_num, _ = _numeric_optimum(law, fitted.params, 1e22, {})
    assert n_num == pytest.approx(n_closed, rel=1e-6)


def test_fit_json_round_trip(fitted: Fit, tmp_path) -> None:
    path = tmp_path / "fit.json"
    fitted.to_json(path)
    back = Fit.from_json(path)
    assert back.params == pytest.approx(fitted.params)
    pts = pd.DataFrame({"N": [7e10], "D": [1.4e12]})
    a, b = predict(fitted, pts), predict(back, pts)
    assert a["prediction"].iloc[0] == pytest.approx(b["prediction"].iloc[0])
    assert a["lo"].iloc[0] == pytest.approx(b["lo"].iloc[0])
    assert a["lo"].iloc[0] < a["prediction"].iloc[0] < a["hi"].iloc[0]
    assert a["lo"].iloc[0] <= a["mean_lo"].iloc[0]


def test_backtest_on_the_largest_budgets(epoch_chinchilla: pd.DataFrame) -> None:
    with _nowarn():
        res = backtest(epoch_chinchilla, "chinchilla", "C < 1e21", bootstrap=100, seed=0)
    assert res["train_points"] + res["test_points"] == 240
    assert res["test_points"] == int((epoch_chinchilla["C"] >= 1e21).sum())
    ares = [p["are"] for p in res["per_point"]]
    # the held-out points are the rows at C >= 1e21, each with ARE = |predicted / actual - 1|
    assert sorted(p["actual"] for p in res["per_point"]) == sorted(
        epoch_chinchilla.loc[epoch_chinchilla["C"] >= 1e21, "loss"])
    for p in res["per_point"]:
        assert p["are"] == pytest.approx(abs(p["predicted"] / p["actual"] - 1), rel=1e-12)
    assert res["are_mean"] == pytest.approx(np.mean(ares))
    assert res["are_max"] == pytest.approx(max(ares))
    assert res["are_mean"] < 0.03
    assert 0 <= res["coverage"] <= 1


def test_plan_reports_bootstrap_replicates_without_an_optimum(fitted: Fit) -> None:
    """A replicate whose N term vanished (A = 0) has its optimum at N = 0: it is left out of the
    intervals, and the plan says so instead of filling D_interval with infinities."""
    import copy
    import warnings as _w

    broken = copy.deepcopy(fitted)
    draws = broken.bootstrap["draws"]
    k = len(draws["A"])
    for i in range(5):
        draws["A"][i] = 0.0
    with _w.catch_warnings():
        _w.simplefilter("error")   # no divide-by-zero RuntimeWarning escapes
        res = plan(broken, 5.76e23)
    assert res["warnings"] == [(f"5 of {k} bootstrap replicates have no finite optimum (a term of the law "
                               f"vanished); the intervals come from the other {k - 5}.")]
    assert all(np.isfinite(res["D_interval"])) and all(np.isfinite(res["N_interval"]))
    assert "warnings" not in plan(fitted, 5.76e23)


def test_a_token_limit_plans_the_data_constrained_optimum(fitted: Fit) -> None:
    """With fewer tokens than the optimum wants, the plan takes D = max_tokens and N = C / (6 D), the
    best point the limit allows along the IsoFLOP line; a limit above the optimum changes nothing."""
    C = 5.76e23
    free = plan(fitted, C)
    assert not free["data_constrained"] and "unconstrained" not in free
    loose = plan(fitted, C, max_tokens=2 * free["D"])
    assert (loose["N"], loose["D"], loose["loss"]) == (free["N"], free["D"], free["loss"])
    limit = 5e11                                    # below the optimum's ~1.3e12 tokens
    held = plan(fitted, C, max_tokens=limit)
    assert held["data_constrained"] and held["max_tokens"] == limit
    assert held["D"] == limit and held["N"] == pytest.approx(C / (6 * limit), rel=1e-12)
    p = fitted.params
    exact = p["E"] + p["A"] / held["N"] ** p["alpha"] + p["B"] / limit ** p["beta"]
    assert held["loss"] == pytest.approx(exact, rel=1e-12)
    assert held["unconstrained"] == {"N": free["N"], "D": free["D"], "loss": free["loss"]}
    assert held["loss"] > free["loss"]
    # no allowed point (D <= limit, i.e. N >= C / (6 limit)) beats it
    law = fitted.law_
    n_allowed = held["N"] * np.geomspace(1.0, 10.0, 50)
    allowed = law.predict(p, {"N": n_allowed, "D": C / (6 * n_allowed)})
    assert allowed.min() == pytest.approx(held["loss"], rel=1e-12)
    # every bootstrap replicate is held to the limit too
    assert held["D_interval"][1] <= limit * (1 + 1e-12)
    assert held["interval"][0] < held["loss"] < held["interval"][1]
    from scalinglab.errors import ParameterError
    for bad in (0.0, -1e9, float("nan")):
        with pytest.raises(ParameterError, match="token limit 'max_tokens'"):
            plan(fitted, C, max_tokens=bad)
