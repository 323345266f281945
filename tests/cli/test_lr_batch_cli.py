"""`scalinglab lr-batch`: the Adam learning-rate-vs-batch exponent of a stored lr x batch grid whose
optimum is known (a parabola in ln lr with vertex at lr0 (B/B0)^k), and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.fit.steplaw import lr_batch_exponent
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

K = 0.35                      # the grid's true exponent (not the square-root rule's 0.5)
LRS = np.geomspace(1e-4, 3e-1, 12)


def _loss(n_total: float, batch: int, lr: float) -> float:
    best = 0.01 * (n_total / 1e6) ** -0.3 * (batch / 256) ** K
    return 3.0 + 0.04 * (np.log(lr) - np.log(best)) ** 2


def _grid_store(path: Path, noise: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    tokens = 100_000
    with Store(path) as st:
        for d_model, n_total in ((32, 1e6), (48, 2e6)):
            for b in (256, 512, 1024, 2048):
                for lr in LRS:
                    cfg = RunConfig(name=f"g{d_model}-b{b}-lr{lr:.3g}", d_model=d_model, tokens=tokens,
                                    batch_tokens=b, lr=float(lr))
                    st.add_planned([cfg])
                    d = (tokens // b) * b     # whole batches: D differs slightly between batches
                    loss = _loss(n_total, b, lr) + noise * rng.standard_normal()
                    st.add_point(cfg.name, {"step": tokens // b, "tokens": d, "eval_loss": loss, "train_loss": loss,
                                            "lr": float(lr)})
                    st.mark_done(cfg.name, {"N_total": n_total, "N_nonembed": 0.8 * n_total, "tokens": d})


def test_exponent_of_a_known_grid_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "grid.db"
    _grid_store(db)
    out = tmp_path / "k.json"
    r = CliRunner().invoke(main, ["lr-batch", "--store", str(db), "--map", "N=N_total", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["exponent"] == pytest.approx(K, abs=1e-9)        # a parabola's vertex is exact
    assert d["n_cells"] == 2 and d["n_edges"] == 0            # D within 5% merged: one cell per N
    assert [c["batches"] for c in d["by_cell"]] == [4, 4]
    for c in d["by_cell"]:
        assert c["exponent"] == pytest.approx(K, abs=1e-9)
    assert json.loads(out.read_text())["exponent"] == pytest.approx(K, abs=1e-9)
    r = CliRunner().invoke(main, ["lr-batch", "--store", str(db), "--map", "N=N_total"])
    assert r.exit_code == 0 and "k = 0.35" in r.output, r.output


def test_interval_covers_the_exponent_of_a_noisy_grid(tmp_path: Path) -> None:
    db = tmp_path / "grid.db"
    _grid_store(db, noise=0.002)
    with Store(db, create=False) as st:
        df = st.to_table(points="final").assign(N=lambda t: t["N_total"])
    res = lr_batch_exponent(df)
    lo, hi = res["interval"]
    assert lo < K < hi and hi - lo < 0.3
    assert res["stderr"] > 0 and res["level"] == 0.95
    r = CliRunner().invoke(main, ["lr-batch", "--store", str(db), "--map", "N=N_total"])
    text = " ".join(r.output.split())       # the console wraps long lines
    assert r.exit_code == 0 and f"95% interval [{lo:.6g}, {hi:.6g}] (square-root rule" in text, text  # numbers, not quoted strings
    # no merging of D (98,304 .. 99,840 tokens): batches 256 and 512 alone share a cell per N
    split = lr_batch_exponent(df, d_rtol=0.0)
    assert split["n_cells"] == 6 and sorted(c["batches"] for c in split["by_cell"]) == [1, 1, 1, 1, 2, 2]


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    pd.DataFrame({"N": 1e6, "D": 1e8, "batch": 256, "lr": LRS, "loss": [_loss(1e6, 256, lr) for lr in LRS]}).to_csv(
        f, index=False)
    bad = tmp_path / "bad.csv"         # a dimensionless column's message read "Column 'lr' (1) of data"
    pd.read_csv(f).assign(lr=lambda d: d["lr"].where(d.index != 1, -1.0)).to_csv(bad, index=False)
    for args, msg in [(["lr-batch", str(f)], "at least 2 batch sizes"),
                      (["lr-batch"], "exactly one"),
                      # the options by their names (they read 'The interval level', 'd_rtol')
                      (["lr-batch", str(f), "--ci-level", "2"], "error: --ci-level must be a number in (0, 1). Got 2.0"),
                      (["lr-batch", str(f), "--d-rtol", "-1"], "The relative tolerance --d-rtol of D must be a number"),
                      (["lr-batch", str(bad)], "error: Column 'lr' of data (line 3) must be a positive number. Got "
                                               "-1.0 instead.")]:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.output)
