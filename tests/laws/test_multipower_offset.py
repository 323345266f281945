"""The multi-power law with a warmup-area offset (``multipower_offset``): its analytic Jacobian against
central differences, its exact reduction to the paper's law at dS = 0, the fit recovering a synthetic
curve made with dS != 0 (and ``--fix dS=0`` giving the paper's law), and the one-line error of a bad dS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.fit import Fit
from scalinglab.fit.anneal import CURVE_LAWS, curve_inputs, lr_curve, predict_curve, schedule_curve
from scalinglab.laws import multipower as mp
from scalinglab.runconfig import RunConfig, ScheduleConfig

LAW = laws.get("multipower_offset")
PAPER = laws.get("multipower")
TRUE = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5, "dS": 0.25}
STEPS = 400


def _inputs(eta: np.ndarray, steps: list[int] | np.ndarray) -> dict[str, np.ndarray]:
    return curve_inputs("multipower_offset", eta, steps)


def test_the_parameters_are_the_paper_laws_plus_ds() -> None:
    assert LAW.param_names == PAPER.param_names + ("dS",)
    assert "multipower_offset" in CURVE_LAWS
    assert (LAW.param("dS").lower, LAW.param("dS").upper) == (0.0, mp.DS_MAX)


def test_ds_zero_is_exactly_the_paper_law() -> None:
    p = {**TRUE, "dS": 0.0}
    paper = {k: v for k, v in p.items() if k != "dS"}
    for eta in (schedule_curve("wsd", 300, 3e-3, warmup_steps=20, decay_frac=0.3, final_lr_frac=0.0),
                schedule_curve("cosine", 300, 3e-3, warmup_steps=20),
                schedule_curve("constant", 300, 3e-3, warmup_steps=20)):
        x = _inputs(eta, np.arange(1, 301))
        np.testing.assert_array_equal(LAW.predict(p, x), PAPER.predict(paper, x))
        assert LAW.log_jacobian is not None and PAPER.log_jacobian is not None
        batch = {k: np.array([[v]]) for k, v in p.items()}
        _, J = LAW.log_jacobian(batch, x)
        _, J0 = PAPER.log_jacobian({k: v for k, v in batch.items() if k != "dS"}, x)
        np.testing.assert_array_equal(J[..., :7], J0)


def test_the_offset_shifts_the_area_by_hand() -> None:
    eta = np.array([1.0, 2.0, 2.0, 2.0])          # warmup of one update, constant after: LD = 0
    x = _inputs(eta, [2, 3, 4])
    want = 1.3 + 0.9 * (np.array([3.0, 5.0, 7.0]) + 0.25) ** -0.45
    np.testing.assert_allclose(LAW.predict(TRUE, x), want, rtol=1e-14)


def test_analytic_jacobian_matches_finite_differences(check_log_jacobian: Callable[..., None]) -> None:
    eta = schedule_curve("wsd", 120, 3e-3, warmup_steps=10, decay_frac=0.5, final_lr_frac=0.05)
    x = _inputs(eta, np.arange(5, 121, 5))
    assert LAW.log_jacobian is not None
    _, J = LAW.log_jacobian({k: np.array([[TRUE[k]]]) for k in LAW.param_names}, x)
    assert J.shape == (1, 24, 8)
    check_log_jacobian(LAW, TRUE, x, rtol=1e-5, atol=1e-10, relative=True)
    assert np.all(J[0, :, 7] < 0)                  # more offset area: lower loss


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=20, **sched))  # type: ignore[arg-type]


def _truth(cfg: RunConfig, steps: np.ndarray) -> np.ndarray:
    return np.asarray(LAW.predict(TRUE, _inputs(lr_curve(cfg), steps)))


def _curves(curves_file: Callable[..., Path]) -> Path:
    """A constant and a cosine run, every step logged (the ``curves_file`` fixture, tests/laws/conftest.py)."""
    return curves_file(_truth, (_cfg("const", name="constant"), _cfg("cos", name="cosine", final_lr_frac=0.0)))


def test_fit_recovers_a_curve_made_with_an_offset(tmp_path: Path, curves_file: Callable[..., Path]) -> None:
    f = _curves(curves_file)
    base = ["fit", str(f), "--where", "step > 20 and step % 10 == 0", "--bootstrap", "0", "--json"]
    r = CliRunner().invoke(main, [*base, "--law", "multipower_offset", "--out", str(tmp_path / "fit.json")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in ("L0", "A", "alpha", "dS"):
        assert out["params"][k] == pytest.approx(TRUE[k], rel=1e-3), k
    wsd = _cfg("wsd", name="wsd", decay_frac=0.2, final_lr_frac=0.0)     # not in the fit
    pred = predict_curve(Fit.from_json(tmp_path / "fit.json"), lr_curve(wsd), stride=20)
    np.testing.assert_allclose(pred["prediction"], _truth(wsd, pred["step"].to_numpy()), rtol=1e-4)
    # the paper's law is the offset law held at dS = 0: the same fit, and a worse one on these points
    r0 = CliRunner().invoke(main, [*base, "--law", "multipower_offset", "--fix", "dS=0"])
    rp = CliRunner().invoke(main, [*base, "--law", "multipower"])
    assert r0.exit_code == 0 and rp.exit_code == 0, r0.output + rp.output
    o0, op = json.loads(r0.stdout), json.loads(rp.stdout)
    assert o0["params"]["dS"] == 0.0 and o0["fixed"] == ["dS"]
    assert o0["objective"]["value"] == pytest.approx(op["objective"]["value"], rel=1e-6)
    assert o0["objective"]["value"] > 10 * out["objective"]["value"]


def test_a_bad_ds_is_a_one_line_error(curves_file: Callable[..., Path]) -> None:
    f = _curves(curves_file)
    for bad in ("dS=-0.1", "dS=2000"):
        r = CliRunner().invoke(main, ["fit", str(f), "--law", "multipower_offset", "--fix", bad])
        assert r.exit_code == 2, r.output
        assert "dS" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
