"""The annealing law on whole runs: exact areas from run configs (store), from run/step/lr files,
whole predicted curves under a schedule, the best WSD decay, and the bad-input one-liners."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.errors import ConfigError, DataError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit.anneal import add_store_areas, lr_curve, predict_curve, schedule_curve
from scalinglab.laws.anneal import curve_areas, schedule_areas
from scalinglab.plan.anneal import best_wsd_decay
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

TRUE = {"L0": 2.0, "A": 1.2, "alpha": 0.4, "C": 0.5}
LAW = laws.get("anneal")
STEPS = 400


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=20, **sched))  # type: ignore[arg-type]


def _truth(cfg: RunConfig, steps: np.ndarray) -> np.ndarray:
    S1, S2 = curve_areas(lr_curve(cfg))
    return np.asarray(LAW.predict(TRUE, {"S1": S1[steps - 1], "S2": S2[steps - 1]}))


def test_lr_curve_is_the_trainers_schedule() -> None:
    cfg = _cfg("w", name="wsd", decay_frac=0.25, final_lr_frac=0.0)
    eta = lr_curve(cfg)
    assert len(eta) == STEPS
    assert eta[0] == pytest.approx(3e-3 / 20)          # warmup: peak (s + 1) / warmup
    assert eta[19] == pytest.approx(3e-3)
    assert eta[299] == pytest.approx(3e-3)             # stable up to the decay at step 300
    assert eta[350] == pytest.approx(3e-3 * (1 - 50 / 100))
    br = RunConfig(name="b", tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                   schedule=ScheduleConfig(name="wsd", decay_frac=0.25, final_lr_frac=0.0, branches=(0.5,)))
    e1 = lr_curve(br, 1)                                # branch ending at step 200, decaying over 50
    assert len(e1) == 200 and e1[149] == pytest.approx(3e-3) and e1[175] == pytest.approx(3e-3 * 0.5)
    with pytest.raises(ConfigError, match="branch"):
        lr_curve(br, 2)


def test_curve_areas_convention_warmup_in_s1_not_in_s2() -> None:
    eta = np.r_[np.linspace(0.1, 1.0, 10), np.ones(5), [0.5, 0.5]]
    S1, S2 = curve_areas(eta, decay=0.5)
    np.testing.assert_allclose(S1, np.cumsum(eta), rtol=1e-14)       # the ramp counts in S1
    assert np.all(S2[:15] == 0.0)                                     # no annealing before the drop
    _, ref = schedule_areas(np.r_[np.ones(15), [0.5, 0.5]], decay=0.5)
    np.testing.assert_allclose(S2, ref, rtol=1e-14)                   # drop 0.5 then momentum 0.25
    assert S2[-1] == pytest.approx(0.5 + 0.25)


def _store(path: Path, configs: list[RunConfig], every: int = 10) -> None:
    with Store(path) as st:
        st.add_planned(configs)
        for cfg in configs:
            steps = np.arange(every, cfg.steps + 1, every)
            for s, loss in zip(steps, _truth(cfg, steps)):
                st.add_point(cfg.name, {"step": int(s), "tokens": int(s) * 4096, "eval_loss": float(loss),
                                        "train_loss": float(loss), "lr": 0.0})
            st.mark_done(cfg.name, {"N_total": 1000, "N_nonembed": 800, "tokens": cfg.tokens})


def test_store_areas_are_exact(tmp_path: Path) -> None:
    cfg = _cfg("cos", name="cosine")
    _store(tmp_path / "r.db", [cfg])
    with Store(tmp_path / "r.db", create=False) as st:
        df = add_store_areas(st.to_table(points="all"), {r.name: r.config for r in st.runs()})
    eta = np.array([0.0] + [cfg.lr * ((s + 1) / 20 if s < 20 else 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * (s - 20) / 380)))
                            for s in range(STEPS)])
    np.testing.assert_allclose(df["S1"], np.cumsum(eta)[df["step"].to_numpy()], rtol=1e-12)
    assert (df["warmup"] == 20).all()


def test_fit_from_store_recovers_the_law_and_predicts_a_held_out_wsd_curve(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    wsd = _cfg("wsd", name="wsd", decay_frac=0.2, final_lr_frac=0.0)
    _store(db, [_cfg("const", name="constant"), _cfg("cos", name="cosine"), wsd])
    out = tmp_path / "fit.json"
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "anneal", "--where",
                                  "step > warmup and schedule != 'wsd'", "--bootstrap", "20", "--out", str(out),
                                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_points"] == 2 * 38
    for k, v in TRUE.items():
        assert d["params"][k] == pytest.approx(v, rel=1e-3)
    r = CliRunner().invoke(main, ["predict", str(out), "--schedule", "wsd", "--steps", str(STEPS), "--lr", "3e-3",
                                  "--warmup", "20", "--decay-frac", "0.2", "--final-lr-frac", "0", "--stride", "100",
                                  "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["predictions"]
    assert [p["step"] for p in rows] == [100, 200, 300, 400]
    np.testing.assert_allclose([p["loss"] for p in rows], _truth(wsd, np.array([100, 200, 300, 400])), rtol=1e-4)
    assert all(p["interval"][0] <= p["loss"] <= p["interval"][1] for p in rows)


def _curve_file(path: Path, with_lr: bool = True) -> None:
    rows = []
    for cfg in (_cfg("const", name="constant"), _cfg("cos", name="cosine")):
        eta = lr_curve(cfg)
        steps = np.r_[np.arange(1, 21), np.arange(30, STEPS + 1, 10)]   # dense over the warmup
        for s, loss in zip(steps, _truth(cfg, steps)):
            rows.append({"run": cfg.name, "step": int(s), "lr": float(eta[s - 1]), "loss": float(loss)})
    df = pd.DataFrame(rows)
    (df if with_lr else df.drop(columns="lr")).to_csv(path, index=False)


def test_fit_from_a_run_step_lr_file(tmp_path: Path) -> None:
    f = tmp_path / "curves.csv"
    _curve_file(f)
    r = CliRunner().invoke(main, ["fit", str(f), "--law", "anneal", "--where", "step > 20", "--json"])
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)["params"]
    # the cosine's lr is interpolated linearly between points 10 steps apart: small area errors only
    assert p["alpha"] == pytest.approx(TRUE["alpha"], rel=0.02)
    assert p["L0"] == pytest.approx(TRUE["L0"], rel=0.01)


def test_predict_points_of_a_curve_file(tmp_path: Path) -> None:
    fit = Fit(law="anneal", params=dict(TRUE))
    path = tmp_path / "fit.json"
    fit.to_json(path)
    cfg = _cfg("lin", name="linear")
    eta = lr_curve(cfg)
    steps = np.arange(1, STEPS + 1)                    # every step: the interpolation is exact
    pd.DataFrame({"run": "lin", "step": steps, "lr": eta}).to_csv(tmp_path / "c.csv", index=False)
    r = CliRunner().invoke(main, ["predict", str(path), "--points", str(tmp_path / "c.csv"), "--json"])
    assert r.exit_code == 0, r.output
    got = [p["loss"] for p in json.loads(r.stdout)["predictions"]]
    np.testing.assert_allclose(got, _truth(cfg, steps), rtol=1e-12)


def test_best_decay_is_the_grid_minimum() -> None:
    fit = Fit(law="anneal", params=dict(TRUE))
    res = best_wsd_decay(fit, STEPS, 3e-3, warmup_steps=20, final_lr_frac=0.0, fracs=(0.05, 0.1, 0.2, 0.4, 0.8))
    brute = {}
    for shape in ("linear", "cosine", "sqrt"):
        for f in (0.05, 0.1, 0.2, 0.4, 0.8):
            eta = schedule_curve("wsd", STEPS, 3e-3, warmup_steps=20, decay_frac=f, decay_shape=shape,
                                 final_lr_frac=0.0)
            brute[(shape, f)] = float(predict_curve(fit, eta, stride=STEPS)["prediction"].iloc[-1])
    best = min(brute, key=lambda k: brute[k])
    assert (res["best"]["decay_shape"], res["best"]["decay_frac"]) == best
    assert res["best"]["loss"] == pytest.approx(brute[best], rel=1e-12)


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "nolr.csv"
    _curve_file(f, with_lr=False)
    fit = tmp_path / "fit.json"
    Fit(law="anneal", params=dict(TRUE)).to_json(fit)
    chin = tmp_path / "chin.json"
    Fit.from_preset("chinchilla", "hoffmann2022").to_json(chin)
    cases = [
        (["fit", str(f), "--law", "anneal"], "lacks ['lr']"),
        (["predict", str(fit), "--schedule", "cyclic", "--steps", "100", "--lr", "1e-3"], "error: --schedule must be"),
        (["predict", str(fit), "--schedule", "wsd", "--steps", "100", "--lr", "-1"], "--lr must be"),
        (["predict", str(chin), "--schedule", "wsd", "--steps", "100", "--lr", "1e-3"], "'anneal'"),
        (["predict", str(fit), "--schedule", "wsd", "--lr", "1e-3"], "--steps"),
        (["predict", str(fit), "--schedule", "cosine", "--steps", "100", "--lr", "1e-3", "--best-decay"], "'wsd'"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_predict_curve_refuses_other_laws_and_bad_stride() -> None:
    with pytest.raises(ParameterError, match="anneal"):
        predict_curve(Fit.from_preset("chinchilla", "hoffmann2022"), np.ones(10))
    with pytest.raises(ParameterError, match="stride"):
        predict_curve(Fit(law="anneal", params=dict(TRUE)), np.ones(10), stride=0)
    with pytest.raises(DataError, match="lacks"):
        LawFit("anneal").fit(pd.DataFrame({"run": ["a"], "step": [1], "loss": [3.0]}))


def test_decay_profile_finds_the_lambda_of_the_data(tmp_path: Path) -> None:
    from scalinglab.fit.anneal import fit_decay, fit_decay_profile

    cfgs = [_cfg("const", name="constant"), _cfg("cos", name="cosine")]
    with Store(tmp_path / "r.db") as st:
        st.add_planned(cfgs)
        for cfg in cfgs:
            steps = np.arange(25, STEPS + 1, 5)
            S1, S2 = curve_areas(lr_curve(cfg), 0.99)
            for s, loss in zip(steps, LAW.predict(TRUE, {"S1": S1[steps - 1], "S2": S2[steps - 1]})):
                st.add_point(cfg.name, {"step": int(s), "tokens": int(s) * 4096, "eval_loss": float(loss)})
            st.mark_done(cfg.name, {"N_total": 1000, "N_nonembed": 800, "tokens": cfg.tokens})
        df, configs = st.to_table(points="all"), {r.name: r.config for r in st.runs()}
    fit = fit_decay_profile(df, configs, (0.9, 0.99, 0.999))
    assert fit_decay(fit) == 0.99 and fit.data["anneal_decay_profile"]["0.99"] < 1e-12
    assert fit.params["C"] == pytest.approx(TRUE["C"], rel=1e-4)
    path = tmp_path / "f.json"
    fit.to_json(path)
    back = Fit.from_json(path)
    assert fit_decay(back) == 0.99     # predict uses the fit's own lambda
    eta = lr_curve(_cfg("lin", name="linear"))
    S1, S2 = curve_areas(eta, 0.99)
    got = predict_curve(back, eta, stride=STEPS)["prediction"].iloc[-1]
    assert got == pytest.approx(float(LAW.predict(TRUE, {"S1": S1[-1:], "S2": S2[-1:]})[0]), rel=1e-4)
    with pytest.raises(ParameterError, match="decays"):
        fit_decay_profile(df, configs, ())
