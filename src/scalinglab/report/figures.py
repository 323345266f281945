"""The report's interactive figures, built on :mod:`.svg`: IsoFLOP profiles with the fitted law and its
prediction bands, loss curves, the back-test (measured against predicted, each point labelled with its
error in %), residuals, and the compute frontier with the plan and its interval.

Each function takes the run table (canonical columns) and the fit, and returns a :class:`.svg.Chart`
(or None when the data cannot make that figure). Hover values name the run, N, D (tokens),
C (= 6 N D, the law's convention, FLOPs), loss, budget and whether the point was held out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError
from ..fit.predict import predict
from ..fit.result import Fit
from ..plan import optimum
from .svg import PALETTE, Chart, cell_edges, fmt, ramp

__all__ = ["backtest_chart", "budget_colors", "frontier_charts", "isoflop_chart", "law_predict", "loss_curve_chart",
           "nd_key", "residual_chart", "sparse_loss_chart", "sparsity_contour_chart"]

#: at most this many hover markers per loss curve (evenly spaced, the last always kept)
MAX_CURVE_MARKERS = 40
#: above this many runs the loss-curve legend toggles budgets instead of runs
MAX_RUN_LEGEND = 24


def _is_held(c: float, held_out: float | None) -> bool:
    return held_out is not None and bool(np.isclose(c, held_out))


def budget_colors(budgets: list[float]) -> dict[float, str]:
    """One colour per FLOP budget, in increasing order along the sequential ramp."""
    return {c: ramp(i / max(1, len(budgets) - 1)) for i, c in enumerate(budgets)}


def _budget_key(c: float) -> str:
    return f"budget-{c:.6g}"


def _nd_law(fit: Fit | None) -> bool:
    """True when the fit's law is a function of N and D alone (IsoFLOP curves and plans make sense)."""
    if fit is None:
        return False
    law = fit.law_
    return bool(law.n_input and law.d_input and set(law.inputs) == {law.n_input, law.d_input})


def law_predict(fit: Fit, df: pd.DataFrame) -> np.ndarray | None:
    """The fit's prediction at every row of ``df`` (derived inputs computed), or None when the table
    lacks the law's inputs."""
    law = fit.law_
    try:
        t = law.derive(df) if law.derive is not None else df
        x = {c: t[c].to_numpy(dtype=float) for c in law.inputs}
    except (KeyError, ValueError, TypeError, DataError):
        return None
    with np.errstate(all="ignore"):
        return np.asarray(law.predict(fit.params, x), dtype=float)


def _curve(fit: Fit, n: np.ndarray, d: np.ndarray, seed: int) -> pd.DataFrame | None:
    law = fit.law_
    try:
        return predict(fit, pd.DataFrame({law.n_input: n, law.d_input: d}), seed=seed)
    except (DataError, ParameterError):
        return None


def _point_tip(row: Mapping[str, Any], held: bool, extra: Mapping[str, Any] | None = None) -> list[tuple[str, Any]]:
    n, d = row.get("N"), row.get("D")
    tip: list[tuple[str, Any]] = [("run", str(row.get("run", "-")))]
    if "branch" in row and int(row.get("branch") or 0) > 0:
        tip.append(("branch", int(row["branch"])))
    tip += [("N", n), ("D (tokens)", d),
            ("C = 6ND (FLOPs)", 6.0 * float(n) * float(d) if n is not None and d is not None else None),
            ("loss", row.get("loss")), ("budget (FLOPs)", row.get("budget_flops")),
            ("held out", "yes" if held else "no")]
    tip += list((extra or {}).items())
    return [(k, v) for k, v in tip if v is not None and not (isinstance(v, float) and math.isnan(v))]


