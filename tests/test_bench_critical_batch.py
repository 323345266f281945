"""benchmarks/critical_batch.py's seed mean: the curves of a config averaged over its seeds, point by point."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pandas as pd
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_benchmark("critical_batch.py", "critical_batch_bench")


def _rows(run: str, steps: list[int], losses: list[float], bs: list[float]) -> list[dict[str, object]]:
    return [{"run": run, "branch": 0, "step": s, "loss": x, "B_simple": b, "batch": 512, "N_nonembed": 1000.0}
            for s, x, b in zip(steps, losses, bs)]


def test_seed_mean_averages_common_steps_and_drops_incomplete(bench: ModuleType,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.DataFrame(
        _rows("cb-d48-b512", [1, 2, 4], [3.0, 2.5, 2.0], [100.0, 200.0, 300.0])
        + _rows("cb-d48-b512-s1", [1, 2, 4], [3.5, 2.0, 2.25], [300.0, 100.0, 500.0])
        + _rows("cb-d48-b1024", [1, 2], [3.0, 2.5], [1.0, 1.0])        # seed 1 missing: left out
        + _rows("cb-d96-b512", [1, 3], [4.0, 3.0], [8.0, 8.0])
        + _rows("cb-d96-b512-s1", [1, 2], [5.0, 2.0], [16.0, 16.0]))    # step 3 / step 2 not common: dropped
    out = bench.seed_mean(df, 2).sort_values(["run", "step"]).reset_index(drop=True)
    assert "configs without all 2 seeds" in capsys.readouterr().out
    assert sorted(set(out["run"])) == ["cb-d48-b512", "cb-d96-b512"]
    a = out[out["run"] == "cb-d48-b512"]
    assert a["step"].tolist() == [1, 2, 4]
    assert a["loss"].tolist() == [3.25, 2.25, 2.125]          # exact binary means
    assert a["B_simple"].tolist() == [200.0, 150.0, 400.0]
    assert (a["batch"] == 512).all() and (a["N_nonembed"] == 1000.0).all()
    b = out[out["run"] == "cb-d96-b512"]
    assert b["step"].tolist() == [1] and b["loss"].tolist() == [4.5] and b["B_simple"].tolist() == [12.0]
