"""The HTML report is self-contained and shows the fit, the back-test and the plan, as inline SVG.

(The browser test, ``test_report_browser.py``, loads the quickstart's report in Chromium.)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from synthetic_ladder import synthetic_quickstart_store

from scalinglab.fit import LawFit
from scalinglab.fit.backtest import backtest
from scalinglab.plan import plan
from scalinglab.report import ladder_report
from scalinglab.report.html import Footer, Section, render
from scalinglab.report.svg import Chart, fmt


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for c in (1e15, 3e15, 1e16):
        for n in np.geomspace(1e5, 1e6, 5):
            d = c / (6 * n)
            rows.append({"run": f"r{c:g}-{n:.0f}", "N": n, "D": d, "C": c, "budget_flops": c,
                         "loss": (1.5 + 50 / n**0.3 + 80 / d**0.3) * np.exp(rng.normal(0, 0.003))})
    return pd.DataFrame(rows)


def _downloads(text: str) -> dict[str, str]:
    found = re.findall(r'<a download="([^"]+)" href="data:[^;]+;charset=utf-8;base64,([^"]+)"', text)
    return {name: base64.b64decode(data).decode() for name, data in found}


def test_ladder_report(tmp_path: Path) -> None:
    final = _table()
    points = pd.concat([final.assign(tokens=final["D"] * f, loss=final["loss"] / f**0.05) for f in (0.1, 0.5, 1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("chinchilla", bootstrap=20).fit(final[final["C"] < 5e15]).result_
        bt = backtest(final, "chinchilla", "C < 5e15", bootstrap=20)
    the_plan = plan(fit, 1e17)
    the_plan["warnings"] = [*fit.warnings, "a plan warning"]       # as plan_fit does: the fit's first
    out = ladder_report(tmp_path / "index.html", final=final, points=points, fit=fit, backtest=bt,
                        plan=the_plan, held_out=1e16,
                        footer=Footer(command="scalinglab report --store s.db", store="s.db", store_sha256="ab" * 32))
    text = out.read_text()
    # IsoFLOP, residuals, back-test, loss and N frontiers, loss curves: inline SVG, no image
    assert text.count("<figure class='sl-fig'") == 6 and text.count("<svg ") == 6
    assert "data:image/" not in text and "<img" not in text
    assert "http" not in text.replace("http-equiv", "")  # no external assets, no namespace URLs either
    assert "[[Parameters]]" in text and "Back-test" in text and "Plan" in text
    # every fit warning is shown once on the page (the plan repeats them)
    assert fit.warnings
    for w in [*fit.warnings, "a plan warning"]:
        assert text.count(f"warning: {html.escape(w)}") == 1, w
    assert "[[Warnings]]" not in text
    # hover values of the held-out points: their error against the back-test's prediction
    iso = text[text.index("id='fig-1'"):text.index("id='fig-2'")]
    tips = [json.loads(html.unescape(t)) for t in re.findall(r'data-tip="([^"]+)"', iso)]
    held = [dict(t) for t in tips if ("held out", "yes") in [tuple(x) for x in t]]
    assert len(held) == 5
    by_nd = {(p["inputs"]["N"], p["inputs"]["D"]): p for p in bt["per_point"]}
    for t in held:
        row = final[final["run"] == t["run"]].iloc[0]
        p = by_nd[(row["N"], row["D"])]
        assert t["error %"] == fmt(100 * (p["predicted"] - p["actual"]) / p["actual"])
        assert t["loss"] == fmt(row["loss"]) and t["C = 6ND (FLOPs)"] == fmt(6 * row["N"] * row["D"])
        assert f"{100 * (p['predicted'] - p['actual']) / p['actual']:+.1f}%" in iso
    # legends: one button per budget
    assert iso.count('class="sl-leg"') == 3 and "(held out)" in iso
    # the downloads decode to the runs, the fit and the plan
    files = _downloads(text)
    assert set(files) == {"runs.csv", "runs.json", "fit.json", "fit.csv", "plan.json", "plan.csv", "backtest.json"}
    assert pd.read_csv(__import__("io").StringIO(files["runs.csv"]))["run"].tolist() == final["run"].tolist()
    assert json.loads(files["fit.json"])["params"] == pytest.approx(fit.params)
    assert json.loads(files["plan.json"])["N"] == pytest.approx(the_plan["N"])
    plan_csv = pd.read_csv(__import__("io").StringIO(files["plan.csv"]))
    assert plan_csv["interval_lo"][0] == pytest.approx(the_plan["interval"][0])
    assert json.loads(files["backtest.json"])["are_mean"] == pytest.approx(bt["are_mean"])
    assert "scalinglab report --store s.db" in text and "ab" * 32 in text


def test_parameters_at_a_bound_are_flagged(tmp_path: Path) -> None:
    # no data term: B's exponent has nothing to fit (losses depend on N only), so the fit says so
    final = _table()
    final["loss"] = 1.5 + 50 / final["N"] ** 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("chinchilla", bootstrap=0).fit(final).result_
    assert any("bound" in w or "flat direction" in w for w in fit.warnings)
    text = ladder_report(tmp_path / "index.html", final=final, points=None, fit=fit, backtest=None, plan=None).read_text()
    diag = text[text.index("Fit diagnostics"):text.index("Residuals")]
    assert "<tr class='flag'>" in diag
    flagged = re.findall(r"<tr class='flag'><td>(\w+)</td>", diag)
    named = {n for w in fit.warnings for n in re.findall(r"'(\w+)'", w)}
    assert flagged and set(flagged) <= named


def test_chart_places_points_on_its_axes() -> None:
    ch = Chart("t", "x", "y", xlog=True)
    ch.add_series("a", "A", "#123456")
    ch.scatter([10.0, 1000.0], [1.0, 3.0], series="a", tips=[[("run", "p")], [("run", "q")]])
    svg = ch.svg("f")
    xs = [float(v) for v in re.findall(r'<circle cx="([\d.]+)"', svg)]
    ys = [float(v) for v in re.findall(r'cy="([\d.]+)"', svg)]
    top, right, bottom, left = ch.margin
    # log x: 10 and 1000 sit symmetrically about the plot's middle; larger y is higher (smaller pixel y)
    mid = left + (ch.width - left - right) / 2
    assert xs[0] - mid == pytest.approx(mid - xs[1], abs=0.15)
    assert ys[0] > ys[1]
    assert '<g data-series="a"' in svg and "&quot;run&quot;" in svg
    assert 'data-key="a"' in ch.legend_html("f")


def test_render_escapes_text_and_keeps_one_script() -> None:
    page = render("<b>t</b>", [Section("s <i>", text="1 < 2", warnings=["w", "w"])])
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert page.count("warning: w") == 1 and page.count("<script>") == 1


def test_report_command_writes_the_footer_and_the_store_hash(tmp_path: Path) -> None:
    from scalinglab.cli import main
    from scalinglab.report.store_report import store_digest, store_export_csv
    from scalinglab.store import Store

    store = tmp_path / "runs.db"
    runs = synthetic_quickstart_store(store)
    top = max(r.budget_flops for r in runs)
    r = CliRunner().invoke(main, ["report", "--store", str(store), "--bootstrap", "0", "--flops", "1e13",
                                  "--train-where", f"budget_flops < {top!r}", "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "rep" / "index.html").read_text()
    with Store(store, create=False) as st:
        export = store_export_csv(st)
    # the hash is the sha256 of the store's export, which `runs export` writes byte for byte
    out = tmp_path / "export.csv"
    assert CliRunner().invoke(main, ["runs", "export", "--store", str(store), "--out", str(out)]).exit_code == 0
    assert out.read_text() == export
    assert store_digest(export) == hashlib.sha256(out.read_bytes()).hexdigest() in text
    assert f"scalinglab report --store {store}" in html.unescape(text)
    assert _downloads(text)["store-export.csv"] == export


def test_a_matplotlib_figure_is_inlined_as_svg() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    ax.set_title("a title kept as text")
    page = render("t", [Section("mpl", figures=[fig])])
    body = page[page.index("<figure"):page.index("</figure>")]
    assert body.count("<svg") == 1 and "<?xml" not in body and "<!DOCTYPE" not in body
    assert "a title kept as text" in body                 # svg.fonttype none: text, not glyph paths
    assert "http" not in body and "<metadata>" not in body
