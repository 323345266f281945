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

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, ParameterError, ScalingLabError, invalid
from ..ladder import schedules as _schedules
from ..laws import multipower as _multipower
from ..laws.anneal import DECAY, curve_areas
from ..runconfig import RunConfig, ScheduleConfig
from ._optimize import Array
from .predict import predict
from .result import Fit

__all__ = ["CURVE_LAWS", "DECAYS", "add_store_areas", "curve_inputs", "fit_decay_profile", "fit_decay", "lr_curve", "predict_curve",
           "schedule_curve", "select_by_holdback", "store_curves"]

#: momentum factors lambda of S2 searched by :func:`fit_decay_profile`
DECAYS = (0.95, 0.98, 0.99, 0.995, 0.998, 0.999)
#: the laws that read a whole learning-rate curve (a schedule): the annealing law, the multi-power law and
#: the multi-power law with a warmup-area offset and that law with an early-transient term (the last three read
#: ``step`` and ``curve``)
CURVE_LAWS = ("anneal", "multipower", "multipower_offset", "multipower_transient")


def fit_decay(fit: Fit) -> float:
    """The momentum factor lambda a fit's S1 and S2 were computed with (``data["anneal_decay"]``,
    written by :func:`fit_decay_profile`; the reimplementation's 0.999 otherwise)."""
    v = fit.data.get("anneal_decay", DECAY) if isinstance(fit.data, dict) else DECAY
    return float(v) if isinstance(v, (int, float)) and 0.0 <= v <= 1.0 else DECAY


def fit_decay_profile(df: pd.DataFrame, configs: Mapping[str, RunConfig], decays: Any = DECAYS,
                      **lawfit: Any) -> Fit:
    """Fit the anneal law to store rows at every momentum factor lambda of ``decays`` and keep the
    lowest objective (a profile over lambda, which the law's S2 depends on non-linearly).

    The reimplementation's 0.999 (LAWS.md section 6) delays the loss drop by ~1000 steps: right for
    runs of tens of thousands of steps, too slow for short CPU runs. The chosen lambda is stored in
    ``fit.data["anneal_decay"]`` (and the objective of each in ``fit.data["anneal_decay_profile"]``),
    and :func:`predict_curve` uses it; a choice at the edge of the grid is a warning."""
    from .core import LawFit

    decays = [float(v) for v in decays]
    if not decays or not all(0.0 <= v <= 1.0 for v in decays):
        raise ParameterError(invalid("The momentum factors 'decays'", decays, "a non-empty list of numbers in [0, 1]"))
    rows = df.drop(columns=[c for c in ("S1", "S2") if c in df.columns])
    best: Fit | None = None
    best_lam = decays[0]
    profile: dict[str, float] = {}
    curves = store_curves(rows, configs)   # built once, not once per lambda
    for lam in decays:
        f = LawFit("anneal", **lawfit).fit(add_store_areas(rows, configs, decay=float(lam), curves=curves)).result_
        profile[f"{lam:g}"] = float(f.objective["value"])
        if best is None or f.objective["value"] < best.objective["value"]:
            best, best_lam = f, float(lam)
    if best is None:   # pragma: no cover  (decays is non-empty)
        raise ParameterError("no lambda was fitted.")
    best.data.update({"anneal_decay": best_lam, "anneal_decay_profile": profile})
    if best_lam in (min(decays), max(decays)) and len(decays) > 1:
        best.warnings.append(f"the momentum factor lambda = {best_lam:g} is at the edge of the searched grid "
                             f"{list(decays)}.")
    return best


