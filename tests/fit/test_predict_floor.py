"""A loss interval never reaches below 0: ``predict`` clips it at 0 and warns (how many bootstrap refits
predicted a loss <= 0), and a point prediction <= 0 is kept but warned about; ``predict --best-decay``
marks such decays unreliable. Known answers: the anneal law L = L0 + A S1^-alpha - C S2 with A = 0 is
linear in C, so every replicate's prediction is exact arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.fit import Fit
from scalinglab.fit.predict import predict
from scalinglab.plan.anneal import best_wsd_decay

C_DRAWS = [0.2, 0.4, 0.6, 1.2, 1.4]   # at S2 = 1: replicate losses 0.8, 0.6, 0.4, -0.2, -0.4


def anneal_fit(c: float = 0.5, draws: list[float] | None = None) -> Fit:
    draws = C_DRAWS if draws is None else draws
    k = len(draws)
    return Fit(law="anneal", params={"L0": 1.0, "A": 0.0, "alpha": 0.5, "C": c}, n_points=10,
               objective={"kind": "huber", "delta": 1e-3, "space": "log"}, ci_level=0.5,
               bootstrap={"n": k, "seed": 0, "n_failed": 0,
                          "draws": {"L0": [1.0] * k, "A": [0.0] * k, "alpha": [0.5] * k, "C": list(draws)}},
               residuals=[0.0])


def test_interval_below_zero_is_clipped_and_warned() -> None:
    out = predict(anneal_fit(), {"S1": [1.0, 1.0], "S2": [1.0, 0.1]})
    # point 0: replicates sorted -0.4, -0.2, 0.4, 0.6, 0.8; the 25% / 75% quantiles are -0.2 and 0.6
    assert out["prediction"].tolist() == pytest.approx([0.5, 0.95])
    assert out.loc[0, ["lo", "hi", "mean_lo", "mean_hi"]].tolist() == pytest.approx([0.0, 0.6, 0.0, 0.6])
    # point 1: replicates 0.86 .. 0.98, all positive: untouched
    assert out.loc[1, ["lo", "hi"]].tolist() == pytest.approx([1 - 0.1 * 1.2, 1 - 0.1 * 0.4])
    assert out.attrs["warnings"] == [
        "the interval of the loss reached below 0 at 1 of 2 points: clipped at 0 (a loss cannot be negative), and "
        "unreliable there: up to 40% of the bootstrap predictions are <= 0 (the fit does not constrain "
        "these points)."]


def test_positive_intervals_are_left_alone() -> None:
    out = predict(anneal_fit(), {"S1": [1.0], "S2": [0.5]})   # replicates 0.3 .. 0.9
    assert out.loc[0, ["lo", "hi"]].tolist() == pytest.approx([1 - 0.5 * 1.2, 1 - 0.5 * 0.4])
    assert out.attrs["warnings"] == []


def test_point_prediction_below_zero_is_kept_and_warned() -> None:
    fit = Fit(law="anneal", params={"L0": 1.0, "A": 0.0, "alpha": 0.5, "C": 2.0})   # no draws: no interval
    out = predict(fit, {"S1": [1.0, 1.0], "S2": [1.0, 0.25]})
    assert out["prediction"].tolist() == pytest.approx([-1.0, 0.5])
    assert np.isnan(out["lo"]).all()
    assert out.attrs["warnings"] == ["the predicted loss is <= 0 at 1 of 2 points (lowest -1); a loss cannot be "
                                     "negative, so the law does not hold there (far outside its data)."]
    assert fit.warnings == []   # the fit's own list is not touched


def test_best_decay_marks_the_unreliable_decays(tmp_path: Path) -> None:
    fit = anneal_fit(c=0.5, draws=[0.0, 0.5, 1.0, 3.0, 5.0])
    fit.params["L0"] = 0.3
    fit.bootstrap["draws"]["L0"] = [0.3] * 5
    res = best_wsd_decay(fit, 100, 0.01, fracs=(0.1, 0.3, 0.5))
    assert all(r["interval"][0] >= 0 for r in res["table"])
    bad = [r for r in res["table"] if not r["reliable"]]
    assert bad and len(bad) < len(res["table"])  # a longer decay anneals more: a larger C S2 falls below 0
    assert res["warnings"][-1].startswith(f"{len(bad)} of {len(res['table'])} decays tried have an interval "
                                          "clipped at 0 or a loss <= 0 ('reliable': false)")
    # the best is the lowest reliable decay, though an unreliable (longer) one predicts a lower loss
    good = [r for r in res["table"] if r["reliable"]]
    assert res["best"] == min(good, key=lambda r: r["loss"]) and res["best"]["reliable"]
    assert min(r["loss"] for r in bad) < res["best"]["loss"]
    assert res["warnings"][-1].endswith("the best is the lowest of the reliable ones (an unreliable decay "
                                        "predicts lower).")
    assert all(r["reliable"] for r in res["by_shape"].values())
    path = tmp_path / "fit.json"
    fit.to_json(path)
    r = CliRunner().invoke(main, ["predict", str(path), "--schedule", "wsd", "--steps", "100", "--lr", "0.01",
                                  "--best-decay", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    bad = [row for row in got["table"] if not row["reliable"]]
    assert all(row["interval"][0] >= 0 for row in got["table"]) and 0 < len(bad) < len(got["table"])
    assert got["warnings"][-1].startswith(f"{len(bad)} of {len(got['table'])} decays tried")
    r = CliRunner().invoke(main, ["predict", str(path), "--schedule", "wsd", "--steps", "100", "--lr", "0.01",
                                  "--best-decay"])
    assert r.exit_code == 0 and "warning: " in r.stdout and "clipped at 0" in r.stdout
