"""A point's metrics beyond the store's fixed columns (the trainer's sparsity, N_nonzero, sparse FLOPs)
reach `runs export` and `fit --store --map/--where`, through the real `scalinglab` group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.runconfig import RunConfig
from scalinglab.store import TABLE_COLUMNS, Store

TRUE = {"E": 1.5, "A": 60.0, "B": 90.0, "alpha": 0.3, "beta": 0.3}
EMBEDDING = 200_000   # parameters in N_total that the loss does not see: N_total is not the law's N


def _store(path: Path) -> dict[str, dict[str, float]]:
    """Done runs whose loss follows Chinchilla in the *point's* N_nonzero (a metric), written through the
    store's API; returns each run's final-point metrics."""
    rng = np.random.default_rng(0)
    metrics: dict[str, dict[str, float]] = {}
    with Store(path) as st:
        cfgs = [RunConfig(name=f"r{L}-{d}-{k}", n_layer=L, d_model=d, n_head=d // 16, tokens=4096 * 50 * k)
                for L, d in ((1, 32), (2, 48), (2, 64), (3, 96), (4, 128)) for k in (1, 3, 9)]
        st.add_planned(cfgs)
        for i, cfg in enumerate(cfgs):
            dense = 12 * cfg.n_layer * cfg.d_model**2
            sparsity = (0.0, 0.5, 0.75)[i % 3]
            n_nonzero = round(dense * (1 - sparsity))
            loss = float((TRUE["E"] + TRUE["A"] / n_nonzero ** TRUE["alpha"]
                          + TRUE["B"] / cfg.tokens ** TRUE["beta"]) * np.exp(rng.normal(0, 0.002)))
            final = {"sparsity": sparsity, "N_nonzero": n_nonzero,
                     "flops_sparse_kernel": 6.0 * n_nonzero * cfg.tokens, "c_mul": 1.0 - sparsity / 2}
            metrics[cfg.name] = final
            for step, tokens, value, m in ((1, cfg.batch_tokens, 5.5, {"sparsity": 0.0, "N_nonzero": dense}),
                                       (cfg.steps, cfg.tokens, loss, final)):
                st.add_point(cfg.name, {"step": step, "tokens": tokens, "flops": 1.0, "flops_full": 1.0,
                                        "train_loss": value, "eval_loss": value, "lr": 1e-3, "wall_time": 0.0,
                                        **m})
            st.mark_done(cfg.name, {"N_total": dense + EMBEDDING, "N_nonembed": dense, "N_nonzero": dense,
                                    "tokens": cfg.tokens})
    return metrics


def _invoke(*args: str) -> dict[str, object]:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_export_carries_every_point_metric(tmp_path: Path) -> None:
    db, out = tmp_path / "runs.db", tmp_path / "final.csv"
    metrics = _store(db)
    info = _invoke("runs", "export", "--store", str(db), "--out", str(out), "--final", "--json")
    extra = ["sparsity", "point_N_nonzero", "flops_sparse_kernel", "c_mul"]
    assert info["rows"] == 15 and info["columns"] == [*TABLE_COLUMNS, *extra]
    df = pd.read_csv(out).set_index("run")
    for name, m in metrics.items():
        row = df.loc[name]
        assert (row["sparsity"], row["point_N_nonzero"], row["flops_sparse_kernel"], row["c_mul"]) == (
            m["sparsity"], m["N_nonzero"], m["flops_sparse_kernel"], m["c_mul"])
        assert row["N_nonzero"] == row["N_nonembed"]              # the run's count, not the point's
    every = tmp_path / "every.jsonl"
    _invoke("runs", "export", "--store", str(db), "--out", str(every), "--json")
    points = pd.read_json(every, lines=True)
    assert len(points) == 30 and list(points[points["step"] == 1]["sparsity"]) == [0.0] * 15


def test_fit_maps_n_onto_a_point_metric_and_filters_on_one(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _store(db)
    mapped = _invoke("fit", "--store", str(db), "--law", "chinchilla", "--points", "final",
                     "--map", "N=point_N_nonzero", "--json")
    assert mapped["n_points"] == 15
    params = mapped["params"]
    assert isinstance(params, dict)
    for k in ("alpha", "beta"):
        assert params[k] == pytest.approx(TRUE[k], abs=0.03)
    assert params["A"] == pytest.approx(TRUE["A"], rel=0.1)
    unmapped = _invoke("fit", "--store", str(db), "--law", "chinchilla", "--points", "final", "--json")
    assert isinstance(unmapped["params"], dict)
    assert abs(unmapped["params"]["alpha"] - TRUE["alpha"]) > 0.5   # the run's N_total is not the law's N
    sparse = _invoke("fit", "--store", str(db), "--law", "chinchilla", "--points", "final",
                     "--map", "N=point_N_nonzero", "--where", "sparsity >= 0.5", "--json")
    assert sparse["n_points"] == 10