def select_by_holdback(df: pd.DataFrame, configs: Mapping[str, RunConfig], *, run: str, split_steps: Any,
                       skips: Any = (1, 2, 4, 8), decays: Any = DECAYS, law: str = "anneal",
                       **lawfit: Any) -> dict[str, Any]:
    """Choose the fit window and lambda on the fit runs alone, by a held-back part of one of them.

    For every ``k`` of ``skips`` (the fit keeps each run's points after ``k x`` its warmup) and every
    ``lambda`` of ``decays``, and every ``split`` of ``split_steps``: fit the law on every row of
    ``df`` (main-line store rows, ``Store.to_table``) except ``run``'s points after ``split``, predict
    those held-back points and score the mean absolute relative error. The choice is the (k, lambda)
    with the lowest error averaged over the splits (ties: the smaller k, then the larger lambda).

    This exists because the law's own objective picks a window and a lambda that fit the seen curves
    and extrapolate worse: on tiny CPU runs the first hundreds of steps (loss falling from ln V) are not
    a power law in S1, and a lambda chosen by fit prefers slow annealing responses. Choosing on a
    held-back tail of a fitted run keeps the held-out runs of a benchmark out of the choice.

    ``law`` is a curve law (:data:`CURVE_LAWS`); the multi-power law has no lambda, so only the window
    is chosen for it (``decays`` is then ignored and reported as the fit's default 0.999).

    Returns ``{"skip": k, "decay": lambda, "error": mean error, "table": [{"skip", "decay", "split",
    "error", "final_error"}, ...]}`` (relative errors as fractions)."""
    from .core import LawFit

    skips = [float(k) for k in skips]
    if law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of select_by_holdback", law, f"one of {CURVE_LAWS}"))
    decays = [float(v) for v in decays] if law == "anneal" else [DECAY]
    splits = [int(s) for s in np.atleast_1d(split_steps)]
    if not skips or not all(k >= 0 for k in skips):
        raise ParameterError(invalid("The warmup multiples 'skips'", skips, "a non-empty list of numbers >= 0"))
    if not decays or not all(0.0 <= v <= 1.0 for v in decays):
        raise ParameterError(invalid("The momentum factors 'decays'", decays, "a non-empty list of numbers in [0, 1]"))
    if run not in set(df["run"]):
        raise ParameterError(invalid("The held-back run", repr(run), f"one of the table's runs {sorted(set(df['run']))}"))
    rows = df.drop(columns=[c for c in ("S1", "S2", "warmup") if c in df.columns])
    curves = store_curves(rows, configs)   # built once, not once per (skip, lambda)
    rows = add_store_areas(rows, configs, curves=curves)
    steps = rows["step"].to_numpy(dtype=float)
    mine = (rows["run"] == run).to_numpy()
    for sp in splits:
        n = int((mine & (steps > sp)).sum())
        if n == 0 or not (mine & (steps <= sp)).any():
            raise ParameterError(invalid("The split step", sp, f"a step inside run {run!r}'s logged steps "
                                         f"{int(steps[mine].min())}..{int(steps[mine].max())}"))
    table: list[dict[str, float]] = []
    for k in skips:
        for lam in decays:
            areas = add_store_areas(rows.drop(columns=["S1", "S2", "warmup"]), configs, decay=lam, curves=curves)
            after = steps > k * areas["warmup"].to_numpy(dtype=float)
            for sp in splits:
                back = mine & (steps > sp)
                f = LawFit(law, **lawfit).fit(areas[after & ~back]).result_
                pred = np.asarray(_central(f, areas[back]), dtype=float)
                rel = pred / areas.loc[back, "loss"].to_numpy(dtype=float) - 1.0
                last = int(np.argmax(steps[back]))
                table.append({"skip": k, "decay": lam, "split": float(sp), "error": float(np.mean(np.abs(rel))),
                              "final_error": float(rel[last])})
    scores = pd.DataFrame(table).groupby(["skip", "decay"], as_index=False)["error"].mean()
    scores = scores.sort_values(["error", "skip", "decay"], ascending=[True, True, False], kind="stable")
    best = scores.iloc[0]
    return {"skip": float(best["skip"]), "decay": float(best["decay"]), "error": float(best["error"]),
            "table": table}


def _central(fit: Fit, rows: pd.DataFrame) -> Any:
    """The fit's central prediction at rows carrying its law's inputs (S1, S2 or step, curve)."""
    from .. import laws as _laws

    law = _laws.get(fit.law)
    return law.predict(fit.params, {c: rows[c].to_numpy(dtype=float) for c in law.inputs})


