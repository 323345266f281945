"""Whole-curve predictions of the curve laws from the command line (``predict --schedule``, ``--points``,
``--best-decay``) say which interval they give and its nominal level, as ``predict --at`` and ``plan`` do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.laws.anneal import derive_areas

STEPS = 400


def curves(path: Path) -> Path:
    """A constant and a cosine run (100-step warmup, peak 1e-2) on a known anneal law, every 10th step."""
    rows = []
    for run in ("const", "cos"):
        for s in range(1, STEPS + 1):
            lr = 1e-2 * min(1.0, s / 100)
            if run == "cos":
                lr *= 0.1 + 0.45 * (1 + np.cos(np.pi * max(0, s - 100) / (STEPS - 100)))
            rows.append({"run": run, "step": s, "lr": lr})
    d = derive_areas(pd.DataFrame(rows))
    d["loss"] = 2.0 + 1.5 * d["S1"] ** -0.4 - 0.02 * d["S2"]
    d[d["step"] % 10 == 0][["run", "step", "lr", "loss"]].to_csv(path, index=False)
    return path


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def fits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("curves")
    data = curves(tmp / "curves.csv")
    out = {}
    for name, boot in (("boot", "10"), ("plain", "0")):
        out[name] = tmp / f"{name}.json"
        code, _, err = run("fit", str(data), "--law", "anneal", "--bootstrap", boot, "--out", str(out[name]))
        assert code == 0, err
    pd.read_csv(data)[["run", "step", "lr"]].to_csv(tmp / "points.csv", index=False)
    out["points"] = tmp / "points.csv"
    return out


@pytest.mark.parametrize("how", [["--schedule", "wsd", "--steps", "300", "--lr", "1e-2"],
                                 ["--schedule", "wsd", "--steps", "300", "--lr", "1e-2", "--best-decay"],
                                 ["--points", "POINTS"]])
def test_curve_predictions_name_their_interval(fits: dict[str, Path], how: list[str]) -> None:
    how = [str(fits["points"]) if a == "POINTS" else a for a in how]
    code, out, err = run("predict", str(fits["boot"]), *how, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["interval_kind"], d["level"], d["ci_level"]) == ("observation", 0.95, 0.95)
    code, out, err = run("predict", str(fits["boot"]), *how)
    assert code == 0, err
    assert "interval: nominal 95% observation interval" in out
    # no bootstrap draws: no interval, and the output says so
    code, out, err = run("predict", str(fits["plain"]), *how, "--json")
    assert code == 0, err
    assert json.loads(out)["interval_kind"] is None
    code, out, err = run("predict", str(fits["plain"]), *how)
    assert code == 0, err
    assert "interval: none (the fit has no bootstrap draws)" in out


def test_power_schedule_from_the_command_line(fits: dict[str, Path]) -> None:
    """--schedule power needs the run's batch and context, which predict had no option for: the error named
    fields nobody could set ('batch_tokens' and 'context')."""
    base = ["predict", str(fits["boot"]), "--schedule", "power", "--steps", "300", "--lr", "1e-2", "--warmup", "30"]
    code, out, err = run(*base)
    assert (code, out) == (2, "")
    assert err.startswith("error: --batch-tokens and --context of --schedule power must be positive integers")
    code, out, err = run(*base, "--batch-tokens", "2048", "--context", "128", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["predictions"][-1]["step"] == 300 and 0 < d["predictions"][-1]["lr"] < 1e-2


@pytest.mark.parametrize("args, message", [
    (["--schedule", "cosine", "--decay-frac", "0.5"],
     "error: The --decay-frac option must be given only with --schedule wsd or power (--schedule cosine ignores it). "
     "Got 0.5 instead.\n"),
    (["--schedule", "constant", "--decay-shape", "cosine"], "--schedule constant ignores it). Got 'cosine' instead."),
    (["--schedule", "wsd", "--best-decay", "--decay-frac", "0.3"], "(--best-decay tries every fraction). Got 0.3"),
    (["--best-decay"], "error: The --schedule of --best-decay must be 'wsd' (give --schedule wsd). Got '(none given)' "
     "instead.\n"),
    (["--schedule", "cosine", "--best-decay"], "must be 'wsd' (give --schedule wsd). Got 'cosine' instead."),
    (["--schedule", "wsd", "--context", "128"],
     "error: The --context option must be given only with --schedule power (--schedule wsd ignores it). Got 128 "
     "instead.\n"),
])
def test_schedule_options_away_from_their_schedule_are_one_line(fits: dict[str, Path], args: list[str],
                                                                message: str) -> None:
    """--decay-frac with a cosine schedule (or --best-decay), --decay-shape with a constant one: silently ignored."""
    code, out, err = run("predict", str(fits["boot"]), "--steps", "300", "--lr", "1e-2", *args)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err == message or (not message.startswith("error") and message in err), err
