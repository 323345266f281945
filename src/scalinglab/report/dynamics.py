"""The report's training-dynamics section (issue 13): predicted against measured loss curves of an
anneal-law fit (Tissue et al. 2024), the critical batch from batch sweeps (McCandlish et al. 2018:
steps to a target against batch with the fitted hyperbola, B_crit against the target loss with the
measured B_simple beside it) and the gradient noise scale B_simple per point against tokens.

What the store must hold for each part:

* anneal curves: two or more done runs of one shape (``N_nonembed`` and batch) whose schedules differ
  (:func:`anneal_group`), or an anneal FIT.json given by the user (``report --anneal-fit``);
* critical batch: one ``N_nonembed`` with main lines at three or more batch sizes (:func:`sweep_targets`
  picks three target losses every run of the sweep reaches, unless the user gives them);
* B_simple: the point metric ``B_simple`` (run config ``noise_scale = true``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import laws
from ..errors import ScalingLabError
from ..fit.anneal import curve_inputs, fit_decay, fit_decay_profile, lr_curve, predict_curve
from ..fit.critical import critical_batch_study
from ..fit.result import Fit
from ..runconfig import RunConfig
from .figures import MAX_CURVE_MARKERS
from .html import Section
from .svg import PALETTE, Chart, fmt, ramp

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["anneal_chart", "anneal_group", "b_simple_chart", "critical_batch_charts", "dynamics_sections",
           "fit_anneal_group", "sweep_targets"]

#: predicted points per anneal curve line (the band and the dashed line)
CURVE_POINTS = 60
#: target losses picked for a batch sweep: fractions of the way from the highest loss every run
#: reaches (0) to the highest loss after warmup (1)
TARGET_FRACTIONS = (0.05, 0.25, 0.5)


def _main(points: pd.DataFrame) -> pd.DataFrame:
    return points[points["branch"] == 0] if "branch" in points else points


def anneal_group(points: pd.DataFrame, configs: Mapping[str, RunConfig]) -> list[str]:
    """The runs of the shape (``N_nonembed``, batch) with the most distinct schedules, when it has two
    or more (``RunConfig.schedule`` differs: name, warmup, decay, branches); else ``[]``."""
    if points.empty or not {"run", "N_nonembed", "batch"} <= set(points):
        return []
    runs = points.drop_duplicates("run")
    best: list[str] = []
    best_n = 1
    for _, g in runs.groupby(["N_nonembed", "batch"], sort=True):
        names = [str(r) for r in g["run"] if str(r) in configs]
        n = len({repr(configs[r].schedule) for r in names})
        if n > best_n or (n == best_n and n > 1 and len(names) > len(best)):
            best, best_n = names, n
    return best


def fit_anneal_group(points: pd.DataFrame, configs: Mapping[str, RunConfig], runs: Sequence[str], *,
                     bootstrap: int, seed: int) -> Fit:
    """``fit --store --law anneal --where 'step > warmup'`` on the points of ``runs`` (lambda profiled)."""
    from ..fit.anneal import add_store_areas

    rows = points[points["run"].isin(list(runs))]
    rows = add_store_areas(rows, configs)
    rows = rows[rows["step"] > rows["warmup"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_decay_profile(rows, configs, bootstrap=bootstrap, seed=seed,
                                 source=f"report: {len(runs)} runs of one shape, points after warmup")


def anneal_chart(points: pd.DataFrame, configs: Mapping[str, RunConfig], fit: Fit, runs: Sequence[str], *,
                 seed: int = 0) -> tuple[Chart, pd.DataFrame]:
    """Measured loss (points) and the anneal fit's predicted curve (dashed, with its prediction band) of
    every line (main line and cooldown branches) of ``runs``, against steps, after the warmup (the
    rows such a fit sees; a branch's curve from the step its learning rate leaves the main line's);
    and per line the mean and final absolute relative error (a table)."""
    ch = Chart(f"anneal law ({fit.law}): predicted against measured loss", "step", "eval loss (nats/token)",
               xlog=True)
    lam = fit_decay(fit)
    law = fit.law_
    rows = []
    k = 0
    for run in runs:
        cfg = configs[run]
        g = points[points["run"] == run]
        for b in sorted(int(v) for v in (g["branch"].unique() if "branch" in g else [0])):
            try:
                eta = lr_curve(cfg, b)
            except ScalingLabError:
                continue
            warm = _warmup(cfg)
            line = (g[g["branch"] == b] if "branch" in g else g).sort_values("step")
            line = line[np.isfinite(line["loss"].astype(float)) & (line["step"] > warm)]
            if line.empty:
                continue
            label = run if b == 0 else f"{run} branch {b}"
            key = ch.add_series(f"anneal-{k}", label, PALETTE[k % len(PALETTE)])
            k += 1
            stride = max(1, len(eta) // CURVE_POINTS)
            pred = predict_curve(fit, eta, stride=stride, seed=seed, decay=lam)
            start = warm
            if b > 0:    # the branch's own part: from the step its learning rate leaves the main line's
                main_eta = lr_curve(cfg, 0)[:len(eta)]
                apart = np.flatnonzero(eta != main_eta)
                start = max(warm, int(apart[0]) if apart.size else int(line["step"].min()) - stride)
            pred = pred[pred["step"] >= start]
            if pred[["lo", "hi"]].notna().all().all():
                ch.band(pred["step"].tolist(), pred["lo"].tolist(), pred["hi"].tolist(), series=key)
            ch.line(pred["step"].tolist(), pred["prediction"].tolist(), series=key, dash="5 3")
            idx = np.clip(line["step"].to_numpy().astype(int), 1, len(eta)) - 1
            predicted = np.asarray(law.predict(fit.params, curve_inputs(fit.law, eta, idx + 1, lam)), dtype=float)
            measured = line["loss"].to_numpy(dtype=float)
            err = 100 * (predicted - measured) / measured
            tips = [[("run", run), ("branch", b), ("step", int(s)), ("lr", float(eta[i])), ("measured loss", m),
                     ("predicted loss", p), ("error %", e)]
                    for s, i, m, p, e in zip(line["step"], idx, measured, predicted, err)]
            ch.scatter(line["step"].tolist(), measured.tolist(), series=key, tips=tips, size=3.2)
            rows.append({"run": run, "branch": b, "schedule": cfg.schedule.name, "points": len(err),
                         "mean |error| % after warmup": float(np.mean(np.abs(err))), "final error %": float(err[-1])})
    return ch, pd.DataFrame(rows)


def _warmup(cfg: RunConfig) -> int:
    from ..ladder import schedules
    return int(schedules.warmup_of(cfg.schedule, cfg.steps))


def sweep_targets(points: pd.DataFrame, configs: Mapping[str, RunConfig] | None = None) -> list[float]:
    """Three target losses for the largest batch sweep (the ``N_nonembed`` with the most batch sizes,
    at least 3; else ``[]``): :data:`TARGET_FRACTIONS` of the way from the highest loss every run of
    the sweep reaches to the highest main-line loss after warmup."""
    main = _main(points)
    if main.empty or not {"N_nonembed", "batch", "loss", "run", "step"} <= set(main):
        return []
    main = main[np.isfinite(main["loss"].astype(float))]
    sizes = main.groupby("N_nonembed")["batch"].nunique()
    if sizes.empty or sizes.max() < 3:
        return []
    g = main[main["N_nonembed"] == sizes.idxmax()]
    if configs:
        warm = g["run"].map(lambda r: _warmup(configs[r]) if r in configs else 0)
        g = g[g["step"] > warm]
    if g.empty:
        return []
    floor = float(g.groupby("run")["loss"].min().max())      # every run of the sweep gets this low
    top = float(g["loss"].max())
    if not top > floor:
        return []
    return [float(f"{floor + f * (top - floor):.4g}") for f in TARGET_FRACTIONS]


def critical_batch_charts(study: Mapping[str, Any]) -> list[Chart | Figure]:
    """From :func:`scalinglab.fit.critical.critical_batch_study`'s result: steps to each target
    against batch with the fitted hyperbola ``S = S_min (1 + B_crit/B)``; and B_crit against the
    target loss (intervals, the Kaplan trend per N) with Zhang et al.'s 20% batch and the measured
    B_simple beside it where the runs have it."""
    fits = list(study["fits"])
    targets = sorted({f["target"] for f in fits}, reverse=True)
    tcol = {t: ramp(i / max(1, len(targets) - 1)) for i, t in enumerate(targets)}
    models = sorted({f["N_nonembed"] for f in fits})
    marks = ("circle", "square", "diamond", "triangle")
    steps = Chart("steps to the target loss against batch", "batch (tokens)", "optimizer steps to the target",
                  xlog=True, ylog=True)
    for f in fits:
        key = steps.add_series(f"t-{f['target']:g}", f"L = {fmt(f['target'])}", tcol[f["target"]])
        mk = marks[models.index(f["N_nonembed"]) % len(marks)]
        rs = f["runs"]
        steps.scatter([r["batch"] for r in rs], [r["steps"] for r in rs], series=key, marker=mk,
                      tips=[[("run", str(r["run"])), ("N_nonembed", f["N_nonembed"]), ("target loss", f["target"]),
                             ("batch (tokens)", r["batch"]), ("steps", r["steps"]), ("tokens", r["tokens"])]
                            for r in rs])
        b = np.geomspace(min(r["batch"] for r in rs) / 1.5, max(r["batch"] for r in rs) * 1.5, 40)
        steps.line(b.tolist(), (f["S_min"] * (1 + f["B_crit"] / b)).tolist(), series=key,
                   dash="5 3" if f.get("degenerate") else None)
    bc = Chart("critical batch against the target loss", "target loss (nats/token)", "batch (tokens)",
               xlog=True, ylog=True)
    for i, n in enumerate(models):
        fs = sorted([f for f in fits if f["N_nonembed"] == n], key=lambda f: f["target"])
        key = bc.add_series(f"bcrit-{i}", f"B_crit, N_nonembed {fmt(n)}", PALETTE[i % len(PALETTE)])
        for f in fs:
            iv = f.get("B_crit_interval")
            if iv is not None and all(np.isfinite(iv)):
                bc.errorbar(f["target"], iv[0], iv[1], series=key)
        bc.scatter([f["target"] for f in fs], [f["B_crit"] for f in fs], series=key,
                   hollow=[bool(f.get("degenerate")) for f in fs],
                   tips=[[("N_nonembed", n), ("target loss", f["target"]), ("B_crit (tokens)", f["B_crit"]),
                          ("B_crit interval", _iv(f.get("B_crit_interval"))), ("S_min (steps)", f["S_min"]),
                          ("E_min (tokens)", f["E_min"]), ("runs", f["n_runs"]),
                          ("degenerate", bool(f.get("degenerate")))] for f in fs])
        trend = study.get("vs_loss", {}).get(f"{n:.6g}")
        if trend and len(fs) > 1:
            L = np.geomspace(fs[0]["target"], fs[-1]["target"], 30)
            bc.line(L.tolist(), (trend["B_star"] / L ** trend["inverse_alpha_B"]).tolist(), series=key, dash="4 3")
        zs = [f for f in fs if f.get("B_zhang") is not None]
        if zs:
            zk = bc.add_series(f"zhang-{i}", f"Zhang 20% batch, N_nonembed {fmt(n)}", PALETTE[i % len(PALETTE)])
            bc.scatter([f["target"] for f in zs], [f["B_zhang"] for f in zs], series=zk, marker="triangle",
                       hollow=True, tips=[[("N_nonembed", n), ("target loss", f["target"]),
                                           ("B_zhang (tokens)", f["B_zhang"]), ("B_crit (tokens)", f["B_crit"])]
                                          for f in zs])
        ss = [f for f in fs if f.get("B_simple") is not None]
        if ss:
            sk = bc.add_series(f"bsimple-{i}", f"B_simple (measured), N_nonembed {fmt(n)}", PALETTE[(i + 5) % len(PALETTE)])
            bc.scatter([f["target"] for f in ss], [f["B_simple"] for f in ss], series=sk, marker="diamond",
                       tips=[[("N_nonembed", n), ("target loss", f["target"]),
                              ("B_simple (tokens)", f["B_simple"]), ("B_crit (tokens)", f["B_crit"]),
                              ("B_crit / B_simple", f["B_crit"] / f["B_simple"] if f["B_simple"] else float("nan"))]
                             for f in ss])
    return [steps, bc]


def _iv(v: Any) -> str:
    return "-" if not v else f"[{fmt(v[0])}, {fmt(v[1])}]"


def b_simple_chart(points: pd.DataFrame) -> Chart | None:
    """The measured gradient noise scale B_simple (tokens) of every point against tokens seen, one
    series per run (branches dashed; hover markers on at most ``figures.MAX_CURVE_MARKERS`` points
    per line, evenly spread); None when no point has it."""
    if "B_simple" not in points or "tokens" not in points:
        return None
    pts = points[np.isfinite(points["B_simple"].astype(float)) & (points["B_simple"].astype(float) > 0)
                 & (points["tokens"].astype(float) > 0)]
    if pts.empty:
        return None
    ch = Chart("gradient noise scale B_simple against tokens", "tokens seen", "B_simple (tokens)", xlog=True, ylog=True)
    for i, (run, g) in enumerate(pts.groupby("run", sort=False)):
        key = ch.add_series(f"bs-{run}", str(run), PALETTE[i % len(PALETTE)])
        for b, line in g.groupby("branch") if "branch" in g else [(0, g)]:
            line = line.sort_values("tokens")
            ch.line(line["tokens"].tolist(), line["B_simple"].tolist(), series=key, dash="4 3" if b else None,
                    width=1.2)
            idx = np.unique(np.linspace(0, len(line) - 1, min(len(line), MAX_CURVE_MARKERS)).round().astype(int))
            sel = line.iloc[idx]
            ch.scatter(sel["tokens"].tolist(), sel["B_simple"].tolist(), series=key, size=2.8,
                       tips=[[("run", str(run)), ("branch", int(b)), ("step", r["step"]), ("tokens", r["tokens"]),
                              ("B_simple (tokens)", r["B_simple"]), ("loss", r["loss"]),
                              ("batch (tokens)", r.get("batch"))] for _, r in sel.iterrows()])
    return ch


def dynamics_sections(points: pd.DataFrame, configs: Mapping[str, RunConfig], *, anneal_fit: Fit | None = None,
                      fit_anneal: bool = True, targets: Sequence[float] | None = None, bootstrap: int = 200,
                      seed: int = 0) -> tuple[list[Section], dict[str, Any]]:
    """The dynamics sections of a store's report, from every point of its done runs (``points``:
    ``Store.to_table(points="all", failed=False)`` with ``loss``) and the run configs; and what they
    computed (``{"anneal_fit": Fit, "critical_batch": dict}``) for the downloads.

    The anneal part uses ``anneal_fit`` when given, else fits the law on :func:`anneal_group`'s runs
    when ``fit_anneal``; the critical batch uses ``targets`` or :func:`sweep_targets`'s. A critical batch the
    given ``targets`` cannot have (no run reaches one, too few batch sizes) raises, as ``critical-batch``
    does; with targets picked from the sweep it is a warning of the section."""
    sections: list[Section] = []
    out: dict[str, Any] = {}
    runs = anneal_group(points, configs)
    if anneal_fit is not None and not runs:      # a given fit: the shape with the most runs
        runs = _largest_shape(points, configs)
    fit = anneal_fit
    if fit is None and runs and fit_anneal:
        fit = fit_anneal_group(points, configs, runs, bootstrap=bootstrap, seed=seed)
    if fit is not None and runs:
        ch, table = anneal_chart(points, configs, fit, runs, seed=seed)
        out["anneal_fit"] = fit
        params = ", ".join(f"{k} = {fmt(v)}" for k, v in fit.params.items())
        which = laws.get(fit.law).title        # the registered law's own title: every curve law, no list here
        lam = f"; lambda of S2 = {fmt(fit_decay(fit))}" if fit.law == "anneal" else ""
        sections.append(Section(
            f"Dynamics: whole loss curves ({'annealing' if fit.law == 'anneal' else 'multi-power'} law)",
            figures=[ch], tables=[table], anchor="anneal",
            warnings=[f"the {fit.law} fit: {w}" for w in fit.warnings],
            text=f"{which} {'as given' if anneal_fit is not None else 'fitted on the points after warmup of these runs'} "
                 f"({params}{lam}): dashed lines and bands are its predicted curve "
                 f"and {100 * fit.ci_level:g}% prediction interval along each run's exact learning rate (main lines and cooldown "
                 "branches, after warmup); points are the measured eval losses after warmup, each with its error (predicted - measured) in %."))
    tg = list(targets) if targets else sweep_targets(points, configs)
    if tg:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study = critical_batch_study(points, tg, seed=seed)
        except ScalingLabError as exc:
            if targets:    # the user's own targets (report --target-loss): their error, as critical-batch's
                raise
            sections.append(Section("Dynamics: critical batch", anchor="critical-batch",
                                    warnings=[f"no critical batch: {exc}"]))
        else:
            out["critical_batch"] = study
            keys = ["N_nonembed", "target", "n_runs", "S_min", "S_min_interval", "B_crit", "B_crit_interval",
                    "E_min", "B_zhang", "B_zhang_hyperbola", "B_simple", "degenerate"]
            table = pd.DataFrame([{k: _iv(f.get(k)) if k.endswith("interval") else f.get(k) for k in keys}
                                  for f in study["fits"]])
            trends = "; ".join(f"N_nonembed {n}: B_crit = {fmt(v['B_star'])} / L^{fmt(v['inverse_alpha_B'])}"
                               for n, v in study["vs_loss"].items())
            sections.append(Section(
                "Dynamics: critical batch", figures=critical_batch_charts(study), tables=[table],
                anchor="critical-batch", warnings=list(study["warnings"]),
                text=f"Target losses {', '.join(fmt(t) for t in tg)}{' (given)' if targets else ' (picked from the sweep: every run reaches them)'}. "
                     "Top: optimizer steps for each run to first reach each target (interpolated in ln step) against "
                     "its batch, with the fitted hyperbola S = S_min (1 + B_crit / B) (McCandlish et al. 2018; dashed: "
                     "degenerate, not measured by the sweep). Bottom: B_crit with its interval against the target; "
                     "dashed: B_* / L^(1/alpha_B) (Kaplan et al. 2020); triangles: Zhang et al.'s batch 20% above "
                     "linear scaling; diamonds: the measured B_simple at the crossings, where the runs have it."
                     + (f" Trend: {trends}." if trends else "")))
    bs = b_simple_chart(points)
    if bs is not None:
        sections.append(Section(
            "Dynamics: gradient noise scale", figures=[bs], anchor="noise-scale",
            text="B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, App. A; tokens), measured from the "
                 "micro-batch gradient norms with exponential moving averages, at every point of every run "
                 "with noise_scale = true, against tokens seen (branches dashed)."))
    return sections, out


def _largest_shape(points: pd.DataFrame, configs: Mapping[str, RunConfig]) -> list[str]:
    if points.empty or not {"run", "N_nonembed", "batch"} <= set(points):
        return [str(r) for r in points.get("run", pd.Series(dtype=str)).unique() if str(r) in configs]
    runs = points.drop_duplicates("run")
    sizes = runs.groupby(["N_nonembed", "batch"]).size()
    n, b = sizes.idxmax()
    return [str(r) for r in runs[(runs["N_nonembed"] == n) & (runs["batch"] == b)]["run"] if str(r) in configs]
