"""The critical batch size from batch sweeps: steps to a target loss, the McCandlish hyperbola per
target, and B_crit against the loss (Kaplan) and against tokens (Zhang et al., Bergsma et al.).

1. :func:`steps_to_target`: for every run (one curve) the steps at which its loss first reaches a
   target, interpolating the loss linearly in ``ln step`` between the two logged points around the
   crossing (Kaplan et al. 2020 read steps-to-loss off smoothed curves the same way).
2. :func:`fit_critical_batch`: per model (``N_nonembed``) and target, the law ``critical_batch``
   ``S(B) = S_min (1 + B_crit/B)`` (McCandlish et al. 2018, Kaplan Eq. 5.4; ``E_min = B_crit S_min``)
   fitted with a bootstrap over the batch sizes; beside it Zhang et al.'s definition, the batch at which
   the tokens to the target exceed those of the smallest batch by 20% (``S B = 1.2 S_0 B_0``, read off
   the measured steps, interpolated in ``ln B``; the hyperbola gives ``B = 1.2 B_0 + 0.2 B_crit``), and
   the measured gradient noise scale ``B_simple`` (McCandlish et al.: B_crit ~ B_simple to a small
   factor) at the crossing, where the runs record it.
3. Then ``ln B_crit`` against ``ln L`` by least squares: ``B_crit = B_* / L^(1/alpha_B)`` (Kaplan Eq.
   1.4) and against the tokens at the critical batch ``D_crit = 2 E_min`` (``B_crit = k D^b``: Zhang et
   al. 2024, Bergsma et al. 2025), with bootstrap intervals over the targets' replicates. A hyperbola
   whose B_crit or S_min ends at a bound, with S_min below one step or B_crit beyond 10x the largest
   batch (steps that do not bend with the batch: the sweep does not measure it) is marked
   ``degenerate`` and left out of these trends, with a warning.

Units: batch, B_crit, E_min, D in tokens; S in optimizer steps; L in nats per token.

References: McCandlish, Kaplan, Amodei et al. 2018, arXiv 1812.06162; Kaplan et al. 2020, arXiv
2001.08361; Zhang et al. 2024, arXiv 2410.21676; Bergsma et al. 2025, arXiv 2505.13738.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError, invalid
from .core import LawFit

__all__ = ["critical_batch_study", "steps_to_target", "zhang_batch"]

#: Zhang et al. 2024: the critical batch is where steps exceed linear scaling by this fraction
ZHANG_EXCESS = 0.2
#: a hyperbola with B_crit beyond this multiple of the sweep's largest batch (or S_min below one step) is
#: not measured by the sweep: it is marked degenerate and left out of the trends
DEGENERATE = 10.0
#: bootstrap replicates of each hyperbola fit
BOOTSTRAP = 200


def steps_to_target(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per run that reaches ``target``: run, N_nonembed, batch, steps (interpolated in ln step),
    tokens (``steps x batch``) and, where the curve has it, ``B_simple`` interpolated the same way.

    ``curves`` is a store table of every point (``Store.to_table(points="all")``; main lines only are
    used). No run reaching the target is a DataError naming it and the lowest loss reached."""
    if not (isinstance(target, (int, float)) and np.isfinite(target) and target > 0):
        raise ParameterError(invalid("The target loss", target, "a positive number (nats/token)"))
    need = [c for c in ("run", "step", "loss", "batch", "N_nonembed") if c not in curves.columns]
    if need:
        raise DataError(f"the curves lack column(s) {need}; steps to a target loss need run, step, loss, "
                        "batch and N_nonembed (a store's points).")
    df = curves[(curves.get("branch", 0) == 0) & (curves["step"] > 0)].dropna(subset=["loss"])
    rows = []
    for run, g in df.groupby("run", sort=False):
        g = g.sort_values("step")
        loss = g["loss"].to_numpy(dtype=float)
        hit = np.flatnonzero(loss <= target)
        if not hit.size:
            continue
        i = int(hit[0])
        ls = np.log(g["step"].to_numpy(dtype=float))
        if i == 0:
            w, j = 0.0, 0
        else:
            j = i - 1
            w = (loss[j] - target) / (loss[j] - loss[i])
        lnS = ls[j] + w * (ls[i] - ls[j])
        row = {"run": run, "N_nonembed": float(g["N_nonembed"].iloc[0]), "batch": float(g["batch"].iloc[0]),
               "steps": float(np.exp(lnS))}
        row["tokens"] = row["steps"] * row["batch"]
        if "B_simple" in g.columns:
            b = pd.to_numeric(g["B_simple"], errors="coerce").to_numpy(dtype=float)
            row["B_simple"] = float(b[j] + w * (b[i] - b[j])) if np.isfinite(b[[i, j]]).all() else np.nan
        rows.append(row)
    if not rows:
        lowest = float(df["loss"].min()) if len(df) else float("nan")
        raise DataError(f"no run reaches the target loss {target:g}: the lowest loss reached is {lowest:.6g}.")
    return pd.DataFrame(rows)


