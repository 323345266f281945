"""Su et al.'s recipe end to end on stored runs: ``kaplan_steps`` fitted on S_min, then the minimum
loss, the steps and tokens to a target loss at any batch, and the loss trajectory at a batch size.

Su et al. 2024 ("Unraveling the Mystery of Scaling Laws: Part I", arXiv 2403.06563) estimate every
constant of Kaplan et al.'s formulas from small runs (LAWS.md section 2):

1. ``B_crit(L) = B_* / L^(1/alpha_B)`` from batch sweeps (:func:`scalinglab.fit.critical.critical_batch_study`);
2. every curve point after warmup turned into ``S_min = S / (1 + B_crit(L)/B)`` (Kaplan Eq. 5.4), and
   ``L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S`` fitted on them (:func:`fit_su`; N is
   ``N_nonembed``);
3. the predictions of :mod:`scalinglab.plan.steps` (loss floor, steps to a loss, trajectory), and
   :func:`su_backtest` scores the trajectory of a run held out of both fits against its curve.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fit.core import LawFit
from ..fit.result import Fit
from ..laws.kaplan import s_min
from .steps import loss_floor, loss_trajectory, steps_to_loss

__all__ = ["fit_su", "su_backtest"]


def _after_warmup(curves: pd.DataFrame) -> pd.DataFrame:
    df = curves[curves.get("branch", 0) == 0]
    if "warmup" in df.columns:
        df = df[df["step"] > df["warmup"]]
    return df.dropna(subset=["loss"])


def fit_su(curves: pd.DataFrame, B_star: float, alpha_B: float, **lawfit: Any) -> Fit:
    """``kaplan_steps`` fitted on every main-line point after warmup (column ``warmup``, steps) of
    ``curves`` (a store table of all points), with ``steps = S_min`` from the critical-batch law."""
    df = _after_warmup(curves)
    if df.empty:
        raise DataError("no curve point after warmup to fit kaplan_steps on.")
    L = df["loss"].to_numpy(dtype=float)
    rows = pd.DataFrame({"N": df["N_nonembed"].to_numpy(dtype=float), "loss": L,
                         "steps": s_min(df["step"].to_numpy(dtype=float), df["batch"].to_numpy(dtype=float),
                                        B_star / L ** (1.0 / alpha_B))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LawFit("kaplan_steps", source="Su et al. recipe: S_min of stored curves", **lawfit).fit(rows).result_
    fit.data.update({"B_star": B_star, "alpha_B": alpha_B})
    return fit


def su_backtest(curves: pd.DataFrame, run: str, fit: Fit, B_star: float, alpha_B: float,
                target: float | None = None) -> dict[str, Any]:
    """The trajectory of ``run`` (held out of the fits) predicted at its batch and N, against its
    curve after warmup; with the loss floor of its N, and (``target``) the steps and tokens to reach
    ``target`` at its batch and at the limits."""
    df = _after_warmup(curves)
    h = df[df["run"] == run].sort_values("step")
    if h.empty:
        raise DataError(f"run {run!r} has no curve point after warmup to back-test against.")
    N, B = float(h["N_nonembed"].iloc[0]), float(h["batch"].iloc[0])
    p: Mapping[str, float] = fit.params
    pred = loss_trajectory(h["step"].to_numpy(dtype=float), N, B, params=p, B_star=B_star, alpha_B=alpha_B)
    meas = h["loss"].to_numpy(dtype=float)
    rel = np.abs(pred / meas - 1.0)
    out: dict[str, Any] = {
        "run": run, "N_nonembed": N, "batch": B, "points": len(h), "mean_abs_rel_error": float(rel.mean()),
        "max_abs_rel_error": float(rel.max()), "loss_floor": float(loss_floor(N, p)),
        "curve": [{"step": int(s), "loss": float(m), "predicted": float(q)}
                  for s, m, q in zip(h["step"], meas, pred)]}
    if target is not None:
        st = steps_to_loss(target, N, batch=B, params=p, B_star=B_star, alpha_B=alpha_B)
        out["to_target"] = {"target": target, "S_min": float(st.S_min), "E_min": float(st.E_min),
                            "B_crit": float(st.B_crit), "steps": float(np.asarray(st.S)),
                            "tokens": float(np.asarray(st.E))}
    return out
