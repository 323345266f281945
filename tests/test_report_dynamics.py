"""The report's dynamics sections (issue 13): anneal-law predicted against measured curves, the critical
batch (steps against batch with the hyperbola, B_crit against the target with B_simple beside it) and
B_simple against tokens; present with their figures when the store has the data, absent otherwise,
and the values in the tooltips equal to the stored or computed ones."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from synthetic_ladder import loss, synthetic_quickstart_store

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.fit import LawFit
from scalinglab.fit.anneal import add_store_areas, lr_curve
from scalinglab.fit.critical import critical_batch_study
from scalinglab.laws.anneal import curve_areas
from scalinglab.report.figures import MAX_CURVE_MARKERS
from scalinglab.report.store_report import store_report
from scalinglab.report.svg import fmt
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

TRUE = {"L0": 2.0, "A": 1.2, "alpha": 0.4, "C": 0.5}
STEPS = 300


def _cfg(run: str, **sched: object) -> RunConfig:
    return RunConfig(name=run, tokens=4096 * STEPS, batch_tokens=4096, lr=3e-3,
                     schedule=ScheduleConfig(warmup_steps=20, **sched))  # type: ignore[arg-type]


def _truth(cfg: RunConfig, steps: np.ndarray, branch: int = 0) -> np.ndarray:
    S1, S2 = curve_areas(lr_curve(cfg, branch), 0.99)
    return np.asarray(laws.get("anneal").predict(TRUE, {"S1": S1[steps - 1], "S2": S2[steps - 1]}))


def _anneal_store(path: Path) -> list[RunConfig]:
    cfgs = [_cfg("const", name="constant"), _cfg("cos", name="cosine"),
            _cfg("wsd", name="wsd", decay_frac=0.2, final_lr_frac=0.0, branches=(0.5,))]
    with Store(path) as st:
        st.add_planned(cfgs)
        for cfg in cfgs:
            steps = np.arange(10, cfg.steps + 1, 10)
            for s, loss in zip(steps, _truth(cfg, steps)):
                st.add_point(cfg.name, {"step": int(s), "tokens": int(s) * 4096, "eval_loss": float(loss)})
            if cfg.schedule.branches:
                end = np.array([150])
                st.add_point(cfg.name, {"branch": 1, "step": 150, "tokens": 150 * 4096,
                                        "eval_loss": float(_truth(cfg, end, 1)[0])})
            st.mark_done(cfg.name, {"N_total": 1000, "N_nonembed": 800, "tokens": cfg.tokens})
    return cfgs


B_STAR, INV_ALPHA = 4e6, 5.0
BATCHES = (256, 512, 1024, 2048, 4096)


def s_min(L: np.ndarray) -> np.ndarray:
    return np.asarray(100 * np.exp((4.0 - L) / 0.3))


def b_crit(L: np.ndarray) -> np.ndarray:
    return np.asarray(B_STAR / L ** INV_ALPHA)


def _sweep_store(path: Path) -> None:
    """One model at five batch sizes; each curve's steps at loss L are S_min(L) (1 + B_crit(L)/B),
    so the hyperbola per target is known; B_simple at every point is half of B_crit(loss)."""
    L = np.linspace(3.6, 2.6, 400)
    with Store(path) as st:
        cfgs = []
        for B in BATCHES:
            steps = np.round(s_min(L) * (1 + b_crit(L) / B)).astype(int)
            cfgs.append(RunConfig(name=f"b{B}", batch_tokens=B, tokens=B * int(steps.max())))
        st.add_planned(cfgs)
        for B, cfg in zip(BATCHES, cfgs):
            steps = np.round(s_min(L) * (1 + b_crit(L) / B)).astype(int)
            _, first = np.unique(steps, return_index=True)
            for i in first:
                st.add_point(cfg.name, {"step": int(steps[i]), "tokens": int(steps[i]) * B, "eval_loss": float(L[i]),
                                        "B_simple": float(0.5 * b_crit(L[i]))})
            st.mark_done(cfg.name, {"N_total": 200000, "N_nonembed": 100000, "tokens": cfg.tokens})


def _section(text: str, anchor: str) -> str:
    m = re.search(rf"<section id='{anchor}'>(.*?)</section>", text, re.S)
    return m.group(1) if m else ""


def _tips(part: str) -> list[dict[str, str]]:
    return [dict(json.loads(html.unescape(t))) for t in re.findall(r'data-tip="([^"]+)"', part)]


def test_anneal_curves_predicted_against_measured(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    cfgs = _anneal_store(db)
    page = store_report(db, tmp_path / "out", bootstrap=8).read_text()
    sec = _section(page, "anneal")
    assert sec.count("<figure class='sl-fig'") == 1
    assert "<polygon" in sec or "<path" in sec                 # the prediction band
    tips = _tips(sec)
    with Store(db, create=False) as st:
        df = st.to_table(points="all", failed=False)
    df = df[df["step"] > 20]                                   # after the warmup (20 steps)
    assert len(tips) == len(df)                                # every measured point, branch end included
    by = {(str(r.run), int(r.branch), int(r.step)): float(r.loss) for r in df.itertuples()}
    for t in tips:
        key = (t["run"], int(t["branch"]), int(t["step"]))
        assert t["measured loss"] == fmt(by[key])
        cfg = next(c for c in cfgs if c.name == key[0])
        truth = float(_truth(cfg, np.array([key[2]]), key[1])[0])
        assert float(t["predicted loss"]) == pytest.approx(truth, rel=2e-3)   # the fit recovers the law
    assert any(t["branch"] == "1" for t in tips)
    assert "anneal-fit.json" in page
    assert _section(page, "critical-batch") == "" and _section(page, "noise-scale") == ""


def test_anneal_fit_given_and_refused_when_not_anneal(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _anneal_store(db)
    fit_json = tmp_path / "a.json"
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "anneal", "--where", "step > warmup",
                                  "--bootstrap", "0", "--out", str(fit_json)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--no-anneal-fit",
                                  "--anneal-fit", str(fit_json), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "o" / "index.html").read_text()
    assert "as given" in _section(page, "anneal")
    assert "anneal-fit.json" not in page                       # the user's own fit is not re-offered
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--no-anneal-fit",
                                  "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
    assert _section((tmp_path / "o2" / "index.html").read_text(), "anneal") == ""
    other = tmp_path / "other.json"
    n, d = np.meshgrid([1e6, 3e6, 1e7, 3e7, 1e8], [1e8, 1e9, 1e10, 1e11])
    grid = pd.DataFrame({"N": n.ravel(), "D": d.ravel()}).assign(loss=lambda x: loss(x["N"], x["D"]))
    LawFit("chinchilla").fit(grid).result_.to_json(other)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--anneal-fit", str(other), "--out", str(tmp_path / "o3")])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1].startswith("error: The law of the --anneal-fit fit")
    assert not (tmp_path / "o3" / "index.html").exists()


def test_critical_batch_and_b_simple(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _sweep_store(db)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--target-loss", "3.2",
                                  "--target-loss", "3.0", "--target-loss", "2.8", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "o" / "index.html").read_text()
    assert "--target-loss 3.2 --target-loss 3.0" in page       # the footer's command
    sec = _section(page, "critical-batch")
    assert sec.count("<figure class='sl-fig'") == 2
    with Store(db, create=False) as st:
        df = st.to_table(points="all", failed=False)
        configs = {x.name: x.config for x in st.runs()}
    study = critical_batch_study(add_store_areas(df, configs), [3.2, 3.0, 2.8], seed=0)
    tips = _tips(sec)
    bc = [t for t in tips if "B_crit interval" in t]
    assert len(bc) == 3
    for t in bc:
        f = next(f for f in study["fits"] if fmt(f["target"]) == t["target loss"])
        assert t["B_crit (tokens)"] == fmt(f["B_crit"])
        assert float(t["B_crit (tokens)"]) == pytest.approx(float(b_crit(np.array(f["target"]))), rel=0.02)
    steps = [t for t in tips if "steps" in t and "run" in t]
    assert len(steps) == 3 * len(BATCHES)
    for t in steps:
        f = next(f for f in study["fits"] if fmt(f["target"]) == t["target loss"])
        run = next(x for x in f["runs"] if x["run"] == t["run"])
        assert t["steps"] == fmt(run["steps"]) and t["batch (tokens)"] == fmt(run["batch"])
    bs = [t for t in tips if "B_crit / B_simple" in t]
    assert len(bs) == 3
    for t in bs:
        assert float(t["B_simple (tokens)"]) == pytest.approx(0.5 * float(b_crit(np.array(float(t["target loss"])))),
                                                               rel=0.01)
    noise = _section(page, "noise-scale")
    assert noise.count("<figure class='sl-fig'") == 1
    ntips = _tips(noise)
    assert len(ntips) == len(BATCHES) * MAX_CURVE_MARKERS         # at most 40 hover markers per line
    by = {(x.run, fmt(x.step)): x for x in df.itertuples()}
    for t in ntips:
        x = by[(t["run"], t["step"])]
        assert t["B_simple (tokens)"] == fmt(x.B_simple) and t["tokens"] == fmt(x.D)
    last = df.sort_values("step").groupby("run").tail(1)         # every line's last point has its marker
    assert {(x.run, fmt(x.step)) for x in last.itertuples()} <= {(t["run"], t["step"]) for t in ntips}
    assert "critical-batch.json" in page
    assert _section(page, "anneal") == ""


def test_targets_picked_from_the_sweep(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _sweep_store(db)
    page = store_report(db, tmp_path / "o", bootstrap=0).read_text()
    sec = _section(page, "critical-batch")
    assert "picked from the sweep" in sec and sec.count("<figure class='sl-fig'") == 2
    assert "warning: no critical batch" not in sec


def test_quickstart_store_has_no_dynamics_sections(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    synthetic_quickstart_store(db)
    page = store_report(db, tmp_path / "o", bootstrap=0).read_text()
    for anchor in ("anneal", "critical-batch", "noise-scale"):
        assert _section(page, anchor) == ""


def test_a_given_multipower_fit_is_plotted(tmp_path: Path) -> None:
    from scalinglab.fit import Fit
    from scalinglab.fit.anneal import curve_inputs

    db = tmp_path / "r.db"
    cfgs = _anneal_store(db)
    mp = {"L0": 1.3, "A": 0.9, "alpha": 0.45, "B": 60.0, "C": 0.3, "beta": 0.7, "gamma": 0.5}
    fit_json = tmp_path / "mp.json"
    Fit(law="multipower", params=mp).to_json(fit_json)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--no-anneal-fit",
                                  "--anneal-fit", str(fit_json), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    sec = _section((tmp_path / "o" / "index.html").read_text(), "anneal")
    assert "multi-power law (Luo et al. 2025) as given" in sec and "lambda of S2" not in sec
    tips = _tips(sec)
    assert len(tips) > 20
    for t in tips:
        cfg = next(c for c in cfgs if c.name == t["run"])
        eta = lr_curve(cfg, int(t["branch"]))
        want = laws.get("multipower").predict(mp, curve_inputs("multipower", eta, [int(t["step"])]))
        assert t["predicted loss"] == fmt(float(np.asarray(want)[0]))
