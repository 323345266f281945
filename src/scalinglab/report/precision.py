"""The report's precision section (issue 12): loss against number format at each model size (with Sun et
al.'s law when the report's fit is of law ``precision``), post-training-quantisation degradation
``loss_ptq_<setting> - loss`` against tokens (main line and cooldown branches apart), and the
flush-to-zero (underflow) telemetry per format role against tokens.

The columns read are the run table's (``Store.to_table``): ``format``, ``operands``, ``e_bits``,
``m_bits``, ``P``, ``block`` (added when some run quantises), the point metrics ``loss_ptq_<setting>``
(``PTQFeature``) and ``underflow_<w|a|g>`` / ``saturate_<w|a|g>`` (``PrecisionFeature``).

Reference: Sun et al. 2025, "Scaling Laws for Floating-Point Quantization Training", arXiv 2501.02423.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..fit.result import Fit
from .figures import law_predict
from .html import Section
from .svg import PALETTE, Chart, fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["format_chart", "format_table", "has_precision", "precision_sections", "ptq_chart", "ptq_settings",
           "underflow_chart"]

#: format roles of the telemetry (``PrecisionFeature``'s suffixes)
ROLES = {"w": "weights", "a": "activations", "g": "gradients"}
#: points along N of the fitted law's line per format
LAW_POINTS = 40
_MARKS = ("circle", "square", "diamond", "triangle", "star")


def has_precision(final: pd.DataFrame) -> bool:
    """Whether the runs have number-format columns (some run quantised)."""
    return {"format", "loss"} <= set(final) and final["format"].notna().any()


def _n_col(df: pd.DataFrame) -> str:
    return "N_nonembed" if "N_nonembed" in df and df["N_nonembed"].notna().all() else "N"


def _format_label(row: Any) -> str:
    """A run's format as a legend label: the format, its operands and its block size when given."""
    name = str(row["format"])
    ops = row.get("operands")
    if isinstance(ops, str) and ops:
        name += f" ({ops})"
    blk = row.get("block")
    if name != "fp32" and isinstance(blk, (int, float)) and math.isfinite(blk):
        name += f" block {fmt(blk)}"
    return name


def format_chart(final: pd.DataFrame, fit: Fit | None = None) -> Chart:
    """Final eval loss against non-embedding parameters, one series per format (operands, block), one
    marker per token count; with a ``precision`` fit, its line per format at the format's largest D."""
    n = _n_col(final)
    df = final.assign(_label=[_format_label(r) for _, r in final.iterrows()])
    labels = sorted(df["_label"].unique(), key=lambda s: (s != "fp32", s))
    ds = sorted(float(d) for d in df["D"].unique()) if "D" in df else []
    ch = Chart("loss against number format at each model size", f"{n} (parameters)", "eval loss (nats/token)",
               xlog=True)
    law = fit is not None and fit.law == "precision"
    for i, lab in enumerate(labels):
        g = df[df["_label"] == lab]
        key = ch.add_series(f"fmt-{i}", lab, PALETTE[i % len(PALETTE)])
        for j, d in enumerate(ds or [float("nan")]):
            sub = g[g["D"] == d] if ds else g
            if sub.empty:
                continue
            sub = sub.sort_values(n)
            pred = law_predict(fit, sub) if law and fit is not None else None
            tips = [[("run", str(r.get("run", "-"))), ("format", r["format"]), ("operands", r.get("operands") or "-"),
                     ("E", r.get("e_bits")), ("M", r.get("m_bits")), ("P (bits)", r.get("P")),
                     ("block", r.get("block")), (f"{n}", r[n]), ("D (tokens)", r.get("D")), ("loss", r["loss"])]
                    + ([("law's loss", float(pred[k]))] if pred is not None else [])
                    for k, (_, r) in enumerate(sub.iterrows())]
            ch.scatter(sub[n].tolist(), sub["loss"].tolist(), series=key, marker=_MARKS[j % len(_MARKS)], tips=tips)
            if not law:
                ch.line(sub[n].tolist(), sub["loss"].tolist(), series=key, width=1.0, dash="2 3")
        if law and fit is not None and len(g):
            d = float(g["D"].max())
            top = g[g["D"] == d].iloc[0]
            ns = np.geomspace(float(df[n].min()) / 1.3, float(df[n].max()) * 1.3, LAW_POINTS)
            grid = pd.DataFrame({"N": ns, "N_nonembed": ns, "D": d, "e_bits": float(top["e_bits"]),
                                 "m_bits": float(top["m_bits"]), "block": float(top["block"])})
            y = law_predict(fit, grid)
            if y is not None and np.isfinite(y).any():
                ch.line(ns.tolist(), y.tolist(), series=key)
    return ch


def format_table(final: pd.DataFrame) -> pd.DataFrame:
    """Loss per format (rows) and model size (columns), at each run's largest D."""
    n = _n_col(final)
    df = final.assign(format_=[_format_label(r) for _, r in final.iterrows()])
    if "D" in df:
        df = df[df["D"] == df.groupby(["format_", n])["D"].transform("max")]
    t = df.pivot_table(index="format_", columns=n, values="loss", aggfunc="min")
    t.columns = [f"{n} = {fmt(c)}" for c in t.columns]
    return t.reset_index(names="format")


def ptq_settings(points: pd.DataFrame) -> list[str]:
    """The PTQ settings with a ``loss_ptq_<setting>`` column holding values."""
    return [c[len("loss_ptq_"):] for c in points.columns
            if c.startswith("loss_ptq_") and pd.to_numeric(points[c], errors="coerce").notna().any()]


