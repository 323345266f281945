"""The run summary's ``tokens`` are the tokens trained on: exact under an adaptive batch (the last
point's count), ``steps x batch_tokens`` otherwise, with the config's figure kept as ``tokens_planned``;
the FLOPs spent with cooldown branches count each branch's own tokens; the store's run row and
``runs list`` show the count."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.ladder.train import train
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXED = RunConfig(name="fixed", n_layer=1, d_model=32, n_head=2, context=32, tokens=24 * 512, batch_tokens=512,
                  micro_batch_tokens=128, lr=1e-2, evals=3, eval_tokens=2048, seed=1, dtype="float32")
# the norm test fails early at eta 0.3 and the batch grows from 512 up to 2048 tokens (tests/ladder/test_noise.py)
# evaluations at steps 1, 2, 4, 6, 10, 15, 24; one cooldown branch from step 6 to step 12
ADAPTIVE = dataclasses.replace(FIXED, name="adaptive", adaptive_batch_eta=0.3, max_batch_tokens=2048, evals=8,
                               schedule=ScheduleConfig(name="wsd", decay_frac=0.5, branches=(0.5,)))


def run(cfg: RunConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append, threads=1)
    return points, summary


def test_fixed_batch_summary_is_steps_times_batch() -> None:
    points, summary = run(FIXED)
    assert summary["tokens"] == summary["tokens_planned"] == 24 * 512 == points[-1]["tokens"]
    assert summary["epochs"] == summary["tokens"] / summary["unique_tokens"]


def test_adaptive_batch_summary_counts_the_tokens_trained(tmp_path: Path) -> None:
    points, summary = run(ADAPTIVE)
    main_line = [p for p in points if p["branch"] == 0]
    (branch,) = [p for p in points if p["branch"] == 1]
    assert summary["tokens_planned"] == ADAPTIVE.steps * ADAPTIVE.batch_tokens == 24 * 512
    # the last main-line point's count, which the adaptive batch made larger than the plan
    assert summary["tokens"] == main_line[-1]["tokens"] == summary["tokens_seen"] > summary["tokens_planned"]
    assert summary["epochs"] == summary["tokens"] / summary["unique_tokens"]
    # the branch leaves the main line at step 6 (the main line's tokens then: its point at step 6) and
    # decays for 6 steps of its own, each of at least the config's 512 tokens
    (b,) = summary["branches"]
    assert (b["end_step"], b["decay_steps"]) == (12, 6)
    at_start = next(p["tokens"] for p in main_line if p["step"] == 6)
    assert b["tokens"] == branch["tokens"] and b["decay_tokens"] == branch["tokens"] - at_start > 6 * 512
    assert summary["flops_spent_with_branches"] == summary["flops_per_token"] * (summary["tokens"] + b["decay_tokens"])

    db = tmp_path / "runs.db"
    with Store(db) as st:
        st.add_planned([ADAPTIVE])
        assert st.runs()[0].target_tokens == 24 * 512                   # planned
        st.mark_done(ADAPTIVE.name, summary)
        row = st.runs()[0]
        assert row.target_tokens == summary["tokens"]                    # done: trained
        assert row.target_flops == pytest.approx(summary["flops_per_token_full"] * summary["tokens"], rel=1e-12)
    r = CliRunner().invoke(main, ["runs", "list", "--store", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["runs"][0]["tokens"] == summary["tokens"]
