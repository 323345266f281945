"""`scalinglab quickstart` end to end, on a shrunken ladder (tiny context and batch) so it runs in seconds.

The full-size figures (time under 15 minutes, back-test error under 3%, extrapolation) are measured by
``make quickstart`` and ``benchmarks/ladder_extrapolation.py``, not here.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from scalinglab import accounting
from scalinglab import quickstart as qs
from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.ladder import ladderfile, schedules
from scalinglab.store import Store


@pytest.fixture
def tiny_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(qs.SETTINGS, "context", 32)
    monkeypatch.setitem(qs.SETTINGS, "batch_tokens", 256)
    monkeypatch.setitem(qs.SETTINGS, "eval_tokens", 1024)
    monkeypatch.setitem(qs.SETTINGS, "evals", 3)


def test_design_fits_the_time_budget_and_follows_the_shape_rule(tiny_settings: None) -> None:
    runs, estimate = qs.design_ladder(0.5, workers=2)
    assert estimate <= 0.5 * 60 * qs.SHARE_TRAINING
    top = max(r.budget_flops for r in runs)
    budgets = qs.ladder_budgets(runs)
    assert qs.RATIOS == (1, 2, 4, 8, 16, 32)
    assert budgets == pytest.approx([top * q / 32 for q in qs.RATIOS])
    # the runs of a shape are merged into its longest (ladder.merge): every point, a run's end or one of
    # its cooldown-branch ends, lies within half a batch of its own budget (budget_flops, or the
    # branch's entry of branch_budgets), and every budget has points
    n_points, shapes, seen = 0, [], set()
    for r in runs:
        assert r.schedule.name == "wsd" and r.schedule.warmup_steps == qs.WARMUP_STEPS
        fpt = accounting.counts(r)["flops_per_token_full"]
        ends = [r.steps] + [b.end_step for b in schedules.branches(r.schedule, r.lr, r.steps)]
        own = [r.budget_flops, *r.branch_budgets]
        assert len(own) == len(ends)
        for end, b in zip(ends, own):
            assert abs(fpt * end * r.batch_tokens - b) <= fpt * r.batch_tokens / 2
            seen.add(b)
        n_points += len(ends)
        shapes.append((r.n_layer, r.d_model))
    assert seen == set(budgets)
    assert n_points > len(runs) and len(set(shapes)) == len(shapes)   # merged: one run per shape
    for r in runs:
        assert r.n_layer >= qs.SHAPE.min_layers
        assert qs.SHAPE.width_step is not None and r.d_model % qs.SHAPE.width_step == 0
        assert r.d_model // r.n_head >= qs.SHAPE.head_dim or r.n_head == 1
        # the learning rate rule: lr (ref / d_model) ** exponent
        scale = (qs.SHAPE.lr_ref_width / r.d_model) ** qs.SHAPE.lr_width_exponent
        assert r.lr == pytest.approx(qs.SETTINGS["lr"] * scale, rel=1e-3)
    # a longer budget designs a larger ladder
    bigger, _ = qs.design_ladder(2.0, workers=2)
    assert max(r.budget_flops for r in bigger) > top


def test_a_short_time_budget_drops_the_smallest_ratios(caplog: pytest.LogCaptureFixture) -> None:
    """The full-size settings (design only, nothing trained): 10 minutes buy all six budgets; 3 minutes
    cannot give the 1/32 budget's runs their minimum steps, so the two smallest ratios go (with a
    warning) and the ladder keeps MIN_BUDGETS budgets at 1:2:4:8 of a smaller largest budget."""
    full, _ = qs.design_ladder(10, workers=2)
    assert len(qs.ladder_budgets(full)) == len(qs.RATIOS) == 6
    with caplog.at_level("WARNING", logger="scalinglab.quickstart"):
        short, est = qs.design_ladder(3, workers=2)
    budgets = qs.ladder_budgets(short)
    assert len(budgets) == qs.MIN_BUDGETS and est <= 3 * 60 * qs.SHARE_TRAINING
    assert [b / budgets[0] for b in budgets] == pytest.approx([1, 2, 4, 8])
    assert budgets[-1] < max(r.budget_flops for r in full)
    assert "too short for budget ratios 1:2:4:8:16:32: using 1:2:4:8" in caplog.text


def test_a_budget_too_short_is_a_clear_error(tiny_settings: None, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the library names its parameter; the command line names its option
    with pytest.raises(ConfigError, match="The quickstart time budget 'minutes' must be long enough"):
        qs.design_ladder(0.001, workers=2)
    monkeypatch.setattr(qs, "SHARE_TRAINING", 1e-4)   # --minutes 0.5 leaves 3 ms for training: too short
    r = CliRunner().invoke(main, ["quickstart", "--minutes", "0.5", "--out", str(tmp_path / "qs"), "--no-progress"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "The quickstart time budget --minutes must be long enough" in r.stderr
    assert not (tmp_path / "qs" / "runs.db").exists()


@pytest.mark.slow
def test_quickstart_end_to_end_and_resume(tiny_settings: None, tmp_path) -> None:
    out = tmp_path / "qs"
    result = CliRunner().invoke(main, ["quickstart", "--minutes", "0.5", "--out", str(out), "--bootstrap", "20",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert str(out / "index.html") in result.output
    summary = json.loads((out / "summary.json").read_text())
    runs = ladderfile.read_toml(out / "ladder.toml")
    assert summary["runs"] == len(runs) and not summary["failed"]
    # fitted on every budget but the largest, back-tested on the largest: one point per design run (a
    # merged run's final point and branch ends); only runs' final points can reach the largest budget
    held_out = max(r.budget_flops for r in runs)
    assert summary["ladder"]["held_out_budget"] == pytest.approx(held_out)
    assert summary["backtest"]["test_points"] == sum(r.budget_flops == held_out for r in runs)
    n_points = sum(1 + len(r.schedule.branches) for r in runs)
    assert summary["points"] == n_points > len(runs)
    assert summary["backtest"]["train_points"] == n_points - summary["backtest"]["test_points"]
    assert summary["fit"]["n_points"] == summary["backtest"]["train_points"]
    # every branch point is filed under the budget of the run it stands for (branch_budgets)
    with Store(out / "runs.db", create=False) as st:
        table = st.to_table(points="annealed")
    assert sorted(table["budget_flops"].unique()) == pytest.approx(qs.ladder_budgets(runs))
    assert len(qs.ladder_budgets(runs)) == len(qs.RATIOS)
    assert summary["fit"]["law"] == qs.LAW == "chinchilla"
    alt = summary["backtest_alt"]
    assert alt["law"] == qs.ALT_LAW == "chinchilla_tied" and alt["test_points"] == summary["backtest"]["test_points"]
    are = summary["backtest"]["are_mean"]
    assert 0 < are < 1
    assert set(summary["fit"]["params"]) == {"E", "A", "B", "alpha", "beta"}
    plan = summary["plan"]
    assert plan["flops_convention"] == "6 N_total D"
    assert 6 * plan["N"] * plan["D"] == pytest.approx(plan["flops"], rel=1e-6)
    assert plan["interval"][0] <= plan["loss"] <= plan["interval"][1]
    # the plan says how many epochs of the corpus its D is (the embedded corpus is small)
    assert plan["epochs"] == pytest.approx(plan["D"] / plan["unique_tokens"])
    # and holds D to MAX_EPOCHS of it (plan(max_tokens=...)), saying so when the optimum wanted more
    assert plan["max_epochs"] == qs.MAX_EPOCHS and plan["epochs"] <= qs.MAX_EPOCHS * (1 + 1e-12)
    assert plan["data_constrained"] == ("unconstrained" in plan)
    if plan["data_constrained"]:
        assert plan["unconstrained"]["D"] > plan["D"] and plan["unconstrained"]["N"] < plan["N"]
        assert any("holds D to" in w for w in plan["warnings"])
    assert any("epochs of the corpus" in w for w in plan.get("warnings", [])) == (plan["epochs"] > 1)
    html = (out / "index.html").read_text()
    assert "IsoFLOP" in html and "back-test" in html.lower()
    # the report: inline SVG figures, no image, under 1.5 MB, its footer names the command
    assert html.count("<figure class='sl-fig'") == 6 and "data:image/png" not in html
    assert len(html.encode()) < 1.5e6
    assert "scalinglab quickstart --minutes 0.5" in html and "store sha256" in html

    def n_points() -> int:
        with sqlite3.connect(out / "runs.db") as con:
            return int(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])

    # a run outside the ladder (another study's, in the same store) at the held-out budget, with an
    # absurd loss: the quickstart fits, back-tests and reports its own ladder only
    import dataclasses

    from scalinglab.ladder.train import describe

    top_run = next(r for r in runs if r.budget_flops == held_out)
    foreign = dataclasses.replace(top_run, name="not-the-ladder", group="other", lr=top_run.lr / 2)
    with Store(out / "runs.db") as st:
        st.add_planned([foreign], describe=describe)
        st.add_point("not-the-ladder", {"step": top_run.steps, "tokens": top_run.steps * top_run.batch_tokens,
                                        "eval_loss": 0.01})
        st.mark_done("not-the-ladder", {"final_loss": 0.01})
    before = n_points()
    # re-running resumes: the same ladder file (whatever --minutes says now), nothing trained again
    again = CliRunner().invoke(main, ["quickstart", "--minutes", "3", "--out", str(out), "--bootstrap", "20",
                                      "--no-progress"])
    assert again.exit_code == 0, again.output
    assert n_points() == before
    summary2 = json.loads((out / "summary.json").read_text())
    assert summary2["runs"] == summary["runs"]
    assert summary2["backtest"]["are_mean"] == pytest.approx(are, rel=1e-12)
    assert summary2["points"] == summary["points"]
    assert summary2["backtest"]["test_points"] == summary["backtest"]["test_points"]


def test_a_ladder_file_from_before_branch_budgets_is_refused(tiny_settings: None, tmp_path) -> None:
    import dataclasses

    runs, _ = qs.design_ladder(0.5, workers=2)
    assert any(r.branch_budgets for r in runs)
    out = tmp_path / "old"
    out.mkdir()
    ladderfile.write_toml(out / "ladder.toml", [dataclasses.replace(r, branch_budgets=()) for r in runs])
    before = (out / "ladder.toml").read_bytes()
    r = CliRunner().invoke(main, ["quickstart", "--out", str(out), "--no-progress"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "predates branch budgets" in r.stderr and not (out / "runs.db").exists()
    assert (out / "ladder.toml").read_bytes() == before
