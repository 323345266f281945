"""Reports: plots that take and return an Axes, and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..fit.report import fit_report
from ..fit.result import Fit
from . import plots
from .html import Section, write


def ladder_report(out: str | Path, *, final: pd.DataFrame, points: pd.DataFrame | None, fit: Fit | None,
                  backtest: dict[str, Any] | None, plan: dict[str, Any] | None, title: str = "scalinglab report",
                  held_out: float | None = None, subtitle: str = "") -> Path:
    """Write ``out`` (an HTML file): IsoFLOP curves with the fit, loss curves, back-test, plan."""
    sections = []
    if "budget_flops" in final and final["budget_flops"].gt(0).any():
        fig = Figure(figsize=(7, 4.5))
        plots.isoflop(fig.subplots(), final[final["budget_flops"] > 0], fit, held_out=held_out)
        sections.append(Section("IsoFLOP profiles", figures=[fig],
                                text="Final eval loss of each run against its total parameter count; lines: the "
                                     "fitted law along D = C/(6N); stars: its compute-optimal N."))
    if points is not None and len(points):
        fig = Figure(figsize=(7, 4.5))
        plots.loss_curves(fig.subplots(), points)
        sections.append(Section("Loss curves", figures=[fig]))
    if fit is not None:
        sections.append(Section(f"Fit: {fit.law}", pre=fit_report(fit)))
    if backtest is not None:
        fig = Figure(figsize=(5, 4.5))
        plots.backtest_scatter(fig.subplots(), backtest["per_point"])
        rows = [{**{k: v for k, v in p["inputs"].items()}, "measured": p["actual"], "predicted": p["predicted"],
                 "interval": "-" if p["interval"] is None else f"[{p['interval'][0]:.4g}, {p['interval'][1]:.4g}]",
                 "ARE %": 100 * p["are"]} for p in backtest["per_point"]]
        cov = backtest.get("coverage")
        sections.append(Section(
            "Back-test", figures=[fig], tables=[pd.DataFrame(rows)],
            text=f"Fit on {backtest['train_where']}: {backtest['train_points']} runs; predicted "
                 f"{backtest['test_points']} held-out runs. Mean ARE {100 * backtest['are_mean']:.2f}%, "
                 f"max {100 * backtest['are_max']:.2f}%"
                 + (f", {100 * cov:.0f}% inside their prediction interval." if cov is not None else ".")))
    if plan is not None:
        keys = ["flops", "N", "D", "tokens_per_param", "loss", "interval", "N_interval", "D_interval"]
        sections.append(Section("Plan", tables=[pd.DataFrame([{k: _s(plan.get(k)) for k in keys}])],
                                text=f"Compute-optimal allocation (N: {plan.get('n_convention')} parameters, "
                                     "C = 6ND) and the predicted loss with its prediction interval."))
    sections.append(Section("Runs", tables=[final.drop(columns=[c for c in ("config",) if c in final])]))
    return write(out, title, sections, subtitle=subtitle)


def _s(v: Any) -> Any:
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return v


__all__ = ["Section", "ladder_report", "plots", "write"]
