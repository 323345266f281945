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
    code, stdout, _ = run("backtest", str(data), "--law", "chinchilla", *MAP, "--where", "rank(-loss) > 5",
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


# -- FIT.json validation (issue 16, item 4) ---------------------------------------------------------
@pytest.fixture(scope="module")
def fit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bootstrapped Chinchilla fit of 40 synthetic points, written by `scalinglab fit --out`."""
    d = tmp_path_factory.mktemp("fitjson")
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 40))
    L = (1.7 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, 0.01, 40))
    pd.DataFrame({"N": N, "D": D, "loss": L}).to_csv(d / "nd.csv", index=False)
    code, _, err = run("fit", str(d / "nd.csv"), "--law", "chinchilla", "--bootstrap", "8", "--out", str(d / "fit.json"))
    assert code == 0, err
    return d / "fit.json"


def _mutated(fit_file: Path, tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    d = json.loads(fit_file.read_text())
    mutate(d)
    out = tmp_path / "mutated.json"
    out.write_text(json.dumps(d))
    return out


def _del(path: str):  # type: ignore[no-untyped-def]
    def f(d):  # type: ignore[no-untyped-def]
        *head, last = path.split(".")
        for k in head:
            d = d[k]
        del d[last]
    return f


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def f(d):  # type: ignore[no-untyped-def]
        *head, last = path.split(".")
        for k in head:
            d = d[k]
        d[last] = value
    return f


@pytest.mark.parametrize("mutate, message", [
    (_del("params.alpha"), "field 'params' must name exactly the parameters of law 'chinchilla' "
                              "(E, A, B, alpha, beta); missing ['alpha']."),
    (_set("params.alpha", None), "field 'params.alpha' must be a finite number. Got None instead."),
    (_set("params.E", float("nan")), "field 'params.E' must be a finite number. Got nan instead."),
    (_set("params.E", float("inf")), "field 'params.E' must be a finite number. Got inf instead."),
    (_set("params.E", True), "field 'params.E' must be a finite number. Got True instead."),
    (_set("params.E", "1.7"), "field 'params.E' must be a finite number. Got '1.7' instead."),
    (_set("params.alpha", -1), "field 'params.alpha' must be within the law's bounds [0, 5]. Got -1 instead."),
    (_set("params.zeta", 1.0), "field 'params' must name exactly the parameters of law 'chinchilla' "
                               "(E, A, B, alpha, beta); not of the law ['zeta']."),
    (_set("law", "kaplan"), "field 'params' must name exactly the parameters of law 'kaplan' "
                            "(N_c, alpha_N, D_c, alpha_D); missing ['N_c', 'alpha_N', 'D_c', 'alpha_D']; "
                            "not of the law ['E', 'A', 'B', 'alpha', 'beta']."),
    (_set("law", "nosuch"), "field 'law' must be a registered law, one of ['anneal',"),
    (_set("law", 3), "field 'law' must be a law name (a string). Got 3 instead."),
    (_set("bootstrap.draws", [[1, 2, 3]]), "field 'bootstrap.draws' must be an object of every parameter of "
                                           "law 'chinchilla' (E, A, B, alpha, beta) -> list of draws."),
    (_set("bootstrap.draws.alpha", [0.3]), "field 'bootstrap.draws.alpha' must be as long as the other "
                                           "parameters' draws (8). Got '1 draws' instead."),
    (_set("bootstrap.draws.beta", "x"), "field 'bootstrap.draws.beta' must be a list of numbers. Got 'x' instead."),
    (_set("bootstrap.draws.beta", [-1.0] * 8), "field 'bootstrap.draws.beta' must be finite numbers within the "
                                               "law's bounds [0, 5] (or null). Got -1.0 instead."),
    (_del("bootstrap.draws.beta"), "field 'bootstrap.draws' must be an object of every parameter"),
    (_set("ci_level", 7), "field 'ci_level' must be a number in (0, 1). Got 7 instead."),
    (_set("ci_level", None), "field 'ci_level' must be a number in (0, 1). Got None instead."),
    (_set("residuals", "x"), "field 'residuals' must be a list of finite numbers. Got 'x' instead."),
    (_set("residuals", [0.1, None]), "field 'residuals' must be a list of finite numbers. Got None instead."),
    (_set("ci.alpha", [0.4, 0.3]), "field 'ci.alpha' must be [lo, hi], two finite numbers with lo <= hi, or null."),
    (_set("ci.alpha", [0.3]), "field 'ci.alpha' must be [lo, hi], two finite numbers with lo <= hi, or null."),
    (_set("stderr.alpha", -0.1), "field 'stderr.alpha' must be a finite number >= 0 or null. Got -0.1 instead."),
    (_set("n_points", -3), "field 'n_points' must be an integer >= 0. Got -3 instead."),
    (_set("n_points", 2.5), "field 'n_points' must be an integer >= 0. Got 2.5 instead."),
    (_set("warnings", [1]), "field 'warnings' must be a list of strings. Got [1] instead."),
    (_set("warnings", "careful"), "field 'warnings' must be a list of strings. Got 'careful' instead."),
    (_set("objective.space", "cubic"), "field 'objective.space' must be 'log' or 'linear'. Got 'cubic' instead."),
    (_set("fixed", ["zeta"]), "field 'fixed' must be a list of parameter names of law 'chinchilla'."),
    (_set("correlations.A.alpha", 3.0), "field 'correlations.A.alpha' must be a correlation in [-1, 1] or null."),
    (_set("format", "other/9"), "field 'format' must be 'scalinglab.fit/1'. Got 'other/9' instead."),
    (_set("bootstrap", []), "field 'bootstrap' must be an object. Got [] instead."),
    # the anneal law's lambda of S2, edited by hand: it was replaced by 0.999 without a word
    (_set("data.anneal_decay", 5), "field 'data.anneal_decay' must be a number in [0, 1] (the momentum factor "
                                   "lambda of S2). Got 5 instead."),
    (_set("data.anneal_decay", "0.99"), "field 'data.anneal_decay' must be a number in [0, 1]"),
    (_set("data.anneal_decay", None), "field 'data.anneal_decay' must be a number in [0, 1]"),
])
@pytest.mark.parametrize("command", [["predict", "--at", "N=7e10", "--at", "D=1.4e12"], ["plan", "--flops", "1e21"]])
def test_bad_fit_json_is_one_line(fit_file: Path, tmp_path: Path, mutate, message: str,  # type: ignore[no-untyped-def]
                                  command: list[str]) -> None:
    bad = _mutated(fit_file, tmp_path, mutate)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = run(command[0], str(bad), *command[1:])
    assert code == 2, stdout
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert f"fit file {str(bad)!r}: {message}" in stderr
    assert stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before     # nothing written


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "is not a scalinglab fit: not UTF-8 text (byte 0)"),
    (b"\x00\x01\x02 binary", "is not valid JSON: Expecting value (line 1)."),
    (b'{"law": "chinchilla", "params": ', "is not valid JSON: Expecting value (line 1)."),
    (b"[1, 2]", "is not a scalinglab fit: a JSON object with 'law' and 'params' was expected."),
    (b"", "is not valid JSON: Expecting value (line 1)."),
    (b"[" * 100000, "is not a scalinglab fit: its JSON is nested too deeply."),
])
def test_unreadable_fit_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "fit.json"
    bad.write_bytes(content)
    code, stdout, stderr = run("predict", str(bad), "--at", "N=7e10", "--at", "D=1.4e12")
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert f"fit file {str(bad)!r} {message}" in stderr


def test_valid_fit_json_round_trips_exactly(fit_file: Path, tmp_path: Path) -> None:
    from scalinglab.fit.result import Fit

    fit = Fit.from_json(fit_file)
    again = tmp_path / "again.json"
    fit.to_json(again)
    assert again.read_text() == fit_file.read_text()
    assert Fit.from_json(again) == fit
    a = run("predict", str(fit_file), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    b = run("predict", str(again), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    assert a[0] == 0 and a == b
    assert json.loads(a[1])["interval"] is not None
    # a preset-like fit written without a bootstrap still loads
    bare = _mutated(fit_file, tmp_path, lambda d: (d.update(bootstrap={}, ci={}, stderr={}, residuals=[])))
    code, stdout, _ = run("predict", str(bare), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    assert code == 0 and json.loads(stdout)["interval"] is None


# -- overconfidence (issue 16, item 5) --------------------------------------------------------------
TOO_FEW = "too few points: 2 points for 5 parameters; intervals are not meaningful and are omitted."


def test_too_few_points_fit_has_no_intervals_and_says_so(fit_file: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(fit_file.parent / "nd.csv").head(2)
    rows.to_csv(tmp_path / "two.csv", index=False)
    out = tmp_path / "two.json"
    code, stdout, _ = run("fit", str(tmp_path / "two.csv"), "--law", "chinchilla", "--bootstrap", "50",
                          "--out", str(out), "--json")
    assert code == 0
    d = json.loads(stdout)
    assert TOO_FEW in d["warnings"]
    assert d["ci"] == {k: None for k in ("E", "A", "B", "alpha", "beta")}     # not zero-width intervals
    assert d["stderr"] == {k: None for k in ("E", "A", "B", "alpha", "beta")}
    saved = json.loads(out.read_text())
    assert saved["bootstrap"] == {"n": 50, "seed": 0, "n_failed": 0, "draws": {}, "skipped": "too few points"}
    code, stdout, _ = run("fit", str(tmp_path / "two.csv"), "--law", "chinchilla", "--bootstrap", "50")
    assert code == 0 and "E     = " in stdout and "(no uncertainty: too few points)" in stdout
    assert "skipped: too few points" in stdout and TOO_FEW in stdout
    code, stdout, _ = run("predict", str(out), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    p = json.loads(stdout)
    assert code == 0 and p["interval"] is None and p["mean_interval"] is None and TOO_FEW in p["warnings"]
    code, stdout, _ = run("plan", str(out), "--flops", "1e21", "--json")
    q = json.loads(stdout)
    assert code == 0 and q["interval"] is None and q["N_interval"] is None and TOO_FEW in q["warnings"]
    code, stdout, _ = run("plan", str(out), "--flops", "1e21")
    assert code == 0 and f"warning: {TOO_FEW}" in stdout and "no interval: the fit has no bootstrap" not in stdout
    code, stdout, _ = run("predict", str(out), "--at", "N=7e10", "--at", "D=1.4e12")
    assert code == 0 and f"warning: {TOO_FEW}" in stdout


@pytest.mark.parametrize("n_points, has_interval", [(5, False), (6, True), (0, True)])
def test_draws_of_a_fit_with_too_few_points_give_no_interval(fit_file: Path, tmp_path: Path, n_points: int,
                                                            has_interval: bool) -> None:
    """A FIT.json (hand-made or older) with draws but no more points than parameters: no interval."""
    f = _mutated(fit_file, tmp_path, _set("n_points", n_points))
    code, stdout, _ = run("predict", str(f), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    assert code == 0 and (json.loads(stdout)["interval"] is not None) == has_interval
    code, stdout, _ = run("plan", str(f), "--flops", "1e21", "--json")
    assert code == 0 and (json.loads(stdout)["interval"] is not None) == has_interval


def test_fit_warnings_carry_into_predict_and_plan(fit_file: Path) -> None:
    fit_warnings = json.loads(fit_file.read_text())["warnings"]
    assert fit_warnings        # the fixture's fit has flat-direction warnings
    code, stdout, _ = run("predict", str(fit_file), "--at", "N=7e10", "--at", "D=1.4e12", "--json")
    assert code == 0 and json.loads(stdout)["warnings"] == fit_warnings
    code, stdout, _ = run("predict", str(fit_file), "--at", "N=7e10", "--at", "D=1.4e12")
    assert code == 0 and all(f"warning: {w}" in stdout for w in fit_warnings)
    code, stdout, _ = run("plan", str(fit_file), "--flops", "1e21", "--json")
    assert code == 0 and json.loads(stdout)["warnings"] == fit_warnings
    code, stdout, _ = run("plan", str(fit_file), "--flops", "1e21")
    assert code == 0 and all(f"warning: {w}" in stdout for w in fit_warnings)
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21", "--json")
    assert code == 0 and json.loads(stdout)["warnings"] == []


@pytest.mark.parametrize("args, message", [
    (["predict", "--law", "chinchilla", "--preset", "hoffmann2022", "--at", "N=7e10", "--at", "Q=1"],
     "error: --at for law 'chinchilla' must be one of ['N', 'D', 'C']. Got 'Q' instead.\n"),
    (["predict", "--law", "chinchilla", "--preset", "hoffmann2022", "--at", "N=7e10", "--at", "D=1e12",
      "--at", "U=1e9"],
     "error: --at for law 'chinchilla' must be one of ['N', 'D', 'C']. Got 'U' instead.\n"),
    (["plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21", "--at", "U=1e9"],
     "error: The --at input of law 'chinchilla' must be none: the law's inputs N and D follow from --flops. "
     "Got 'U' instead.\n"),
    (["plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21", "--at", "N=1e9"],
     "error: The --at input of law 'chinchilla' must be none: the law's inputs N and D follow from --flops. "
     "Got 'N' instead.\n"),
    (["plan", "--law", "datablations", "--preset", "muennighoff2023", "--flops", "1e21", "--at", "U=1e9",
      "--at", "Q=1"],
     "error: The --at input of law 'datablations' must be one of the law's other inputs ['U'] (N and D follow "
     "from --flops). Got 'Q' instead.\n"),
])
def test_at_names_the_law_does_not_have_are_refused(args: list[str], message: str) -> None:
    code, stdout, stderr = run(*args)
    assert code == 2 and stdout == "" and stderr == message


def test_at_accepts_derived_inputs() -> None:
    code, stdout, _ = run("predict", "--law", "chinchilla", "--preset", "hoffmann2022", "--at", "N=7e10",
                          "--at", "C=5.88e23", "--json")
    assert code == 0 and json.loads(stdout)["inputs"]["D"] == pytest.approx(1.4e12)
    code, stdout, _ = run("plan", "--law", "datablations", "--preset", "muennighoff2023", "--flops", "1e21",
                          "--at", "U=1e9", "--json")
    assert code == 0 and json.loads(stdout)["fixed"] == {"U": 1e9}


def test_plan_below_one_parameter_or_token_warns() -> None:
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e-300", "--json")
    assert code == 0
    assert json.loads(stdout)["warnings"] == [
        "the plan lands below one parameter (N = 1.96e-136): a budget of 1e-300 FLOPs is too small for any "
        "model; these numbers are meaningless.",
        "the plan lands below one token (8.48e-166 tokens): a budget of 1e-300 FLOPs is too small to train on "
        "anything; these numbers are meaningless."]
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e-300")
    assert code == 0 and "warning: the plan lands below one parameter (N = 1.96e-136)" in stdout
    assert "warning: the plan lands below one token" in stdout
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e12", "--json")
    assert code == 0 and json.loads(stdout)["warnings"] == []     # N = 3.4e5, D = 4.9e5: real, if tiny


def test_predict_at_without_every_input_names_the_missing_one(fit_file: Path) -> None:
    """--at N alone: one line asking for --at D (or C), not the table's 'map them (D=SOURCE)' (predict --at
    has no --map)."""
    code, stdout, stderr = run("predict", str(fit_file), "--at", "N=7e10")
    assert code == 2 and stdout == ""
    assert stderr == ("error: The --at values must be a value of every input of law 'chinchilla' (N, D): add --at "
                      "D=VALUE (D also from C = 6 N D: --at C=VALUE). Got 'N=7e+10' instead.\n")
    code, _, stderr = run("predict", str(fit_file), "--at", "D=1.4e12")
    assert code == 2 and "add --at N=VALUE. Got 'D=1.4e+12' instead." in stderr
    code, stdout, stderr = run("predict", str(fit_file), "--at", "N=7e10", "--at", "C=5.88e23", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["inputs"] == {"N": 7e10, "D": pytest.approx(1.4e12)}


def test_preset_plan_without_interval_gives_no_bootstrap_advice(fit_file: Path, tmp_path: Path) -> None:
    """A preset's plan has no interval because published coefficients come without draws; it advised
    'fit with --bootstrap K', which a preset cannot be."""
    code, stdout, _ = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "5.76e23")
    assert code == 0
    assert "no interval: the published preset 'hoffmann2022' has no bootstrap draws" in stdout
    assert "fit with --bootstrap" not in stdout
    plain = tmp_path / "plain.json"
    d = json.loads(fit_file.read_text())
    d["bootstrap"] = {}
    plain.write_text(json.dumps(d))
    code, stdout, _ = run("plan", str(plain), "--flops", "1e21")
    assert code == 0 and "no interval: the fit has no bootstrap draws (fit with --bootstrap K to get one)." in stdout
