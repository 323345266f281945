"""Plots: each takes a matplotlib Axes (and data), draws, and returns the Axes. Never ``plt.show()``."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from ..fit.result import Fit
from ..plan import optimum


def isoflop(ax: Axes, runs: pd.DataFrame, fit: Fit | None = None, *, budget_col: str = "budget_flops",
            n_col: str = "N", held_out: float | None = None) -> Axes:
    """Final loss against N, one colour per FLOP budget, with the fitted law along each IsoFLOP line.

    ``runs`` needs ``loss``, ``n_col`` and ``budget_col`` (FLOPs). The fitted curve runs along
    ``D = C/(6N)`` with C the geometric mean of ``6 N D`` over the budget's runs (when ``D`` is given);
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
            # the law's own convention C = 6 N D: the budget's runs, measured that way (a ladder's budget
            # may count FLOPs in full, with the head and attention terms)
            c_law = float(np.exp(np.mean(np.log(6.0 * sub[n_col] * sub["D"])))) if "D" in sub else c
            n = np.geomspace(sub[n_col].min() / 1.5, sub[n_col].max() * 1.5, 100)
            x = {law.n_input or "N": n, law.d_input or "D": c_law / (6 * n)}
            ax.plot(n, law.predict(fit.params, x), color=color, lw=1)
            n_opt, d_opt = optimum(law, fit.params, c_law)
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
    for _name, g in groups:
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
    bounds = [iv for iv in ivals if iv is not None]
    if len(bounds) == len(ivals):
        lo = np.array([iv[0] for iv in bounds])
        hi = np.array([iv[1] for iv in bounds])
        # a point prediction may lie outside its bootstrap interval: matplotlib refuses negative bars
        ax.errorbar(act, pred, yerr=[np.clip(pred - lo, 0.0, None), np.clip(hi - pred, 0.0, None)], fmt="o", ms=4,
                    capsize=2)
    else:
        ax.plot(act, pred, "o", ms=4)
    lim = [min(act.min(), pred.min()) * 0.98, max(act.max(), pred.max()) * 1.02]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("measured loss")
    ax.set_ylabel("predicted loss")
    ax.set_title("back-test on held-out runs")
    return ax


def sparse_loss(ax: Axes, runs: pd.DataFrame, fit: Fit | None = None, *, n_col: str = "N_nonzero",
                d_col: str = "D", s_col: str = "S") -> Axes:
    """Final loss against non-zero parameters, one colour per sparsity and one marker per data size.

    ``runs`` needs ``loss``, ``n_col`` (non-zero non-embedding parameters), ``d_col`` (data, in the
    fit's unit) and ``s_col`` (sparsity). With a ``sparse`` fit, its law is drawn for each (S, D)
    group along N, at the group's median D (Frantar et al. 2023, Eq. 1).
    """
    sparsities = sorted(runs[s_col].unique())
    d_key = np.round(np.log(runs[d_col].astype(float)), 2)      # data sizes equal to 1% are one group
    keys = sorted(d_key.unique())
    cmap = matplotlib.colormaps["plasma"]
    markers = "os^Dvp*hX"
    styles = ["-", "--", ":", "-."]
    for i, s in enumerate(sparsities):
        color = cmap(0.85 * i / max(1, len(sparsities) - 1))
        for j, key in enumerate(keys):
            sub = runs[(runs[s_col] == s) & (d_key == key)].sort_values(n_col)
            if sub.empty:
                continue
            d = float(sub[d_col].median())
            ax.scatter(sub[n_col], sub["loss"], color=color, marker=markers[j % len(markers)], zorder=3,
                       label=f"S = {s:g}, D = {d:.3g}")
            if fit is not None and fit.law == "sparse":
                n = np.geomspace(runs[n_col].min() / 1.3, runs[n_col].max() * 1.3, 100)
                x = {"S": np.full_like(n, s), "N_nonzero": n, "D": np.full_like(n, d)}
                ax.plot(n, fit.law_.predict(fit.params, x), color=color, lw=1, ls=styles[j % len(styles)])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())   # labelled minor ticks collide on a short range
    ax.set_xlabel(f"{n_col} (non-zero non-embedding parameters)")
    ax.set_ylabel("final eval loss (nats/token)")
    ax.set_title("loss against non-zero parameters" + (" and the fitted sparse law" if fit is not None else ""))
    ax.legend(fontsize=6, ncol=2)
    return ax


def sparsity_contour(ax: Axes, contour: dict[str, Any], *, point: tuple[float, float] | None = None,
                     levels: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 0.95)) -> Axes:
    """Filled contour of the optimal sparsity over non-zero parameters (x) and training FLOPs (y).

    ``contour`` is ``plan.sparsity.contour``'s dict (``N_nonzero``, ``flops``, ``S_opt`` with one
    row per budget). Labelled lines at ``levels``; ``point`` = (N_nonzero, FLOPs) is starred.
    """
    n = np.asarray(contour["N_nonzero"], dtype=float)
    c = np.asarray(contour["flops"], dtype=float)
    s = np.asarray(contour["S_opt"], dtype=float)
    filled = ax.contourf(n, c, s, levels=np.linspace(0.0, 1.0, 21), cmap="viridis")
    inside = [v for v in levels if s.min() < v < s.max()]    # matplotlib warns about levels it cannot draw
    if inside and min(s.shape) > 1:
        lines = ax.contour(n, c, s, levels=inside, colors="white", linewidths=0.8)
        ax.clabel(lines, fmt="%.2g", fontsize=7)
    if ax.figure is not None:
        ax.figure.colorbar(filled, ax=ax, label="optimal sparsity")
    if point is not None:
        ax.plot([point[0]], [point[1]], marker="*", color="red", ms=12, ls="none", label="plan")
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("non-zero parameters N")
    ax.set_ylabel("training FLOPs C")
    ax.set_title("optimal sparsity S_opt(N, C)")
    return ax