def zhang_batch(batch: Any, steps: Any, excess: float = ZHANG_EXCESS) -> float | None:
    """Zhang et al.'s critical batch from measured steps: the batch at which ``S B / (S_0 B_0)`` (the
    tokens to the target against those of the smallest batch) first reaches ``1 + excess``, interpolated
    linearly in ``ln B``; None when no measured batch gets there."""
    order = np.argsort(np.asarray(batch, dtype=float))
    B = np.asarray(batch, dtype=float)[order]
    S = np.asarray(steps, dtype=float)[order]
    ratio = S * B / (S[0] * B[0])
    over = np.flatnonzero(ratio >= 1.0 + excess)
    if not over.size or over[0] == 0:
        return None
    k = int(over[0])
    w = (1.0 + excess - ratio[k - 1]) / (ratio[k] - ratio[k - 1])
    return float(np.exp(np.log(B[k - 1]) + w * (np.log(B[k]) - np.log(B[k - 1]))))


def _hyperbola(sub: pd.DataFrame, seed: int, ci_level: float) -> dict[str, Any]:
    """The critical_batch fit of one model's steps to one target, with its intervals."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = LawFit("critical_batch", bootstrap=BOOTSTRAP, seed=seed, ci_level=ci_level,
                     source="steps to target").fit(sub[["batch", "steps"]]).result_
    draws = fit.draws()
    E_min = fit.params["B_crit"] * fit.params["S_min"]
    E_ci = None
    if draws is not None and len(draws) > 1:
        e = (draws["B_crit"] * draws["S_min"]).to_numpy()
        q = [(1 - ci_level) / 2, (1 + ci_level) / 2]
        E_ci = [float(np.quantile(e, q[0])), float(np.quantile(e, q[1]))]
    B0 = float(sub["batch"].min())
    return {"S_min": fit.params["S_min"], "S_min_interval": fit.ci.get("S_min"),
            "B_crit": fit.params["B_crit"], "B_crit_interval": fit.ci.get("B_crit"),
            "E_min": E_min, "E_min_interval": E_ci, "D_crit": 2.0 * E_min,
            "B_zhang_hyperbola": (1.0 + ZHANG_EXCESS) * B0 + ZHANG_EXCESS * fit.params["B_crit"],
            "warnings": list(fit.warnings) + [str(w.message) for w in caught if str(w.message) not in fit.warnings],
            "_draws": None if draws is None else draws[["S_min", "B_crit"]].to_numpy()}


def _power_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least squares ``ln y = a + b ln x``: (exp a, b)."""
    b, a = np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)
    return float(np.exp(a)), float(b)


def _trend(xs: Any, ys: Any, draws: list[Any], ci_level: float, which: int) -> dict[str, Any] | None:
    """``y = k x^b`` across targets, intervals from the per-target bootstrap replicates (paired by index)."""
    if len(xs) < 2:
        return None
    k, b = _power_fit(xs, ys)
    out: dict[str, Any] = {"scale": k, "exponent": b, "scale_interval": None, "exponent_interval": None}
    if all(d is not None for d in draws):
        n = min(len(d) for d in draws)
        ks, bs = [], []
        for r in range(n):
            bc = [d[r, 1] for d in draws]
            x = xs if which == 0 else [2.0 * d[r, 0] * d[r, 1] for d in draws]
            kk, bb = _power_fit(x, bc)
            ks.append(kk)
            bs.append(bb)
        q = [(1 - ci_level) / 2, (1 + ci_level) / 2]
        out["scale_interval"] = [float(np.quantile(ks, q[0])), float(np.quantile(ks, q[1]))]
        out["exponent_interval"] = [float(np.quantile(bs, q[0])), float(np.quantile(bs, q[1]))]
    return out


