"""The report's rollout section (issue 15): error and coverage against the extrapolation distance from a
rollout back-test's JSON; present with its two figures when given, absent otherwise; tooltips equal to
the JSON's values."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd

from scalinglab.report import ladder_report
from scalinglab.report.svg import fmt


def _step(k: int, h: int, d: float, are: float, c80: float | None, c95: float | None) -> dict[str, object]:
    groups = [1e15, 3e15, 1e16, 3e16, 1e17]
    return {"train_groups": groups[:k], "test_group": groups[k + h - 1], "horizon": h, "distance_decades": d,
            "train_points": 5 * k, "test_points": 5, "are_mean": are, "are_max": 2 * are,
            "coverage_80": c80, "coverage_95": c95,
            "interval": {"kind": "extrapolation-calibrated", "levels": [0.8, 0.95]}, "warnings": ["w at bound"]}


ROLL = {"law": "chinchilla", "key": "budget_flops", "decades": None, "horizon": 2,
        "groups": [1e15, 3e15, 1e16, 3e16, 1e17],
        "rollout": [_step(2, 1, 0.31, 0.004, 0.8, 1.0), _step(2, 2, 0.79, 0.011, 0.6, 0.8),
                    _step(3, 1, 0.29, 0.006, 1.0, 1.0), _step(3, 2, 0.77, 0.02, 0.4, 0.8),
                    _step(4, 1, 0.33, 0.008, 0.8, 1.0)],
        "n_points": 25, "are_mean": 0.0098, "coverage_80": 0.72, "coverage_95": 0.92,
        "interval": {"kind": "extrapolation-calibrated", "levels": [0.8, 0.95]}}


def _final() -> pd.DataFrame:
    return pd.DataFrame({"run": ["a", "b"], "N": [1e6, 2e6], "D": [1e8, 1e8], "loss": [3.0, 2.9]})


def _section(text: str) -> str:
    m = re.search(r"<section id='rollout'>(.*?)</section>", text, re.S)
    return m.group(1) if m else ""


def test_rollout_section_plots_error_and_coverage(tmp_path: Path) -> None:
    page = ladder_report(tmp_path / "r.html", final=_final(), points=None, fit=None, backtest=None, plan=None,
                         rollout=ROLL).read_text()
    sec = _section(page)
    figs = re.findall(r"<figure class='sl-fig'.*?</figure>", sec, re.S)
    assert len(figs) == 2
    err = [dict(json.loads(html.unescape(t))) for t in re.findall(r'data-tip="([^"]+)"', figs[0])]
    assert len(err) == len(ROLL["rollout"])             # type: ignore[arg-type]
    by = {fmt(s["distance_decades"]): s for s in ROLL["rollout"]}  # type: ignore[attr-defined]
    assert {t["decades of C"] for t in err} == set(by)
    for t in err:
        s = by[t["decades of C"]]
        assert t["mean ARE %"] == fmt(100 * s["are_mean"]) and t["horizon"] == fmt(s["horizon"])
        assert t["test group"] == fmt(s["test_group"])
    cov = [dict(json.loads(html.unescape(t))) for t in re.findall(r'data-tip="([^"]+)"', figs[1])]
    assert len(cov) == 2 * len(ROLL["rollout"])         # type: ignore[arg-type]
    for t in cov:
        s = by[t["decades of C"]]
        lv = "80" if t["interval"] == "nominal 80%" else "95"
        assert t[f"coverage {lv}%"] == f"{100 * s[f'coverage_{lv}']:.0f}%"
    # the nominal levels as two dashed reference lines, not in the legend
    assert figs[1].count('stroke-dasharray="5 3"') == 2
    assert "nominal 80%" not in re.sub(r"data-tip=\"[^\"]*\"", "", figs[1].split("</svg>")[1])
    assert "extrapolation-calibrated" in figs[1]
    assert "<summary>1 distinct warning(s) of the step fits" in sec   # the same warning of every step, once
    assert sec.count("w at bound") == 1
    files = dict(re.findall(r'<a download="([^"]+)" href="data:[^;]+;charset=utf-8;base64,([^"]+)"', page))
    assert json.loads(base64.b64decode(files["rollout.json"]))["coverage_80"] == 0.72


def test_no_rollout_section_without_one(tmp_path: Path) -> None:
    page = ladder_report(tmp_path / "r.html", final=_final(), points=None, fit=None, backtest=None,
                         plan=None).read_text()
    assert _section(page) == "" and "rollout.json" not in page


def test_report_rollout_from_the_store_and_from_a_file(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from synthetic_ladder import synthetic_quickstart_store

    from scalinglab.cli import main
    from scalinglab.fit.rollout import rollout
    from scalinglab.store import Store

    db = tmp_path / "q.db"
    synthetic_quickstart_store(db)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "10", "--rollout", "budget_flops",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "o" / "index.html").read_text()
    with Store(db, create=False) as st:
        rows = st.to_table(points="annealed", failed=False)
    want = rollout(rows, "chinchilla", "budget_flops", seed=0, bootstrap=10)
    sec = _section(page)
    figs = re.findall(r"<figure class='sl-fig'.*?</figure>", sec, re.S)
    assert len(figs) == 2
    tips = [dict(json.loads(html.unescape(t))) for t in re.findall(r'data-tip="([^"]+)"', figs[0])]
    assert sorted(t["mean ARE %"] for t in tips) == sorted(fmt(100 * s["are_mean"]) for s in want["rollout"])
    files = dict(re.findall(r'<a download="([^"]+)" href="data:[^;]+;charset=utf-8;base64,([^"]+)"', page))
    got = json.loads(base64.b64decode(files["rollout.json"]))
    assert got["are_mean"] == want["are_mean"] and got["coverage_80"] == want["coverage_80"]
    saved = tmp_path / "roll.json"
    saved.write_text(json.dumps(ROLL))
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--rollout-json", str(saved),
                                  "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
    assert "extrapolation-calibrated" in _section((tmp_path / "o2" / "index.html").read_text())
    # bad input: one line, exit 2, no page
    for args, msg in ((["--rollout", "N_nonembed_missing"], "rollout key"),
                      (["--rollout-json", str(tmp_path / "o2" / "index.html")], "--rollout-json"),
                      (["--rollout", "budget_flops", "--rollout-json", str(saved)], "--rollout")):
        r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", *args,
                                      "--out", str(tmp_path / "bad")])
        assert r.exit_code == 2, r.output
        last = r.output.strip().splitlines()[-1]
        assert last.startswith("error:") and msg in last, last
        assert not (tmp_path / "bad" / "index.html").exists()
