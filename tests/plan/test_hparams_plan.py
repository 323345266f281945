"""`plan --hparams / --critical-batch`: the learning rate, batch and critical batch of the planned run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.fit import Fit, LawFit
from scalinglab.plan.hparams import plan_hparams

PLAN = ["plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21", "--json"]


def _plan(*extra: str) -> dict:
    r = CliRunner().invoke(main, [*PLAN, *extra])
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.stdout))


def test_li2025_preset_gives_the_closed_forms() -> None:
    d = _plan("--hparams", "li2025")
    N, D = d["N"], d["D"]
    assert d["lr"] == pytest.approx(1.79 * N ** -0.713 * D ** 0.307, rel=1e-12)
    assert d["batch_tokens"] == pytest.approx(0.58 * D ** 0.571, rel=1e-12)
    assert "li2025" in d["hparams_source"]["lr"] and d["lr_interval"] is None
    assert "b_crit_tokens" not in d


def test_deepseek_preset_reads_the_compute() -> None:
    d = _plan("--hparams", "deepseek2024")
    assert d["lr"] == pytest.approx(0.3118 * 1e21 ** -0.125, rel=1e-12)
    assert d["batch_tokens"] == pytest.approx(0.2920 * 1e21 ** 0.3271, rel=1e-12)


def test_critical_batch_at_the_planned_loss(tmp_path: Path) -> None:
    cb = tmp_path / "cb.json"
    cb.write_text(json.dumps({"pooled": {"vs_loss": {"B_star": 2e8, "inverse_alpha_B": 1 / 0.21}},
                              "source": "store x"}))
    d = _plan("--critical-batch", str(cb))
    assert d["b_crit_tokens"] == pytest.approx(2e8 / d["loss"] ** (1 / 0.21), rel=1e-12)
    assert "store x" in d["hparams_source"]["b_crit_tokens"]


def test_a_steplaw_fit_gives_intervals(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for n in (1e6, 3e6, 1e7):
        for dd in (1e8, 4e8):
            rows.append({"N": n, "D": dd, "lr": 2.0 * n ** -0.7 * dd ** 0.3 * np.exp(rng.normal(0, 0.05)),
                         "batch": 0.5 * dd ** 0.5 * np.exp(rng.normal(0, 0.05)), "loss": 3.0})
    fit = LawFit("steplaw", bootstrap=200, seed=0).fit(pd.DataFrame(rows)).result_
    res = plan_hparams({"N": 5e6, "D": 2e8, "flops": 6e15, "loss": 3.0}, None, None)
    assert "lr" not in res
    path = tmp_path / "sl.json"
    fit.to_json(path)
    res = plan_hparams({"N": 5e6, "D": 2e8, "flops": 6e15, "loss": 3.0, "n_convention": "non-embedding"},
                       str(path), None)
    lo, hi = res["lr_interval"]
    assert lo < res["lr"] < hi
    assert res["lr"] == pytest.approx(fit.params["lr_scale"] * 5e6 ** fit.params["lr_exp_N"]
                                      * 2e8 ** fit.params["lr_exp_D"], rel=1e-12)


def test_bad_hparams_are_one_line(tmp_path: Path) -> None:
    chin = tmp_path / "chin.json"
    Fit.from_preset("chinchilla", "hoffmann2022").to_json(chin)
    bad = tmp_path / "cb.json"
    bad.write_text(json.dumps({"fits": []}))
    for args, msg in ((["--hparams", str(chin)], "'steplaw'"),
                      (["--hparams", str(tmp_path / "none.json")], "none.json"),
                      (["--critical-batch", str(bad)], "vs_loss")):
        r = CliRunner().invoke(main, [*PLAN, *args])
        assert r.exit_code == 2, r.output
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_hparams_refuse_a_plan_without_n_and_d() -> None:
    from scalinglab.errors import ParameterError

    with pytest.raises(ParameterError, match="compute-optimal plan"):
        plan_hparams({"law": "sparse", "N_nonzero": 1e6, "tokens": 1e8, "flops": 1e15, "loss": 3.0}, "li2025", None)


@pytest.mark.parametrize("content, message", [
    ([1, 2], "The critical-batch result must be a JSON object (the critical batch study's result). "
             "Got 'list' instead."),
    ({"pooled": 3}, "The critical-batch result's field 'pooled' must be an object or null. Got 3 instead."),
    ({"pooled": {"vs_loss": {"B_star": "x", "inverse_alpha_B": 2.0}}},
     "The critical-batch result's field 'pooled.vs_loss.B_star' must be a finite positive number (tokens). "
     "Got 'x' instead."),
    ({"pooled": {"vs_loss": {"B_star": -1, "inverse_alpha_B": 2.0}}}, "'pooled.vs_loss.B_star'"),
    ({"pooled": {"vs_loss": {"B_star": 2e8, "inverse_alpha_B": None}}},
     "'pooled.vs_loss.inverse_alpha_B' must be a finite number (1/alpha_B). Got None instead."),
    ({"pooled": None, "vs_loss": {"12000": {"B_star": 2e8, "inverse_alpha_B": float("nan")}}},
     "'vs_loss.12000.inverse_alpha_B'"),
    ({"vs_loss": {"12000": [1]}}, "'vs_loss.12000' must be an object with B_star and inverse_alpha_B"),
])
def test_hand_edited_critical_batch_file_is_one_line(tmp_path: Path, content: object, message: str) -> None:
    """A CB.json edited by hand: one line naming the field (a list or a number in it was an AttributeError or
    TypeError traceback, exit 1)."""
    bad = tmp_path / "cb.json"
    bad.write_text(json.dumps(content))
    r = CliRunner().invoke(main, [*PLAN, "--critical-batch", str(bad)])
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {message}\n" or (message in r.stderr and r.stderr.count("\n") == 1), r.stderr
    assert r.stdout == ""


def test_plan_says_what_each_hyperparameter_interval_is(tmp_path: Path) -> None:
    """lr, batch_tokens and b_crit_tokens intervals say what they are and their level (hparams_interval), as the
    plan's loss interval does (interval_kind, ci_level); they said nothing."""
    rng = np.random.default_rng(0)
    rows = [{"N": n, "D": dd, "lr": 2.0 * n ** -0.7 * dd ** 0.3 * np.exp(rng.normal(0, 0.05)),
             "batch": 0.5 * dd ** 0.5 * np.exp(rng.normal(0, 0.05)), "loss": 3.0}
            for n in (1e6, 3e6, 1e7) for dd in (1e8, 4e8)]
    sl = tmp_path / "sl.json"
    LawFit("steplaw", bootstrap=50, seed=0).fit(pd.DataFrame(rows)).result_.to_json(sl)
    plan = {"N": 5e6, "D": 2e8, "flops": 6e15, "loss": 3.0, "n_convention": "non-embedding", "ci_level": 0.9,
            "N_interval": [4e6, 6e6], "D_interval": [1.5e8, 2.5e8], "interval": [2.9, 3.1], "interval_kind": "observation"}
    cb = {"pooled": {"vs_loss": {"B_star": 2e8, "inverse_alpha_B": 2.0}}}
    res = plan_hparams(plan, str(sl), cb)
    assert res["hparams_interval"] == {
        "lr": "the 95% percentile interval of the Step-Law fit's bootstrap draws at the planned (N, D), joined with "
              "the law at the ends of the plan's 90% N and D intervals",
        "batch_tokens": "the 95% percentile interval of the Step-Law fit's bootstrap draws at the planned (N, D), "
                        "joined with the law at the ends of the plan's 90% D interval",
        "b_crit_tokens": "B_crit(L) at the ends of the plan's nominal 90% observation loss interval (B_crit(L)'s own "
                         "uncertainty not included)"}
    assert plan_hparams({**plan, "N_interval": None, "D_interval": None}, "li2025", None)["hparams_interval"] == \
        {"lr": None, "batch_tokens": None}           # a preset at a plan without intervals: none
    assert plan_hparams(plan, "deepseek2024", None)["hparams_interval"] == {"lr": None, "batch_tokens": None}
    d = _plan("--hparams", "li2025")
    assert d["hparams_interval"] == {"lr": None, "batch_tokens": None}


@pytest.mark.parametrize("args, message", [
    (["--law", "steplaw", "--preset", "li2025"],
     "error: law 'steplaw' predicts 'lr', not a loss: a compute-optimal plan minimises the loss at a fixed FLOP "
     "budget (a Step-Law fit gives the learning rate and batch of another law's plan).\n"),
    (["--law", "kumar_ptq", "--preset", "kumar2024", "--at", "P_post=4"],
     "error: law 'kumar_ptq' predicts 'dL_ptq', not a loss: a compute-optimal plan minimises the loss at a fixed "
     "FLOP budget.\n"),
])
def test_plan_of_a_law_that_predicts_no_loss_is_one_line(args: list[str], message: str) -> None:
    """`plan STEPLAW.json --flops C` minimised the learning rate over N and D (N = 1e19, D = 1.2 tokens, 'loss' =
    the lr) and then failed with a KeyError traceback printing it."""
    for extra in ([], ["--json"]):
        r = CliRunner().invoke(main, ["plan", *args, "--flops", "1e21", *extra])
        assert (r.exit_code, r.stdout, r.stderr) == (2, "", message)
