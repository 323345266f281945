"""The fitting commands end to end, and their one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main

MAP = ["--map", "N=Model Size", "--map", "D=`Training FLOP` / (6 * `Model Size`)"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture()
def synthetic(tmp_path: Path) -> Path:
    """A Chinchilla surface with known parameters, 1% log-normal noise, seed 0."""
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 60))
    L = (1.7 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, 0.01, 60))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(path, index=False)
    return path


def test_fit_plan_predict_roundtrip(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    code, stdout, _ = run("fit", str(synthetic), "--law", "chinchilla", "--map", "N=params", "--map", "D=tokens",
                          "--bootstrap", "50", "--out", str(out), "--json")
    assert code == 0
    d = json.loads(stdout)
    assert set(d) >= {"law", "params", "stderr", "ci", "ci_level", "n_points", "objective", "converged", "warnings"}
    assert d["n_points"] == 60
    assert d["params"]["alpha"] == pytest.approx(0.34, abs=0.05)
    assert d["objective"]["name"] == "huber_log" and d["objective"]["value"] > 0
    code, stdout, _ = run("predict", str(out), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    assert code == 0
    p = json.loads(stdout)
    assert p["interval"][0] < p["loss"] < p["interval"][1]
    code, stdout, _ = run("plan", str(out), "--flops", "1e21", "--json")
    assert code == 0
    q = json.loads(stdout)
    assert q["N"] * q["D"] * 6 == pytest.approx(1e21)
    assert q["tokens_per_param"] == pytest.approx(q["D"] / q["N"])


def test_preset_plan_and_laws(tmp_path: Path) -> None:
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "5.76e23", "--json")
    assert code == 0 and json.loads(stdout)["tokens_per_param"] == pytest.approx(93, abs=1.5)
    # a token limit: hoffmann2022 wants 2.98e12 tokens at 5.76e23 FLOPs (N = 3.2e10, 93 tokens per
    # parameter); held to 1.4e12 (Chinchilla's own)
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "5.76e23",
                          "--max-tokens", "1.4e12", "--json")
    d = json.loads(stdout)
    assert code == 0 and d["data_constrained"] and d["D"] == 1.4e12
    assert d["N"] == pytest.approx(5.76e23 / (6 * 1.4e12))
    assert d["unconstrained"]["D"] == pytest.approx(2.98e12, rel=0.01)
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "5.76e23",
                          "--max-tokens", "1.4e12")
    assert code == 0 and "data-constrained" in stdout
    code, _, stderr = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "5.76e23",
                          "--max-tokens", "-5")
    assert code == 2 and "--max-tokens" in stderr and len(stderr.strip().splitlines()) == 1
    code, stdout, _ = run("laws", "chinchilla", "--json")
    d = json.loads(stdout)
    assert [p["name"] for p in d["params"]] == ["E", "A", "B", "alpha", "beta"]
    assert "hoffmann2022_unrounded" in d["presets"]
    code, stdout, _ = run("laws", "--json")
    assert "chinchilla" in [x["name"] for x in json.loads(stdout)["laws"]]


def test_backtest_cli(epoch_chinchilla: pd.DataFrame, shared_data: Path) -> None:
    data = shared_data / "chinchilla-epoch" / "svg_extracted_data.csv"
    code, stdout, _ = run("backtest", str(data), "--law", "chinchilla", *MAP, "--where", "loss.rank(ascending=False) > 5",
                          "--train-where", "`Training FLOP` < 1e21", "--bootstrap", "30", "--json")
    assert code == 0
    d = json.loads(stdout)
    assert d["train_points"] + d["test_points"] == 240
    assert {"inputs", "actual", "predicted", "interval"} <= set(d["per_point"][0])


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("content, extra, needle", [
    ("N,loss\n1e9,2.5\n2e9,2.4\n", [], "lacks column(s) ['D']"),
    ("N,D,loss\n1e9,1e10,abc\n2e9,2e10,2.4\n", [], "Column 'loss' of"),
    ("N,D,loss\n-1e9,1e10,2.5\n2e9,2e10,2.4\n", [], "must be a positive number. Got -1000000000.0"),
    ("N,D,loss\n1e9,0,2.5\n2e9,2e10,2.4\n", [], "Column 'D' (tokens)"),
    ("N,D,loss\n1e9,1e10,-2.5\n2e9,2e10,2.4\n", [], "Column 'loss' (nats/token)"),
    ("N,D,loss\n1e9,1e10,nan\n2e9,2e10,2.4\n", [], "a finite number"),
    ("N,D,loss\n1e9,1e10,2.5\n", ["--law", "nosuchlaw"], "The law name must be one of"),
    ("N,D,loss\n1e9,1e10,2.5\n", ["--map", "N=nocolumn"], "column mapping N='nocolumn': no column"),
    ("", [], "is empty"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str, extra: list[str], needle: str) -> None:
    path = _write(tmp_path, "bad.csv", content)
    args = ["fit", path] + (extra if "--law" in extra else ["--law", "chinchilla"] + extra)
    code, stdout, stderr = run(*args)
    assert code == 2, (stdout, stderr)
    assert needle in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def _surface(tmp_path: Path, loss_of) -> str:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 40))
    path = tmp_path / "surface.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss_of(N, D)}).to_csv(path, index=False)
    return str(path)


def test_parameter_at_bound_is_reported(tmp_path: Path) -> None:
    # loss that rises with D: the data exponent wants to be negative and stops at its bound 0
    path = _surface(tmp_path, lambda N, D: (1.7 + 400 / N**0.34) * (1 + 0.01 * np.log(D / 1e8)))
    code, stdout, _ = run("fit", path, "--law", "chinchilla", "--json")
    assert code == 0
    d = json.loads(stdout)
    assert d["params"]["beta"] == 0.0
    assert "parameter 'beta' = 0 is at its lower bound 0." in d["warnings"]
    code, stdout, _ = run("fit", path, "--law", "chinchilla")
    assert "[[Warnings]]" in stdout and "at its lower bound" in stdout


def test_unidentified_term_is_reported(tmp_path: Path) -> None:
    # loss flat in D: nothing determines B and beta
    path = _surface(tmp_path, lambda N, D: 1.7 + 400 / N**0.34)
    code, stdout, _ = run("fit", path, "--law", "chinchilla", "--json")
    assert code == 0
    assert any("not identified" in w and "'B'" in w for w in json.loads(stdout)["warnings"])


def test_predict_points_file_and_preset(tmp_path: Path) -> None:
    pts = tmp_path / "pts.csv"
    pd.DataFrame({"params": [7e10, 1e9], "tokens": [1.4e12, 2e10]}).to_csv(pts, index=False)
    code, stdout, stderr = run("predict", "--law", "chinchilla", "--preset", "hoffmann2022", "--points", str(pts),
                               "--map", "N=params", "--map", "D=tokens", "--json")
    assert code == 0, stderr
    d = json.loads(stdout)
    first = d["predictions"][0]
    # Hoffmann et al. 2022 rounded coefficients at Chinchilla's own size: 1.69 + 406.4/N^0.34 + 410.7/D^0.28
    assert first["loss"] == pytest.approx(1.69 + 406.4 / 7e10**0.34 + 410.7 / 1.4e12**0.28, rel=1e-12)
    assert first["interval"] is None            # a preset has no bootstrap: no invented interval
    code, _, stderr = run("predict", "--law", "chinchilla", "--preset", "nosuch", "--at", "N=1e9", "--at", "D=1e10")
    assert code == 2 and "The preset name for law 'chinchilla' must be one of" in stderr
    code, _, stderr = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "-1")
    assert code == 2 and "--flops must be a positive number" in stderr


@pytest.mark.parametrize("args, message", [
    (["fit", "x.csv", "--law", "chinchilla", "--near-optimal", "x"],
     "error: scalinglab fit: Invalid value for '--near-optimal': 'x' is not a valid integer range."),
    (["fit", "x.csv", "--law", "chinchilla", "--bootstrap", "-1"],
     "error: scalinglab fit: Invalid value for '--bootstrap': -1 is not in the range x>=0."),
    (["ladder", "design", "--nonsense"], "error: scalinglab ladder design: No such option '--nonsense'"),
    (["nocmd"], "error: scalinglab: No such command 'nocmd'."),
])
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, args, prog_name="scalinglab")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith(message) and r.stderr.strip().endswith("(see --help)")
