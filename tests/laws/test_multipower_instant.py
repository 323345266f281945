"""The multi-power law with a warmup-area offset and an instant reduction (``multipower_instant``): its exact
reduction to ``multipower_offset`` at K = 0, the instant term by hand (K times the drops seen, eta_0 - eta_t),
its analytic Jacobian against central differences, and a fit through the CLI recovering a synthetic curve
made with an instant term."""

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
from scalinglab.runconfig import RunConfig, ScheduleConfig

LAW = laws.get("multipower_instant")
OFFSET = laws.get("multipower_offset")
TRUE = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5, "dS": 0.25, "K": 40.0}
STEPS = 400


def _inputs(eta: np.ndarray, steps: list[int] | np.ndarray) -> dict[str, np.ndarray]:
    return curve_inputs("multipower_instant", eta, steps)


def test_the_parameters_are_the_offset_laws_plus_k() -> None:
    assert LAW.param_names == OFFSET.param_names + ("K",)
    assert "multipower_instant" in CURVE_LAWS


def test_k_zero_is_exactly_the_offset_law() -> None:
    p = {**TRUE, "K": 0.0}
    off = {k: v for k, v in p.items() if k != "K"}
    for eta in (schedule_curve("wsd", 300, 3e-3, warmup_steps=20, decay_frac=0.3, final_lr_frac=0.0),
                schedule_curve("cosine", 300, 3e-3, warmup_steps=20),
                schedule_curve("constant", 300, 3e-3, warmup_steps=20)):
        x = _inputs(eta, np.arange(1, 301))
        np.testing.assert_array_equal(LAW.predict(p, x), OFFSET.predict(off, x))


def test_the_instant_term_by_hand() -> None:
    """Warmup of one update to 2, then 2, 1.5, 0.5: the points after 3, 4, 5 updates have seen the rates up to 2,
    1.5, 0.5, so K times 0, 0.5, 1.5 is taken off the offset law's value there."""
    eta = np.array([1.0, 2.0, 2.0, 1.5, 0.5])
    x = _inputs(eta, [3, 4, 5])
    off = {k: v for k, v in TRUE.items() if k != "K"}
    want = np.asarray(OFFSET.predict(off, x)) - 40.0 * np.array([0.0, 0.5, 1.5])
    np.testing.assert_allclose(LAW.predict(TRUE, x), want, rtol=1e-13)


def test_analytic_jacobian_matches_finite_differences(check_log_jacobian: Callable[..., None]) -> None:
    eta = schedule_curve("wsd", 120, 3e-3, warmup_steps=10, decay_frac=0.5, final_lr_frac=0.05)
    x = _inputs(eta, np.arange(5, 121, 5))
    check_log_jacobian(LAW, TRUE, x, rtol=1e-5, atol=1e-10, relative=True)
    assert LAW.log_jacobian is not None
    _, J = LAW.log_jacobian({k: np.array([[TRUE[k]]]) for k in LAW.param_names}, x)
    assert J.shape == (1, 24, 9)
    assert np.all(J[0, 12:, 8] < 0)                # after the decay starts, a larger K: a lower loss


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=20, **sched))  # type: ignore[arg-type]


def _truth(cfg: RunConfig, steps: np.ndarray) -> np.ndarray:
    return np.asarray(LAW.predict(TRUE, _inputs(lr_curve(cfg), steps)))


def test_a_fit_through_the_cli_recovers_an_instant_term_and_predicts_a_schedule(
        tmp_path: Path, curves_file: Callable[..., Path]) -> None:
    f = curves_file(_truth, (_cfg("const", name="constant"), _cfg("cos", name="cosine", final_lr_frac=0.0)))
    fix = [a for k in ("C", "beta", "gamma") for a in ("--fix", f"{k}={TRUE[k]}")]   # G held at the truth: fast
    base = ["fit", str(f), "--where", "step > 20 and step % 5 == 0", "--bootstrap", "0", "--json", *fix]
    r = CliRunner().invoke(main, [*base, "--law", "multipower_instant", "--out", str(tmp_path / "fit.json")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in ("L0", "A", "alpha", "B", "dS", "K"):
        assert out["params"][k] == pytest.approx(TRUE[k], rel=1e-3), k
    # the whole curve of a WSD run not in the fit, through predict --schedule
    rp = CliRunner().invoke(main, ["predict", str(tmp_path / "fit.json"), "--schedule", "wsd", "--steps", str(STEPS),
                                   "--lr", "3e-3", "--warmup", "20", "--decay-frac", "0.2",
                                   "--final-lr-frac", "0", "--stride", "40", "--json"])
    assert rp.exit_code == 0, rp.output
    rows = json.loads(rp.stdout)["predictions"]
    steps = np.array([row["step"] for row in rows])
    wsd = _cfg("wsd", name="wsd", decay_frac=0.2, final_lr_frac=0.0)
    np.testing.assert_allclose([row["loss"] for row in rows], _truth(wsd, steps), rtol=1e-4)
    # without the instant term (K held at 0) the fit is far worse
    r0 = CliRunner().invoke(main, [*base, "--law", "multipower_instant", "--fix", "K=0"])
    assert r0.exit_code == 0, r0.output
    assert json.loads(r0.stdout)["objective"]["value"] > 10 * out["objective"]["value"]
