"""`scalinglab fit --store` fits the final points of a store's done runs, and the ends of their WSD
cooldown branches (`--points annealed`, the default)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

TRUE = {"E": 1.5, "A": 60.0, "B": 90.0, "alpha": 0.3, "beta": 0.3}


def _loss(n_total: int, tokens: float, rng: np.random.Generator) -> float:
    return float((TRUE["E"] + TRUE["A"] / n_total ** TRUE["alpha"] + TRUE["B"] / tokens ** TRUE["beta"])
                 * np.exp(rng.normal(0, 0.002)))


def _store(path: Path, branches: bool = False) -> None:
    """Runs on a known Chinchilla surface, written through the store's API (no training); with
    ``branches``, every done run also has two cooldown-branch points, at 1/3 and 2/3 of its tokens."""
    rng = np.random.default_rng(0)
    with Store(path) as st:
        cfgs = [RunConfig(name=f"r{L}-{d}-{k}", n_layer=L, d_model=d, n_head=d // 16, tokens=4096 * 50 * k)
                for L, d in ((1, 32), (2, 48), (2, 64), (3, 96), (4, 128)) for k in (1, 3, 9)]
        st.add_planned(cfgs)
        for i, cfg in enumerate(cfgs):
            n_total = 12 * cfg.n_layer * cfg.d_model**2 + (256 + 128) * cfg.d_model
            tokens = cfg.tokens
            loss = _loss(n_total, tokens, rng)
            for step, frac, value in ((1, 0.0, 5.5), (cfg.steps, 1.0, loss)):
                st.add_point(cfg.name, {"step": step, "tokens": int(frac * tokens) or cfg.batch_tokens,
                                        "flops": 1.0, "flops_full": 1.0, "train_loss": value, "eval_loss": value,
                                        "lr": 1e-3, "wall_time": 0.0})
            for k in (1, 2) if branches and i < len(cfgs) - 1 else ():
                d = tokens * k // 3
                st.add_point(cfg.name, {"branch": k, "step": cfg.steps * k // 3, "tokens": d, "flops": 1.0,
                                        "flops_full": 1.0, "eval_loss": _loss(n_total, d, rng)})
            if i < len(cfgs) - 1:   # the last one stays unfinished: not in the final table
                st.mark_done(cfg.name, {"N_total": n_total, "N_nonembed": 12 * cfg.n_layer * cfg.d_model**2,
                                        "N_nonzero": 12 * cfg.n_layer * cfg.d_model**2, "tokens": tokens})


def test_fit_from_store(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _store(db)
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_points"] == 14
    assert d["params"]["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)
    assert d["params"]["beta"] == pytest.approx(TRUE["beta"], abs=0.05)


def test_fit_and_backtest_use_the_branch_points(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _store(db, branches=True)
    # 14 done runs' final points, and 2 branch ends of each
    for points, n in ((None, 14 + 28), ("annealed", 14 + 28), ("final", 14)):
        r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--json",
                                      *(("--points", points) if points else ())])
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["n_points"] == n and f"({points or 'annealed'} points)" in d["data"]["source"]
    assert d["params"]["beta"] == pytest.approx(TRUE["beta"], abs=0.05)
    r = CliRunner().invoke(main, ["backtest", "--store", str(db), "--law", "chinchilla", "--points",
                                  "annealed", "--train-where", "D < 1e6", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["train_points"] + d["test_points"] == 42
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "data.csv"), "--law", "chinchilla",
                                  "--points", "all"])
    assert r.exit_code == 2 and "The --points option must be given only with --store" in r.stderr


def test_store_errors(tmp_path: Path) -> None:
    foreign = tmp_path / "notastore.db"
    foreign.write_bytes(b"hello, not sqlite")
    r = CliRunner().invoke(main, ["fit", "--store", str(foreign), "--law", "chinchilla"])
    assert r.exit_code == 2 and "error:" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert foreign.read_bytes() == b"hello, not sqlite"
    r = CliRunner().invoke(main, ["fit", "--law", "chinchilla"])
    assert r.exit_code == 2 and "either a DATA file or --store" in r.stderr


@pytest.mark.parametrize("branches", [False, True])
def test_report_from_store(branches: bool, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _store(db, branches)
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "10", "--train-where", "N < 1e5",
                                  "--flops", "1e15", "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text()
    assert "Back-test" in page and "Plan" in page and "[[Parameters]]" in page
    assert f"(annealed points) ({42 if branches else 14} points)" in page   # the fit saw the branch ends


def test_near_optimal_needs_budgets(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _store(db)                       # runs without an IsoFLOP budget (budget_flops = 0)
    before = db.read_bytes()
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--near-optimal", "3"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "groups by 'budget_flops', but 14 rows have none (empty or 0)" in r.stderr
    assert db.read_bytes() == before


def test_report_json_is_one_object(tmp_path: Path) -> None:
    """`report --json` prints one JSON object (the README: every command takes --json); it had no --json."""
    db = tmp_path / "runs.db"
    _store(db)
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["report"] == str(out / "index.html") and (out / "index.html").is_file()
    assert d["store"] == str(db) and d["command"].startswith("scalinglab report --store ")


def test_report_names_the_kind_and_level_of_its_bands(tmp_path: Path) -> None:
    """The IsoFLOP, back-test and plan sections said '95% prediction band' whatever the fit's level, and not
    which interval it is; a fit at --ci-level 0.8 drew 80% bands under a 95% caption."""
    from synthetic_ladder import synthetic_quickstart_store
    db = tmp_path / "runs.db"
    synthetic_quickstart_store(db)     # IsoFLOP budgets, so the IsoFLOP section is drawn
    fit = tmp_path / "fit.json"
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--bootstrap", "10",
                                  "--ci-level", "0.8", "--out", str(fit)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--fit", str(fit), "--flops", "1e15",
                                  "--train-where", "budget_flops < 1e11", "--bootstrap", "10", "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text()
    assert "with its nominal 80% observation prediction band; stars" in page                     # IsoFLOP
    assert "loss with its prediction interval (nominal 80% observation)" in page                 # plan
    assert "with the nominal 80% observation prediction band) beside" in page
    assert "fitted frontier (80% prediction band)" in page
    assert "Bars: the nominal 95% observation prediction intervals" in page   # the back-test's own fit: 95%
    assert "95% prediction band" not in page
