"""From the command line: a noise-scale and an adaptive-batch run designed, trained and exported
(``B_simple`` and ``batch_tokens`` columns); one micro-batch with the noise scale on is one line, exit 2,
and changes nothing; a batch sweep by the stated rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

TINY = ["--vocab", "256", "--context", "32", "--batch-tokens", "256", "--min-steps", "5", "--evals", "3",
        "--set", "eval_tokens=1024", "--set", "dtype='float32'"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), prog_name="scalinglab")
    return r.exit_code, r.stdout, r.stderr


def one_line_error(code: int, stderr: str, pattern: str) -> None:
    assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert pattern in stderr, stderr


def test_trained_points_export_b_simple_and_batch_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process training into a store, then `runs export`: the point metrics are columns."""
    pytest.importorskip("torch")
    from scalinglab.ladder.train import train

    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    cfg = RunConfig(name="dyn", n_layer=1, d_model=32, n_head=2, context=32, tokens=12 * 256, batch_tokens=256,
                    micro_batch_tokens=64, evals=3, eval_tokens=1024, dtype="float32", noise_scale=True,
                    adaptive_batch_eta=0.2, max_batch_tokens=1024)
    db, out = tmp_path / "runs.db", tmp_path / "points.csv"
    with Store(db) as st:
        st.add_planned([cfg])
        summary = train(cfg, on_point=lambda p: st.add_point("dyn", p), threads=1)
        st.mark_done("dyn", summary)
    code, _, stderr = run("runs", "export", "--store", str(db), "--out", str(out))
    assert code == 0, stderr
    df = pd.read_csv(out)
    assert {"B_simple", "grad_sq", "trace_sigma", "batch_tokens"} <= set(df.columns)
    assert (df["B_simple"] > 0).all() and df["batch_tokens"].is_monotonic_increasing
    assert df["D"].iloc[-1] == summary["tokens_seen"]


@pytest.mark.slow
def test_noise_scale_and_adaptive_batch_runs_export_their_columns(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    ladder, db = tmp_path / "ladder.toml", tmp_path / "runs.db"
    code, _, stderr = run("ladder", "design", "--params", "2e4", "--tokens", "5120", *TINY,
                          "--set", "micro_batch_tokens=64", "--set", "noise_scale=true",
                          "--set", "adaptive_batch_eta=0.2", "--set", "max_batch_tokens=1024", "--out", str(ladder))
    assert code == 0, stderr
    code, _, stderr = run("ladder", "run", str(ladder), "--store", str(db), "--workers", "1", "--no-progress")
    assert code == 0, stderr
    out = tmp_path / "points.csv"
    code, _, stderr = run("runs", "export", "--store", str(db), "--out", str(out))
    assert code == 0, stderr
    df = pd.read_csv(out)
    assert {"B_simple", "grad_sq", "trace_sigma", "batch_tokens"} <= set(df.columns)
    assert (df["B_simple"] > 0).all() and df["batch_tokens"].is_monotonic_increasing
    assert df["D"].iloc[-1] >= 20 * 256       # 20 steps, each at least the 256-token batch

    # the same ladder with one micro-batch per step: one line, exit 2, the store as it was
    with Store(db) as s:
        before = (s.to_table(final=False), [r.to_dict() for r in s.runs()])
    bad = tmp_path / "bad.toml"
    bad.write_text(ladder.read_text().replace("micro_batch_tokens = 64", "micro_batch_tokens = 0")
                   .replace("adaptive_batch_eta = 0.2", "adaptive_batch_eta = 0.0")
                   .replace("max_batch_tokens = 1024", "max_batch_tokens = 0"))
    one_line_error(*run("ladder", "run", str(bad), "--store", str(db))[::2],
                   "'noise_scale' field with micro_batch_tokens must be a micro-batch of at most half")
    with Store(db) as s:
        assert s.to_table(final=False).equals(before[0]) and [r.to_dict() for r in s.runs()] == before[1]


def test_noise_scale_with_one_micro_batch_is_refused_at_design(tmp_path: Path) -> None:
    out = tmp_path / "x.toml"
    one_line_error(*run("ladder", "design", "--params", "2e4", "--tokens", "5120", *TINY,
                        "--set", "noise_scale=true", "--out", str(out))[::2], "'noise_scale' field")
    assert not out.exists()


def test_batch_sweep_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "sweep.toml"
    code, stdout, stderr = run("ladder", "design", "--params", "2e4", "--tokens", "25600", *TINY,
                               "--lr", "4e-3", "--batch-grid", "128,256,1024", "--batch-grid-keep", "steps",
                               "--lr-batch-rule", "linear", "--out", str(out), "--json")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert [(r["batch_tokens"], r["steps"], r["lr"]) for r in res["runs"]] == [
        (128, 100, 2e-3), (256, 100, 4e-3), (1024, 100, 1.6e-2)]
    assert res["ladder"]["batch_keep"] == "steps" and res["ladder"]["lr_batch_rule"] == "linear"
    one_line_error(*run("ladder", "design", "--params", "2e4", "--tokens", "25600", *TINY,
                        "--lr-batch-rule", "sqrt", "--out", str(out))[::2],
                   "--batch-grid-keep and --lr-batch-rule shape a batch sweep: give --batch-grid with them.")
