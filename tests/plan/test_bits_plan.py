"""The format plan over bit widths (``plan FIT.json --flops C --bits 4..16``): Sun et al.'s law and
Kumar et al.'s, against the closed forms and brute force, with bootstrap intervals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.errors import ParameterError
from scalinglab.fit import Fit
from scalinglab.laws import kumar, precision
from scalinglab.plan.bits import plan_bits
from scalinglab.plan.dispatch import plan_fit
from scalinglab.plan.precision import optimal_precision

SUN = Fit.from_preset("precision", "sun2025")
KUMAR = Fit.from_preset("kumar", "kumar2024")
K = 6.0 / 16.0


def with_draws(fit: Fit, n: int = 40, spread: float = 0.01) -> Fit:
    """The fit with ``n`` synthetic bootstrap draws: each parameter times exp(N(0, spread))."""
    rng = np.random.default_rng(0)
    draws = {k: list(v * np.exp(rng.normal(0.0, spread, n))) for k, v in fit.params.items()}
    return dataclasses.replace(fit, preset=None, n_points=500, bootstrap={"n": n, "seed": 0, "n_failed": 0,
                                                                          "draws": draws})


def test_sun_rows() -> None:
    C = 1e22
    res = plan_bits(SUN, C, range(4, 17))
    rows = {r["P"]: r for r in res["rows"]}
    # Sun et al. 2025: FP4 -> E2M1, FP8 -> E4M3, FP16 -> E8M7
    assert [(rows[p]["e_bits"], rows[p]["m_bits"]) for p in (4, 8, 16)] == [(2, 1), (4, 3), (8, 7)]
    law = laws.get("precision")
    for r in res["rows"]:
        assert r["e_bits"] + r["m_bits"] + 1 == r["P"]
        assert r["D"] == pytest.approx(C / (K * r["P"] * r["N"]), rel=1e-12)   # C = (6/16) P N D
        assert r["D_crit"] == pytest.approx(float(precision.critical_data(SUN.params, r["N"], r["e_bits"],
                                                                         r["m_bits"], 128)), rel=1e-12)
        x = {"e_bits": r["e_bits"], "m_bits": r["m_bits"], "block": 128}
        for f in (0.98, 1.02):   # the row's N is the least loss along its IsoFLOP line
            n = r["N"] * f
            assert float(law.predict(SUN.params, {**x, "N": n, "D": C / (K * r["P"] * n)})[()]) > r["loss"]
    opt = optimal_precision(SUN.params, C, block=128, bits_range=(3.5, 16.5))
    assert res["optimum"]["P"] == pytest.approx(opt["P"], abs=1e-4)
    assert res["optimum"]["best_bits"] == min(res["rows"], key=lambda r: r["loss"])["P"]
    assert abs(res["optimum"]["best_bits"] - opt["P"]) < 1.0   # the integer optimum is next to the real one


def test_kumar_rows_against_brute_force() -> None:
    C = 1e21
    res = plan_bits(KUMAR, C, [3, 4, 8])
    law = laws.get("kumar")
    for r in res["rows"]:
        P = r["P"]
        N = np.geomspace(1e7, 1e12, 200001)
        L = law.predict(KUMAR.params, {"N": N, "D": C / (K * P * N), "P_w": P, "P_a": P, "P_kv": P})
        assert r["N"] == pytest.approx(float(N[np.argmin(L)]), rel=2e-4)
        assert r["loss"] == pytest.approx(float(L.min()), rel=1e-9)
        assert r["N_eff_fraction"] == pytest.approx(float(kumar.n_eff(KUMAR.params, 1.0, P)), rel=1e-12)
    assert res["optimum"]["P"] == pytest.approx(kumar.optimal_training_precision(KUMAR.params))
    assert res["optimum"]["best_bits"] == 4 and "critical" in res["note"]
    assert "D_crit" not in res["rows"][0]


@pytest.mark.parametrize("fit", [SUN, KUMAR], ids=["sun", "kumar"])
def test_intervals_from_bootstrap_draws(fit: Fit) -> None:
    res = plan_bits(with_draws(fit), 1e21, [4, 6, 8])
    assert not any("no intervals" in w for w in res["warnings"])
    lo, hi = res["optimum"]["P_interval"]
    assert lo < hi and lo - 0.2 < res["optimum"]["P"] < hi + 0.2
    keys = ("N", "D", "loss", "D_crit", "m_opt") if fit.law == "precision" else ("N", "D", "loss", "N_eff_fraction")
    for r in res["rows"]:
        for key in keys:
            a, b = r[f"{key}_interval"]
            assert a < b and a * 0.9 < r[key] < b * 1.1, (r["P"], key)
        if fit.law == "precision":
            assert 0.0 <= r["split_agreement"] <= 1.0


def test_without_draws_says_so() -> None:
    res = plan_bits(SUN, 1e21, [4])
    assert res["rows"][0].get("loss_interval") is None and res["optimum"]["P_interval"] is None
    assert any("no intervals" in w for w in res["warnings"])


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": [1]}, "'bits'"), ({"bits": [4.5]}, "'bits'"), ({"bits": []}, "'bits'"), ({"bits": [65]}, "'bits'"),
    ({"bits": [4], "fixed": {"N": 1e9}}, "'fixed'"), ({"bits": [4], "max_tokens": 1e9}, "max_tokens"),
])
def test_dispatch_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        plan_fit(SUN, 1e21, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="law of a 'bits' plan"):
        plan_fit(Fit.from_preset("chinchilla", "hoffmann2022"), 1e21, bits=[4])


def test_dispatch_block() -> None:
    a = plan_fit(SUN, 1e21, bits=[4], fixed={"block": 32})
    b = plan_fit(SUN, 1e21, bits=[4])
    assert a["block"] == 32 and a["rows"][0]["loss"] < b["rows"][0]["loss"]   # smaller blocks lose less


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_cli(tmp_path: Path) -> None:
    path = tmp_path / "fit.json"
    with_draws(SUN, 20).to_json(path)
    code, out, err = run("plan", str(path), "--flops", "1e21", "--bits", "4..6", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert [r["P"] for r in res["rows"]] == [4, 5, 6] and res["rows"][0]["D_crit_interval"]
    code, out, err = run("plan", "--law", "kumar", "--preset", "kumar2024", "--flops", "1e21", "--bits", "3,4,8")
    assert code == 0 and "compute-optimal precision: P = 3.47 bits" in out
    for bad, message in (("4..x", "--bits"), ("8..4", "--bits"), ("1,4", "--bits"), ("4.5", "--bits")):
        code, out, err = run("plan", str(path), "--flops", "1e21", "--bits", bad)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    code, _, err = run("plan", str(path), "--flops", "1e21", "--bits", "1..3")
    assert code == 2 and err.strip().endswith("Got 1 instead."), err      # an integer shown as one
    code, _, err = run("plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21", "--bits", "4")
    assert code == 2 and "law of a --bits plan" in err, err


def test_splits_beyond_the_emulator_are_flagged() -> None:
    """A law whose mantissa exponent dominates (delta << nu) puts M_opt near P - 0.5: at 16 bits E0M15 or
    E1M14, past the ladder's M <= 7. The plan says so; the preset's own splits (at most E8M7) raise nothing."""
    skewed = dataclasses.replace(SUN, params={**SUN.params, "delta": 0.05 * SUN.params["nu"]})
    res = plan_bits(skewed, 1e21, [4, 16])
    rows = {r["P"]: r for r in res["rows"]}
    assert rows[16]["m_bits"] > 7 and rows[4]["m_bits"] <= 7
    flagged = [w for w in res["warnings"] if "beyond what the ladder can train" in w]
    assert len(flagged) == 1 and f"E{rows[16]['e_bits']}M{rows[16]['m_bits']}" in flagged[0]
    assert f"E{rows[4]['e_bits']}M{rows[4]['m_bits']}" not in flagged[0]
    assert not [w for w in plan_bits(SUN, 1e21, range(4, 17))["warnings"] if "beyond" in w]
