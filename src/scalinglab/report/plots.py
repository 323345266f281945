"""Plots: each takes a matplotlib Axes (and data), draws, and returns the Axes. Never ``plt.show()``."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (files only; the report never opens a window)

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..fit.result import Fit
from ..plan import optimum


def isoflop(ax: Axes, runs: pd.DataFrame, fit: Fit | None = None, *, budget_col: str = "budget_flops",
            n_col: str = "N", held_out: float | None = None) -> Axes:
    """Final loss against N, one colour per FLOP budget, with the fitted law along each IsoFLOP line.

    ``runs`` needs ``loss``, ``n_col`` and ``budget_col`` (FLOPs). The fitted curve uses ``D = C/(6N)``;
    the compute-optimal N of the fit is marked on each curve. A budget equal to ``held_out`` is drawn
    with hollow markers (not used by the fit).
    """
    budgets = sorted(runs[budget_col].unique())
    cmap = matplotlib.colormaps["viridis"]
    for i, c in enumerate(budgets):
        color = cmap(i / max(1, len(budgets) - 1))
        sub = runs[runs[budget_col] == c].sort_values(n_col)
        hollow = held_out is not None and np.isclose(c, held_out)
        ax.scatter(sub[n_col], sub["loss"], color=color, facecolors="none" if hollow else color, zorder=3,
                   label=f"C = {c:.2g} FLOPs" + (" (held out)" if hollow else ""))
        if fit is not None:
            law = fit.law_
            n = np.geomspace(sub[n_col].min() / 1.5, sub[n_col].max() * 1.5, 100)
            x = {law.n_input or "N": n, law.d_input or "D": c / (6 * n)}
            ax.plot(n, law.predict(fit.params, x), color=color, lw=1)
            n_opt, d_opt = optimum(law, fit.params, c)
            xo = {law.n_input or "N": np.array([n_opt]), law.d_input or "D": np.array([d_opt])}
            ax.plot([n_opt], law.predict(fit.params, xo), marker="*", color=color, ms=10)
    ax.set_xscale("log")
    ax.set_xlabel(f"{n_col} (parameters)")
    ax.set_ylabel("final eval loss (nats/token)")
    ax.set_title("IsoFLOP profiles" + (f" and the fitted {fit.law} law" if fit else ""))
    ax.legend(fontsize=7)
    return ax


def loss_curves(ax: Axes, points: pd.DataFrame, *, x: str = "tokens", y: str = "loss", by: str = "run",
                color_by: str | None = "budget_flops") -> Axes:
    """Eval loss against tokens seen for every run (log-log)."""
    groups = list(points.groupby(by))
    vals = sorted(points[color_by].unique()) if color_by and color_by in points else []
    cmap = matplotlib.colormaps["viridis"]
    for name, g in groups:
        g = g.sort_values(x)
        color: Any = None
        if vals:
            color = cmap(vals.index(g[color_by].iloc[0]) / max(1, len(vals) - 1))
        ax.plot(g[x], g[y], color=color, lw=1, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{x} seen")
    ax.set_ylabel("eval loss (nats/token)")
    ax.set_title(f"loss curves ({len(groups)} runs)")
    return ax


def backtest_scatter(ax: Axes, per_point: list[dict[str, Any]]) -> Axes:
    """Predicted against measured for held-out points, with prediction intervals."""
    act = np.array([p["actual"] for p in per_point])
    pred = np.array([p["predicted"] for p in per_point])
    ivals = [p.get("interval") for p in per_point]
    if all(iv is not None for iv in ivals):
        lo = np.array([iv[0] for iv in ivals])
        hi = np.array([iv[1] for iv in ivals])
        ax.errorbar(act, pred, yerr=[pred - lo, hi - pred], fmt="o", ms=4, capsize=2)
    else:
        ax.plot(act, pred, "o", ms=4)
    lim = [min(act.min(), pred.min()) * 0.98, max(act.max(), pred.max()) * 1.02]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("measured loss")
    ax.set_ylabel("predicted loss")
    ax.set_title("back-test on held-out runs")
    return ax
