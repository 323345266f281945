"""Scaling law with learning-rate annealing (Tissue, Wang, Wang et al. 2024).

.. math:: L(s) = L_0 + A\\, S_1^{-\\alpha} - C\\, S_2

The loss at step s of one training run depends on the learning-rate schedule through two areas:

* the forward area ``S1(s) = sum_{i=1..s} eta_i`` (the area under the LR curve);
* the annealing area with momentum ``S2(s) = sum_{i=1..s} m_i``, ``m_i = lambda m_{i-1} + (eta_{i-1} - eta_i)``,
  i.e. ``S2(s) = sum_{i<=s} sum_{k<=i} (eta_{k-1} - eta_k) lambda^(i-k)``. The momentum (decay factor
  ``lambda``, typically 0.999) models the delay between an LR drop and the loss drop; as lambda -> 1,
  ``S2 -> sum_i (eta_0 - eta_i)``.

:func:`schedule_areas` computes both from the LR of every step, :func:`areas_for_points` from a table
of logged steps. Inputs of the law are the canonical columns ``S1`` and ``S2`` (LR x steps); L is
validation cross-entropy in nats per token. The law concerns one model and data set (no N): fit it on
one or two runs of a model (for example one constant-LR and one cosine run) and predict the loss curve
under any other schedule. Fitted with Huber (delta = 1e-3) on log loss over all logged steps, as the
reimplementation does.

Known limits (ICLR reviews of the paper): appending zero-LR steps keeps lowering the prediction (S2
grows), and scaling a whole schedule up always lowers it, so the law fails at very high LR.

Reference: Tissue, Wang, Wang et al. 2024, "Scaling Law with Learning Rate Annealing", arXiv 2408.11029.
The form is from the abstract; the S2 recursion (with lambda = 0.999 and warmup steps counted at the
peak LR) is from a third-party reimplementation that follows the official code (LAWS.md section 6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.signal import lfilter

from ..errors import DataError, ParameterError, invalid, row_label
from ._base import Array, Inputs, Law, Objective, Param, Params, register

if TYPE_CHECKING:  # `import scalinglab.laws` stays free of pandas; areas_for_points imports it when called
    import pandas as pd

#: the momentum decay factor lambda of S2 used by the reimplementation (LAWS.md section 6)
DECAY = 0.999


def schedule_areas(lr: Any, decay: float = DECAY, *, warmup_steps: int = 0) -> tuple[Array, Array]:
    """The forward area S1 and the annealing area S2 after each step of an LR schedule.

    Args:
        lr: the learning rate of steps 1..s, one value per step (a 1-D array).
        decay: the momentum factor lambda in [0, 1].
        warmup_steps: the first ``warmup_steps`` steps count at the peak LR ``max(lr)`` in both areas
            (the reimplementation's convention, so that the warmup ramp adds no negative annealing area).

    Returns:
        ``(S1, S2)``, arrays of length s: ``S1[j] = sum_{i<=j+1} eta_i`` and ``S2[j] = sum_{i<=j+1} m_i``
        with ``m_i = lambda m_{i-1} + (eta_{i-1} - eta_i)``, ``m_0 = 0`` and ``eta_0 = eta_1`` (nothing
        has been annealed before the first step, so a constant schedule has ``S2 = 0``).
    """
    eta = np.asarray(lr, dtype=float)
    if eta.ndim != 1 or eta.size == 0:
        raise ParameterError(invalid("The 'lr' argument of schedule_areas", f"shape {eta.shape}",
                                     "a non-empty 1-D array (one learning rate per step)"))
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        bad = eta[~(np.isfinite(eta) & (eta >= 0))][0]
        raise ParameterError(invalid("Every learning rate in 'lr'", float(bad), "a finite non-negative number"))
    if not (0.0 <= decay <= 1.0):
        raise ParameterError(invalid("The 'decay' parameter of schedule_areas", decay, "a float in [0, 1]"))
    if not (isinstance(warmup_steps, (int, np.integer)) and 0 <= warmup_steps <= eta.size):
        raise ParameterError(invalid("The 'warmup_steps' parameter of schedule_areas", warmup_steps,
                                     f"an integer in [0, {eta.size}]"))
    if warmup_steps:
        eta = eta.copy()
        eta[:warmup_steps] = eta.max()
    S1 = np.cumsum(eta)
    fall = -np.diff(eta, prepend=eta[0])      # eta_{i-1} - eta_i, 0 at the first step
    m = lfilter([1.0], [1.0, -decay], fall)   # m_i = lambda m_{i-1} + (eta_{i-1} - eta_i), m_0 = 0
    return S1, np.cumsum(m)


def areas_for_points(df: pd.DataFrame, decay: float = DECAY, *, warmup_steps: int = 0) -> pd.DataFrame:
    """Add the columns S1 and S2 to a table of logged points of one or more runs.

    ``df`` needs the columns ``run``, ``step`` (the optimizer step of each logged point, an integer
    >= 1) and ``lr`` (the learning rate *at* that step, not the peak). For each run the schedule is
    rebuilt on every integer step ``1..max(step)`` by **linear interpolation** of ``lr`` between the
    logged steps (held constant before the first logged step), and :func:`schedule_areas` gives S1 and
    S2 at each logged step. Log the LR densely around sharp changes (the end of warmup, the start of a
    WSD decay), since the interpolation cannot see what happens between two logged points.

    Returns a copy of ``df`` with ``S1`` and ``S2`` (rows in their original order).
    """
    missing = [c for c in ("run", "step", "lr") if c not in df.columns]
    if missing:
        raise DataError(f"the table lacks column(s) {missing} (columns present: {list(df.columns)}); "
                        "areas_for_points needs run, step and lr.")
    return _areas_by_run(df, lambda eta: schedule_areas(eta, decay, warmup_steps=warmup_steps))


def _areas_by_run(df: pd.DataFrame, areas: Any) -> pd.DataFrame:
    """``df`` with S1 and S2 at its logged points: per run, ``areas(eta)`` of the learning rate
    interpolated on every integer step (:func:`_interpolated`), read at each logged step."""
    import pandas as pd

    steps = pd.to_numeric(df["step"], errors="coerce").to_numpy(dtype=float)
    lrs = pd.to_numeric(df["lr"], errors="coerce").to_numpy(dtype=float)
    _check_steps_lrs(df, steps, lrs)
    S1 = np.empty(len(df))
    S2 = np.empty(len(df))
    for pos in df.groupby("run", sort=False).indices.values():
        _, eta = _interpolated(df, pos, steps, lrs)
        a1, a2 = areas(eta)
        idx = steps[pos].astype(int) - 1
        S1[pos], S2[pos] = a1[idx], a2[idx]
    return df.assign(S1=S1, S2=S2)


def lr_curves_of_points(df: pd.DataFrame) -> dict[str, tuple[Array, Array]]:
    """Per run of a ``run, step, lr`` table: the logged steps (int64, in the table's row order) and the
    learning rate on every update ``1..max(step)``, linear between logged steps and held before the first
    (the interpolation every ``run, step, lr`` file gets). Bad steps or rates: a one-line DataError."""
    import pandas as pd

    steps = pd.to_numeric(df["step"], errors="coerce").to_numpy(dtype=float)
    lrs = pd.to_numeric(df["lr"], errors="coerce").to_numpy(dtype=float)
    _check_steps_lrs(df, steps, lrs)
    out: dict[str, tuple[Array, Array]] = {}
    for run, pos in df.groupby("run", sort=False).indices.items():
        _, eta = _interpolated(df, pos, steps, lrs)
        out[str(run)] = (steps[pos].astype(np.int64), eta)
    return out


def curve_areas(lr: Any, decay: float = DECAY) -> tuple[Array, Array]:
    """S1 and S2 after each step of a whole learning-rate curve, under scalinglab's warmup convention.

    The convention (used for every run of a store, every ``run, step, lr`` file and every schedule
    ``predict`` is given): the *warmup* is the steps before the curve first reaches its maximum.

    * ``S1`` is the area actually traversed, warmup ramp included: ``S1(s) = sum_{i<=s} eta_i``.
    * ``S2`` counts annealing only: it is :func:`schedule_areas`'s S2 of the curve with the warmup
      steps held at the peak, so the rising ramp adds no (negative) annealing area and a constant
      schedule after warmup has ``S2 = 0``.

    This departs from the reimplementation's convention (warmup at the peak in S1 too, LAWS.md
    section 6) only in S1, by the half-ramp ``peak x warmup / 2``; it keeps S1 the area under the
    curve the optimizer really followed.
    """
    eta = np.asarray(lr, dtype=float)
    S1, _ = schedule_areas(eta, decay)          # validates lr and decay
    warmup = int(np.argmax(eta))                # first step at the maximum
    _, S2 = schedule_areas(eta, decay, warmup_steps=warmup)
    return S1, S2


def curve_areas_for_points(df: pd.DataFrame, decay: float = DECAY) -> pd.DataFrame:
    """S1 and S2 (:func:`curve_areas`) at the logged points of a ``run, step, lr`` table.

    As :func:`areas_for_points`: per run the learning rate is interpolated linearly between logged
    steps on every integer step ``1..max(step)`` (held before the first logged step); ``lr`` is the
    rate *at* each step. Returns a copy of ``df`` with ``S1`` and ``S2``."""
    missing = [c for c in ("run", "step", "lr") if c not in df.columns]
    if missing:
        raise DataError(f"the anneal law needs S1 and S2, or columns run, step and lr (the learning rate at "
                        f"each logged step) to derive them; the table lacks {missing} "
                        f"(columns present: {list(df.columns)}).")
    return _areas_by_run(df, lambda eta: curve_areas(eta, decay))


def _check_steps_lrs(df: pd.DataFrame, steps: Array, lrs: Array) -> None:
    bad = ~np.isfinite(steps) | (steps < 1) | (steps != np.round(steps))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(invalid(f"Column 'step' ({row_label(df, df.index[i])})", df["step"].iloc[i], "an integer >= 1"))
    bad = ~np.isfinite(lrs) | (lrs < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(invalid(f"Column 'lr' ({row_label(df, df.index[i])})", df["lr"].iloc[i], "a non-negative number"))


def _interpolated(df: pd.DataFrame, pos: Any, steps: Array, lrs: Array) -> tuple[Array, Array]:
    """The integer steps 1..max and the learning rate on them, linear between one run's logged steps."""
    st, lr = steps[pos], lrs[pos]
    order = np.argsort(st, kind="stable")
    st_sorted, lr_sorted = st[order], lr[order]
    if np.any(np.diff(st_sorted) == 0):
        dup = st_sorted[np.flatnonzero(np.diff(st_sorted) == 0)[0]]
        run = df["run"].iloc[pos[0]]
        raise DataError(f"run {run!r} logs step {int(dup)} twice; give one learning rate per step.")
    grid = np.arange(1, int(st_sorted[-1]) + 1, dtype=float)
    return grid, np.interp(grid, st_sorted, lr_sorted)


def derive_areas(df: pd.DataFrame) -> pd.DataFrame:
    """The law's ``derive``: a table that already has S1 and S2 is returned as is; otherwise they are
    derived from its ``run, step, lr`` columns (:func:`curve_areas_for_points`; ``run`` may be
    absent when the table holds one run)."""
    if "S1" in df.columns and "S2" in df.columns:
        return df
    if "run" not in df.columns and {"step", "lr"} <= set(df.columns):
        return curve_areas_for_points(df.assign(run="run")).drop(columns="run")
    return curve_areas_for_points(df)


def loss(p: Params, x: Inputs) -> Any:
    """L = L0 + A S1^(-alpha) - C S2 (nats/token); S1, S2 in LR x steps."""
    s1 = np.asarray(x["S1"], dtype=float)
    s2 = np.asarray(x["S2"], dtype=float)
    return p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["C"] * s2


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and its derivatives with respect to (L0, ln A, alpha, ln C)."""
    s1 = np.asarray(x["S1"], dtype=float)
    s2 = np.asarray(x["S2"], dtype=float)
    t1 = p["A"] * s1 ** (-p["alpha"])
    t2 = p["C"] * s2
    L = p["L0"] + t1 - t2
    inv = 1.0 / L
    J = np.empty(np.shape(L) + (4,))
    J[..., 0] = inv
    J[..., 1] = t1 * inv
    J[..., 2] = -t1 * np.log(s1) * inv
    J[..., 3] = -t2 * inv
    return np.log(L), J


ANNEAL = register(Law(
    name="anneal",
    formula=loss,
    log_jacobian=log_jacobian,
    params=(
        Param("L0", 0.0, 20.0, (0.5, 1.5, 3.0), doc="loss at infinite forward area (nats/token)"),
        Param("A", 0.0, 1e6, (-2.0, 0.0, 2.0), log=True, doc="forward-area term scale"),
        Param("alpha", 0.0, 5.0, (0.1, 0.3, 0.6, 1.0), doc="forward-area exponent"),
        Param("C", 0.0, 1e6, (-4.0, -2.0, 0.0, 2.0), log=True, doc="annealing-area coefficient (per LR x step)"),
    ),
    inputs=("S1", "S2"),
    derive=derive_areas,
    n_convention="none",
    title="Loss curve under learning-rate annealing (Tissue et al. 2024)",
    formula_text="L = L0 + A S1^-alpha - C S2; S1 = sum eta_i, S2 = sum m_i, m_i = lambda m_(i-1) + (eta_(i-1) - eta_i)",
    units="S1, S2: LR x steps (see anneal.schedule_areas, lambda = 0.999); L: nats/token",
    citation="Tissue et al. 2024, arXiv 2408.11029",
    objective=Objective("huber", 1e-3, "log"),
    grid_note="L0 in {0.5, 1.5, 3}; ln A in {-2, 0, 2}; alpha in {0.1, 0.3, 0.6, 1}; ln C in {-4, -2, 0, 2}",
))
