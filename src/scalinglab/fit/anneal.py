"""The annealing law (Tissue et al. 2024) on whole runs: exact schedule areas from run configs, and
whole predicted curves under any schedule the trainer knows.

A stored run's learning rate at every update is known exactly: it is the trainer's own schedule
(:func:`scalinglab.ladder.schedules.from_config`, pure Python) evaluated on the run config. So S1 and
S2 (:func:`scalinglab.laws.anneal.curve_areas`, whose warmup convention applies everywhere) are
derived per run and per point with no interpolation. A point reported after ``s`` updates has seen
``schedule(0) .. schedule(s - 1)``; a cooldown branch's point has seen the main line up to the
branch's start, then the branch's decay (``schedules.branches``).

Reference: Tissue, Wang, Wang et al. 2024, "Scaling Law with Learning Rate Annealing", arXiv 2408.11029.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, ParameterError, ScalingLabError, invalid
from ..ladder import schedules as _schedules
from ..laws.anneal import DECAY, curve_areas
from ..runconfig import RunConfig, ScheduleConfig
from ._optimize import Array
from .predict import predict
from .result import Fit

__all__ = ["add_store_areas", "lr_curve", "predict_curve", "schedule_curve"]


def lr_curve(config: RunConfig, branch: int = 0) -> Array:
    """The learning rate of every update of a run's main line (``branch = 0``, length ``config.steps``)
    or of its k-th cooldown branch (length its end step), exactly as the trainer sets it."""
    steps = config.steps
    main = _schedules.from_config(config.schedule, config.lr, steps)
    if branch == 0:
        return np.array([main(s) for s in range(steps)], dtype=float)
    brs = _schedules.branches(config.schedule, config.lr, steps)
    if not 1 <= branch <= len(brs):
        raise ConfigError(invalid(f"The branch of run {config.name!r}", branch, f"0 .. {len(brs)}"))
    br = brs[branch - 1]
    return np.array([main(s) if s < br.start_step else br.schedule(s) for s in range(br.end_step)], dtype=float)


def add_store_areas(df: pd.DataFrame, configs: Mapping[str, RunConfig], decay: float = DECAY) -> pd.DataFrame:
    """Add ``S1``, ``S2`` and ``warmup`` (the run's warmup, steps) to a store table (``Store.to_table``)
    from each row's run config: the exact areas at the row's step on its own line (main or branch).
    A row whose line its config cannot rebuild (no such branch) gets NaN, which an anneal fit refuses."""
    S1 = np.full(len(df), np.nan)
    S2 = np.full(len(df), np.nan)
    warm = np.full(len(df), np.nan)
    if df.empty:
        return df.assign(S1=S1, S2=S2, warmup=warm)
    keys = pd.DataFrame({"run": df["run"].to_numpy(), "branch": df["branch"].to_numpy().astype(int)})
    for (run, branch), pos in keys.groupby(["run", "branch"], sort=False).indices.items():
        cfg = configs.get(run)
        try:
            eta = lr_curve(cfg, branch) if cfg is not None else None
        except ScalingLabError:   # a line its config cannot rebuild (a branch it does not have): no areas
            eta = None
        if eta is None:
            continue
        a1, a2 = curve_areas(eta, decay)
        idx = np.clip(df["step"].to_numpy()[pos].astype(int), 1, len(eta)) - 1
        S1[pos], S2[pos] = a1[idx], a2[idx]
        warm[pos] = _schedules.warmup_of(cfg.schedule, cfg.steps)
    return df.assign(S1=S1, S2=S2, warmup=warm)


def schedule_curve(name: str, steps: int, lr: float, *, warmup_steps: int = 0, warmup_frac: float = 0.0,
                   decay_frac: float = 0.2, decay_shape: str = "linear", final_lr_frac: float = 0.1) -> Array:
    """The learning rate of each of ``steps`` updates of a schedule the trainer knows, built through
    the trainer's own :func:`~scalinglab.ladder.schedules.from_config` (so any schedule it learns, this
    reads). Every default is the run config's (``final_lr_frac`` 0.1: the cosine and WSD floor)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParameterError(invalid("The 'steps' of the schedule", steps, "a positive integer"))
    cfg = ScheduleConfig(name=name, warmup_frac=warmup_frac, warmup_steps=warmup_steps, final_lr_frac=final_lr_frac,
                         decay_frac=decay_frac, decay_shape=decay_shape)
    sched = _schedules.from_config(cfg, lr, int(steps))
    return np.array([sched(s) for s in range(int(steps))], dtype=float)


def predict_curve(fit: Fit, lr: Any, *, stride: int = 1, seed: int = 0, decay: float = DECAY) -> pd.DataFrame:
    """The anneal fit's predicted loss after every ``stride``-th update (and the last) of the learning
    rate curve ``lr`` (one value per update), with the prediction and mean intervals of
    :func:`scalinglab.fit.predict.predict`. Columns: step, lr, S1, S2, prediction, lo, hi, mean_lo, mean_hi."""
    if fit.law != "anneal":
        raise ParameterError(invalid("The law of the fit", fit.law, "'anneal' (a schedule is read only by the "
                                     "learning-rate annealing law)"))
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ParameterError(invalid("The 'stride'", stride, "a positive integer"))
    eta = np.asarray(lr, dtype=float)
    S1, S2 = curve_areas(eta, decay)
    steps = np.unique(np.r_[np.arange(stride, len(eta) + 1, stride), len(eta)])
    pts = pd.DataFrame({"S1": S1[steps - 1], "S2": S2[steps - 1]})
    out = predict(fit, pts, seed=seed)
    out.insert(0, "lr", eta[steps - 1])
    out.insert(0, "step", steps)
    return out
