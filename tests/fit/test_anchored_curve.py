"""Anchored curve predictions (fit.anneal.anchored_curve, ``predict --anchor``): on synthetic curves from
known law parameters plus a known perturbation shared by the reference and the target, the anchored
prediction is the target exactly where the plain law is off by the perturbation; a reference equal to the
law gives the plain prediction exactly; the lr, smooth and branch modes' known answers (branch: a target
equal to the law plus the reference's residual frozen at the departure step is recovered exactly, the
departure step of WSD / linear / cosine / constant schedules); the interval's noise part; the bad-input
one-liners (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.errors import ParameterError
from scalinglab.fit import Fit
from scalinglab.fit.anneal import ANCHOR_MODES, anchored_curve, curve_inputs, departure_step, schedule_curve

ANNEAL = {"L0": 2.0, "A": 1.2, "alpha": 0.4, "C": 0.5}
MPO = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5, "dS": 0.25}
STEPS, PEAK, WARM = 400, 3e-3, 20
REF = schedule_curve("constant", STEPS, PEAK, warmup_steps=WARM)
WSD = schedule_curve("wsd", STEPS, PEAK, warmup_steps=WARM, decay_frac=0.3, final_lr_frac=0.0)
LIN = schedule_curve("linear", STEPS, PEAK, warmup_steps=WARM)
RS = np.arange(21, STEPS + 1, 3)          # the reference's logged steps (after warmup)


def _law(law: str, params: dict[str, float], eta: np.ndarray, steps: np.ndarray) -> np.ndarray:
    return np.asarray(laws.get(law).predict(params, curve_inputs(law, eta, steps)), dtype=float)


def _pert(steps: np.ndarray) -> np.ndarray:
    """A known shared 'data-order' wiggle plus a slow drift (nats)."""
    return 0.02 * np.sin(steps / 5.0) + 0.01 * np.log(steps / 20.0)


@pytest.mark.parametrize(("law", "params"), [("anneal", ANNEAL), ("multipower_offset", MPO)])
def test_full_anchor_recovers_the_shared_perturbation_exactly(law: str, params: dict[str, float]) -> None:
    fit = Fit(law=law, params=dict(params))
    for target in (WSD, LIN):
        measured = _law(law, params, target, RS) + _pert(RS)            # the truth the anchored curve should hit
        ref_loss = _law(law, params, REF, RS) + _pert(RS)
        out = anchored_curve(fit, target, RS, REF, RS, ref_loss, mode="full")
        np.testing.assert_allclose(out["prediction"], measured, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out["plain"], measured - _pert(RS), rtol=0, atol=1e-12)   # off by the wiggle
        assert np.max(np.abs(out["plain"] - measured)) > 0.02
        # at the reference's steps: L_ref + [law(target) - law(ref)]
        np.testing.assert_allclose(out["prediction"], ref_loss + _law(law, params, target, RS)
                                   - _law(law, params, REF, RS), rtol=0, atol=1e-12)
        assert list(out["step"]) == list(RS) and np.array_equal(out["lr"], target[RS - 1])


def test_reference_equal_to_the_law_gives_the_plain_prediction_in_every_mode() -> None:
    fit = Fit(law="multipower_offset", params=dict(MPO))
    ref_loss = _law("multipower_offset", MPO, REF, RS)
    plain = _law("multipower_offset", MPO, WSD, RS)
    for mode in ANCHOR_MODES:
        out = anchored_curve(fit, WSD, RS, REF, RS, ref_loss, mode=mode)
        np.testing.assert_array_equal(out["prediction"].to_numpy(), plain)
        np.testing.assert_array_equal(out["residual"].to_numpy(), np.zeros(RS.size))


def test_none_mode_is_the_plain_law_whatever_the_reference() -> None:
    fit = Fit(law="anneal", params=dict(ANNEAL))
    out = anchored_curve(fit, WSD, RS, REF, RS, _law("anneal", ANNEAL, REF, RS) + 0.3, mode="none")
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _law("anneal", ANNEAL, WSD, RS))


def test_lr_mode_scales_the_residual_by_the_learning_rate_ratio() -> None:
    fit = Fit(law="anneal", params=dict(ANNEAL))
    ref_loss = _law("anneal", ANNEAL, REF, RS) + _pert(RS)
    out = anchored_curve(fit, LIN, RS, REF, RS, ref_loss, mode="lr")
    ratio = LIN[RS - 1] / PEAK                                         # the constant reference is at the peak
    np.testing.assert_allclose(out["prediction"], _law("anneal", ANNEAL, LIN, RS) + ratio * _pert(RS),
                               rtol=0, atol=1e-12)
    # a WSD run's stable phase has the reference's rate: the whole residual there
    out = anchored_curve(fit, WSD, RS, REF, RS, ref_loss, mode="lr")
    stable = RS <= 280
    np.testing.assert_allclose(out["residual"][stable], _pert(RS)[stable], rtol=0, atol=1e-15)
    assert np.all(np.abs(out["residual"][~stable]) < np.abs(_pert(RS)[~stable]))


def test_smooth_mode_keeps_a_cubic_in_ln_step_and_drops_an_alternation() -> None:
    fit = Fit(law="anneal", params=dict(ANNEAL))
    z = np.log(RS / 50.0)
    cubic = 0.01 - 0.004 * z + 0.002 * z ** 2 - 0.0005 * z ** 3
    ref_loss = _law("anneal", ANNEAL, REF, RS) + cubic
    out = anchored_curve(fit, WSD, RS, REF, RS, ref_loss, mode="smooth")
    np.testing.assert_allclose(out["residual"], cubic, rtol=0, atol=1e-12)
    wiggle = 0.01 * np.where(np.arange(RS.size) % 2 == 0, 1.0, -1.0)
    out = anchored_curve(fit, WSD, RS, REF, RS, ref_loss + wiggle, mode="smooth")
    off = np.abs(out["residual"] - cubic)                             # the +/- 0.01 alternation is nearly gone
    assert off.mean() < 0.0005 and off.max() < 0.003
    with pytest.raises(ParameterError, match="more than 4"):
        anchored_curve(fit, WSD, RS[:4], REF, RS[:4], ref_loss[:4], mode="smooth")


def test_the_reference_is_interpolated_linearly_in_step_never_extrapolated() -> None:
    fit = Fit(law="anneal", params=dict(ANNEAL))
    rs = np.array([100, 200, 300])
    ref_loss = _law("anneal", ANNEAL, REF, rs) + np.array([0.01, 0.03, -0.01])
    out = anchored_curve(fit, WSD, np.array([150, 250, 300]), REF, rs, ref_loss)
    np.testing.assert_allclose(out["residual"], [0.02, 0.01, -0.01], rtol=0, atol=1e-12)
    for bad, match in (([99, 150], "covers \\(100..300\\). Got 99"), ([301], "Got 301"), ([0], "1..400")):
        with pytest.raises(ParameterError, match=match):
            anchored_curve(fit, WSD, np.array(bad), REF, rs, ref_loss)
    with pytest.raises(ParameterError, match="anchor mode"):
        anchored_curve(fit, WSD, rs, REF, rs, ref_loss, mode="half")
    with pytest.raises(ParameterError, match="positive number"):
        anchored_curve(fit, WSD, rs, REF, rs, ref_loss * np.array([1, -1, 1]))
    with pytest.raises(ParameterError, match="logged once"):
        anchored_curve(fit, WSD, rs, REF, np.array([100, 100, 300]), ref_loss)
    with pytest.raises(ParameterError, match="curve law"):
        anchored_curve(Fit.from_preset("chinchilla", "hoffmann2022"), WSD, rs, REF, rs, ref_loss)


def test_departure_step_of_wsd_linear_cosine_and_constant_targets() -> None:
    # WSD over the last 0.3 x 400 = 120 updates: update 280 (0-based) is the last at the peak (the decay's
    # first update is at its start value), 281 is the first lowered; linear and cosine leave the peak after
    # the warmup's 20 updates and update 20 (the decay's start value)
    cos = schedule_curve("cosine", STEPS, PEAK, warmup_steps=WARM, final_lr_frac=0.0)
    expect = {"wsd": (WSD, 281), "linear": (LIN, 21), "cosine": (cos, 21), "constant": (REF, STEPS)}
    for name, (eta, td) in expect.items():
        assert departure_step(eta, REF) == td, name
        if td < STEPS:     # every earlier update equal, this one not: exactly the definition
            assert np.array_equal(eta[:td], REF[:td]) and eta[td] != REF[td], name
    assert departure_step(schedule_curve("constant", STEPS, 2 * PEAK, warmup_steps=WARM), REF) == 0
    assert departure_step(REF * (1 + 1e-12), REF) == STEPS        # within the 1e-9 relative tolerance
    assert departure_step(REF * (1 + 1e-8), REF) == 0
    assert departure_step(WSD, REF[:250]) == 250 and departure_step(REF, REF[:300]) == 300   # the shorter curve


@pytest.mark.parametrize(("law", "params"), [("anneal", ANNEAL), ("multipower_offset", MPO)])
def test_branch_recovers_the_residual_frozen_at_the_departure_exactly(law: str, params: dict[str, float]) -> None:
    """A WSD target whose true curve is the law + the reference's residual up to its decay start (281) and
    + that residual's value at 281 after it: recovered to 1e-12, with the reference logged at every step, or
    every 3rd (r(281) interpolated between 279 and 282), or ending at the departure (the cooldown predicted
    past the reference's end)."""
    fit = Fit(law=law, params=dict(params))
    td = 281
    steps = np.arange(1, STEPS + 1)
    for rs in (steps, RS, np.arange(21, td + 1)):
        ref_loss = _law(law, params, REF, rs) + _pert(rs)
        r_td = np.interp(td, rs, _pert(rs))
        assert rs is steps or rs[-1] == td or r_td != _pert(np.array([td]))[0]     # interpolated, not _pert(281)
        ask = steps[steps >= rs[0]]
        truth = _law(law, params, WSD, ask) + np.where(ask <= td, np.interp(ask, rs, _pert(rs)), r_td)
        out = anchored_curve(fit, WSD, ask, REF, rs, ref_loss, mode="branch")
        np.testing.assert_allclose(out["prediction"], truth, rtol=0, atol=1e-12)
        assert out.attrs["departure"] == td
        after = ask > td      # L_ref(t_d) + [law(target, t) - law(target, t_d)], L_ref(t_d) = law + r(t_d)
        l_td = _law(law, params, REF, np.array([td]))[0] + r_td
        if rs is steps:       # measured at t_d: the measured loss itself
            assert l_td == pytest.approx(ref_loss[td - 1], abs=1e-12)
        np.testing.assert_allclose(out["prediction"][after], l_td + _law(law, params, WSD, ask[after])
                                   - _law(law, params, WSD, np.array([td]))[0], rtol=0, atol=1e-12)
    # the full mode carries the reference's later residual instead: off by pert(t) - pert(281) after it
    full = anchored_curve(fit, WSD, RS, REF, RS, _law(law, params, REF, RS) + _pert(RS), mode="full")
    brn = anchored_curve(fit, WSD, RS, REF, RS, _law(law, params, REF, RS) + _pert(RS), mode="branch")
    np.testing.assert_allclose((full["prediction"] - brn["prediction"])[RS <= td], 0.0, rtol=0, atol=1e-15)
    assert np.max(np.abs(full["prediction"] - brn["prediction"])[RS > td]) > 0.01


def test_branch_with_the_references_own_schedule_is_its_measured_curve_and_law_reference_is_plain() -> None:
    fit = Fit(law="multipower_offset", params=dict(MPO))
    ref_loss = _law("multipower_offset", MPO, REF, RS) + _pert(RS)
    out = anchored_curve(fit, REF, RS, REF, RS, ref_loss, mode="branch")    # t_d = 400: the whole curve
    np.testing.assert_allclose(out["prediction"], ref_loss, rtol=0, atol=1e-12)
    for eta in (WSD, LIN):   # a reference equal to the law: the plain law, the linear one departing at 21 = RS[0]
        law_ref = _law("multipower_offset", MPO, REF, RS)
        b = anchored_curve(fit, eta, RS, REF, RS, law_ref, mode="branch")
        np.testing.assert_array_equal(b["prediction"].to_numpy(), _law("multipower_offset", MPO, eta, RS))


def test_branch_needs_a_reference_covering_the_departure() -> None:
    fit = Fit(law="anneal", params=dict(ANNEAL))
    late = np.arange(30, STEPS + 1, 3)                  # first point after the linear run's departure (21)
    with pytest.raises(ParameterError, match=r"departure step .* covers \(30\.\.399\).* Got 21"):
        anchored_curve(fit, LIN, late, REF, late, _law("anneal", ANNEAL, REF, late), mode="branch")
    short = np.arange(21, 251)                          # ends before the WSD run's departure (281)
    with pytest.raises(ParameterError, match=r"covers \(21\.\.250\).* Got 281"):
        anchored_curve(fit, WSD, np.array([100, 300]), REF, short, _law("anneal", ANNEAL, REF, short), mode="branch")
    with pytest.raises(ParameterError, match=r"covers \(21\.\.250\)\. Got 20"):   # a shared step outside it
        anchored_curve(fit, WSD, np.array([20, 200]), REF, short, _law("anneal", ANNEAL, REF, short), mode="branch")
    # only the departure matters: asked steps before it, inside the reference, need nothing after it
    out = anchored_curve(fit, WSD, short[short <= 200], REF, short, _law("anneal", ANNEAL, REF, short), mode="branch")
    assert len(out) == 180


def test_interval_is_the_laws_difference_plus_the_references_noise() -> None:
    """Bootstrap draws that all equal the parameters: the law's part of the interval is 0 and what is left
    is the measurement noise: the reference's (weight m = 1) in the mean interval, plus the new
    observation's in the prediction interval: half-widths 1.96 s L and 1.96 sqrt(2) s L."""
    rs = np.arange(21, 4001)
    ref_eta = schedule_curve("constant", 4000, PEAK, warmup_steps=WARM)
    tgt = schedule_curve("wsd", 4000, PEAK, warmup_steps=WARM, decay_frac=0.2, final_lr_frac=0.0)
    s = 0.005
    noise = np.random.default_rng(1).normal(0.0, s, rs.size)
    ref_loss = _law("anneal", ANNEAL, ref_eta, rs) * np.exp(noise)
    draws = {k: [v] * 4000 for k, v in ANNEAL.items()}
    fit = Fit(law="anneal", params=dict(ANNEAL), bootstrap={"n": 4000, "seed": 0, "n_failed": 0, "draws": draws})
    ask = np.array([500, 2000, 4000])
    out = anchored_curve(fit, tgt, ask, ref_eta, rs, ref_loss)
    assert out.attrs["interval"] == "anchored"
    assert out.attrs["ref_noise"] == pytest.approx(s, rel=0.05)       # iid noise of sd s in ln loss
    p = out["prediction"].to_numpy()
    np.testing.assert_allclose((out["mean_hi"] - out["mean_lo"]) / 2, 1.96 * s * p, rtol=0.1)
    np.testing.assert_allclose((out["hi"] - out["lo"]) / 2, 1.96 * np.sqrt(2) * s * p, rtol=0.1)
    br = anchored_curve(fit, tgt, ask, ref_eta, rs, ref_loss, mode="branch")   # the same parts, r at min(t, t_d)
    q0 = br["prediction"].to_numpy()
    np.testing.assert_allclose((br["mean_hi"] - br["mean_lo"]) / 2, 1.96 * s * q0, rtol=0.1)
    np.testing.assert_allclose((br["hi"] - br["lo"]) / 2, 1.96 * np.sqrt(2) * s * q0, rtol=0.1)
    # smooth: the alternation it drops (rms e, relative) joins the new observation's noise in quadrature
    e = 0.004
    alt = _law("anneal", ANNEAL, ref_eta, rs) * np.exp(e * np.where(np.arange(rs.size) % 2 == 0, 1.0, -1.0))
    sm = anchored_curve(fit, tgt, ask, ref_eta, rs, alt, mode="smooth")
    assert sm.attrs["dropped"] == pytest.approx(e, rel=0.01)
    sp = sm.attrs["ref_noise"]
    assert sp == pytest.approx(4 * e / np.sqrt(6), rel=0.01)          # second differences of +/- e: +/- 4e
    q = sm["prediction"].to_numpy()
    np.testing.assert_allclose((sm["hi"] - sm["lo"]) / 2, 1.96 * np.sqrt(2 * sp ** 2 + e ** 2) * q, rtol=0.1)
    plain = anchored_curve(Fit(law="anneal", params=dict(ANNEAL)), tgt, ask, ref_eta, rs, ref_loss)
    assert plain.attrs["interval"] is None and plain["lo"].isna().all()   # no draws: no interval


# -- the command line ---------------------------------------------------------------------------------
def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    fit = tmp_path / "fit.json"
    Fit(law="anneal", params=dict(ANNEAL)).to_json(fit)
    steps = np.arange(1, STEPS + 1)                     # every step: the lr interpolation is exact
    ref = pd.DataFrame({"run": "const", "step": steps, "lr": REF,
                        "loss": _law("anneal", ANNEAL, REF, steps) + _pert(steps)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"run": "wsd", "step": steps, "lr": WSD}).to_csv(tmp_path / "c.csv", index=False)
    return fit, tmp_path / "ref.csv", tmp_path / "c.csv"


def test_cli_anchored_points_and_schedule(tmp_path: Path) -> None:
    fit, ref, curve = _files(tmp_path)
    r = CliRunner().invoke(main, ["predict", str(fit), "--points", str(curve), "--anchor", str(ref), "--json",
                                  "--anchor-mode", "full"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["anchored"] is True and d["anchor"]["run"] == "const" and d["anchor"]["mode"] == "full"
    steps = np.arange(1, STEPS + 1)
    np.testing.assert_allclose([p["loss"] for p in d["predictions"]],
                               _law("anneal", ANNEAL, WSD, steps) + _pert(steps), rtol=0, atol=1e-12)
    np.testing.assert_allclose([p["plain"] for p in d["predictions"]], _law("anneal", ANNEAL, WSD, steps),
                               rtol=0, atol=1e-12)
    r = CliRunner().invoke(main, ["predict", str(fit), "--schedule", "wsd", "--steps", str(STEPS), "--lr", str(PEAK),
                                  "--warmup", str(WARM), "--decay-frac", "0.3", "--final-lr-frac", "0",
                                  "--anchor", str(ref), "--stride", "100", "--json", "--anchor-mode", "full"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["predictions"]
    st = np.array([p["step"] for p in rows])
    assert list(st) == [1, 101, 201, 301, 400]          # the reference's steps, every 100th, and the last
    np.testing.assert_allclose([p["loss"] for p in rows], _law("anneal", ANNEAL, WSD, st) + _pert(st),
                               rtol=0, atol=1e-12)
    r = CliRunner().invoke(main, ["predict", str(fit), "--points", str(curve), "--json"])
    assert json.loads(r.stdout)["anchored"] is False
    # the text output names the interval it gives: none here (the fit has no bootstrap draws), never the
    # extrapolation-calibrated one of a calibrated fit
    r = CliRunner().invoke(main, ["predict", str(fit), "--points", str(curve), "--anchor", str(ref),
                                  "--anchor-mode", "full"])
    assert r.exit_code == 0, r.output
    assert "interval: none" in r.stdout and "extrapolation-calibrated" not in r.stdout
    # with bootstrap draws: the anchored interval, named as such with its level
    draws = {k: [v] * 50 for k, v in ANNEAL.items()}
    Fit(law="anneal", params=dict(ANNEAL), bootstrap={"n": 50, "seed": 0, "n_failed": 0, "draws": draws}).to_json(fit)
    r = CliRunner().invoke(main, ["predict", str(fit), "--points", str(curve), "--anchor", str(ref),
                                  "--anchor-mode", "full"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.stdout.split())
    assert "interval: nominal 95% anchored interval" in flat and "extrapolation-calibrated" not in flat


def test_cli_anchor_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    fit, ref, curve = _files(tmp_path)
    df = pd.read_csv(ref)
    df.drop(columns="loss").to_csv(tmp_path / "noloss.csv", index=False)
    df.drop(columns="lr").to_csv(tmp_path / "nolr.csv", index=False)
    pd.concat([df, df.assign(run="other")]).to_csv(tmp_path / "two.csv", index=False)
    df[df["step"] <= 300].to_csv(tmp_path / "short.csv", index=False)
    # measured up to 250 only, lr-only rows after it: the reference's rates are known past the WSD decay's start
    # (281, the departure), its losses are not (a reference whose rates also end at 250 departs at 250, covered)
    df.assign(loss=df["loss"].where(df["step"] <= 250)).to_csv(tmp_path / "short250.csv", index=False)
    df.assign(loss=df["loss"].where(df["step"] != 50, -1.0)).to_csv(tmp_path / "neg.csv", index=False)
    chin = tmp_path / "chin.json"
    Fit.from_preset("chinchilla", "hoffmann2022").to_json(chin)
    pts = ["predict", str(fit), "--points", str(curve), "--anchor"]
    cases = [
        (pts + [str(tmp_path / "noloss.csv")], "has no column 'loss'"),
        (pts + [str(tmp_path / "nolr.csv")], "has no column 'lr'"),
        (pts + [str(tmp_path / "two.csv")], "--anchor-run RUN. Got ['const', 'other']"),
        (pts + [str(tmp_path / "two.csv"), "--anchor-run", "nope"], "--anchor-run must be one of"),
        (pts + [str(tmp_path / "short.csv"), "--anchor-mode", "full"], "covers (1..300). Got 301"),
        (pts + [str(tmp_path / "short250.csv")], "The departure step of the target from the reference (mode "
         "'branch') must be a step the reference covers (1..250), where its residual is read"),
        (["predict", str(fit), "--schedule", "wsd", "--steps", "400", "--lr", str(PEAK), "--warmup", str(WARM),
          "--decay-frac", "0.3", "--final-lr-frac", "0", "--anchor", str(tmp_path / "short250.csv")], "Got 281"),
        (pts + [str(tmp_path / "neg.csv")], "Column 'loss' of the anchor file"),
        (["predict", str(fit), "--schedule", "wsd", "--steps", "500", "--lr", "1e-3", "--anchor", str(ref),
          "--anchor-mode", "full"], "--steps must be at most 400"),
        (["predict", str(fit), "--points", str(curve), "--anchor-mode", "lr"], "--anchor-mode option must be given only"),
        (["predict", str(fit), "--schedule", "wsd", "--steps", "400", "--lr", "1e-3", "--best-decay", "--anchor",
          str(ref)], "not --best-decay"),
        (["predict", str(chin), "--points", str(curve), "--anchor", str(ref)], "given --schedule / --anchor"),
        (["predict", str(fit), "--anchor", str(ref)], "give --anchor REF.csv with --schedule"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_cli_anchor_rows_without_loss_give_the_learning_rate_only(tmp_path: Path) -> None:
    """A reference measured every 10th step, with an lr-only row for every other update: its curve is exact
    (no interpolation of the warmup) and the anchored losses equal the library's at the measured steps."""
    fit, ref, _ = _files(tmp_path)
    df = pd.read_csv(ref)
    df.loc[df["step"] % 10 != 0, "loss"] = np.nan
    df.to_csv(tmp_path / "sparse.csv", index=False)
    r = CliRunner().invoke(main, ["predict", str(fit), "--schedule", "wsd", "--steps", str(STEPS), "--lr", str(PEAK),
                                  "--warmup", str(WARM), "--decay-frac", "0.3", "--final-lr-frac", "0",
                                  "--anchor", str(tmp_path / "sparse.csv"), "--stride", "1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    st = np.array([p["step"] for p in d["predictions"]])
    assert list(st) == list(range(10, STEPS + 1, 10)) and d["anchor"]["steps"] == [10, STEPS]
    lib = anchored_curve(Fit(law="anneal", params=dict(ANNEAL)), WSD, st, REF, st,
                         _law("anneal", ANNEAL, REF, st) + _pert(st), mode="branch")   # the CLI's default mode
    np.testing.assert_allclose([p["loss"] for p in d["predictions"]], lib["prediction"], rtol=0, atol=1e-12)
    df.assign(loss=np.nan).to_csv(tmp_path / "empty.csv", index=False)
    r = CliRunner().invoke(main, ["predict", str(fit), "--schedule", "wsd", "--steps", "300", "--lr", str(PEAK),
                                  "--anchor", str(tmp_path / "empty.csv")])
    assert r.exit_code == 2 and "a measured loss on at least one row" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_branch_is_the_default_and_predicts_past_the_references_end(tmp_path: Path) -> None:
    """A constant reference measured up to the WSD run's departure (281) only: the default mode (branch)
    predicts the whole 400-step WSD curve, the reference's curve up to 281 and the law's change after it."""
    fit, ref, _ = _files(tmp_path)
    df = pd.read_csv(ref)
    df[df["step"] <= 281].to_csv(tmp_path / "stable.csv", index=False)
    r = CliRunner().invoke(main, ["predict", str(fit), "--schedule", "wsd", "--steps", str(STEPS), "--lr", str(PEAK),
                                  "--warmup", str(WARM), "--decay-frac", "0.3", "--final-lr-frac", "0",
                                  "--anchor", str(tmp_path / "stable.csv"), "--stride", "1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["anchor"]["mode"] == "branch" and d["anchor"]["departure"] == [281] and d["anchor"]["steps"] == [1, 281]
    st = np.array([p["step"] for p in d["predictions"]])
    assert list(st) == list(range(1, STEPS + 1))
    truth = _law("anneal", ANNEAL, WSD, st) + _pert(np.minimum(st, 281))
    np.testing.assert_allclose([p["loss"] for p in d["predictions"]], truth, rtol=0, atol=1e-12)
