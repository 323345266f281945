"""Reports: interactive SVG figures (:mod:`.svg`, :mod:`.figures`), matplotlib plots that take and return an
Axes, and one self-contained HTML page (:mod:`.html`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError, ParameterError
from ..fit.predict import interval_kind
from ..fit.report import fit_report
from ..fit.result import Fit, json_safe
from ..table import apply_where
from . import figures, plots, precision, svg
from . import rollout as rollout_mod
from .contour import contour_grid, save_sparsity_contour, sparsity_contour_figure
from .html import Download, Footer, Section, dedupe, write


def _band(kind: str | None, level: float | None) -> str:
    """Which interval a figure or table shows, with its nominal level: ``nominal 80% observation``."""
    if kind is None:
        return "no (the fit has no bootstrap draws)"
    return f"nominal {100 * float(level or 0.95):g}% {kind}"


def ladder_report(out: str | Path, *, final: pd.DataFrame, points: pd.DataFrame | None, fit: Fit | None,
                  backtest: dict[str, Any] | None, plan: dict[str, Any] | None, title: str = "scalinglab report",
                  held_out: float | None = None, subtitle: str = "",
                  sparse_plan: dict[str, Any] | None = None, footer: Footer | None = None,
                  store_csv: str | None = None, seed: int = 0, extra_sections: Sequence[Section] = (),
                  extra_downloads: Sequence[Download] = (), rollout: dict[str, Any] | None = None) -> Path:
    """Write ``out`` (one self-contained HTML file): IsoFLOP profiles with the fit and its prediction
    bands, the fit's diagnostics and residuals, the back-test, the plan on the compute frontier, loss
    curves, the run table, and downloads of the runs, fit and plan (CSV and JSON, embedded).

    ``final``: one row per IsoFLOP point (canonical columns); ``points``: every curve point (``tokens``
    for D) for the loss curves; ``held_out``: the budget the back-test held out (hollow markers).
    Sparse ladders (runs with ``S > 0``) add the loss against non-zero parameters per sparsity, with
    the fitted law when ``fit`` is of law ``sparse``; ``sparse_plan`` (``plan.plan_sparse``'s result)
    adds the optimal-sparsity plan and its contour over (N_nonzero, C). ``footer``: the command,
    version and store hash; ``store_csv``: the store's export (offered as a download);
    ``extra_sections`` (e.g. :func:`.dynamics.dynamics_sections`') go before the loss curves, and
    ``extra_downloads`` after the others; ``rollout`` (a rollout back-test's JSON,
    ``backtest --rollout KEY --json``) adds its error and coverage against the extrapolation distance.
    Runs with number-format columns or points with PTQ / underflow metrics add the precision section
    (:func:`.precision.precision_sections`). Every warning appears once on the page, in the first section
    it belongs to.
    """
    shown: set[str] = set()

    def once(ws: list[str]) -> list[str]:
        new = [w for w in dedupe(ws) if w not in shown]
        shown.update(new)
        return new

    sections: list[Section] = []
    final = final.drop(columns=[c for c in ("config",) if c in final])
    nd = fit if fit is not None and fit.law != "sparse" else None    # the sparse law needs S too
    held_rows = _held_rows(final, backtest)
    if "budget_flops" in final and final["budget_flops"].gt(0).any() and {"N", "loss"} <= set(final):
        iso = final[final["budget_flops"] > 0]
        sections.append(Section(
            "IsoFLOP profiles", figures=[figures.isoflop_chart(iso, nd, held_out=held_out, held_rows=held_rows, seed=seed,
                                           held_predictions=_held_predictions(backtest))], anchor="isoflop",
            text="Eval loss at the end of each run's decay (its final point, and the ends of its cooldown branches "
                 "where it has them) against its total parameter count, one colour per FLOP budget (click the legend "
                 "to hide or show one; hover a point for its values). Lines: the fitted law along D = C/(6N), with its "
                 f"{_band(interval_kind(nd) if nd is not None else None, nd.ci_level if nd is not None else None)} "
                 "prediction band; stars: its compute-optimal N. Hollow points were held out of the fit, labelled "
                 "with the error (predicted - measured) in % of the back-test's prediction."))
    if fit is not None:
        sections.append(_diagnostics_section(fit, once(list(fit.warnings))))
        res = figures.residual_chart(final, fit, held_out=held_out, held_rows=held_rows) if len(final) else None
        if res is not None:
            sections.append(Section(
                "Residuals", figures=[res], anchor="residuals",
                text=f"Relative residual of every point against the {fit.law} fit, (measured - predicted) / "
                     "predicted in %, against N; hollow points were held out of the fit."))
    if {"S", "N_nonzero", "D"} <= set(final) and final["S"].gt(0).any():
        fig = figures.sparse_loss_chart(final, fit if fit is not None and fit.law == "sparse" else None)
        sections.append(Section(
            "Sparse runs: loss against non-zero parameters", figures=[fig], anchor="sparse",
            text="Final eval loss of each run against its non-zero non-embedding parameters, one colour per "
                 "sparsity S and one marker per token count D; lines: the fitted sparse law (Frantar et al. 2023) "
                 "at each (S, D). At equal non-zero parameters and tokens, a lower point at higher S means the "
                 "sparse model (a wider dense model, pruned) beat the dense one."))
    sections += precision.precision_sections(final, points, fit)
    if backtest is not None:
        names = {figures.nd_key(n, d): r for r, n, d in zip(final["run"], final["N"], final["D"])} \
            if {"run", "N", "D"} <= set(final) else {}
        rows = [{"run": names.get(figures.nd_key(p["inputs"].get("N", 0), p["inputs"].get("D", 0)), "-"),
                 **{k: v for k, v in p["inputs"].items()}, "measured": p["actual"], "predicted": p["predicted"],
                 "interval": "-" if p["interval"] is None else f"[{p['interval'][0]:.4g}, {p['interval'][1]:.4g}]",
                 "error %": 100 * (p["predicted"] - p["actual"]) / p["actual"],
                 "inside": "-" if p.get("inside") is None else ("yes" if p["inside"] else "no")}
                for p in backtest["per_point"]]
        cov = backtest.get("coverage")
        bt_kind = backtest.get("interval") or {}
        bt_warn = once(list(backtest.get("fit", {}).get("warnings", [])))
        sections.append(Section(
            "Back-test", figures=[figures.backtest_chart(backtest["per_point"], final)], tables=[pd.DataFrame(rows)],
            anchor="backtest", warnings=[f"the back-test's fit: {w}" for w in bt_warn],
            text=f"Fit on {backtest['train_where']}: {backtest['train_points']} runs; predicted "
                 f"{backtest['test_points']} held-out runs. Mean ARE {100 * backtest['are_mean']:.2f}%, "
                 f"max {100 * backtest['are_max']:.2f}%"
                 + (f", {100 * cov:.0f}% inside their prediction interval." if cov is not None else ".")
                 + f" Bars: the {_band(bt_kind.get('kind'), bt_kind.get('ci_level'))} prediction intervals; labels: "
                   "the error (predicted - measured) in %."))
    if rollout is not None:
        ro = rollout_mod.rollout_section(rollout)
        ro.warnings = once(list(ro.warnings))
        sections.append(ro)
    if plan is not None:
        keys = ["flops", "N", "D", "tokens_per_param", "loss", "interval", "N_interval", "D_interval"]
        charts = figures.frontier_charts(final, fit, plan, seed=seed) if fit is not None and len(final) else []
        sections.append(Section(
            "Plan", figures=list(charts), tables=[pd.DataFrame([{k: _s(plan.get(k)) for k in keys}])], anchor="plan",
            warnings=once(list(plan.get("warnings", []))),
            text=f"Compute-optimal allocation (N: {plan.get('n_convention')} parameters, C = 6ND) and the predicted "
                 f"loss with its prediction interval ({_band(plan.get('interval_kind'), plan.get('ci_level'))}), on "
                 "the fit's compute frontier (the loss and N of the compute-optimal model at every C, with the "
                 f"{_band(interval_kind(fit) if fit is not None else None, fit.ci_level if fit is not None else None)} "
                 "prediction band) beside the measured runs."))
    if sparse_plan is not None:
        sp = _sparse_plan_section(sparse_plan, fit if fit is not None and fit.law == "sparse" else None)
        sp.warnings = once(list(sparse_plan.get("warnings", [])))
        sections.append(sp)
    for extra in extra_sections:
        extra.warnings = once(list(extra.warnings))
        sections.append(extra)
    curves = figures.loss_curve_chart(points) if points is not None and len(points) else None
    if curves is not None:
        sections.append(Section("Loss curves", figures=[curves], anchor="curves",
                                text="Eval loss against tokens seen, every run (cooldown branches dashed); click a "
                                     "run in the legend to hide or show it."))
    sections.append(Section("Runs", tables=[final], anchor="runs"))
    return write(out, title, sections, subtitle=subtitle, footer=footer,
                 downloads=downloads(final, fit, plan or sparse_plan, backtest, store_csv) + list(extra_downloads)
                 + ([Download("rollout.json", json.dumps(json_safe(rollout), indent=1), "application/json",
                              "rollout back-test (JSON)")] if rollout is not None else []))


def downloads(final: pd.DataFrame, fit: Fit | None, plan: dict[str, Any] | None, backtest: dict[str, Any] | None,
              store_csv: str | None = None) -> list[Download]:
    """The report's embedded files: the runs (CSV and JSON), the fit (JSON, and its parameters as CSV),
    the plan (JSON and CSV), the back-test (JSON) and the store's export (CSV, the hashed content)."""
    out = [Download("runs.csv", final.to_csv(index=False), "text/csv", "runs (CSV)"),
           Download("runs.json", final.to_json(orient="records", indent=1) or "[]", "application/json",
                    "runs (JSON)")]
    if fit is not None:
        out.append(Download("fit.json", fit.to_json(), "application/json", "fit (JSON)"))
        out.append(Download("fit.csv", _param_table(fit).to_csv(index=False), "text/csv", "fit parameters (CSV)"))
    if plan is not None:
        clean = json_safe(plan)
        out.append(Download("plan.json", json.dumps(clean, indent=1), "application/json", "plan (JSON)"))
        flat = {k: v for k, v in clean.items() if not isinstance(v, (list, dict))}
        for k, v in clean.items():
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
                flat[f"{k}_lo"], flat[f"{k}_hi"] = v
        out.append(Download("plan.csv", pd.DataFrame([flat]).to_csv(index=False), "text/csv", "plan (CSV)"))
    if backtest is not None:
        bt = {k: v for k, v in backtest.items() if k != "fit"}
        out.append(Download("backtest.json", json.dumps(json_safe(bt), indent=1), "application/json",
                            "back-test (JSON)"))
    if store_csv is not None:
        out.append(Download("store-export.csv", store_csv, "text/csv", "store export, every point (CSV)"))
    return out


def _held_predictions(backtest: dict[str, Any] | None) -> dict[tuple[float, float], float]:
    """The back-test's prediction of each held-out point, keyed by (N, D) (:func:`.figures.nd_key`)."""
    if backtest is None:
        return {}
    return {figures.nd_key(p["inputs"]["N"], p["inputs"]["D"]): float(p["predicted"])
            for p in backtest["per_point"] if {"N", "D"} <= set(p.get("inputs", {}))}


def _held_rows(final: pd.DataFrame, backtest: dict[str, Any] | None) -> pd.Series | None:
    """True for the rows of ``final`` the back-test held out (those its ``train_where`` leaves out)."""
    if backtest is None or not backtest.get("train_where"):
        return None
    try:
        train = apply_where(final, backtest["train_where"])
    except (DataError, ParameterError):
        return None
    return pd.Series(~final.index.isin(train.index), index=final.index)


_AT_BOUND = re.compile(r"parameter '(\w+)' = \S+ is at its (lower|upper) bound")


def _param_table(fit: Fit) -> pd.DataFrame:
    """Per parameter: value, standard error, interval, bounds, and whether the fit's warnings say it sits
    at a bound or on a flat direction."""
    law = fit.law_
    at = {m.group(1): m.group(2) for w in fit.warnings for m in [_AT_BOUND.search(w)] if m}
    flat = {n for w in fit.warnings if w.startswith("flat direction") for n in re.findall(r"'(\w+)'", w)}
    rows = []
    for p in law.params:
        ci = fit.ci.get(p.name)
        rows.append({"parameter": p.name, "value": fit.params.get(p.name), "stderr": fit.stderr.get(p.name),
                     "ci_lo": ci[0] if ci else None, "ci_hi": ci[1] if ci else None,
                     "lower bound": p.lower, "upper bound": p.upper,
                     "at bound": at.get(p.name, "fixed" if p.name in fit.fixed else "no"),
                     "flat direction": "yes" if p.name in flat else "no"})
    return pd.DataFrame(rows)


def _diagnostics_section(fit: Fit, warns: list[str]) -> Section:
    table = _param_table(fit)
    flagged = [i for i, (b, f) in enumerate(zip(table["at bound"], table["flat direction"]))
               if b in ("lower", "upper") or f == "yes"]
    text = fit_report(fit).split("\n[[Warnings]]")[0]     # its warnings are shown above it, once
    n_at = sum(b in ("lower", "upper") for b in table["at bound"])
    n_flat = int((table["flat direction"] == "yes").sum())
    status = (f"{fit.law} fit on {fit.n_points} points: converged {'yes' if fit.converged else 'NO'}, "
              f"{n_at} parameter(s) at a bound, {n_flat} on a flat direction, {len(fit.warnings)} warning(s).")
    return Section(f"Fit diagnostics: {fit.law}", text=status, warnings=warns, tables=[table], flag_rows=[flagged],
                   pre=text, anchor="fit")


def _sparse_plan_section(res: dict[str, Any], fit: Fit | None) -> Section:
    """The optimal-sparsity plan: its numbers, the contour plot (:func:`.contour.sparsity_contour_figure`:
    on a 41 x 41 grid over the table's range when the sparse ``fit`` is given) and the contour table."""
    keys = ["flops", "S", "S_interval", "N_nonzero", "N_interval", "tokens", "tokens_interval", "c_mul", "loss",
            "interval"]
    dense = res["dense"]
    row = {k: _s(res.get(k)) for k in keys}
    row.update({"dense loss (same budget)": dense["loss"], "dense tokens": dense["tokens"]})
    ct = res["contour"]
    fig = figures.sparsity_contour_chart(contour_grid(res, fit), point=(res["N_nonzero"], res["flops"]))
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


__all__ = ["Download", "Footer", "Section", "downloads", "figures", "ladder_report", "plots", "save_sparsity_contour",
           "sparsity_contour_figure", "svg", "write"]
