"""Choosing the anneal fit's window and lambda on a held-back tail of a fitted run (select_by_holdback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.fit.anneal import lr_curve, select_by_holdback
from scalinglab.laws.anneal import curve_areas
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

TRUE = {"L0": 2.0, "A": 1.2, "alpha": 0.4, "C": 0.5}
LAMBDA = 0.99          # the curves' true momentum factor
STEPS, WARMUP = 400, 20


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=WARMUP, **sched))  # type: ignore[arg-type]


def _table(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Store rows of a constant and a cosine run: the law at lambda 0.99, except that every point up to
    2 x warmup is 8% high (the early transient the law does not describe)."""
    cfgs = [_cfg("const", name="constant"), _cfg("cos", name="cosine")]
    with Store(tmp_path / "r.db") as st:
        st.add_planned(cfgs)
        for cfg in cfgs:
            steps = np.arange(10, STEPS + 1, 10)
            S1, S2 = curve_areas(lr_curve(cfg), LAMBDA)
            loss = np.asarray(laws.get("anneal").predict(TRUE, {"S1": S1[steps - 1], "S2": S2[steps - 1]}))
            loss = np.where(steps <= 2 * WARMUP, loss * 1.08, loss)
            for s, v in zip(steps, loss):
                st.add_point(cfg.name, {"step": int(s), "tokens": int(s) * 4096, "eval_loss": float(v),
                                        "train_loss": float(v), "lr": 0.0})
            st.mark_done(cfg.name, {"N_total": 1000, "N_nonembed": 800, "tokens": cfg.tokens})
        return st.to_table(points="all"), {r.name: r.config for r in st.runs()}


def test_the_true_lambda_and_a_window_past_the_transient_are_chosen(tmp_path: Path) -> None:
    df, configs = _table(tmp_path)
    sel = select_by_holdback(df, configs, run="cos", split_steps=(240, 300), skips=(1, 2),
                             decays=(0.99, 0.999))
    assert sel["decay"] == LAMBDA
    assert sel["skip"] == 2                           # the smallest window that drops the 8% points
    assert sel["error"] < 1e-4
    assert len(sel["table"]) == 2 * 2 * 2
    bad = {(r["skip"], r["decay"]): r["error"] for r in sel["table"] if r["split"] == 240}
    assert bad[(1, LAMBDA)] > 10 * sel["error"]       # the transient in the fit spoils the tail
    assert bad[(2, 0.999)] > 10 * sel["error"]        # the wrong lambda does too


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    df, configs = _table(tmp_path)
    with pytest.raises(ParameterError, match="held-back run") as e:
        select_by_holdback(df, configs, run="nope", split_steps=200)
    assert "\n" not in str(e.value)
    with pytest.raises(ParameterError, match="split step"):
        select_by_holdback(df, configs, run="cos", split_steps=400)
    with pytest.raises(ParameterError, match="momentum factors"):
        select_by_holdback(df, configs, run="cos", split_steps=200, decays=(1.5,))
    with pytest.raises(ParameterError, match="warmup multiples"):
        select_by_holdback(df, configs, run="cos", split_steps=200, skips=())