def isoflop_chart(runs: pd.DataFrame, fit: Fit | None, *, held_out: float | None = None,
                  held_rows: pd.Series | None = None, held_predictions: Mapping[tuple[float, float], float] | None = None,
                  seed: int = 0) -> Chart:
    """Final loss against N, one series per FLOP budget, with the fitted law along each IsoFLOP line
    (``D = C/(6N)``, C the geometric mean of ``6 N D`` over the budget's runs), its prediction band
    and its compute-optimal N (star). Held-out points (of budget ``held_out``, or ``held_rows`` True)
    are hollow and labelled with their error in %: against ``held_predictions`` (the back-test's
    prediction, keyed by :func:`nd_key`) where it has them, else against ``fit``."""
    ch = Chart("IsoFLOP profiles" + (f" and the fitted {fit.law} law" if fit is not None else ""),
               "N (parameters)", "final eval loss (nats/token)", xlog=True)
    budgets = sorted(float(c) for c in runs["budget_flops"].unique())
    colors = budget_colors(budgets)
    draw_fit = _nd_law(fit)
    for c in budgets:
        sub = runs[np.isclose(runs["budget_flops"], c)].sort_values("N")
        held = [_is_held(c, held_out) or (held_rows is not None and bool(held_rows.loc[i])) for i in sub.index]
        key = ch.add_series(_budget_key(c), f"C = {fmt(c, 3)} FLOPs" + (" (held out)" if held and all(held) else ""),
                            colors[c])
        pred = law_predict(fit, sub) if fit is not None else None
        if held_predictions:
            base = pred if pred is not None else np.full(len(sub), np.nan)
            pred = np.array([held_predictions.get(nd_key(r["N"], r["D"]), q) if h else q
                             for (_, r), q, h in zip(sub.iterrows(), base, held)], dtype=float)
        tips = []
        for i, (_, row) in enumerate(sub.iterrows()):
            extra = {}
            if pred is not None and math.isfinite(pred[i]):
                extra = {"fit predicts": pred[i], "error %": 100 * (pred[i] - row["loss"]) / row["loss"]}
            tips.append(_point_tip(row, held[i], extra))
        ch.scatter(sub["N"].tolist(), sub["loss"].tolist(), series=key, tips=tips, hollow=held)
        if pred is not None:
            for (_, row), p, h in zip(sub.iterrows(), pred, held):
                if h and math.isfinite(p):
                    ch.label(float(row["N"]), float(row["loss"]), f"{100 * (p - row['loss']) / row['loss']:+.1f}%",
                             series=key)
        if draw_fit and fit is not None and "D" in sub and len(sub):
            law = fit.law_
            c_law = float(np.exp(np.mean(np.log(6.0 * sub["N"] * sub["D"]))))
            n = np.geomspace(sub["N"].min() / 1.5, sub["N"].max() * 1.5, 60)
            cur = _curve(fit, n, c_law / (6 * n), seed)
            if cur is not None:
                if cur["lo"].notna().all():
                    ch.band(n.tolist(), cur["lo"].tolist(), cur["hi"].tolist(), series=key)
                ch.line(n.tolist(), cur["prediction"].tolist(), series=key)
            n_opt, d_opt = optimum(law, fit.params, c_law)
            if math.isfinite(n_opt) and n_opt > 0:
                lo_opt = float(law.predict(fit.params, {law.n_input or "N": np.array([n_opt]),
                                                        law.d_input or "D": np.array([d_opt])})[0])
                ch.scatter([n_opt], [lo_opt], series=key, marker="star", size=4.0, tips=[[
                    ("compute-optimal (fit)", f"C = 6ND = {fmt(c_law)} FLOPs"), ("N", n_opt), ("D (tokens)", d_opt),
                    ("predicted loss", lo_opt)]])
    return ch


