"""benchmarks/ladder_extrapolation.py's pieces: the table over seeds and the kept 10x run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("torch")

from scalinglab.runconfig import RunConfig  # noqa: E402
from scalinglab.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_benchmark("ladder_extrapolation.py", "ladder_extrapolation_bench")


def _rec(seed: int, predicted: float, measured: float, lo: float, hi: float) -> dict[str, Any]:
    err = 100 * (predicted - measured) / measured
    return {"seed": seed, "budgets": [1.0] * 6, "runs": 6, "points": 20, "predicted": predicted,
            "measured": measured, "interval_80": [lo, hi], "error_pct": err, "abs_error_pct": abs(err),
            "inside_80": lo <= measured <= hi, "inside_95": True, "interval_kind": "extrapolation-calibrated",
            "trained": {"n_layer": 2, "d_model": 96, "N_total": 250_000, "tokens": 10_000_000, "epochs": 0.9}}


def test_table_states_each_seed_and_the_mean_absolute_error(bench: ModuleType) -> None:
    # errors +1%, -2%, +0.5%: mean |error| 3.5/3 = 1.17%; the second seed falls outside its interval
    recs = [_rec(0, 1.01, 1.0, 0.99, 1.02), _rec(1, 0.98, 1.0, 0.95, 0.99), _rec(2, 2.01, 2.0, 1.9, 2.1)]
    out = bench.table(recs).splitlines()
    assert len(out) == 5
    assert "+1.00%" in out[1] and "-2.00%" in out[2] and "+0.50%" in out[3]
    assert out[4].startswith("mean absolute error 1.17% over 3 seeds; inside the 80% interval: 2/3, the 95%: 3/3")


def test_the_10x_run_is_trained_once_then_reused(bench: ModuleType, tmp_path: Path) -> None:
    cfg = RunConfig(name="extrapolation-tiny", n_layer=1, d_model=16, n_head=1, context=32, tokens=6 * 256,
                    batch_tokens=256, lr=1e-2, evals=2, eval_tokens=512, seed=0, dtype="float32")
    store = tmp_path / "extrapolation.db"
    first, reused = bench.train_big(cfg, store, threads=1)
    assert not reused and first["steps"] == 6
    again, reused = bench.train_big(cfg, store, threads=1)
    assert reused and again["final_loss"] == first["final_loss"]
    with Store(store, create=False) as s:
        assert [r.name for r in s.runs()] == ["extrapolation-tiny"]


def test_the_trained_shape_keeps_the_plans_data_limit(bench: ModuleType) -> None:
    # seed 2's plan: N = 9.53e4 at C = 2.02e13 (6 N_total D). The nearest shape, 2 x 48 (N_total 73,968),
    # would train 45.4M tokens, 4.07 epochs of the 11.17M-token corpus, past the plan's 4-epoch limit;
    # within the limit the nearest is 2 x 64 (N_total 123,200: 27.3M tokens, 2.44 epochs)
    c, n, limit = 20166703349760.0, 9.53e4, 4 * 11_171_747
    assert bench.shape_for_total(n, 128, 256) == {"n_layer": 2, "d_model": 48, "n_head": 3}
    s = bench.shape_for_total(n, 128, 256, flops=c, batch_tokens=2048, max_tokens=limit)
    assert s == {"n_layer": 2, "d_model": 64, "n_head": 4}
    # a plan whose nearest shape is within the limit keeps it
    assert bench.shape_for_total(1.08e5, 128, 256, flops=c, batch_tokens=2048, max_tokens=limit) == s
    tot = {48: 73_968, 64: 123_200}
    assert round(c / (6 * tot[48]) / 2048) * 2048 > limit >= round(c / (6 * tot[64]) / 2048) * 2048
