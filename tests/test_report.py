"""The HTML report is self-contained and shows the fit, the back-test and the plan."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.fit import LawFit
from scalinglab.fit.backtest import backtest
from scalinglab.plan import plan
from scalinglab.report import ladder_report


def test_ladder_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for c in (1e15, 3e15, 1e16):
        for n in np.geomspace(1e5, 1e6, 5):
            d = c / (6 * n)
            rows.append({"run": f"r{c:g}-{n:.0f}", "N": n, "D": d, "C": c, "budget_flops": c,
                         "loss": (1.5 + 50 / n**0.3 + 80 / d**0.3) * np.exp(rng.normal(0, 0.003))})
    final = pd.DataFrame(rows)
    points = pd.concat([final.assign(tokens=final["D"] * f, loss=final["loss"] / f**0.05) for f in (0.1, 0.5, 1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("chinchilla", bootstrap=20).fit(final).result_
        bt = backtest(final, "chinchilla", "C < 5e15", bootstrap=20)
    out = ladder_report(tmp_path / "index.html", final=final, points=points, fit=fit, backtest=bt,
                        plan=plan(fit, 1e17), held_out=1e16)
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 3      # IsoFLOP, loss curves, back-test
    assert "[[Parameters]]" in text and "Back-test" in text and "Plan" in text
    assert "http" not in text.replace("http-equiv", "")  # no external assets