def loss_curve_chart(points: pd.DataFrame, *, x: str = "tokens") -> Chart | None:
    """Eval loss against tokens seen for every run (log-log), cooldown branches dashed; one legend
    entry per run (per budget above :data:`MAX_RUN_LEGEND` runs), coloured by budget."""
    if points is None or points.empty or x not in points or "loss" not in points:
        return None
    pts = points[np.isfinite(points["loss"].astype(float)) & (points[x].astype(float) > 0)]
    ch = Chart(f"loss curves ({pts['run'].nunique()} runs)", f"{x} seen", "eval loss (nats/token)",
               xlog=True, ylog=True)
    has_budget = "budget_flops" in pts
    budgets = sorted(float(c) for c in pts["budget_flops"].unique()) if has_budget else []
    colors = budget_colors(budgets)
    per_run = pts["run"].nunique() <= MAX_RUN_LEGEND
    for i, (run, g) in enumerate(pts.groupby("run", sort=False)):
        main = g[g["branch"] == 0] if "branch" in g else g
        budget = float((main if len(main) else g)["budget_flops"].iloc[-1]) if has_budget else float("nan")
        if per_run:       # a merged ladder's runs share the top budget: one colour per run
            key = ch.add_series(f"run-{run}", str(run), PALETTE[i % len(PALETTE)])
        else:
            color = colors.get(budget, ramp(i / max(1, pts["run"].nunique() - 1)))
            key = ch.add_series(_budget_key(budget), f"C = {fmt(budget, 3)} FLOPs", color)
        branches = sorted(g["branch"].unique()) if "branch" in g else [0]
        for b in branches:
            line = g[g["branch"] == b].sort_values(x) if "branch" in g else g.sort_values(x)
            if b > 0 and len(main):     # a branch leaves its main line at the step before its own first point
                before = main[main[x] < line[x].min()].tail(1)
                line = pd.concat([before, line])
            ch.line(line[x].tolist(), line["loss"].tolist(), series=key, dash="4 3" if b > 0 else None,
                    width=1.2)
            own = g[g["branch"] == b].sort_values(x) if "branch" in g else line
            idx = np.unique(np.linspace(0, len(own) - 1, min(len(own), MAX_CURVE_MARKERS)).round().astype(int))
            sel = own.iloc[idx]
            tips = [[(k, v) for k, v in (("run", str(run)), ("branch", int(r.get("branch", 0))),
                                         ("step", r.get("step")), ("tokens", r[x]), ("loss", r["loss"]),
                                         ("N", r.get("N")), ("budget (FLOPs)", r.get("budget_flops")))
                     if v is not None] for _, r in sel.iterrows()]
            ch.scatter(sel[x].tolist(), sel["loss"].tolist(), series=key, tips=tips, size=2.6)
    return ch


def nd_key(n: Any, d: Any) -> tuple[float, float]:
    """A point's (N, D) to 6 significant digits: how a back-test's point is matched to its run."""
    return float(f"{float(n):.6g}"), float(f"{float(d):.6g}")


def _run_names(runs: pd.DataFrame) -> dict[tuple[float, float], str]:
    if not {"run", "N", "D"} <= set(runs):
        return {}
    return {nd_key(n, d): str(r) for r, n, d in zip(runs["run"], runs["N"], runs["D"])}


def backtest_chart(per_point: list[dict[str, Any]], runs: pd.DataFrame | None = None) -> Chart:
    """Predicted against measured loss of the held-out points, with their prediction intervals and the
    line ``predicted = measured``; each point labelled with its error (predicted - measured) in %."""
    ch = Chart("back-test on held-out runs: predicted against measured", "measured loss", "predicted loss")
    names = _run_names(runs) if runs is not None else {}
    key = ch.add_series("held-out", "held-out runs", "#d55e00")
    diag = ch.add_series("diagonal", "predicted = measured", "#777", legend=False)
    act = [p["actual"] for p in per_point]
    pred = [p["predicted"] for p in per_point]
    lo_all = min(act + pred)
    hi_all = max(act + pred)
    for p in per_point:
        if p.get("interval") is not None:
            ch.errorbar(p["actual"], p["interval"][0], p["interval"][1], series=key)
    lim = [lo_all - 0.02 * (hi_all - lo_all + 1e-9), hi_all + 0.02 * (hi_all - lo_all + 1e-9)]
    ch.line(lim, lim, series=diag, dash="5 4", width=1.0)
    tips = []
    for p in per_point:
        inp = p.get("inputs", {})
        err = 100 * (p["predicted"] - p["actual"]) / p["actual"]
        run = names.get(nd_key(inp.get("N", 0), inp.get("D", 0)))
        tip: list[tuple[str, Any]] = [("run", run)] if run else []
        tip += [(k, v) for k, v in inp.items()]
        if "N" in inp and "D" in inp:
            tip.append(("C = 6ND (FLOPs)", 6 * inp["N"] * inp["D"]))
        tip += [("measured", p["actual"]), ("predicted", p["predicted"]), ("error %", err), ("held out", "yes")]
        if p.get("interval") is not None:
            tip.append(("interval", f"[{fmt(p['interval'][0])}, {fmt(p['interval'][1])}]"))
            tip.append(("inside interval", "yes" if p.get("inside") else "no"))
        tips.append(tip)
        ch.label(p["actual"], p["predicted"], f"{err:+.1f}%", series=key)
    ch.scatter(act, pred, series=key, tips=tips)
    return ch