def critical_batch_study(curves: pd.DataFrame, targets: Sequence[float], *, seed: int = 0,
                         ci_level: float = 0.95) -> dict[str, Any]:
    """Steps to every target, the hyperbola per model and target, and the trends of B_crit (module docstring).

    Returns ``{"targets": [...], "fits": [{"N_nonembed", "target", "n_runs", "runs": [...], "S_min",
    "B_crit", "E_min", "D_crit", intervals, "B_zhang", "B_zhang_hyperbola", "B_simple"}...],
    "vs_loss": {N: {"B_star", "alpha_B", ...}}, "vs_tokens": {N: {"scale", "exponent"}},
    "pooled": {"vs_loss", "vs_tokens"}, "warnings": [...]}``.
    """
    if not targets:
        raise ParameterError(invalid("The target losses", list(targets), "at least one positive number"))
    fits: list[dict[str, Any]] = []
    warns: list[str] = []
    for t in targets:
        st = steps_to_target(curves, float(t))
        for n, sub in st.groupby("N_nonembed", sort=True):
            sub = sub.sort_values("batch")
            if sub["batch"].nunique() < 3:
                warns.append(f"target {t:g}, N_nonembed {n:.6g}: {sub['batch'].nunique()} batch size(s) reach it; "
                             "the hyperbola needs at least 3; skipped.")
                continue
            h = _hyperbola(sub, seed, ci_level)
            h["degenerate"] = bool(any("bound" in w and ("'B_crit'" in w or "'S_min'" in w) for w in h["warnings"])
                                   or h["S_min"] < 1.0 or h["B_crit"] > DEGENERATE * sub["batch"].max())
            if h["degenerate"]:
                warns.append(f"target {t:g}, N_nonembed {n:.6g}: the hyperbola is degenerate (S_min {h['S_min']:.3g} "
                             f"steps, B_crit {h['B_crit']:.3g} tokens, beyond {DEGENERATE:g}x the largest batch: the "
                             "steps do not bend with the batch); left out of the B_crit trends.")
            h.update({"N_nonembed": float(n), "target": float(t), "n_runs": len(sub),
                      "runs": sub[["run", "batch", "steps", "tokens"]].to_dict("records"),
                      "B_zhang": zhang_batch(sub["batch"], sub["steps"])})
            if "B_simple" in sub.columns and sub["B_simple"].notna().any():
                h["B_simple"] = float(np.nanmedian(sub["B_simple"]))
            fits.append(h)
    if not fits:
        raise DataError("no (model, target) pair is reached by runs at 3 or more batch sizes: "
                        + " ".join(warns))
    vs_loss: dict[str, Any] = {}
    vs_tokens: dict[str, Any] = {}
    good = [f for f in fits if not f["degenerate"]]
    for n in sorted({f["N_nonembed"] for f in good}):
        fs = [f for f in good if f["N_nonembed"] == n]
        key = f"{n:.6g}"
        tl = _trend([f["target"] for f in fs], [f["B_crit"] for f in fs], [f["_draws"] for f in fs], ci_level, 0)
        if tl is not None:
            vs_loss[key] = {"B_star": tl["scale"], "B_star_interval": tl["scale_interval"],
                            "alpha_B": -1.0 / tl["exponent"] if tl["exponent"] else None,
                            "inverse_alpha_B": -tl["exponent"],
                            "inverse_alpha_B_interval": None if tl["exponent_interval"] is None else
                            [-tl["exponent_interval"][1], -tl["exponent_interval"][0]]}
        tt = _trend([f["D_crit"] for f in fs], [f["B_crit"] for f in fs], [f["_draws"] for f in fs], ci_level, 1)
        if tt is not None:
            vs_tokens[key] = {"scale": tt["scale"], "exponent": tt["exponent"],
                              "exponent_interval": tt["exponent_interval"]}
        bc = [f["B_crit"] for f in sorted(fs, key=lambda f: -f["target"])]
        if any(b2 < b1 for b1, b2 in zip(bc, bc[1:])):
            warns.append(f"N_nonembed {n:.6g}: the fitted B_crit does not grow monotonically as the target falls.")
    pooled = {}
    if len(good) >= 2:
        k, b = _power_fit([f["target"] for f in good], [f["B_crit"] for f in good])
        pooled["vs_loss"] = {"B_star": k, "alpha_B": -1.0 / b if b else None, "inverse_alpha_B": -b}
        k, b = _power_fit([f["D_crit"] for f in good], [f["B_crit"] for f in good])
        pooled["vs_tokens"] = {"scale": k, "exponent": b}
    for f in fits:
        f.pop("_draws")
    return {"targets": [float(t) for t in targets], "fits": fits, "vs_loss": vs_loss, "vs_tokens": vs_tokens,
            "pooled": pooled, "warnings": warns}
