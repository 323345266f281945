"""``ladder design`` with parametrizations: --set parametrization=..., --parametrizations, their errors
(one line, exit 2, no ladder file written), and a tiny μS/μP ladder trained end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.cli.output import parse_set
from scalinglab.ladder.ladderfile import read_toml
from scalinglab.store import Store

TINY = ["--vocab", "256", "--context", "32", "--batch-tokens", "256", "--min-steps", "5", "--evals", "1",
        "--set", "eval_tokens=1024"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), prog_name="scalinglab")
    return r.exit_code, r.stdout, r.stderr


def test_parse_set_names_a_sub_table() -> None:
    assert parse_set(["parametrization=mus", "parametrization.tau=0.4"]) == {
        "parametrization": {"name": "mus", "tau": 0.4}}
    assert parse_set(["parametrization.tau=0.4", "parametrization=mus"]) == {
        "parametrization": {"name": "mus", "tau": 0.4}}
    assert parse_set(["parametrization=mup"]) == {"parametrization": "mup"}


def test_design_with_set_and_grid(tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    code, stdout, stderr = run("ladder", "design", "--params", "1e4", "--tokens", "4e4", *TINY,
                               "--set", "parametrization=mus", "--set", "parametrization.tau=0.3", "--out", str(out))
    assert code == 0, stderr
    (r,) = read_toml(out)
    assert (r.parametrization.name, r.parametrization.tau, r.parametrization.base_width) == ("mus", 0.3, 64)
    assert "-mus-" in r.name and "parametrization" in stdout
    code, stdout, stderr = run("ladder", "design", "--params", "1e4", "--tokens", "4e4", *TINY, "--lr-grid",
                               "3e-3,0.25", "--parametrizations", "sp,mus,mup", "--set", "parametrization.tau=0.4",
                               "--out", str(out), "--json")
    assert code == 0, stderr
    d = json.loads(stdout)
    assert d["ladder"]["parametrizations"] == ["sp", "mus", "mup"]
    assert [(x["parametrization"], x["lr"]) for x in d["runs"]] == [
        (p, lr) for p in ("sp", "mus", "mup") for lr in (3e-3, 0.25)]


@pytest.mark.parametrize("args, message", [
    (["--set", "parametrization=mus"], "'parametrization.tau' field must be a residual fraction in (0, 1)"),
    (["--set", "parametrization=mus", "--set", "parametrization.tau=1.5"], "'parametrization.tau'"),
    (["--set", "parametrization=fancy"], "'parametrization.name'"),
    (["--set", "parametrization.tau=0.4"], "'parametrization.tau' field must be 0 for 'sp'"),
    (["--set", "parametrization=mup", "--set", "parametrization.base_width=-4"], "'parametrization.base_width'"),
    (["--parametrizations", "sp,mus"], "'parametrization.tau'"),
    (["--parametrizations", "sp,xyz"], "--parametrizations must be"),
])
def test_errors_are_one_line_and_write_nothing(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    code, _, stderr = run("ladder", "design", "--params", "1e4", "--tokens", "4e4", *TINY, *args, "--out", str(out))
    assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr, stderr
    assert not out.exists()


def test_bad_parametrization_in_a_ladder_file_changes_no_store(tmp_path: Path) -> None:
    out, db = tmp_path / "l.toml", tmp_path / "runs.db"
    code, _, stderr = run("ladder", "design", "--params", "1e4", "--tokens", "4e4", *TINY, "--set",
                          "parametrization=mus", "--set", "parametrization.tau=0.4", "--out", str(out))
    assert code == 0, stderr
    out.write_text(out.read_text().replace("tau = 0.4", "tau = 0.0"))
    code, _, stderr = run("ladder", "run", str(out), "--store", str(db))
    assert code == 2 and stderr.count("\n") == 1 and "'parametrization.tau'" in stderr, stderr
    assert not db.exists()


@pytest.mark.slow
def test_tiny_mus_and_mup_ladder_trains(tmp_path: Path) -> None:
    out, db = tmp_path / "l.toml", tmp_path / "runs.db"
    code, _, stderr = run("ladder", "design", "--params", "1e4", "--tokens", "2e4", *TINY, "--lr", "0.25",
                          "--parametrizations", "mus,mup", "--set", "parametrization.tau=0.4",
                          "--set", "parametrization.base_width=32", "--set", "dtype=float32", "--out", str(out))
    assert code == 0, stderr
    code, _, stderr = run("ladder", "run", str(out), "--store", str(db), "--workers", "1", "--threads", "1",
                          "--no-progress")
    assert code == 0, stderr
    with Store(db) as s:
        runs = {r.config.parametrization.name: r for r in s.runs()}
        table = s.to_table()
    assert set(runs) == {"mus", "mup"} and runs["mus"].config.parametrization.base_width == 32
    assert len(table) == 2 and (table["loss"] < 5.6).all()   # below ln 256 = 5.55 + a margin: it learned