def residual_chart(runs: pd.DataFrame, fit: Fit, *, held_out: float | None = None,
                   held_rows: pd.Series | None = None) -> Chart | None:
    """The fit's relative residual ``(measured - predicted) / predicted`` in % against N, one series per
    budget; held-out points (``held_rows`` True, or of budget ``held_out``) hollow."""
    pred = law_predict(fit, runs)
    if pred is None or "N" not in runs:
        return None
    ch = Chart(f"residuals of the {fit.law} fit", "N (parameters)", "(measured - predicted) / predicted (%)",
               xlog=True)
    zero = ch.add_series("zero", "zero", "#777", legend=False)
    has_budget = "budget_flops" in runs
    budgets = sorted(float(c) for c in runs["budget_flops"].unique()) if has_budget else [float("nan")]
    colors = budget_colors(budgets)
    for c in budgets:
        mask = np.isclose(runs["budget_flops"].to_numpy(dtype=float), c) if has_budget else np.ones(len(runs), bool)
        sub = runs[mask]
        p = pred[mask]
        res = 100 * (sub["loss"].to_numpy(dtype=float) - p) / p
        held = [(_is_held(c, held_out) or bool(held_rows.loc[i])) if held_rows is not None else _is_held(c, held_out)
                for i in sub.index]
        label = f"C = {fmt(c, 3)} FLOPs" if has_budget else "runs"
        suffix = " (held out)" if held and all(held) else ""
        key = ch.add_series(_budget_key(c), label + suffix, colors.get(c, "#0072b2"))
        tips = [_point_tip(r, h, {"fit predicts": q, "residual %": e})
                for (_, r), h, q, e in zip(sub.iterrows(), held, p, res)]
        ch.scatter(sub["N"].tolist(), res.tolist(), series=key, tips=tips, hollow=held)
    xs = [v for v in ch.x.values if v > 0]
    if xs:
        ch.line([min(xs), max(xs)], [0.0, 0.0], series=zero, width=1.0, dash="3 3")
    return ch


