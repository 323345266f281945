"""benchmarks/anneal_curves.py's noise floor: zero on a curve the polynomial holds exactly, the known mean
absolute deviation of a +/- e alternation added to it, and NaN on too few points; its seed mean (curves
averaged point by point over seeds, keeping the first seed's areas), its --seeds and --shard parsing, the anchored
prediction of a run in the full, none and branch modes (the pre-registered fallback of an early departure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_benchmark("anneal_curves.py", "anneal_curves_bench")


def test_smooth_floor_is_zero_on_a_power_law_in_the_step(bench: ModuleType) -> None:
    steps = np.arange(12, 1201, 12)
    loss = 1.5 + 0.0 * steps + 3.0 * steps ** -0.3          # ln loss is smooth, not a polynomial: near 0
    assert bench.smooth_floor(steps, loss) < 1e-5
    exact = np.exp(0.4 - 0.1 * np.log(steps) + 0.01 * np.log(steps) ** 2)   # exactly a polynomial in ln step
    assert bench.smooth_floor(steps, exact) < 1e-12


def test_smooth_floor_measures_an_alternation(bench: ModuleType) -> None:
    steps = np.arange(12, 1201, 12)
    e = 0.01
    sign = np.where(np.arange(steps.size) % 2 == 0, 1.0, -1.0)
    base = np.exp(0.4 - 0.1 * np.log(steps))
    # a +/- e alternation in ln loss is nearly orthogonal to a degree-10 polynomial: the floor is ~ e
    got = bench.smooth_floor(steps, base * np.exp(e * sign))
    assert got == pytest.approx(np.expm1(e), rel=0.05)
    assert np.isnan(bench.smooth_floor(steps[:21], base[:21]))


def _curve(run: str, steps: list[int], losses: list[float]) -> list[dict[str, object]]:
    return [{"run": run, "branch": 0, "step": s, "loss": x, "train_loss": x + 0.5, "D": 100.0 * s}
            for s, x in zip(steps, losses)]


def test_seed_mean_frame_is_averaged_and_keeps_the_first_seeds_areas(bench: ModuleType) -> None:
    """The seeds of a schedule (``-s<seed>`` runs) averaged point by point at the steps every seed has,
    and the mean curve, named like the first seed's run, gets that run's S1/S2 from its config."""

    from scalinglab.fit.anneal import add_store_areas
    from scalinglab.runconfig import RunConfig, ScheduleConfig

    assert bench.seed_run_name("anneal-wsd20", 0, 0) == "anneal-wsd20"
    assert bench.seed_run_name("anneal-wsd20", 2, 0) == "anneal-wsd20-s2"
    cfg = RunConfig(name="anneal-wsd20", tokens=40 * 128, batch_tokens=128, lr=1e-3,
                    schedule=ScheduleConfig(name="wsd", warmup_steps=4, decay_frac=0.2, final_lr_frac=0.0))
    df = pd.DataFrame(_curve("anneal-wsd20", [8, 16, 24, 40], [3.0, 2.5, 2.0, 1.75])
                      + _curve("anneal-wsd20-s1", [8, 16, 24, 40], [3.5, 2.0, 2.25, 1.5])
                      + _curve("anneal-wsd20-s2", [8, 16, 40], [4.0, 2.0, 1.25]))   # no step 24: dropped
    out = bench.seed_mean(df, 3).sort_values("step").reset_index(drop=True)
    assert out["run"].unique().tolist() == ["anneal-wsd20"]
    assert out["step"].tolist() == [8, 16, 40]
    assert out["loss"].tolist() == pytest.approx([3.5, 13 / 6, 1.5])
    assert out["train_loss"].tolist() == pytest.approx([4.0, 13 / 6 + 0.5, 2.0])
    assert out["D"].tolist() == [800.0, 1600.0, 4000.0]
    configs = {"anneal-wsd20": cfg, "anneal-wsd20-s1": dataclasses.replace(cfg, name="anneal-wsd20-s1", seed=1)}
    mean_areas = add_store_areas(out, configs)
    own = add_store_areas(df[(df["run"] == "anneal-wsd20") & (df["step"] != 24)].reset_index(drop=True), configs)
    assert np.isfinite(mean_areas[["S1", "S2"]].to_numpy()).all()
    assert mean_areas["S1"].tolist() == own["S1"].tolist() and mean_areas["S2"].tolist() == own["S2"].tolist()
    assert (mean_areas["warmup"] == 4).all()
    assert mean_areas["S1"].iloc[-1] == pytest.approx(np.sum(bench.lr_curve(cfg)))   # every update's lr


def test_seeds_option_refuses_bad_text(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.parse_seeds("0,1,2") == [0, 1, 2]
    assert bench.parse_seeds("3") == [3]
    for bad in ("0,x", "0,0", "-1", ""):
        with pytest.raises(SystemExit) as e:
            bench.parse_seeds(bad)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--seeds" in err and err.count("\n") == 1          # one line


def test_shard_option_splits_the_runs_and_refuses_bad_text(bench: ModuleType,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.parse_shard("") is None
    assert bench.parse_shard("0/2") == (0, 2) and bench.parse_shard("1/2") == (1, 2)
    runs = list(range(18))
    parts = [runs[i::k] for i, k in (bench.parse_shard("0/2"), bench.parse_shard("1/2"))]
    assert sorted(parts[0] + parts[1]) == runs and not set(parts[0]) & set(parts[1])    # every run once
    for bad in ("2/2", "-1/2", "0/0", "1", "a/b", "0/2/3"):
        with pytest.raises(SystemExit) as e:
            bench.parse_shard(bad)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--shard" in err and err.count("\n") == 1          # one line


def test_target_score_and_anchored_pred(bench: ModuleType) -> None:
    """The pre-registered score: the worse target as a multiple of its threshold; the benchmark's anchored
    prediction of a run, anchored on a reference curve that is the law plus a wiggle, is the law plus it."""
    from scalinglab import laws
    from scalinglab.fit import Fit
    from scalinglab.fit.anneal import curve_inputs, lr_curve
    from scalinglab.runconfig import RunConfig, ScheduleConfig

    assert bench.target_score(0.005, -0.005) == 1.0          # 0.5% mean: 0.5; 0.5% final: 1.0
    assert bench.target_score(0.02, 0.001) == 2.0
    params = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5, "dS": 0.25}
    fit = Fit(law="multipower_offset", params=params, bootstrap={"n": 2, "draws": {k: [v, v] for k, v in params.items()}})

    def cfg(run: str, **s: object) -> RunConfig:
        return RunConfig(name=run, tokens=300 * 128, batch_tokens=128, lr=2e-3,
                         schedule=ScheduleConfig(warmup_steps=15, **s))  # type: ignore[arg-type]

    const, wsd = cfg("c", name="constant"), cfg("w", name="wsd", decay_frac=0.2, final_lr_frac=0.0)
    steps = np.arange(18, 301, 3)
    law = laws.get("multipower_offset")
    wig = 0.01 * np.cos(steps / 4.0)
    ref = pd.DataFrame({"step": steps, "loss": law.predict(params, curve_inputs(law.name, lr_curve(const), steps)) + wig})
    target = np.asarray(law.predict(params, curve_inputs(law.name, lr_curve(wsd), steps)))
    np.testing.assert_allclose(bench.anchored_pred(fit, wsd, steps, const, ref, "full"), target + wig, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(bench.anchored_pred(fit, wsd, steps, const, ref, "none"), target)
    # branch (the pre-registered anneal9 rule): the WSD run departs at 241 (between the reference's 240 and 243):
    # the wiggle up to it, its value interpolated at 241 after it; a linear run departs at 16 < 18 (the reference's
    # first point): the plain law, and branch@first the law + the wiggle at 18
    assert bench.branch_mode(wsd, const, ref) == "branch"
    w241 = np.interp(241, steps, wig)
    np.testing.assert_allclose(bench.anchored_pred(fit, wsd, steps, const, ref, "branch"),
                               target + np.where(steps <= 241, wig, w241), rtol=0, atol=1e-12)
    lin = cfg("l", name="linear")
    assert bench.branch_mode(lin, const, ref) == "none"
    plain_lin = np.asarray(law.predict(params, curve_inputs(law.name, lr_curve(lin), steps)))
    np.testing.assert_array_equal(bench.anchored_pred(fit, lin, steps, const, ref, "branch"), plain_lin)
    np.testing.assert_allclose(bench.anchored_pred(fit, lin, steps, const, ref, "branch@first"), plain_lin + wig[0],
                               rtol=0, atol=1e-12)
    assert "branch" not in bench.SELECT_MODES          # anneal8's rule chooses among its own four modes only
