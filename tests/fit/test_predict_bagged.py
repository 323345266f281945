"""``predict(point="bagged")`` / ``predict --point bagged``: the median of the law over the bootstrap fits instead of
the law at the fitted parameters (bagging). Known answers: Chinchilla draws that differ only in E shift the loss by
E, so the bagged prediction is the fit's terms plus the median E, exact arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import ParameterError
from scalinglab.fit import Fit
from scalinglab.fit.predict import predict

E_DRAWS = [1.6, 1.0, 2.0, 1.1, 1.3]      # median 1.3; the fit's own E is 1.0
PARAMS = {"E": 1.0, "A": 400.0, "B": 2000.0, "alpha": 0.3, "beta": 0.3}


def chinchilla_fit(draws: list[float] | None = E_DRAWS) -> Fit:
    k = 0 if draws is None else len(draws)
    boot = {} if draws is None else {
        "n": k, "seed": 0, "n_failed": 0,
        "draws": {"E": list(draws), **{p: [v] * k for p, v in PARAMS.items() if p != "E"}}}
    return Fit(law="chinchilla", params=dict(PARAMS), n_points=20,
               objective={"kind": "huber", "delta": 1e-3, "space": "log"}, ci_level=0.8, bootstrap=boot,
               residuals=[0.0])


def terms(n: float, d: float) -> float:
    return PARAMS["A"] / n ** PARAMS["alpha"] + PARAMS["B"] / d ** PARAMS["beta"]


def test_bagged_is_the_median_over_the_bootstrap_fits() -> None:
    pts = {"N": [1e8, 1e9], "D": [2e9, 2e10]}
    fit_pt = predict(chinchilla_fit(), pts)
    bagged = predict(chinchilla_fit(), pts, point="bagged")
    assert fit_pt["prediction"].tolist() == pytest.approx([1.0 + terms(1e8, 2e9), 1.0 + terms(1e9, 2e10)], rel=1e-12)
    assert bagged["prediction"].tolist() == pytest.approx([1.3 + terms(1e8, 2e9), 1.3 + terms(1e9, 2e10)], rel=1e-12)
    assert fit_pt.attrs["point"] == "fit" and bagged.attrs["point"] == "bagged" and bagged.attrs["bagged_from"] == 5
    # the intervals come from the same draws either way (residuals 0: the draws' own 10% / 90% quantiles, E
    # sorted 1.0, 1.1, 1.3, 1.6, 2.0 interpolated at positions 0.4 and 3.6: 1.04 and 1.84)
    for out in (fit_pt, bagged):
        assert out["lo"].tolist() == pytest.approx([1.04 + terms(1e8, 2e9), 1.04 + terms(1e9, 2e10)], rel=1e-12)
        assert out["hi"].tolist() == pytest.approx([1.84 + terms(1e8, 2e9), 1.84 + terms(1e9, 2e10)], rel=1e-12)
    # draws equal to the fit: bagging changes nothing
    same = predict(chinchilla_fit([1.0] * 4), pts, point="bagged")
    assert same["prediction"].tolist() == pytest.approx(fit_pt["prediction"].tolist(), rel=1e-12)


def test_bagged_needs_draws_and_a_known_point() -> None:
    with pytest.raises(ParameterError, match=r"The point prediction must be 'fit' for a fit without bootstrap draws"):
        predict(chinchilla_fit(None), {"N": [1e8], "D": [2e9]}, point="bagged")
    with pytest.raises(ParameterError, match=r"The point prediction must be one of \['fit', 'bagged'\]. Got 'mean'"):
        predict(chinchilla_fit(), {"N": [1e8], "D": [2e9]}, point="mean")


def test_predict_point_bagged_from_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "fit.json"
    chinchilla_fit().to_json(f)
    r = CliRunner().invoke(main, ["predict", str(f), "--at", "N=1e8", "--at", "D=2e9", "--point", "bagged", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["point"] == "bagged" and out["loss"] == pytest.approx(1.3 + terms(1e8, 2e9), rel=1e-12)
    r = CliRunner().invoke(main, ["predict", str(f), "--at", "N=1e8", "--at", "D=2e9", "--point", "bagged"])
    assert r.exit_code == 0 and "point prediction: bagged, the median of the law over the 5 bootstrap fits" in r.stdout
    plain = json.loads(CliRunner().invoke(main, ["predict", str(f), "--at", "N=1e8", "--at", "D=2e9", "--json"]).stdout)
    assert plain["point"] == "fit" and plain["loss"] == pytest.approx(1.0 + terms(1e8, 2e9), rel=1e-12)
    nodraws = tmp_path / "nodraws.json"
    chinchilla_fit(None).to_json(nodraws)
    for args, msg in ((["predict", str(nodraws), "--at", "N=1e8", "--at", "D=2e9", "--point", "bagged"],
                       "a fit without bootstrap draws"),
                      (["predict", str(f), "--at", "N=1e8", "--at", "D=2e9", "--point", "median"],
                       "Invalid value for '--point'")):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
