"""``fit --store`` builds the learning-rate curves of its runs once, and only when the law (or an expression)
reads them: ``store_curves`` builds each run's main line once and its cooldown branches from it, with the
same numbers as ``lr_curve`` line by line; a chinchilla fit from a store skips them and gives the same
FIT.json as with them; an anneal fit's decay profile reuses one build for every lambda."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import fitting as cli_fitting
from scalinglab.cli import main
from scalinglab.fit import anneal as fa
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

STEPS = 400


def configs() -> list[RunConfig]:
    wsd = ScheduleConfig(name="wsd", warmup_steps=20, decay_frac=0.25, final_lr_frac=0.0, branches=(0.25, 0.5))
    return [RunConfig(name=f"r{d}", n_layer=2, d_model=d, n_head=2, context=32, batch_tokens=4096,
                      tokens=4096 * (STEPS + 40 * i), lr=3e-3, evals=10, schedule=wsd)
            for i, d in enumerate((32, 48, 64, 80))]


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """Four WSD runs with two cooldown branches each; losses from a Chinchilla-shaped law in N and D."""
    db = tmp_path / "runs.db"
    cfgs = configs()
    with Store(db) as st:
        st.add_planned(cfgs)
        for c in cfgs:
            n = 1000.0 * c.d_model
            for s in range(40, c.steps + 1, 40):
                st.add_point(c.name, {"step": s, "tokens": s * 4096, "eval_loss": 1.8 + 40 / n ** 0.3 + 300 / (s * 4096) ** 0.3})
            for b, f in enumerate((0.25, 0.5), 1):
                e = round(f * c.steps)
                st.add_point(c.name, {"step": e, "tokens": e * 4096, "branch": b,
                                      "eval_loss": 1.75 + 40 / n ** 0.3 + 300 / (e * 4096) ** 0.3})
            st.mark_done(c.name, {"N_total": 2 * n, "N_nonembed": n, "tokens": c.tokens})
    return db


def test_store_curves_are_lr_curve_line_by_line(store: Path) -> None:
    with Store(store, create=False) as st:
        df, cfgs = st.to_table(points="all"), st.run_configs()
    curves = fa.store_curves(df, cfgs)
    assert len(curves) == 4 * 3
    for (run, branch), eta in curves.items():
        assert eta is not None
        np.testing.assert_array_equal(eta, fa.lr_curve(cfgs[run], branch))   # exact: the same schedule calls
    ref = fa.add_store_areas(df, cfgs)
    again = fa.add_store_areas(df, cfgs, curves=curves)
    assert ref.equals(again)


def test_a_missing_branch_has_no_curve(store: Path) -> None:
    with Store(store, create=False) as st:
        df, cfgs = st.to_table(points="all"), st.run_configs()
    df.loc[df.index[0], "branch"] = 7
    curves = fa.store_curves(df, cfgs)
    assert curves[(df["run"].iloc[0], 7)] is None
    assert np.isnan(fa.add_store_areas(df, cfgs)["S1"].iloc[0])


def test_decay_profile_builds_the_curves_once(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = fa.store_curves
    monkeypatch.setattr(fa, "store_curves", lambda df, cfgs: calls.append(1) or real(df, cfgs))
    with Store(store, create=False) as st:
        df, cfgs = st.to_table(points="all"), st.run_configs()
    fit = fa.fit_decay_profile(df, cfgs)
    assert calls == [1] and len(fit.data["anneal_decay_profile"]) == len(fa.DECAYS)


def test_needs_areas() -> None:
    assert cli_fitting.needs_areas("anneal") and cli_fitting.needs_areas("multipower_offset")
    assert not cli_fitting.needs_areas("chinchilla", "N > 1e4", None, "budget_flops")
    assert cli_fitting.needs_areas("chinchilla", "S1 > 0.1")
    assert cli_fitting.needs_areas("chinchilla", None, "D=S1 * 4096")
    assert not cli_fitting.needs_areas("chinchilla", "S10 > 0", "curves > 1")   # whole names only


def test_chinchilla_from_a_store_is_the_same_without_the_curves(store: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = fa.store_curves
    monkeypatch.setattr(fa, "store_curves", lambda df, cfgs: built.append(1) or real(df, cfgs))
    args = ["fit", "--store", str(store), "--law", "chinchilla", "--points", "all", "--bootstrap", "8", "--json"]
    lazy = CliRunner().invoke(main, args)
    assert lazy.exit_code == 0, lazy.output
    assert built == []                                   # chinchilla reads no curve
    monkeypatch.setattr(cli_fitting, "needs_areas", lambda *a: True)
    eager = CliRunner().invoke(main, args)
    assert eager.exit_code == 0, eager.output
    assert built == [1]
    a, b = json.loads(lazy.stdout), json.loads(eager.stdout)
    assert a == b                                        # every number of the fit, bit for bit
    # an expression naming an area still gets it
    r = CliRunner().invoke(main, [*args, "--where", "S1 > 0.2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_points"] < a["n_points"]