def lr_curve(config: RunConfig, branch: int = 0, *, main_line: Array | None = None) -> Array:
    """The learning rate of every update of a run's main line (``branch = 0``, length ``config.steps``)
    or of its k-th cooldown branch (length its end step), exactly as the trainer sets it. ``main_line``:
    the run's main-line curve, already built (a branch then evaluates only its own decay)."""
    steps = config.steps
    main = _schedules.from_config(config.schedule, config.lr, steps)
    if branch == 0:
        return np.array([main(s) for s in range(steps)], dtype=float)
    brs = _schedules.branches(config.schedule, config.lr, steps)
    if not 1 <= branch <= len(brs):
        raise ConfigError(invalid(f"The branch of run {config.name!r}", branch, f"0 .. {len(brs)}"))
    br = brs[branch - 1]
    head = (np.asarray(main_line[:br.start_step], dtype=float) if main_line is not None
            else np.array([main(s) for s in range(br.start_step)], dtype=float))
    return np.concatenate([head, np.array([br.schedule(s) for s in range(br.start_step, br.end_step)], dtype=float)])


def store_curves(df: pd.DataFrame, configs: Mapping[str, RunConfig]) -> dict[tuple[str, int], Array | None]:
    """The learning-rate curve (:func:`lr_curve`) of every (run, branch) line of a store table, None for a
    line its config cannot rebuild (no such branch) or a run without a config. Each run's main line is built
    once and shared by its branches; pass the result to :func:`add_store_areas` to reuse it across calls
    (the decay profile builds the areas once per lambda)."""
    out: dict[tuple[str, int], Array | None] = {}
    if df.empty:
        return out
    keys = pd.DataFrame({"run": df["run"].to_numpy(), "branch": df["branch"].to_numpy().astype(int)})
    mains: dict[str, Array] = {}
    for run, branch in keys.drop_duplicates().itertuples(index=False):
        cfg = configs.get(run)
        eta: Array | None = None
        if cfg is not None:
            try:
                if run not in mains:
                    mains[run] = lr_curve(cfg, 0)
                eta = mains[run] if branch == 0 else lr_curve(cfg, int(branch), main_line=mains[run])
            except ScalingLabError:   # a line its config cannot rebuild (a branch it does not have)
                eta = None
        out[(str(run), int(branch))] = eta
    return out


def add_store_areas(df: pd.DataFrame, configs: Mapping[str, RunConfig], decay: float = DECAY,
                    curves: Mapping[tuple[str, int], Array | None] | None = None) -> pd.DataFrame:
    """Add ``S1``, ``S2``, ``warmup`` (the run's warmup, steps) and ``curve`` to a store table
    (``Store.to_table``) from each row's run config: the exact areas at the row's step on its own line
    (main or branch), and the key of that line's learning-rate curve for the multi-power law
    (:func:`scalinglab.laws.multipower.register_builder`: rebuilt from the config when first needed). A row whose line its config cannot rebuild
    (no such branch) gets NaN, which a curve-law fit refuses. ``curves``: :func:`store_curves` of ``df``,
    built once by the caller (default: built here)."""
    S1 = np.full(len(df), np.nan)
    S2 = np.full(len(df), np.nan)
    warm = np.full(len(df), np.nan)
    key = np.full(len(df), np.nan)
    if df.empty:
        return df.assign(S1=S1, S2=S2, warmup=warm, curve=key)
    curves = store_curves(df, configs) if curves is None else curves
    keys = pd.DataFrame({"run": df["run"].to_numpy(), "branch": df["branch"].to_numpy().astype(int)})
    for (run, branch), pos in keys.groupby(["run", "branch"], sort=False).indices.items():
        cfg, eta = configs.get(run), curves.get((str(run), int(branch)))
        if cfg is None or eta is None:   # no config, or a line it cannot rebuild: no areas
            continue
        a1, a2 = curve_areas(eta, decay)
        idx = np.clip(df["step"].to_numpy()[pos].astype(int), 1, len(eta)) - 1
        S1[pos], S2[pos] = a1[idx], a2[idx]
        warm[pos] = _schedules.warmup_of(cfg.schedule, cfg.steps)
        key[pos] = _multipower.register_builder(eta, functools.partial(lr_curve, cfg, branch))
    return df.assign(S1=S1, S2=S2, warmup=warm, curve=key)


