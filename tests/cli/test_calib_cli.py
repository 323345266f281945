"""Rollout back-tests, bounds, asymmetry, compute weights and calibrated intervals from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def isoflop_csv(path: Path, budgets: tuple[float, ...], noise: float = 0.005) -> Path:
    """An IsoFLOP ladder on a known Chinchilla surface (E = 1.7), 5 sizes per budget, seeded noise."""
    rng = np.random.default_rng(0)
    rows = []
    for c in budgets:
        for n in (c / 6) ** 0.5 / 4 * np.geomspace(0.25, 4, 5):
            d = c / (6 * n)
            loss = (1.7 + 400 / n ** 0.34 + 410 / d ** 0.28) * np.exp(noise * rng.standard_normal())
            rows.append({"N": n, "D": d, "budget_flops": c, "loss": loss})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture()
def ladder(tmp_path: Path) -> Path:
    return isoflop_csv(tmp_path / "ladder.csv", (1e17, 1e18, 1e19, 1e20))


def one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    for n in needles:
        assert n in stderr, stderr


def test_rollout_json_and_table(ladder: Path) -> None:
    code, out, err = run("backtest", str(ladder), "--law", "chinchilla", "--rollout", "budget_flops",
                         "--bootstrap", "20", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert [(s["train_groups"], s["test_group"]) for s in r["rollout"]] == [
        ([1e17, 1e18], 1e19), ([1e17, 1e18, 1e19], 1e20)]
    assert [s["distance_decades"] for s in r["rollout"]] == pytest.approx([1.0, 1.0])
    for k in ("are_mean", "coverage_80", "coverage_95"):
        assert 0 <= r[k] <= 1 and all(0 <= s[k] <= 1 for s in r["rollout"])
    assert r["interval"]["kind"] == "observation" and r["n_points"] == 10
    code, out, _ = run("backtest", str(ladder), "--law", "chinchilla", "--rollout", "budget_flops", "--horizon", "2")
    assert code == 0 and "rollout back-test of chinchilla over budget_flops" in out
    assert "no intervals" in out


def test_plain_backtest_reports_both_coverages(ladder: Path) -> None:
    code, out, err = run("backtest", str(ladder), "--law", "chinchilla", "--train-where", "budget_flops < 1e20",
                         "--bootstrap", "20", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["coverage_80"] is not None and r["coverage_95"] >= r["coverage_80"]
    assert r["interval"] == {"kind": "observation", "levels": [0.8, 0.95], "ci_level": 0.95}


def test_rollout_needs_three_groups(tmp_path: Path) -> None:
    two = isoflop_csv(tmp_path / "two.csv", (1e17, 1e18))
    code, _, err = run("backtest", str(two), "--law", "chinchilla", "--rollout", "budget_flops")
    one_line_error(code, err, "'budget_flops'", "at least 3", "2 group(s)")
    code, _, err = run("backtest", str(two), "--law", "chinchilla", "--rollout", "nope")
    one_line_error(code, err, "'nope'")
    code, _, err = run("backtest", str(two), "--law", "chinchilla")
    one_line_error(code, err, "--train-where", "--rollout")


@pytest.mark.parametrize("bound, needle", [
    ("E=1.9:1.5", "LO < HI"), ("E=1.5:1.5", "LO < HI"), ("E=-1:2", "range [0, 1000]"),
    ("alpha=0:6", "range [0, 5]"), ("E=abc", "LO:HI"), ("Q=1:2", "'Q'")])
def test_bad_bounds_are_one_line(ladder: Path, bound: str, needle: str) -> None:
    code, _, err = run("fit", str(ladder), "--law", "chinchilla", "--bound", bound)
    one_line_error(code, err, needle)


def test_bound_is_respected_and_reported(ladder: Path) -> None:
    code, out, err = run("fit", str(ladder), "--law", "chinchilla", "--bound", "E=1.0:1.5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["params"]["E"] == pytest.approx(1.5, rel=1e-9)      # the truth, 1.7, is outside
    assert any("'E'" in w and "upper bound 1.5" in w for w in d["warnings"])
    assert d["data"]["bounds"] == {"E": [1.0, 1.5]}
    code, out, _ = run("fit", str(ladder), "--law", "chinchilla", "--bound", "E=1.6:1.8", "--json")
    inner = json.loads(out)
    assert 1.6 < inner["params"]["E"] < 1.8 and not any("bound" in w for w in inner["warnings"])


def test_asymmetry_and_weight_options(ladder: Path) -> None:
    code, _, err = run("fit", str(ladder), "--law", "chinchilla", "--asymmetry", "0")
    one_line_error(code, err, "asymmetry", "0")
    code, out, err = run("fit", str(ladder), "--law", "chinchilla", "--asymmetry", "3", "--weight", "compute",
                         "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["objective"]["asymmetry"] == 3.0 and d["data"]["weight_by"] == "compute"


def test_calibrated_fit_predict_and_plan_name_their_interval(ladder: Path, tmp_path: Path) -> None:
    fit = tmp_path / "fit.json"
    code, out, err = run("fit", str(ladder), "--law", "chinchilla", "--bootstrap", "20", "--calibrate",
                         "budget_flops", "--out", str(fit))
    assert code == 0, err
    assert "extrapolation calibration" in out
    code, out, _ = run("predict", str(fit), "--at", "N=3e9", "--at", "D=6e10", "--json")
    d = json.loads(out)
    assert (d["interval_kind"], d["level"]) == ("extrapolation-calibrated", 0.95)
    code, out, _ = run("predict", str(fit), "--at", "N=3e9", "--at", "D=6e10")
    assert "nominal 95% extrapolation-calibrated interval" in out
    code, out, _ = run("plan", str(fit), "--flops", "1e21", "--json")
    assert json.loads(out)["interval_kind"] == "extrapolation-calibrated"
    code, out, _ = run("plan", str(fit), "--flops", "1e21")
    assert "nominal 95% extrapolation-calibrated" in out


def test_fit_report_says_student_t_only_when_the_pairs_are_too_few(tmp_path: Path) -> None:
    """8 budgets give 6 + 5 + ... + 1 = 21 internal (prefix, group) pairs: enough for a conformal rank at
    80% and at 95% (0.95 x 22/21 <= 1). The report said 'too few pairs for a conformal rank: Student t'
    for every group-t fit, whatever the pairs."""
    ladder8 = isoflop_csv(tmp_path / "l8.csv", tuple(10.0 ** k for k in range(16, 24)))
    code, out, err = run("fit", str(ladder8), "--law", "chinchilla", "--bootstrap", "10", "--calibrate",
                         "budget_flops")
    assert code == 0, err
    out = " ".join(out.split())    # the report wraps its long lines
    assert "in 21 (prefix, group) pairs" in out and "conformal rank at 80% and 95%" in out
    assert "Student t" not in out and "too few pairs" not in out
    # a 99% interval needs 99 pairs: the fit's own level is named where it falls back
    code, out, err = run("fit", str(ladder8), "--law", "chinchilla", "--bootstrap", "10", "--calibrate",
                         "budget_flops", "--ci-level", "0.99", "--calibrate-scheme", "group-t")
    assert code == 0, err
    assert "conformal rank at 80% and 95%; too few pairs for a conformal rank at 99%: Student t with 21 " \
           "degrees of freedom" in " ".join(out.split())


def test_calibrate_scheme_option(tmp_path: Path) -> None:
    ladder5 = isoflop_csv(tmp_path / "l5.csv", (1e17, 1e18, 1e19, 1e20, 1e21))
    widths = {}
    for scheme in ("group", "row", "default", "group-t"):
        fit = tmp_path / f"{scheme}.json"
        opt = [] if scheme == "default" else ["--calibrate-scheme", scheme]
        code, out, err = run("fit", str(ladder5), "--law", "chinchilla", "--bootstrap", "20", "--calibrate",
                             "budget_flops", *opt, "--out", str(fit))
        assert code == 0, err
        stored = json.loads(fit.read_text())["calibration"]["scheme"]
        assert stored == ("group-tp" if scheme == "default" else scheme)
        assert ("extrapolation calibration (group)" in out) == (scheme == "group")
        # 6 internal pairs: a conformal rank at 80% (0.8 x 7/6 <= 1), too few for one at 95%: Student t, with
        # 6 degrees of freedom (group-t) or 6 + 1 (the default group-tp: the prior is worth one pair)
        flat = " ".join(out.split())   # the report wraps its lines
        assert ("conformal rank at 80%; too few pairs for a conformal rank at 95%: Student t with 6 degrees of "
                "freedom" in flat) == (scheme == "group-t")
        assert ("conformal rank at 80%; too few pairs for a conformal rank at 95%: Student t with 7 degrees of "
                "freedom" in flat and "worth 1 pair(s)" in flat) == (scheme == "default")
        code, out, _ = run("predict", str(fit), "--at", "N=3e10", "--at", "D=6e11", "--json")
        d = json.loads(out)
        assert d["interval_kind"] == "extrapolation-calibrated"
        widths[scheme] = d["interval"][1] - d["interval"][0]
    assert widths["group"] != widths["row"] and widths["default"] != widths["group"]
    # group-tp: group-t plus the shipped offset prior, named in the report with its weight
    fit = tmp_path / "tp.json"
    code, out, err = run("fit", str(ladder5), "--law", "chinchilla", "--bootstrap", "20", "--calibrate",
                         "budget_flops", "--calibrate-scheme", "group-tp", "--out", str(fit))
    assert code == 0, err
    cal = json.loads(fit.read_text())["calibration"]
    assert cal["scheme"] == "group-tp" and cal["group_prior_pairs"] == 1.0
    assert "extrapolation calibration (group-tp)" in out and "worth 1 pair(s)" in out
    code, out, _ = run("predict", str(fit), "--at", "N=3e10", "--at", "D=6e11", "--json")
    d = json.loads(out)
    assert d["interval_kind"] == "extrapolation-calibrated" and d["interval"][1] - d["interval"][0] != widths["group-t"]
    assert d["interval"][1] - d["interval"][0] == pytest.approx(widths["default"], rel=1e-12)   # the default
    code, _, err = run("fit", str(ladder5), "--law", "chinchilla", "--calibrate", "budget_flops",
                       "--calibrate-scheme", "wide")
    one_line_error(code, err, "--calibrate-scheme", "wide")


def test_calibration_options_away_from_their_mode_are_one_line(ladder: Path) -> None:
    """--calibrate without bootstrap draws calibrated nothing (no interval) and --group-decades without
    --calibrate or --rollout was ignored; fit's --calibrate key was called 'the rollout key'."""
    code, out, err = run("fit", str(ladder), "--law", "chinchilla", "--calibrate", "budget_flops")
    one_line_error(code, err, "The --calibrate option must be given with --bootstrap K, K >= 2", "'budget_flops'")
    assert out == ""
    for cmd in (["fit"], ["backtest", "--train-where", "budget_flops < 1e20"]):
        code, _, err = run(cmd[0], str(ladder), "--law", "chinchilla", *cmd[1:], "--group-decades", "0.5")
        one_line_error(code, err, "The --group-decades option must be given with --calibrate KEY", "Got 0.5")
    code, _, err = run("fit", str(ladder), "--law", "chinchilla", "--calibrate", "nope", "--bootstrap", "5")
    one_line_error(code, err, "The --calibrate key must be a column of the data", "Got 'nope' instead.")
    code, _, err = run("fit", str(ladder), "--law", "chinchilla", "--calibrate", "budget_flops", "--bootstrap", "5",
                       "--group-decades", "0")
    one_line_error(code, err, "--group-decades must be a number > 0. Got 0.0 instead.")
    code, out, err = run("backtest", str(ladder), "--law", "chinchilla", "--rollout", "budget_flops",
                         "--group-decades", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["decades"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["fit", "--ci-level", "2"], "error: --ci-level must be a float in (0, 1). Got 2.0 instead.\n"),
    (["backtest", "--rollout", "budget_flops", "--ci-level", "0"], "error: --ci-level must be a float in (0, 1). "
                                                                    "Got 0.0 instead.\n"),
    (["fit", "--delta", "-1"], "error: --delta must be a float in (0, inf). Got -1.0 instead.\n"),
    (["fit", "--asymmetry", "0"], "error: --asymmetry must be a float in (0, inf) (over-prediction weighted that many "
                                  "times). Got 0.0 instead.\n"),
])
def test_fitting_options_are_named_as_options(ladder: Path, args: list[str], message: str) -> None:
    """A bad --ci-level, --delta or --asymmetry is named as the option (it read 'The 'ci_level' parameter of
    LawFit')."""
    code, out, err = run(args[0], str(ladder), "--law", "chinchilla", *args[1:])
    assert (code, out, err) == (2, "", message)
