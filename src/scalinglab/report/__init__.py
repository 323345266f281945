"""Reports: plots that take and return an Axes, and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..fit.report import fit_report
from ..fit.result import Fit
from . import plots
from .contour import save_sparsity_contour, sparsity_contour_figure
from .html import Section, write


def ladder_report(out: str | Path, *, final: pd.DataFrame, points: pd.DataFrame | None, fit: Fit | None,
                  backtest: dict[str, Any] | None, plan: dict[str, Any] | None, title: str = "scalinglab report",
                  held_out: float | None = None, subtitle: str = "",
                  sparse_plan: dict[str, Any] | None = None) -> Path:
    """Write ``out`` (an HTML file): IsoFLOP curves with the fit, loss curves, back-test, plan.

    Sparse ladders (runs with ``S > 0``) add the loss against non-zero parameters per sparsity, with
    the fitted law when ``fit`` is of law ``sparse``; ``sparse_plan`` (``plan.plan_sparse``'s result)
    adds the optimal-sparsity plan and its contour over (N_nonzero, C).
    """
    sections = []
    if "budget_flops" in final and final["budget_flops"].gt(0).any():
        fig = Figure(figsize=(7, 4.5))
        iso_fit = fit if fit is not None and fit.law != "sparse" else None   # the sparse law needs S too
        plots.isoflop(fig.subplots(), final[final["budget_flops"] > 0], iso_fit, held_out=held_out)
        sections.append(Section("IsoFLOP profiles", figures=[fig],
                                text="Eval loss at the end of each run's decay (its final point, and the ends of its "
                                     "cooldown branches where it has them) against its total parameter count; lines: the "
                                     "fitted law along D = C/(6N); stars: its compute-optimal N."))
    if {"S", "N_nonzero", "D"} <= set(final) and final["S"].gt(0).any():
        fig = Figure(figsize=(7, 4.5))
        plots.sparse_loss(fig.subplots(), final, fit if fit is not None and fit.law == "sparse" else None)
        sections.append(Section(
            "Sparse runs: loss against non-zero parameters", figures=[fig],
            text="Final eval loss of each run against its non-zero non-embedding parameters, one colour per "
                 "sparsity S and one marker per token count D; lines: the fitted sparse law (Frantar et al. 2023) "
                 "at each (S, D). At equal non-zero parameters and tokens, a lower point at higher S means the "
                 "sparse model (a wider dense model, pruned) beat the dense one."))
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
                                     "C = 6ND) and the predicted loss with its prediction interval."
                                     + "".join(f" Warning: {w}" for w in plan.get("warnings", []))))
    if sparse_plan is not None:
        sections.append(_sparse_plan_section(sparse_plan, fit if fit is not None and fit.law == "sparse" else None))
    sections.append(Section("Runs", tables=[final.drop(columns=[c for c in ("config",) if c in final])]))
    return write(out, title, sections, subtitle=subtitle)


def _sparse_plan_section(res: dict[str, Any], fit: Fit | None) -> Section:
    """The optimal-sparsity plan: its numbers, the contour plot (:func:`.contour.sparsity_contour_figure`:
    on a 41 x 41 grid over the table's range when the sparse ``fit`` is given) and the contour table."""
    keys = ["flops", "S", "S_interval", "N_nonzero", "N_interval", "tokens", "tokens_interval", "c_mul", "loss",
            "interval"]
    dense = res["dense"]
    row = {k: _s(res.get(k)) for k in keys}
    row.update({"dense loss (same budget)": dense["loss"], "dense tokens": dense["tokens"]})
    ct = res["contour"]
    fig = sparsity_contour_figure(res, fit)
    table = pd.DataFrame(ct["S_opt"], index=[f"C = {c:.3g}" for c in ct["flops"]],
                         columns=[f"N = {n:.3g}" for n in ct["N_nonzero"]]).reset_index(names="S_opt")
    held = ", ".join(f"{k} = {v:.4g}" for k, v in res.get("held", {}).items()) or "nothing"
    return Section(
        "Optimal sparsity", figures=[fig], tables=[pd.DataFrame([row]), table],
        text=f"The sparse law's optimal sparsity at C = {res['flops']:.3g} FLOPs ({held} held), charged as "
             f"C = 6 N D c_mul(S) with {res['tokens_per_d']:g} tokens per unit of D ({res['D_unit']}); the "
             "contour and the table give S_opt over (N_nonzero, C): at fixed N it rises with the compute.")


def _s(v: Any) -> Any:
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return v


__all__ = ["Section", "ladder_report", "plots", "save_sparsity_contour", "sparsity_contour_figure", "write"]
