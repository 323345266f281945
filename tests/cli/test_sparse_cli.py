"""Sparsity end to end on the command line: design a sparsity grid, fit the sparse law from a store,
back-test it, plan the optimal sparsity (JSON, table, contour plot), and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab import accounting
from scalinglab.cli import main
from scalinglab.ladder import design
from scalinglab.ladder.ladderfile import read_toml
from scalinglab.store import Store

#: a sparse law in tokens (D = tokens seen, as the store gives it), of the size of the ladder's runs
TRUE = {"a_S": 10.0, "b_S": 1.0, "c_S": 20.0, "b_N": 0.3, "a_D": 1e5, "b_D": 0.3, "c": 1.5}
SPARSITIES, PARAMS, TOKENS = [0.0, 0.5, 0.75, 0.875], [2e4, 8e4, 3e5], [2e5, 8e5, 3.2e6]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_design_makes_a_sparsity_by_nonzero_by_tokens_grid(tmp_path: Path) -> None:
    out = tmp_path / "sparse.toml"
    code, stdout, stderr = run("ladder", "design", "--sparsities", "0,0.5,0.75,0.875", "--params", "5e4,2e5",
                               "--tokens", "1e6,2e6", "--batch-tokens", "4096", "--out", str(out), "--json")
    assert code == 0, stderr
    d = json.loads(stdout)
    assert d["ladder"]["design"] == "sparse" and len(d["runs"]) == 16
    runs = read_toml(out)
    assert sorted({r.sparsity.target for r in runs}) == [0.0, 0.5, 0.75, 0.875]
    assert all(r.group == "sparse" and (r.sparsity.target == 0) == ("-s" not in r.name) for r in runs)
    for target in (5e4, 2e5):   # equal non-zero counts across sparsities, to the width's rounding
        nz = [row["N_nonzero"] for row in d["runs"] if abs(np.log(row["N_nonzero"] / target)) < 0.3]
        assert len(nz) == 8 and max(nz) / min(nz) < 1.25
    for row in d["runs"]:        # a sparser run is a wider dense model: N_nonzero ~ (1 - S) N_nonembed
        assert row["N_nonzero"] == pytest.approx((1 - row["S"]) * row["N_nonembed"], rel=0.05)
    code, stdout, stderr = run("ladder", "design", "--sparsities", "0,0.5", "--params", "5e4", "--tokens", "1e6",
                               "--nm", "2:4", "--sparsity-method", "static", "--out", str(out), "--json")
    assert code == 0, stderr
    sparse_run = next(r for r in read_toml(out) if r.sparsity.target > 0)
    assert (sparse_run.sparsity.method, sparse_run.sparsity.n, sparse_run.sparsity.m) == ("static", 2, 4)


@pytest.mark.parametrize("extra, needle", [
    (["--nm", "2:4", "--sparsities", "0,0.75"], "1 - n/m = 0.5 for the 2:4 pattern"),
    (["--nm", "2-4", "--sparsities", "0.5"], "--nm argument must be of the form N:M"),
    (["--sparsities", "0,1.5"], "fraction in \\[0, 1\\)"),
    (["--sparsities", "0.5", "--budgets", "1e12"], "drop --budgets"),
])
def test_design_errors_are_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    code, _, stderr = run("ladder", "design", "--params", "5e4", "--tokens", "1e6", *extra,
                          "--out", str(tmp_path / "x.toml"))
    assert code == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(needle, stderr), stderr


@pytest.fixture()
def sparse_store(tmp_path: Path) -> Path:
    """A store of a designed sparsity grid whose final losses follow TRUE (0.3% log-normal noise)."""
    runs = design.grid_sparse(SPARSITIES, PARAMS, TOKENS, batch_tokens=4096, context=128)
    path = tmp_path / "runs.db"
    rng = np.random.default_rng(0)
    with Store(path) as store:
        store.add_planned(runs, describe=accounting.counts)
        for r in runs:
            c = accounting.counts(r)
            tokens = r.steps * r.batch_tokens
            loss = float(sparse_law(r.sparsity.target, c["N_nonzero"], tokens) * np.exp(rng.normal(0, 0.003)))
            store.mark_running(r.name)
            store.add_point(r.name, {"step": r.steps, "tokens": tokens, "eval_loss": loss,
                                     "flops_full": c["flops_per_token_full"] * tokens})
            store.mark_done(r.name, {**c, "tokens": tokens, "final_loss": loss})
    return path


def sparse_law(S: float, N: float, D: float) -> float:
    return float((TRUE["a_S"] * (1 - S) ** TRUE["b_S"] + TRUE["c_S"]) * N ** -TRUE["b_N"]
                 + (TRUE["a_D"] / D) ** TRUE["b_D"] + TRUE["c"])


def test_fit_backtest_and_plan_from_a_store(sparse_store: Path, tmp_path: Path) -> None:
    fit_path = tmp_path / "fit.json"
    code, stdout, stderr = run("fit", "--store", str(sparse_store), "--law", "sparse", "--bootstrap", "20",
                               "--out", str(fit_path), "--json")
    assert code == 0, stderr
    fit = json.loads(stdout)
    assert fit["n_points"] == 36 and fit["law"] == "sparse"
    # the fitted law reproduces the surface it was drawn from, inside and beyond the grid
    for S, N, D in [(0.5, 1e5, 1e6), (0.875, 3e5, 3.2e6), (0.75, 1e6, 1e7)]:
        code, stdout, _ = run("predict", str(fit_path), "--at", f"S={S}", "--at", f"N_nonzero={N}",
                              "--at", f"D={D}", "--json")
        assert json.loads(stdout)["loss"] == pytest.approx(sparse_law(S, N, D), rel=0.01)
    code, stdout, stderr = run("backtest", "--store", str(sparse_store), "--law", "sparse",
                               "--train-where", "N_nonzero < 2e5", "--json")
    assert code == 0, stderr
    bt = json.loads(stdout)
    assert bt["test_points"] == 12 and bt["are_mean"] < 0.01
    # plan: D is tokens for a store fit, so tokens = D
    code, stdout, stderr = run("plan", str(fit_path), "--flops", "1e14", "--n-nonzero", "3e5",
                               "--plot", str(tmp_path / "contour.png"), "--json")
    assert code == 0, stderr
    p = json.loads(stdout)
    assert p["D_unit"] == "tokens" and p["tokens_per_d"] == 1.0 and p["tokens"] == pytest.approx(p["D"])
    assert 6 * p["N_nonzero"] * p["D"] * p["c_mul"] == pytest.approx(1e14, rel=1e-9)
    assert 0.0 <= p["S"] <= 0.99 and p["interval"][0] < p["loss"] < p["interval"][1]
    assert p["held"] == {"N_nonzero": 3e5} and p["plot"] == str(tmp_path / "contour.png")
    assert (tmp_path / "contour.png").read_bytes()[:4] == b"\x89PNG"
    S = np.array(p["contour"]["S_opt"])
    assert S.shape == (9, 7) and np.all(np.diff(S, axis=0) >= 0)


def test_plan_on_the_t5_preset_in_steps() -> None:
    code, stdout, stderr = run("plan", "--law", "sparse", "--preset", "frantar2023_t5", "--flops", "1e21",
                               "--n-nonzero", "8.5e7", "--contour-n", "1e7,1e8", "--contour-flops", "1e19,1e21,1e23",
                               "--json")
    assert code == 0, stderr
    p = json.loads(stdout)
    assert p["D_unit"] == "steps" and p["tokens_per_d"] == 65_536 and p["tokens"] == pytest.approx(p["D"] * 65_536)
    assert p["S"] == pytest.approx(0.82, abs=0.02) and p["loss"] < p["dense"]["loss"]
    ct = p["contour"]
    assert ct["N_nonzero"] == [1e7, 1e8] and ct["flops"] == [1e19, 1e21, 1e23]
    assert [row[1] for row in ct["S_opt"]] == sorted(row[1] for row in ct["S_opt"])
    code, stdout, stderr = run("plan", "--law", "sparse", "--preset", "frantar2023_t5", "--flops", "1e21",
                               "--at", "S=0.5")
    assert code == 0, stderr
    assert "sparse plan at C = 1e+21 FLOPs" in stdout and "(S = 0.5 held)" in stdout
    assert "optimal sparsity over (N_nonzero, C)" in stdout


@pytest.mark.parametrize("args, needle", [
    (["--law", "chinchilla", "--preset", "hoffmann2022", "--n-nonzero", "1e8"], "only apply to the sparse law"),
    (["--law", "sparse", "--preset", "frantar2023_vit"], "measures D in images"),
    (["--law", "sparse", "--preset", "frantar2023_t5", "--at", "U=1e9"], "--at input of the sparse law"),
    (["--law", "sparse", "--preset", "frantar2023_t5", "--n-nonzero", "-5"], "non-zero parameter count"),
    (["--law", "sparse", "--preset", "frantar2023_t5", "--contour-n", "a,b"], "--contour-n"),
])
def test_plan_errors_are_one_line(args: list[str], needle: str) -> None:
    code, _, stderr = run("plan", "--flops", "1e21", *args)
    assert code == 2 and stderr.startswith("error: ") and needle in stderr, stderr


def test_report_of_a_sparse_store(sparse_store: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run("report", "--store", str(sparse_store), "--law", "sparse", "--bootstrap", "5",
                               "--flops", "1e14", "--out", str(tmp_path / "sparse"))
    assert code == 0, stderr
    html = (tmp_path / "sparse" / "index.html").read_text()
    assert f"report: {tmp_path / 'sparse' / 'index.html'}" in stdout and "Optimal sparsity" in html
    # Chinchilla on sparse runs back-tests badly: some predictions lie outside their own bootstrap
    # interval, which the back-test plot draws (it used to raise matplotlib's "yerr" error)
    code, _, stderr = run("report", "--store", str(sparse_store), "--law", "chinchilla", "--bootstrap", "5",
                          "--flops", "1e14", "--train-where", "N_nonzero < 2e5", "--out", str(tmp_path / "dense"))
    assert code == 0, stderr
    html = (tmp_path / "dense" / "index.html").read_text()
    assert "Back-test" in html and "Compute-optimal allocation" in html and "Optimal sparsity" not in html
