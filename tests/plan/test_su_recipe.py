"""Su et al.'s recipe end to end on a store of curves drawn from known Kaplan laws: the critical
batch law, kaplan_steps on S_min, and the trajectory of a held-out run (`critical-batch --su-held-out`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import DataError, ParameterError
from scalinglab.plan.steps import loss_trajectory
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

KS = {"N_c": 1e5, "alpha_N": 0.3, "S_c": 50.0, "alpha_S": 0.7}
B_STAR, ALPHA_B = 2000 * 1.3 ** 5, 0.2          # B_crit(1.3) = 2000 tokens
BATCHES = (256, 512, 1024, 2048, 4096, 8192)
SIZES = (2e5, 6e5)


def _store(path: Path) -> None:
    """Six batches, 120 log-spaced evals per run (``_small_store`` with more of both)."""
    _small_store(path, batches=BATCHES, points=120)


@pytest.mark.slow
def test_su_recipe_recovers_the_laws_and_the_held_out_trajectory(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _store(db)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--target-loss",
                                  "1.6", "--target-loss", "1.3", "--su-held-out", "n6e05-b2048", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for f in d["fits"]:
        assert f["B_crit"] == pytest.approx(B_STAR / f["target"] ** (1 / ALPHA_B), rel=0.02)
    assert d["pooled"]["vs_loss"]["alpha_B"] == pytest.approx(ALPHA_B, rel=0.02)
    su = d["su"]
    assert su["kaplan_steps"]["alpha_S"] == pytest.approx(KS["alpha_S"], rel=0.02)
    assert su["loss_floor"] == pytest.approx((KS["N_c"] / 6e5) ** KS["alpha_N"], rel=0.02)
    assert su["mean_abs_rel_error"] < 0.005
    assert su["to_target"]["steps"] > su["to_target"]["S_min"]


def test_su_held_out_must_be_a_run(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store(db) as st:
        st.add_planned([RunConfig(name="a")])
        st.add_point("a", {"step": 10, "tokens": 40960, "eval_loss": 3.0})
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0",
                                  "--su-held-out", "nope"])
    assert r.exit_code == 2 and "'nope'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- the joint fit (kaplan_steps_batch) and the leave-one-run-out choice ------------------------------
def _small_store(path: Path, batches=(256, 1024, 4096, 16384), points: int = 14,
                 held_back: dict[str, float] | None = None) -> None:
    """Curves drawn from the known laws, ``points`` log-spaced evals per run, warmup 5 steps; the runs of
    ``held_back`` have their losses times that factor (off the law)."""
    steps = np.unique(np.geomspace(10, 20000, points).astype(int))
    with Store(path) as st:
        cfgs = {(n, b): RunConfig(name=f"n{n:.0e}-b{b}".replace("+", ""), batch_tokens=b, tokens=b * 20000,
                                  schedule=ScheduleConfig(name="constant", warmup_steps=5))
                for n in SIZES for b in batches}
        st.add_planned(cfgs.values())
        for (n, b), c in cfgs.items():
            loss = loss_trajectory(steps.astype(float), n, float(b), params=KS, B_star=B_STAR, alpha_B=ALPHA_B)
            loss = loss * (held_back or {}).get(c.name, 1.0)
            for s, L in zip(steps, loss):
                st.add_point(c.name, {"step": int(s), "tokens": int(s) * b, "eval_loss": float(L)})
            st.mark_done(c.name, {"N_total": int(2 * n), "N_nonembed": int(n), "tokens": c.tokens})


@pytest.mark.slow
def test_joint_fit_recovers_the_laws_and_the_held_out_trajectory(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _small_store(db, points=10)
    out = tmp_path / "cb.json"
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--target-loss",
                                  "1.6", "--su-held-out", "n6e05-b1024", "--su-fit", "joint", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Su et al. (joint, window 1 x warmup): B_crit = " in r.output
    su = json.loads(out.read_text())["su"]
    assert su["method"] == "joint" and su["window"] == 1.0
    assert su["B_crit_law"]["B_star"] == pytest.approx(B_STAR, rel=1e-4)
    assert su["B_crit_law"]["alpha_B"] == pytest.approx(ALPHA_B, rel=1e-4)
    for k, v in KS.items():
        assert su["kaplan_steps"][k] == pytest.approx(v, rel=1e-4), k
    assert su["mean_abs_rel_error"] < 1e-6 and su["points"] == 10
    # steps to the lowest target at the held-out batch, from the recovered constants (closed form)
    floor = (KS["N_c"] / 6e5) ** KS["alpha_N"]
    S_min = KS["S_c"] / (1.6 - floor) ** (1 / KS["alpha_S"])
    Bc = B_STAR / 1.6 ** (1 / ALPHA_B)
    assert su["to_target"]["S_min"] == pytest.approx(S_min, rel=1e-3)
    assert su["to_target"]["steps"] == pytest.approx(S_min * (1 + Bc / 1024), rel=1e-3)


def test_leave_one_out_and_selection_on_exact_curves(tmp_path: Path) -> None:
    from scalinglab.plan.su import su_leave_one_out, su_select

    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096), points=10)
    with Store(db, create=False) as st:
        from scalinglab.fit.anneal import add_store_areas
        df = add_store_areas(st.to_table(points="all", failed=False), {r.name: r.config for r in st.runs()})
    # a coarse 2^6 grid of starts (optimisation scale: ln N_c, alpha_N, ln S_c, alpha_S, ln B_*, alpha_B)
    grid = np.array(np.meshgrid([10.0, 20.0], [0.1, 0.5], [3.0, 8.0], [0.5, 1.0], [8.0, 12.0], [0.1, 0.3])).reshape(6, -1).T
    loo = su_leave_one_out(df, method="joint", starts=grid)
    assert len(loo["runs"]) == 6 and loo["mean"] < 1e-6          # exact curves: every fold predicts exactly
    assert set(r for r, v in loo["runs"].items() if 256 < v["batch"] < 4096) == {"n2e05-b1024", "n6e05-b1024"}
    # a tie (both exact) keeps the earlier candidate
    sel = su_select(df, [("joint", 2.0), ("joint", 1.0)], starts=grid)
    assert sel["chosen"] == ("joint", 2.0) and len(sel["scores"]) == 2
    # three batch sizes: without one run, no target is reached at 3 batches, so no two-stage fold can be fitted;
    # auto chose nothing and exited 2 (was: the DataError of two-stage ended the whole selection)
    sel = su_select(df, [("two-stage", 1.0), ("joint", 1.0)], targets=[2.0], starts=grid)
    assert sel["chosen"] == ("joint", 1.0)
    assert sel["scores"][0]["mean"] is None and "no fold could be fitted" in sel["scores"][0]["failed"]["every fold"]
    with pytest.raises(DataError, match="no candidate could be fitted; two-stage"):
        su_select(df, [("two-stage", 1.0)], targets=[2.0])
    with pytest.raises(ParameterError, match="target losses of the two-stage"):
        su_leave_one_out(df, method="two-stage")
    with pytest.raises(ParameterError, match="'window'"):
        su_leave_one_out(df, method="joint", window=0.5)
    with pytest.raises(ParameterError, match="fitting method"):
        su_leave_one_out(df, method="three-stage", targets=[2.0])


@pytest.mark.parametrize("args, needle", [
    (["--su-fit", "joint", "--su-window", "0.5"], "--su-window"),
    (["--su-fit", "auto", "--su-windows", "1,x"], "--su-windows"),
    (["--su-fit", "auto", "--su-windows", "0"], "--su-windows"),
    (["--su-fit", "joint-trimmed", "--su-trim", "1"], "--su-trim"),
    (["--su-fit", "joint", "--su-trim", "3"], "--su-trim"),
    (["--su-fit", "auto", "--su-trim", "nan"], "--su-trim"),
    (["--su-fit", "auto", "--su-methods", "joint,three-stage"], "--su-methods"),
    (["--su-fit", "auto", "--su-methods", "two-stage"], "--su-methods"),
    (["--su-fit", "auto", "--su-score", "nearest"], "--su-score"),
    (["--su-fit", "joint", "--su-score", "all"], "--su-score"),
    (["--su-fit", "two-stage", "--su-methods", "joint-width"], "--su-methods"),
    (["--su-fit", "two-stage", "--su-window", "2"], "--su-window"),
])
def test_bad_su_options_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096), points=6)
    before = db.read_bytes()
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0",
                                  "--su-held-out", "n6e05-b1024", *args])
    assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert db.read_bytes() == before


def test_joint_fit_needs_two_batch_sizes(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _small_store(db, batches=(1024,), points=6)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0",
                                  "--su-held-out", "n6e05-b1024", "--su-fit", "joint"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output


@pytest.mark.slow
def test_auto_chooses_on_the_fit_runs_and_reports_the_scores(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096), points=8)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--target-loss", "1.6",
                                  "--su-held-out", "n6e05-b1024", "--su-fit", "auto", "--su-windows", "1,2"])
    # without one more run, two-stage has 2 batch sizes of N = 6e5 left: its folds for N = 2e5 cannot be
    # fitted, are listed, and it is not chosen
    assert r.exit_code == 0, r.output
    assert "two-stage: mean |rel err|" in r.output and "fold(s) could not be fitted" in r.output
    db.unlink()
    _small_store(db, batches=(256, 1024, 4096, 16384), points=8)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--target-loss", "1.6",
                                  "--su-held-out", "n6e05-b1024", "--su-fit", "auto", "--su-windows", "1,2", "--json"])
    assert r.exit_code == 0, r.output
    su = json.loads(r.stdout)["su"]
    sel = su["selection"]
    assert [(s["method"], s["window"]) for s in sel] == [("two-stage", 1.0), ("joint", 1.0), ("joint", 2.0)]
    assert all(len(s["runs"]) + len(s["failed"]) == 7 and "n6e05-b1024" not in s["runs"] for s in sel)
    # exact curves: the joint folds predict exactly, the two-stage ones only as well as the hyperbolas
    assert sel[1]["mean"] < 1e-6 and sel[1]["mean"] < sel[0]["mean"]
    assert (su["method"], su["window"]) == ("joint", 1.0) and su["mean_abs_rel_error"] < 1e-6


# -- joint-width (one width, alpha_N held at 1), the choice of folds, the thirds ----------------------
def _table(path: Path):
    with Store(path, create=False) as st:
        from scalinglab.fit.anneal import add_store_areas
        return add_store_areas(st.to_table(points="all", failed=False), {r.name: r.config for r in st.runs()})


def test_joint_width_recovers_one_widths_laws_and_its_floor(tmp_path: Path) -> None:
    from scalinglab.plan.su import fit_su_method, su_backtest, su_leave_one_out

    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096), points=10)
    df = _table(db)
    fit, bs, ab = fit_su_method(df, "joint-width", N=6e5)
    assert fit.params["alpha_N"] == 1.0                              # held: one N identifies the floor only
    assert fit.params["N_c"] / 6e5 == pytest.approx((KS["N_c"] / 6e5) ** KS["alpha_N"], rel=1e-4)
    assert (bs, ab) == (pytest.approx(B_STAR, rel=1e-4), pytest.approx(ALPHA_B, rel=1e-4))
    for k in ("S_c", "alpha_S"):
        assert fit.params[k] == pytest.approx(KS[k], rel=1e-4), k
    # the fit saw the N = 6e5 runs only: the other width's floor is not its own
    other = su_backtest(df, "n2e05-b1024", fit, bs, ab)
    assert other["mean_abs_rel_error"] > 0.01
    bt = su_backtest(df, "n6e05-b1024", fit, bs, ab)
    assert bt["mean_abs_rel_error"] < 1e-6 and len(bt["thirds"]) == 3
    # each fold of a width is fitted on that width's other runs: exact curves, exact predictions
    loo = su_leave_one_out(df, method="joint-width")
    assert len(loo["runs"]) == 6 and loo["mean"] < 1e-6 and not loo["failed"]
    with pytest.raises(ParameterError, match="'N' of a joint-width fit"):
        fit_su_method(df, "joint-width")
    with pytest.raises(DataError, match="N_nonembed 1000:"):
        fit_su_method(df, "joint-width", N=1e3)


def test_thirds_split_the_mean_error_exactly(tmp_path: Path) -> None:
    from scalinglab.plan.su import fit_su_method, su_backtest

    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096), points=10)
    df = _table(db)
    fit, bs, ab = fit_su_method(df, "joint-width", N=6e5)
    bt = su_backtest(df, "n2e05-b4096", fit, bs, ab)                  # another width: a real error
    sizes = [len(x) for x in np.array_split(np.arange(bt["points"]), 3)]
    rel = [abs(c["predicted"] / c["loss"] - 1) for c in bt["curve"]]
    assert bt["thirds"] == pytest.approx([np.mean(rel[:sizes[0]]), np.mean(rel[sizes[0]:sizes[0] + sizes[1]]),
                                          np.mean(rel[sizes[0] + sizes[1]:])], rel=1e-12)
    assert np.dot(bt["thirds"], sizes) / sum(sizes) == pytest.approx(bt["mean_abs_rel_error"], rel=1e-12)


def test_score_runs_and_choose_by_the_folds_like_the_held_out_run(tmp_path: Path) -> None:
    from scalinglab.plan.su import su_choose, su_score_runs

    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096, 16384), points=6)
    df = _table(db)
    fit_df = df[df["run"] != "n6e05-b1024"]
    assert su_score_runs(fit_df, "interior", N=6e5) is None
    assert su_score_runs(fit_df, "all") == sorted(set(fit_df["run"]))
    assert su_score_runs(fit_df, "same-width", N=6e5) == ["n6e05-b16384", "n6e05-b256", "n6e05-b4096"]
    assert su_score_runs(fit_df, "same-width-interior", N=6e5) == ["n6e05-b4096"]
    with pytest.raises(ParameterError, match="'score'"):
        su_score_runs(fit_df, "nearest")
    with pytest.raises(DataError, match="N_nonembed 700000"):
        su_score_runs(fit_df, "same-width", N=7e5)

    def sc(errs: dict[str, float], batches: dict[str, float]) -> dict:
        inner = [e for r, e in errs.items() if 256 < batches[r] < 16384]
        return {"runs": {r: {"mean_abs_rel_error": e, "batch": batches[r]} for r, e in errs.items()},
                "failed": {}, "mean": float(np.mean(list(errs.values()))), "interior_mean": float(np.mean(inner))}

    b = {"a-256": 256.0, "a-4096": 4096.0, "b-256": 256.0, "b-4096": 4096.0}
    # A: interior mean (0.01 + 0.03)/2 = 0.02, the b-width folds 0.03 and 0.04; B: interior 0.025, b-width 0.02
    A = sc({"a-256": 0.0, "a-4096": 0.01, "b-256": 0.04, "b-4096": 0.03}, b)
    B = sc({"a-256": 0.0, "a-4096": 0.03, "b-256": 0.02, "b-4096": 0.02}, b)
    assert su_choose([A, B]) == 0 and su_choose([A, B], ["b-256", "b-4096"]) == 1
    assert su_choose([A, B], ["b-4096"]) == 1 and su_choose([A, B], ["a-4096"]) == 0
    # a tie within 0.1 point keeps the earlier; a fold missing from the scored runs loses
    assert su_choose([B, A], ["a-256"]) == 0
    B_missing = {**B, "runs": {r: v for r, v in B["runs"].items() if r != "b-4096"}, "failed": {"b-4096": "x"}}
    assert su_choose([A, B_missing], ["b-256", "b-4096"]) == 0


def test_cli_joint_width_and_auto_by_same_width_folds(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096, 16384), points=8)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--su-held-out",
                                  "n6e05-b1024", "--su-fit", "joint-width", "--su-window", "2", "--json"])
    assert r.exit_code == 0, r.output
    su = json.loads(r.stdout)["su"]
    assert (su["method"], su["window"]) == ("joint-width", 2.0) and su["kaplan_steps"]["alpha_N"] == 1.0
    assert su["loss_floor"] == pytest.approx((KS["N_c"] / 6e5) ** KS["alpha_N"], rel=1e-4)
    assert su["mean_abs_rel_error"] < 1e-6
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--su-held-out",
                                  "n6e05-b1024", "--su-fit", "auto", "--su-windows", "1", "--su-methods",
                                  "joint-width", "--su-score", "same-width", "--json"])
    assert r.exit_code == 0, r.output
    su = json.loads(r.stdout)["su"]
    assert su["score"] == "same-width" and (su["method"], su["window"]) == ("joint-width", 1.0)
    assert [(s["method"], s["window"]) for s in su["selection"]] == [("two-stage", 1.0), ("joint-width", 1.0)]
    # each width keeps 2 batch sizes without its left-out run: every joint-width fold is fitted, exactly
    assert len(su["selection"][1]["runs"]) == 7 and su["selection"][1]["mean"] < 1e-6


def test_joint_trimmed_leaves_out_the_run_off_the_law_and_recovers_the_laws(tmp_path: Path) -> None:
    from scalinglab.plan.su import fit_su_method, su_leave_one_out, su_trimmed

    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096, 16384), points=8, held_back={"n6e05-b16384": 1.08})
    df = _table(db)
    tr = su_trimmed(df)
    assert tr["trimmed"] == ["n6e05-b16384"] and tr["trim"] == 3.0
    assert tr["joint_loo"]["runs"]["n6e05-b16384"]["mean_abs_rel_error"] > 3 * tr["median"]
    fit, bs, ab = fit_su_method(df, "joint-trimmed")
    assert fit.data["trimmed"] == ["n6e05-b16384"]
    assert (bs, ab) == (pytest.approx(B_STAR, rel=1e-4), pytest.approx(ALPHA_B, rel=1e-4))
    for k, v in KS.items():                      # the other 7 runs are exact: the laws come back
        assert fit.params[k] == pytest.approx(v, rel=1e-4), k
    loo = su_leave_one_out(df, method="joint-trimmed", joint_loo=tr["joint_loo"])
    assert loo["trimmed"] == ["n6e05-b16384"] and len(loo["runs"]) == 8
    exact = [v["mean_abs_rel_error"] for r, v in loo["runs"].items() if r != "n6e05-b16384"]
    assert max(exact) < 1e-6                     # every fold fitted on exact curves only
    # the off-law run's own fold predicts the law, 8% below its curve: |1/1.08 - 1| = 0.0741 at every point
    assert loo["runs"]["n6e05-b16384"]["mean_abs_rel_error"] == pytest.approx(1 - 1 / 1.08, rel=1e-4)
    # nothing is trimmed when no run is beyond trim x the median
    db2 = tmp_path / "r2.db"
    _small_store(db2, batches=(256, 1024, 4096), points=8, held_back={"n6e05-b4096": 1.0})
    assert fit_su_method(_table(db2), "joint-trimmed", trim=1e6)[0].data["trimmed"] == []
    with pytest.raises(ParameterError, match="'trim'"):
        su_trimmed(df, trim=1.0)


def test_cli_auto_chooses_joint_trimmed_when_a_fit_run_is_off_the_law(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _small_store(db, batches=(256, 1024, 4096, 16384), points=8, held_back={"n6e05-b16384": 1.08})
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--su-held-out",
                                  "n6e05-b1024", "--su-fit", "auto", "--su-windows", "1", "--su-methods",
                                  "joint,joint-trimmed", "--json"])
    assert r.exit_code == 0, r.output
    su = json.loads(r.stdout)["su"]
    assert (su["method"], su["window"]) == ("joint-trimmed", 1.0) and su["trimmed"] == ["n6e05-b16384"]
    assert su["mean_abs_rel_error"] < 1e-6      # the held-out run is on the law: predicted exactly
    joint, trimmed = su["selection"][1], su["selection"][2]
    assert joint["interior_mean"] > 1e-4 and trimmed["interior_mean"] < 1e-6