def frontier_charts(runs: pd.DataFrame, fit: Fit, plan: Mapping[str, Any], *, seed: int = 0) -> list[Chart]:
    """The compute frontier of the fit: the compute-optimal loss and N against C (= 6 N D, FLOPs) with
    their prediction band (loss) and the bootstrap optima (N), the measured runs, and the plan with its
    interval. Empty when the fit's law is not a function of N and D alone."""
    if not _nd_law(fit) or not {"N", "D", "loss"} <= set(runs):
        return []
    law = fit.law_
    c_runs = (6.0 * runs["N"] * runs["D"]).to_numpy(dtype=float)
    c_plan = float(plan["flops"])
    cs = np.geomspace(min(float(np.nanmin(c_runs)), c_plan) / 2, max(float(np.nanmax(c_runs)), c_plan) * 3, 50)
    opt = np.array([optimum(law, fit.params, float(c)) for c in cs])
    ok = np.isfinite(opt[:, 0]) & (opt[:, 0] > 0)
    cs, opt = cs[ok], opt[ok]
    cur = _curve(fit, opt[:, 0], opt[:, 1], seed)
    loss_ch = Chart("the compute frontier and the plan", "C = 6ND (FLOPs)", "loss (nats/token)", xlog=True)
    n_ch = Chart("compute-optimal N and the plan", "C = 6ND (FLOPs)", "N (parameters)", xlog=True, ylog=True)
    band = "no band" if cur is None or not cur["lo"].notna().all() else f"{100 * fit.ci_level:g}% prediction band"
    fr = loss_ch.add_series("frontier", f"fitted frontier ({band})", "#0072b2")
    n_ch.add_series("frontier", "compute-optimal N of the fit", "#0072b2")
    if cur is not None:
        if cur["lo"].notna().all():
            loss_ch.band(cs.tolist(), cur["lo"].tolist(), cur["hi"].tolist(), series=fr)
        loss_ch.line(cs.tolist(), cur["prediction"].tolist(), series=fr)
    n_ch.line(cs.tolist(), opt[:, 0].tolist(), series="frontier")
    rk = loss_ch.add_series("runs", "measured runs", "#888")
    n_ch.add_series("runs", "measured runs", "#888")
    tips = [_point_tip(r, False) for _, r in runs.iterrows()]
    loss_ch.scatter(c_runs.tolist(), runs["loss"].tolist(), series=rk, tips=tips, size=3.0)
    n_ch.scatter(c_runs.tolist(), runs["N"].tolist(), series="runs", tips=tips, size=3.0)
    pk = loss_ch.add_series("plan", "the plan (with its interval)", "#d55e00")
    n_ch.add_series("plan", "the plan (with its N interval)", "#d55e00")
    iv, n_iv = plan.get("interval"), plan.get("N_interval")
    if iv is not None:
        loss_ch.errorbar(c_plan, iv[0], iv[1], series=pk)
    if n_iv is not None:
        n_ch.errorbar(c_plan, n_iv[0], n_iv[1], series="plan")
    tip: list[tuple[str, Any]] = [("plan at C (FLOPs)", c_plan), ("N", plan["N"]), ("D (tokens)", plan["D"]),
                                  ("tokens per parameter", plan.get("tokens_per_param")), ("loss", plan["loss"])]
    if iv is not None:
        tip.append(("loss interval", f"[{fmt(iv[0])}, {fmt(iv[1])}]"))
    if n_iv is not None:
        tip.append(("N interval", f"[{fmt(n_iv[0])}, {fmt(n_iv[1])}]"))
    if plan.get("D_interval") is not None:
        tip.append(("D interval", f"[{fmt(plan['D_interval'][0])}, {fmt(plan['D_interval'][1])}]"))
    if plan.get("data_constrained"):
        tip.append(("data-constrained", "yes"))
    loss_ch.scatter([c_plan], [plan["loss"]], series=pk, marker="star", tips=[tip])
    loss_ch.label(c_plan, plan["loss"], "plan", series=pk, dx=8, dy=14)
    n_ch.scatter([c_plan], [plan["N"]], series="plan", marker="star", tips=[tip])
    un = plan.get("unconstrained")
    if plan.get("data_constrained") and un:
        uk = loss_ch.add_series("unconstrained", "unconstrained optimum (needs more data)", "#cc79a7")
        n_ch.add_series("unconstrained", "unconstrained optimum (needs more data)", "#cc79a7")
        utip = [("unconstrained optimum at C (FLOPs)", c_plan), ("N", un["N"]), ("D (tokens)", un["D"]),
                ("loss", un["loss"])]
        loss_ch.scatter([c_plan], [un["loss"]], series=uk, marker="diamond", tips=[utip])
        n_ch.scatter([c_plan], [un["N"]], series="unconstrained", marker="diamond", tips=[utip])
    return [loss_ch, n_ch]


_MARKERS = ("circle", "square", "triangle", "diamond", "star")
_DASHES = (None, "6 3", "2 3", "8 3 2 3")


