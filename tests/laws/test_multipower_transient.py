"""The multi-power law with a warmup-area offset and an early transient (``multipower_transient``): its
exact reduction to ``multipower_offset`` at E = 0, the transient term by hand, its analytic Jacobian
against central differences, a fit through the CLI recovering a synthetic curve made with a transient,
``predict --schedule`` on that fit, and the one-line error of a bad tau."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.fit.anneal import CURVE_LAWS, curve_inputs, lr_curve, schedule_curve
from scalinglab.laws import multipower as mp
from scalinglab.runconfig import RunConfig, ScheduleConfig

LAW = laws.get("multipower_transient")
OFFSET = laws.get("multipower_offset")
TRUE = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5, "dS": 0.25,
        "E": 0.8, "tau": 0.05}
LD_FIXED = ("B", "C", "beta", "gamma")
STEPS = 400


def _inputs(eta: np.ndarray, steps: list[int] | np.ndarray) -> dict[str, np.ndarray]:
    return curve_inputs("multipower_transient", eta, steps)


def test_the_parameters_are_the_offset_laws_plus_e_and_tau() -> None:
    assert LAW.param_names == OFFSET.param_names + ("E", "tau")
    assert "multipower_transient" in CURVE_LAWS
    assert (LAW.param("tau").lower, LAW.param("tau").upper) == (mp.TAU_MIN, mp.TAU_MAX)


def test_e_zero_is_exactly_the_offset_law() -> None:
    p = {**TRUE, "E": 0.0}
    off = {k: v for k, v in p.items() if k not in ("E", "tau")}
    for eta in (schedule_curve("wsd", 300, 3e-3, warmup_steps=20, decay_frac=0.3, final_lr_frac=0.0),
                schedule_curve("cosine", 300, 3e-3, warmup_steps=20),
                schedule_curve("constant", 300, 3e-3, warmup_steps=20)):
        x = _inputs(eta, np.arange(1, 301))
        np.testing.assert_array_equal(LAW.predict(p, x), OFFSET.predict(off, x))
        assert LAW.log_jacobian is not None and OFFSET.log_jacobian is not None
        lnL, J = LAW.log_jacobian({k: np.array([[v]]) for k, v in p.items()}, x)
        lnL0, J0 = OFFSET.log_jacobian({k: np.array([[v]]) for k, v in off.items()}, x)
        np.testing.assert_array_equal(lnL, lnL0)
        np.testing.assert_array_equal(J[..., :8], J0)
        assert np.all(J[..., 8:] == 0.0)


def test_the_transient_by_hand() -> None:
    eta = np.array([1.0, 2.0, 2.0, 2.0])          # warmup of one update, constant after: LD = 0
    x = _inputs(eta, [2, 3, 4])
    area = np.array([3.0, 5.0, 7.0])
    p = {**TRUE, "tau": 2.0}
    want = 1.3 + 0.9 * (area + 0.25) ** -0.45 + 0.8 * np.exp(-area / 2.0)
    np.testing.assert_allclose(LAW.predict(p, x), want, rtol=1e-14)


def test_analytic_jacobian_matches_finite_differences() -> None:
    eta = schedule_curve("wsd", 120, 3e-3, warmup_steps=10, decay_frac=0.5, final_lr_frac=0.05)
    x = _inputs(eta, np.arange(5, 121, 5))
    names = LAW.param_names
    p0 = {**TRUE, "tau": 0.1}                     # the transient still alive at the last point (area 0.35)
    theta = np.array([LAW.param(k).to_scaled(p0[k]) for k in names])

    def lnL(th: np.ndarray) -> np.ndarray:
        p = {k: LAW.param(k).from_scaled(v) for k, v in zip(names, th)}
        return np.log(np.asarray(LAW.predict(p, x)))

    assert LAW.log_jacobian is not None
    _, J = LAW.log_jacobian({k: np.array([[p0[k]]]) for k in names}, x)
    assert J.shape == (1, 24, 10)
    for j in range(10):
        h = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(10)
        e[j] = h
        fd = (lnL(theta + e) - lnL(theta - e)) / (2 * h)
        np.testing.assert_allclose(J[0, :, j], fd, rtol=1e-5, atol=1e-10)
    assert np.all(J[0, :, 8] > 0)                  # a larger transient: a higher loss


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=20, **sched))  # type: ignore[arg-type]


def _truth(cfg: RunConfig, steps: np.ndarray) -> np.ndarray:
    return np.asarray(LAW.predict(TRUE, _inputs(lr_curve(cfg), steps)))


def _curves_file(curves_file: Callable[..., Path]) -> Path:
    return curves_file(_truth, (_cfg("const", name="constant"), _cfg("cos", name="cosine", final_lr_frac=0.0)))


def test_fit_recovers_a_curve_made_with_a_transient_and_predicts_a_schedule(tmp_path: Path,
                                                                           curves_file: Callable[..., Path]) -> None:
    f = _curves_file(curves_file)
    fix = [a for k in LD_FIXED for a in ("--fix", f"{k}={TRUE[k]}")]    # LD held at the truth: a fast fit
    base = ["fit", str(f), "--where", "step > 20 and step % 5 == 0", "--bootstrap", "0", "--json", *fix]
    r = CliRunner().invoke(main, [*base, "--law", "multipower_transient", "--out", str(tmp_path / "fit.json")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in ("L0", "A", "alpha", "dS", "E", "tau"):
        assert out["params"][k] == pytest.approx(TRUE[k], rel=1e-3), k
    # the whole curve of a WSD run not in the fit, through predict --schedule
    rp = CliRunner().invoke(main, ["predict", str(tmp_path / "fit.json"), "--schedule", "wsd", "--steps", str(STEPS),
                                   "--lr", "3e-3", "--warmup", "20", "--decay-frac", "0.2",
                                   "--final-lr-frac", "0", "--stride", "40", "--json"])
    assert rp.exit_code == 0, rp.output
    pred = json.loads(rp.stdout)
    rows = pred["predictions"]
    steps = np.array([row["step"] for row in rows])
    wsd = _cfg("wsd", name="wsd", decay_frac=0.2, final_lr_frac=0.0)
    np.testing.assert_allclose([row["loss"] for row in rows], _truth(wsd, steps), rtol=1e-4)
    # without the transient (E held at 0, tau then unidentified and held too) the fit is far worse
    r0 = CliRunner().invoke(main, [*base, "--law", "multipower_transient", "--fix", "E=0", "--fix", "tau=1"])
    assert r0.exit_code == 0, r0.output
    assert json.loads(r0.stdout)["objective"]["value"] > 10 * out["objective"]["value"]


def test_a_bad_tau_is_a_one_line_error(curves_file: Callable[..., Path]) -> None:
    f = _curves_file(curves_file)
    for bad in ("tau=0", "tau=1e3", "E=-1"):
        r = CliRunner().invoke(main, ["fit", str(f), "--law", "multipower_transient", "--fix", bad])
        assert r.exit_code == 2, r.output
        assert bad.split("=")[0] in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