def ptq_chart(points: pd.DataFrame, settings: list[str]) -> Chart:
    """Degradation after post-training quantisation, ``loss_ptq_<setting> - loss`` (nats/token), against
    the tokens of the point; one series per setting, one marker per model size, cooldown-branch ends
    hollow (annealed) and main-line points filled."""
    n = _n_col(points)
    x = "tokens" if "tokens" in points else "D"
    ch = Chart("loss increase after post-training quantisation", f"{x} seen", "loss_ptq - loss (nats/token)",
               xlog=True)
    sizes = sorted(float(v) for v in points[n].dropna().unique())
    for i, s in enumerate(settings):
        key = ch.add_series(f"ptq-{s}", s, PALETTE[i % len(PALETTE)])
        col = f"loss_ptq_{s}"
        sub = points[pd.to_numeric(points[col], errors="coerce").notna() & points["loss"].notna()]
        for j, size in enumerate(sizes):
            g = sub[sub[n] == size].sort_values(x)
            if g.empty:
                continue
            dl = (g[col].astype(float) - g["loss"].astype(float)).to_numpy()
            branch = (g["branch"] if "branch" in g else pd.Series(0, index=g.index)).astype(int).to_numpy()
            main = branch == 0
            if main.any():
                ch.line(g[x][main].tolist(), dl[main].tolist(), series=key, width=1.0)
            tips = [[("setting", s), ("run", str(r.get("run", "-"))), ("branch", int(b)), ("step", r.get("step")),
                     (n, r[n]), (f"{x}", r[x]), ("loss", r["loss"]), ("loss_ptq", r[col]), ("loss_ptq - loss", v)]
                    for (_, r), b, v in zip(g.iterrows(), branch, dl)]
            ch.scatter(g[x].tolist(), dl.tolist(), series=key, marker=_MARKS[j % len(_MARKS)],
                       hollow=[bool(b) for b in branch], tips=tips)
    return ch


def underflow_chart(points: pd.DataFrame) -> Chart | None:
    """The fraction of values flushed to zero by the quantiser, per role (weights, activations,
    gradients: one series each), against tokens; one line per run; None without telemetry."""
    cols = [(k, f"underflow_{k}") for k in ROLES if f"underflow_{k}" in points
            and pd.to_numeric(points[f"underflow_{k}"], errors="coerce").notna().any()]
    if not cols:
        return None
    x = "tokens" if "tokens" in points else "D"
    ch = Chart("underflow: fraction of values flushed to zero, per role", f"{x} seen", "fraction flushed to zero",
               xlog=True)
    for i, (k, col) in enumerate(cols):
        key = ch.add_series(f"uf-{k}", ROLES[k], PALETTE[i % len(PALETTE)])
        sub = points[pd.to_numeric(points[col], errors="coerce").notna()]
        for run, g in sub.groupby("run", sort=False):
            g = g.sort_values(x)
            main = g[g["branch"] == 0] if "branch" in g else g
            if len(main) > 1:
                ch.line(main[x].tolist(), main[col].astype(float).tolist(), series=key, width=1.0)
            sat = f"saturate_{k}"
            tips = [[("run", str(run)), ("role", ROLES[k]), ("format", r.get("format", "-")),
                     ("branch", int(r.get("branch", 0))), ("step", r.get("step")), (x, r[x]),
                     ("underflow", r[col]), ("saturated", r.get(sat, "-"))] for _, r in g.iterrows()]
            ch.scatter(g[x].tolist(), g[col].astype(float).tolist(), series=key, size=3.0, tips=tips)
    return ch


def precision_sections(final: pd.DataFrame, points: pd.DataFrame | None, fit: Fit | None) -> list[Section]:
    """The precision section (none when the runs have no format columns and the points no PTQ or
    telemetry metrics)."""
    figs: list[Chart | Figure] = []
    tables: list[pd.DataFrame] = []
    text = []
    if has_precision(final):
        figs.append(format_chart(final, fit))
        tables.append(format_table(final))
        text.append("Top: final eval loss of every run against its non-embedding parameters, one colour per "
                    "number format (its quantised operands and block size), one marker per token count"
                    + ("; lines: Sun et al.'s law fitted here, at each format's largest D." if fit is not None
                       and fit.law == "precision" else "; dotted lines join the runs of one format and D.")
                    + " The table gives the loss per format and size at the largest D.")
    pts = points if points is not None else pd.DataFrame()
    settings = ptq_settings(pts) if len(pts) and "loss" in pts else []
    if settings:
        figs.append(ptq_chart(pts, settings))
        text.append("Post-training quantisation: the eval loss after round-to-nearest quantisation of the hidden "
                    "linear weights minus the point's eval loss, at every evaluation, one colour per setting and "
                    "one marker per model size; filled: main-line points (lines), hollow: ends of cooldown "
                    "branches (learning rate decayed) at the same tokens.")
    uf = underflow_chart(pts) if len(pts) else None
    if uf is not None:
        figs.append(uf)
        text.append("Underflow: the fraction of the quantised values of each role (non-zero before the quantiser, "
                    "zero after), on the last training step before each point; one line per run.")
    if not figs:
        return []
    return [Section("Precision: number formats and quantisation", figures=figs, tables=tables,
                    text=" ".join(text), anchor="precision")]
