"""A store holding imported runs fits without rebuilding their learning-rate curves: an imported run's
config is a placeholder of one token per step, so its "curve" would be one Python call per token seen
(measured: 7 s for a 2e6-token placeholder, so a 1e9-token import would take about an hour and 8 GB). ``Store.run_configs`` leaves
them out of ``add_store_areas`` in ``fit``/``backtest --store``, ``critical-batch`` and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.fit import anneal as fit_anneal
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store
from scalinglab.store.imported import ImportedRun


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    db = tmp_path / "runs.db"
    own = [RunConfig(name=f"own{i}", n_layer=1, d_model=32, n_head=2, context=32, batch_tokens=512,
                     tokens=40 * 512 * (i + 1), lr=3e-3) for i in range(3)]
    with Store(db) as st:
        st.add_planned(own)
        for i, c in enumerate(own):
            st.add_point(c.name, {"step": c.steps, "tokens": c.tokens, "eval_loss": 3.0 - 0.1 * i, "lr": 3e-4})
            st.mark_done(c.name, {"N_total": 40000, "N_nonembed": 12000, "tokens": c.tokens})
        # a tracker's run of 1e9 tokens: its placeholder config has 1e9 steps
        st.add_imported([ImportedRun(name="wandb-big", format="wandb", path="hist/", run_id="abc", metric_keys=("loss",),
                                     fields={"N_total": 1.2e8},
                                     points=[{"step": s, "tokens": s * 10**6, "eval_loss": 4.0 - s / 1000}
                                             for s in (100, 500, 1000)])])
        configs = st.run_configs()
        assert sorted(configs) == ["own0", "own1", "own2"]
        assert {r.name for r in st.runs()} == {*configs, "wandb-big"}
        assert next(r for r in st.runs() if r.name == "wandb-big").config.steps == 10**9
    return db


def test_fit_and_backtest_of_a_store_with_imported_runs(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilt: list[str] = []
    real = fit_anneal.lr_curve

    def spy(config: RunConfig, branch: int = 0, **kw: Any) -> Any:
        rebuilt.append(config.name)
        if config.corpus.startswith("imported:"):     # 1e9 Python calls and 8 GB: fail at once instead
            raise AssertionError(f"the placeholder curve of imported run {config.name} was rebuilt")
        return real(config, branch, **kw)

    monkeypatch.setattr(fit_anneal, "lr_curve", spy)
    r = CliRunner().invoke(main, ["fit", "--store", str(mixed), "--law", "kaplan_d", "--points", "all", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_points"] == 3 + 3           # the imported run's points are fitted
    assert rebuilt == []                                        # kaplan_d reads no curve: none is built
    # an expression that reads an area builds the curves: the store's own runs', never the imported one's
    r = CliRunner().invoke(main, ["fit", "--store", str(mixed), "--law", "kaplan_d", "--points", "all", "--json",
                                  "--where", "S1 > 0 or D > 0"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_points"] == 3 + 3
    assert sorted(rebuilt) == ["own0", "own1", "own2"]
    rebuilt.clear()
    r = CliRunner().invoke(main, ["backtest", "--store", str(mixed), "--law", "kaplan_d", "--points", "all",
                                  "--train-where", "D < 1e8 or S1 < 0"])
    assert r.exit_code == 0, r.output
    assert "wandb-big" not in rebuilt and rebuilt
    rebuilt.clear()
    CliRunner().invoke(main, ["critical-batch", "--store", str(mixed), "--target-loss", "3.5"])
    assert "wandb-big" not in rebuilt and rebuilt
