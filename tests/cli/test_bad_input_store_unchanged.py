"""The bad inputs the dynamics and calibration issues name, from the command line on a real store:
each is one line on stderr naming the field, the value and what was expected, exit code 2, and the
store (every file beside it, the lock aside) byte for byte as it was, with no output file written.

A target loss no run reaches (the lowest loss reached named); a schedule the law cannot read; an anneal
or multi-power fit on a file without ``lr``; one micro-batch with the noise scale on (``ladder run``);
a rollout key with fewer than three groups; ``--bound`` outside the parameter's range or LO >= HI,
on several laws (chinchilla, kaplan_steps, anneal, multipower) and on ``backtest``; a bad ``--stride``
and a bad ``--decay-shape`` of ``--best-decay``; a name given twice to ``--fix``, ``--at`` or ``--map``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.fit import Fit


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith(".lock")}


def one_line_exit_2(folder: Path, args: list[str], *needles: str) -> None:
    before = snapshot(folder)
    r = CliRunner().invoke(main, args, prog_name="scalinglab")
    assert r.exit_code == 2, (args, r.output)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (args, r.stderr)
    for n in needles:
        assert n in r.stderr, (args, r.stderr)
    assert snapshot(folder) == before, args      # nothing changed, no --out written


def test_target_loss_no_run_reaches(store: Path) -> None:
    # the store's lowest loss: the 512 batch's last point, 2.5 + 0.25 (conftest.loss_at)
    for extra in ([], ["--json"], ["--out", str(store.parent / "cb.json")], ["--target-loss", "2.9"]):
        one_line_exit_2(store.parent, ["critical-batch", "--store", str(store), "--target-loss", "1.5", *extra],
                        "no run reaches the target loss 1.5: the lowest loss reached is 2.75.")


def test_noise_scale_with_one_micro_batch(store: Path, tmp_path: Path) -> None:
    ladder = tmp_path / "l.toml"
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "2e4", "--tokens", "5120", "--vocab", "256",
                                  "--context", "32", "--batch-tokens", "256", "--min-steps", "5", "--evals", "3",
                                  "--out", str(ladder)])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.toml"
    bad.write_text(ladder.read_text().replace("noise_scale = false", "noise_scale = true"))
    ladder.unlink()
    one_line_exit_2(tmp_path, ["ladder", "run", str(bad), "--store", str(store)],
                    "'noise_scale' field with micro_batch_tokens must be a micro-batch of at most half of "
                    "batch_tokens = 256", "Got 0 instead.")


def test_rollout_key_with_fewer_than_three_groups(store: Path) -> None:
    # every run of the store has budget_flops 0 and one N: one group each; over batch: three
    for key in ("budget_flops", "N"):
        one_line_exit_2(store.parent, ["backtest", "--store", str(store), "--law", "chinchilla", "--points", "all",
                                       "--rollout", key], f"The rollout key '{key}'", "at least 3",
                        "Got '1 group(s)' instead.")
    one_line_exit_2(store.parent, ["backtest", "--store", str(store), "--law", "chinchilla", "--points", "all",
                                   "--rollout", "batch", "--where", "batch < 512"], "'batch'", "'2 group(s)'")


@pytest.mark.parametrize("law, bound, needle", [
    ("chinchilla", "E=2:1", "The bound of parameter 'E' must be LO:HI with LO < HI inside the law's range "
                            "[0, 1000]. Got '2.0:1.0' instead."),
    ("chinchilla", "E=-1:2", "range [0, 1000]. Got '-1.0:2.0'"),
    ("chinchilla", "alpha=0.3:0.3", "'alpha'"),
    ("kaplan_steps", "alpha_N=-1:0.5", "range [0.001, 5]"),
    ("anneal", "L0=2:1", "'L0'"),
    ("anneal", "alpha=0:6", "range [0, 5]"),
    ("multipower", "gamma=0:4", "The bound of parameter 'gamma' must be LO:HI with LO < HI inside the law's "
                                "range [0, 3]. Got '0.0:4.0' instead."),
    ("multipower", "beta=1:1", "'beta'"),
])
def test_bound_outside_the_range_or_empty(store: Path, law: str, bound: str, needle: str) -> None:
    one_line_exit_2(store.parent, ["fit", "--store", str(store), "--law", law, "--points", "all", "--bound", bound,
                                   "--out", str(store.parent / "fit.json")], needle)


def test_bound_given_twice(store: Path) -> None:
    one_line_exit_2(store.parent, ["fit", "--store", str(store), "--law", "chinchilla", "--bound", "E=1:2",
                                   "--bound", "E=1.2:1.8"],
                    "The --bound option must be each parameter bounded once. Got 'E' instead.")


@pytest.mark.parametrize("cmd", [
    ["fit", "--law", "chinchilla", "--out", "fit.json"],
    ["backtest", "--law", "chinchilla", "--points", "all", "--rollout", "batch"],
])
def test_fix_given_twice(store: Path, cmd: list[str]) -> None:
    args = [cmd[0], "--store", str(store), *cmd[1:], "--fix", "E=1.5", "--fix", "E=1.7"]
    args = [str(store.parent / a) if a == "fit.json" else a for a in args]
    one_line_exit_2(store.parent, args, "The --fix option must be each name given once (got E=1.5 and E=1.7). "
                                        "Got 'E' instead.")


@pytest.mark.parametrize("cmd", [["predict", "--preset", "hoffmann2022", "--at", "D=1e12"],
                                 ["plan", "--preset", "hoffmann2022", "--flops", "1e21"]])
def test_at_given_twice(store: Path, cmd: list[str]) -> None:
    one_line_exit_2(store.parent, [*cmd, "--law", "chinchilla", "--at", "N=1e9", "--at", "N=2e9"],
                    "The --at option must be each name given once (got N=1e9 and N=2e9). Got 'N' instead.")


def test_map_given_twice(store: Path) -> None:
    one_line_exit_2(store.parent, ["fit", "--store", str(store), "--law", "chinchilla", "--map", "N=N_total",
                                   "--map", "N=N_nonembed"], "The --map option must be each name given once", "'N'")


def test_bound_on_backtest(store: Path) -> None:
    one_line_exit_2(store.parent, ["backtest", "--store", str(store), "--law", "chinchilla", "--points", "all",
                                   "--rollout", "batch", "--bound", "E=3:2"], "'E'", "'3.0:2.0'")


def test_curve_law_fit_on_a_file_without_lr(tmp_path: Path) -> None:
    f = tmp_path / "curves.csv"
    pd.DataFrame({"run": ["a"] * 5, "step": np.arange(1, 6), "loss": 4.0 - 0.1 * np.arange(5)}).to_csv(f, index=False)
    for law, what in (("anneal", "needs S1 and S2"), ("multipower", "needs a curve key")):
        for cmd in (["fit", str(f), "--law", law, "--out", str(tmp_path / "x.json")],
                    ["backtest", str(f), "--law", law, "--train-where", "step < 4"]):
            one_line_exit_2(tmp_path, cmd, f"the {law} law {what}", "the table lacks ['lr']",
                            "(columns present: ['run', 'step', 'loss'])")


@pytest.mark.parametrize("column, value, shown", [("step", 20.5, "20.5"), ("step", -20, "-20"), ("lr", -1e-3, "-0.001")])
def test_curve_file_bad_value_is_named_as_written(tmp_path: Path, column: str, value: float, shown: str) -> None:
    """A bad step or lr of a curve file is named as the number it is (it read 'Got np.float64(20.5) instead.'),
    on the file line it is on (the second data row is line 3; it read '(row 1)')."""
    f = tmp_path / "curves.csv"
    df = pd.DataFrame({"run": "a", "step": np.arange(10, 60, 10), "lr": 1e-3, "loss": 4.0 - 0.1 * np.arange(5)})
    df[column] = df[column].astype(float if isinstance(value, float) else int)
    df.loc[1, column] = value
    df.to_csv(f, index=False)
    one_line_exit_2(tmp_path, ["fit", str(f), "--law", "anneal"], f"Column {column!r} (line 3)", f"Got {shown} instead.")


@pytest.mark.parametrize("law, params", [
    ("anneal", {"L0": 2.0, "A": 1.0, "alpha": 0.3, "C": 1.0}),
    ("multipower", {"L0": 2.0, "A": 1.0, "alpha": 0.3, "B": 100.0, "C": 1.0, "beta": 0.5, "gamma": 0.5}),
])
def test_schedule_the_law_cannot_read(tmp_path: Path, law: str, params: dict[str, float]) -> None:
    fit = tmp_path / "fit.json"
    Fit(law=law, params=params).to_json(fit)
    sched = ["predict", str(fit), "--steps", "100", "--lr", "1e-3"]
    one_line_exit_2(tmp_path, [*sched, "--schedule", "cyclic"],
                    "--schedule must be one of ('constant', 'cosine', 'wsd', 'linear', 'power'). Got 'cyclic' instead.")
    one_line_exit_2(tmp_path, [*sched, "--schedule", "wsd", "--decay-shape", "step"], "--decay-shape", "'step'")
    # --best-decay tries every shape, but a shape it cannot read is still refused (was ignored)
    one_line_exit_2(tmp_path, [*sched, "--schedule", "wsd", "--best-decay", "--decay-shape", "step"],
                    "The --decay-shape must be one of ('linear', 'cosine', 'sqrt'). Got 'step' instead.")
    # a stride of 0 was read as the default, and a negative one reversed a file's rows
    one_line_exit_2(tmp_path, [*sched, "--schedule", "wsd", "--stride", "0"],
                    "--stride must be a positive integer. Got 0 instead.")
    curve = tmp_path / "curve.csv"
    pd.DataFrame({"run": "a", "step": [1, 2, 3], "lr": 1e-3}).to_csv(curve, index=False)
    one_line_exit_2(tmp_path, ["predict", str(fit), "--points", str(curve), "--stride", "-2"],
                    "--stride must be a positive integer. Got -2 instead.")
    r = CliRunner().invoke(main, ["predict", str(fit), "--points", str(curve), "--stride", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert '"step": 1' in r.stdout and '"step": 3' in r.stdout and '"step": 2' not in r.stdout


@pytest.mark.parametrize("extra, needle", [
    (["--su-fit", "joint"], "The --su-fit option must be given only with --su-held-out RUN. Got 'joint' instead."),
    (["--su-window", "2"], "The --su-window option must be given only with --su-held-out RUN. Got 2.0 instead."),
    (["--su-held-out", "b256", "--su-window", "2"],
     "The --su-window option must be given only with a joint --su-fit (got --su-fit two-stage). Got 2.0 instead."),
    (["--su-held-out", "b256", "--su-fit", "auto", "--su-window", "2"], "auto tries --su-windows"),
    (["--su-held-out", "b256", "--su-fit", "joint", "--su-windows", "1,2"],
     "The --su-windows option must be given only with --su-fit auto (got --su-fit joint). Got '1,2' instead."),
])
def test_su_options_away_from_their_mode(store: Path, extra: list[str], needle: str) -> None:
    # each was silently ignored
    one_line_exit_2(store.parent, ["critical-batch", "--store", str(store), "--target-loss", "2.8", *extra], needle)


@pytest.mark.parametrize("sets, needle", [
    (["lr=1e-3", "lr=2e-3"], "The --set option must be each key set once (already set by 'lr=1e-3'). "
                             "Got 'lr=2e-3' instead."),
    (["schedule=wsd", "schedule.name=cosine"], "already set by 'schedule=wsd'"),
    (["schedule.warmup_frac=0.1", "schedule.warmup_frac=0.2"], "'schedule.warmup_frac=0.2'"),
])
def test_set_given_twice(tmp_path: Path, sets: list[str], needle: str) -> None:
    out = tmp_path / "ladder.toml"
    base = ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--out", str(out)]
    one_line_exit_2(tmp_path, [*base, *[a for item in sets for a in ("--set", item)]], needle)
    assert not out.exists()
    ok = CliRunner().invoke(main, [*base, "--set", "parametrization=mus", "--set", "parametrization.tau=0.3",
                                   "--set", "schedule=wsd", "--set", "schedule.warmup_frac=0.1"])   # a name + keys
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("args, needle", [
    (["--lr", "1e-3", "--set", "lr=2e-3"], "also given: --lr 0.001"),
    (["--schedule", "wsd", "--set", "schedule.name=cosine"], "also given: --schedule wsd"),
    (["--set", "schedule=cosine", "--schedule", "wsd"], "also given: --schedule wsd"),
    (["--warmup-steps", "10", "--set", "schedule.warmup_steps=20"], "also given: --warmup-steps 10"),
    (["--nm", "2:4", "--set", "sparsity.m=8"], "also given: --nm 2:4"),
])
def test_set_and_its_own_option(tmp_path: Path, args: list[str], needle: str) -> None:
    """A --set of a field that an option of its own also sets: one line, exit 2, no ladder file (one of the
    two silently won); a --set of another field beside the option is fine."""
    out = tmp_path / "ladder.toml"
    base = ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--out", str(out)]
    one_line_exit_2(tmp_path, [*base, *args], needle)
    assert not out.exists()
    ok = CliRunner().invoke(main, [*base, "--lr", "1e-3", "--set", "evals=5"])
    assert ok.exit_code == 0, ok.output
    assert out.exists()


def test_critical_batch_bad_ci_level_names_the_option(store: Path) -> None:
    one_line_exit_2(store.parent, ["critical-batch", "--store", str(store), "--target-loss", "2.8", "--ci-level", "2"],
                    "error: --ci-level must be a float in (0, 1). Got 2.0 instead.")


def test_report_target_loss_no_run_reaches(store: Path) -> None:
    """`report --target-loss` that no run reaches: one line naming the lowest loss, exit 2, no report written
    (it wrote the page with a warning and exit 0, where critical-batch refuses the same target)."""
    out = store.parent / "rep"
    one_line_exit_2(store.parent, ["report", "--store", str(store), "--bootstrap", "0", "--target-loss", "1.5",
                                   "--out", str(out)], "no run reaches the target loss 1.5: the lowest loss reached "
                                                       "is 2.75.")
    assert not out.exists()
    ok = CliRunner().invoke(main, ["report", "--store", str(store), "--bootstrap", "0", "--out", str(out)])
    assert ok.exit_code == 0, ok.output       # targets picked from the sweep: no error