def schedule_curve(name: str, steps: int, lr: float, *, warmup_steps: int = 0, warmup_frac: float = 0.0,
                   decay_frac: float = 0.2, decay_shape: str = "linear", final_lr_frac: float = 0.1,
                   batch_tokens: int = 0, context: int = 0) -> Array:
    """The learning rate of each of ``steps`` updates of a schedule the trainer knows, built through
    the trainer's own :func:`~scalinglab.ladder.schedules.from_config` (so any schedule it learns, this
    reads). Every default is the run config's (``final_lr_frac`` 0.1: the cosine and WSD floor); the
    'power' schedule also reads the run's ``batch_tokens`` and ``context`` (its a and b are the config's
    defaults, Shen et al. 2024)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParameterError(invalid("The 'steps' of the schedule", steps, "a positive integer"))
    cfg = ScheduleConfig(name=name, warmup_frac=warmup_frac, warmup_steps=warmup_steps, final_lr_frac=final_lr_frac,
                         decay_frac=decay_frac, decay_shape=decay_shape)
    sched = _schedules.from_config(cfg, lr, int(steps), batch_tokens=int(batch_tokens), context=int(context))
    return np.array([sched(s) for s in range(int(steps))], dtype=float)


def curve_inputs(law: str, lr: Any, steps: Any, decay: float = DECAY) -> dict[str, Array]:
    """The inputs of a curve law (:data:`CURVE_LAWS`) at the points after ``steps`` updates of the
    learning-rate curve ``lr``: S1 and S2 (with momentum factor ``decay``) for the annealing law, the
    step and the registered curve's key for the multi-power law."""
    if law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the fit", law, f"one of {CURVE_LAWS} (a schedule is read only "
                                     "by the learning-rate annealing and multi-power laws)"))
    eta = np.asarray(lr, dtype=float)
    st = np.asarray(steps, dtype=np.int64).reshape(-1)
    if law != "anneal":
        return {"step": st.astype(float), "curve": np.full(st.size, _multipower.register_curve(eta))}
    S1, S2 = curve_areas(eta, decay)
    idx = np.clip(st, 1, len(eta)) - 1
    return {"S1": S1[idx], "S2": S2[idx]}


def predict_curve(fit: Fit, lr: Any, *, stride: int = 1, seed: int = 0, decay: float | None = None) -> pd.DataFrame:
    """A curve law's (:data:`CURVE_LAWS`) predicted loss after every ``stride``-th update (and the last)
    of the learning rate curve ``lr`` (one value per update), with the prediction and mean intervals of
    :func:`scalinglab.fit.predict.predict`. Columns: step, lr, S1, S2, prediction, lo, hi, mean_lo,
    mean_hi (S2 is NaN for the multi-power law, which does not read it); ``attrs["warnings"]`` as ``predict``'s. ``decay`` (lambda of S2)
    defaults to the fit's own (:func:`fit_decay`)."""
    if fit.law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the fit", fit.law, f"one of {CURVE_LAWS} (a schedule is read only "
                                     "by the learning-rate annealing and multi-power laws)"))
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ParameterError(invalid("The 'stride'", stride, "a positive integer"))
    eta = np.asarray(lr, dtype=float)
    lam = fit_decay(fit) if decay is None else decay
    S1, S2 = curve_areas(eta, lam)
    steps = np.unique(np.r_[np.arange(stride, len(eta) + 1, stride), len(eta)])
    out = predict(fit, pd.DataFrame(curve_inputs(fit.law, eta, steps, lam)), seed=seed)
    attrs = dict(out.attrs)   # the warnings (an interval clipped at 0) and the interval's kind
    out = out.drop(columns=[c for c in ("S1", "S2", "step", "curve") if c in out.columns])
    out.insert(0, "S2", S2[steps - 1] if fit.law == "anneal" else np.nan)
    out.insert(0, "S1", S1[steps - 1])
    out.insert(0, "lr", eta[steps - 1])
    out.insert(0, "step", steps)
    out.attrs.update(attrs)
    return out
