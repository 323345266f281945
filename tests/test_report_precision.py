"""The report's precision section (issue 12): loss against format at each N with Sun et al.'s law, PTQ
degradation against tokens (main line and branches apart), underflow per role; present with its figures
when the table has the columns, absent otherwise; tooltip values equal to the inputs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab import laws
from scalinglab.fit import Fit
from scalinglab.report import ladder_report
from scalinglab.report.svg import fmt

FORMATS = {"fp32": (8, 23, 32), "E2M1": (2, 1, 4), "E1M2": (1, 2, 4), "E3M0": (3, 0, 4)}
SIZES = (1.2e8, 2.8e8, 5.6e8)
D_FINAL = 1e10


def _sun(n: float, d: float, e: int, m: int, block: float) -> float:
    law = laws.get("precision")
    x = {k: np.array([v]) for k, v in zip(law.inputs, (n, d, e, m, block))}
    return float(np.asarray(law.predict(law.preset("sun2025").params, x))[0])


def _final() -> pd.DataFrame:
    rows = []
    # N = N_nonembed here: the law reads "N" before the quant merge and "N_nonembed" after it
    for f, (e, m, p) in FORMATS.items():
        for n in SIZES:
            block = 64.0
            rows.append({"run": f"r{int(n)}-{f}", "format": f, "operands": "" if f == "fp32" else "P2+P4+P6",
                         "e_bits": e, "m_bits": m, "P": p, "block": block, "N": n, "N_nonembed": n,
                         "D": D_FINAL, "loss": _sun(n, D_FINAL, e, m, block), "budget_flops": 0.0, "branch": 0})
    return pd.DataFrame(rows)


def _points() -> pd.DataFrame:
    rows = []
    for n in SIZES:
        for step, branch in ((32, 0), (64, 0), (128, 0), (256, 0), (64, 1), (128, 2)):
            tokens = step * 2048
            loss = 3.0 - 0.1 * np.log(tokens) + 1e-6 * n ** 0.5
            rows.append({"run": f"r{int(n)}-E2M1", "branch": branch, "step": step, "tokens": tokens, "N": 2 * n,
                         "N_nonembed": n, "format": "E2M1", "loss": loss,
                         "loss_ptq_int2_g16": loss + 1e-3 * tokens ** 0.3 / n ** 0.2,
                         "loss_ptq_int3_g16": loss + 1e-4 * tokens ** 0.3 / n ** 0.2,
                         "underflow_w": 1e-3 * step / 256, "underflow_a": 2e-3, "underflow_g": 0.4 + 1e-4 * step,
                         "saturate_w": 0.0, "saturate_a": 0.0, "saturate_g": 0.0})
    return pd.DataFrame(rows)


def _section(text: str) -> str:
    m = re.search(r"<section id='precision'>(.*?)</section>", text, re.S)
    return m.group(1) if m else ""


def _tips(part: str) -> list[dict[str, str]]:
    return [dict(json.loads(html.unescape(t))) for t in re.findall(r'data-tip="([^"]+)"', part)]


def test_precision_section_with_the_law_ptq_and_underflow(tmp_path: Path) -> None:
    final, points = _final(), _points()
    fit = Fit.from_preset("precision", "sun2025")
    page = ladder_report(tmp_path / "r.html", final=final, points=points, fit=fit, backtest=None,
                         plan=None).read_text()
    sec = _section(page)
    assert sec.count("<figure class='sl-fig'") == 3
    figs = re.findall(r"<figure class='sl-fig'.*?</figure>", sec, re.S)
    fmt_tips = _tips(figs[0])
    assert len(fmt_tips) == len(final)
    for t in fmt_tips:
        r = final[final["run"] == t["run"]].iloc[0]
        assert t["loss"] == fmt(r["loss"]) and t["format"] == r["format"] and t["M"] == fmt(r["m_bits"])
        assert t["law's loss"] == fmt(r["loss"])      # the losses are the law's own
    assert figs[0].count("<polyline") == len(FORMATS)  # the law's line per format
    for f in FORMATS:                                  # one legend entry per format
        assert re.search(rf"<button[^>]*>.*?{re.escape(f)}", figs[0])
    ptq = _tips(figs[1])
    assert len(ptq) == 2 * len(points)
    for t in ptq:
        r = points[(points["run"] == t["run"]) & (points["step"] == int(t["step"]))
                   & (points["branch"] == int(t["branch"]))].iloc[0]
        col = f"loss_ptq_{t['setting']}"
        assert t["loss_ptq - loss"] == fmt(r[col] - r["loss"])
    hollow = re.findall(r'<(?:circle|path)[^>]*fill="#fff"[^>]*data-tip="([^"]+)"', figs[1])
    assert len(hollow) == 2 * int((points["branch"] > 0).sum())       # branch ends hollow
    assert all(json.loads(html.unescape(h))[2][1] != "0" for h in hollow)
    uf = _tips(figs[2])
    assert {t["role"] for t in uf} == {"weights", "activations", "gradients"}
    for t in uf:
        r = points[(points["run"] == t["run"]) & (points["step"] == int(t["step"]))
                   & (points["branch"] == int(t["branch"]))].iloc[0]
        assert t["underflow"] == fmt(r[f"underflow_{t['role'][0]}"])
    table = re.findall(r"<table.*?</table>", sec, re.S)[0]
    assert "E3M0" in table and fmt(final["loss"].iloc[-1]) in table


def test_no_precision_section_without_the_columns(tmp_path: Path) -> None:
    final = _final().drop(columns=["format", "operands", "e_bits", "m_bits", "P", "block"])
    points = _points()[["run", "branch", "step", "tokens", "N", "N_nonembed", "loss"]]
    page = ladder_report(tmp_path / "r.html", final=final, points=points, fit=None, backtest=None,
                         plan=None).read_text()
    assert _section(page) == "" and "loss_ptq" not in page


def test_only_ptq_gives_one_figure(tmp_path: Path) -> None:
    final = _final().drop(columns=["format", "operands", "e_bits", "m_bits", "P", "block"])
    points = _points().drop(columns=[c for c in _points().columns if c.startswith(("underflow", "saturate"))])
    page = ladder_report(tmp_path / "r.html", final=final, points=points, fit=None, backtest=None,
                         plan=None).read_text()
    assert _section(page).count("<figure class='sl-fig'") == 1


def test_store_report_of_quantised_runs(tmp_path: Path) -> None:
    """A store of runs in E2M1 / E3M0 / fp32 with PTQ and telemetry points: the format columns come from
    the run configs (``Store.to_table``) and the section shows all three figures."""
    from scalinglab.report.store_report import store_report
    from scalinglab.runconfig import PrecisionConfig, RunConfig
    from scalinglab.store import Store

    cfgs = [RunConfig(name=f"m{d}-{f}", d_model=d, tokens=256 * 40, batch_tokens=256, ptq=("int3_g16",),
                      precision=PrecisionConfig() if f == "fp32" else PrecisionConfig(weights=f, activations=f))
            for d in (32, 64) for f in ("fp32", "E2M1", "E3M0")]
    db = tmp_path / "q.db"
    with Store(db) as st:
        st.add_planned(cfgs)
        for i, c in enumerate(cfgs):
            for step in (10, 20, 40):
                loss = 3.5 - 0.2 * np.log(step) + 0.01 * i
                st.add_point(c.name, {"step": step, "tokens": step * 256, "eval_loss": loss,
                                      "loss_ptq_int3_g16": loss + 0.001 * step,
                                      **({} if c.precision == PrecisionConfig() else
                                         {"underflow_w": 0.01 * i, "underflow_a": 0.02, "saturate_w": 0.0,
                                          "saturate_a": 0.0})})
            st.mark_done(c.name, {"N_total": 1000 * (i + 1), "N_nonembed": 500 * (c.d_model // 32),
                                  "tokens": c.tokens})
    page = store_report(db, tmp_path / "o", bootstrap=0).read_text()
    sec = _section(page)
    figs = re.findall(r"<figure class='sl-fig'.*?</figure>", sec, re.S)
    assert len(figs) == 3
    assert {t["format"] for t in _tips(figs[0])} == {"fp32", "E2M1", "E3M0"}
    assert len(_tips(figs[1])) == 3 * len(cfgs)
    assert {t["role"] for t in _tips(figs[2])} == {"weights", "activations"}
    with Store(db, create=False) as st:
        df = st.to_table(points="all")
    for t in _tips(figs[1]):
        r = df[(df["run"] == t["run"]) & (df["step"] == int(t["step"]))].iloc[0]
        assert t["loss_ptq - loss"] == fmt(r["loss_ptq_int3_g16"] - r["loss"])