def sparse_loss_chart(runs: pd.DataFrame, fit: Fit | None = None, *, n_col: str = "N_nonzero", d_col: str = "D",
                      s_col: str = "S") -> Chart:
    """Final loss against non-zero parameters, one series (colour) per sparsity S and one marker per
    data size D; with a ``sparse`` fit, its law along N for each (S, D) at the group's median D
    (Frantar et al. 2023, Eq. 1)."""
    ch = Chart("loss against non-zero parameters" + (" and the fitted sparse law" if fit is not None else ""),
               f"{n_col} (non-zero non-embedding parameters)", "final eval loss (nats/token)", xlog=True)
    sparsities = sorted(float(v) for v in runs[s_col].unique())
    d_key = np.round(np.log(runs[d_col].astype(float)), 2)      # data sizes equal to 1% are one group
    keys = sorted(d_key.unique())
    n_all = runs[n_col].astype(float)
    for i, s in enumerate(sparsities):
        key = ch.add_series(f"S-{s:g}", f"S = {s:g}", ramp(0.85 * i / max(1, len(sparsities) - 1)))
        for j, k in enumerate(keys):
            sub = runs[np.isclose(runs[s_col].astype(float), s) & (d_key == k)].sort_values(n_col)
            if sub.empty:
                continue
            d = float(sub[d_col].median())
            tips = [[(a, b) for a, b in (("run", str(r.get("run", "-"))), ("S", r[s_col]), (n_col, r[n_col]),
                                         ("D", r[d_col]), ("loss", r["loss"])) if b is not None]
                    for _, r in sub.iterrows()]
            ch.scatter(sub[n_col].tolist(), sub["loss"].tolist(), series=key, tips=tips,
                       marker=_MARKERS[j % len(_MARKERS)])
            if fit is not None and fit.law == "sparse":
                n = np.geomspace(float(n_all.min()) / 1.3, float(n_all.max()) * 1.3, 60)
                x = {"S": np.full_like(n, s), "N_nonzero": n, "D": np.full_like(n, d)}
                ch.line(n.tolist(), fit.law_.predict(fit.params, x).tolist(), series=key,
                        dash=_DASHES[j % len(_DASHES)], width=1.2)
    return ch


def sparsity_contour_chart(drawn: Mapping[str, Any], point: tuple[float, float] | None = None) -> Chart:
    """The optimal sparsity S_opt over non-zero parameters N (x) and training FLOPs C (y) as filled
    cells (``drawn``: :func:`.contour.contour_grid`'s dict), the plan's point starred; hover a cell for
    its N, C, S_opt, loss and tokens."""
    n = [float(v) for v in drawn["N_nonzero"]]
    c = [float(v) for v in drawn["flops"]]
    S = np.asarray(drawn["S_opt"], dtype=float)
    L = np.asarray(drawn.get("loss", S * np.nan), dtype=float)
    T = np.asarray(drawn.get("tokens", S * np.nan), dtype=float)
    ch = Chart("optimal sparsity S_opt(N, C)", "non-zero parameters N", "training FLOPs C", xlog=True, ylog=True)
    key = ch.add_series("S_opt", "S_opt (dark: dense, 0; light: sparse, 1)", ramp(0.5))
    colors = [[ramp(float(v)) if math.isfinite(v) else "#ddd" for v in row] for row in S]
    tips = [[[("N_nonzero", n[j]), ("C (FLOPs)", c[i]), ("S_opt", float(S[i, j])), ("loss", float(L[i, j])),
              ("tokens", float(T[i, j]))] for j in range(len(n))] for i in range(len(c))]
    ch.cells(cell_edges(n), cell_edges(c), colors, series=key, tips=tips)
    if point is not None:
        pk = ch.add_series("plan", "the plan", "#d55e00")
        ch.scatter([point[0]], [point[1]], series=pk, marker="star",
                   tips=[[("plan: N_nonzero", point[0]), ("C (FLOPs)", point[1])]])
    return ch
