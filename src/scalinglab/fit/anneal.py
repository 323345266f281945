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

__all__ = ["ANCHOR_MODES", "CURVE_LAWS", "DECAYS", "add_store_areas", "anchored_curve", "curve_inputs", "departure_step",
           "fit_decay_profile", "fit_decay", "lr_curve", "predict_curve",
           "schedule_curve", "select_by_holdback", "store_curves"]

#: momentum factors lambda of S2 searched by :func:`fit_decay_profile`
DECAYS = (0.95, 0.98, 0.99, 0.995, 0.998, 0.999)
#: the laws that read a whole learning-rate curve (a schedule): the annealing law, the multi-power law, the
#: multi-power law with a warmup-area offset, and that law with an early-transient term or with an instant
#: reduction (the multi-power ones read ``step`` and ``curve``)
CURVE_LAWS = ("anneal", "multipower", "multipower_offset", "multipower_transient", "multipower_instant")


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


#: the anchored predictions' modes (:func:`anchored_curve`): how much of the law's residual on the measured
#: reference run is carried onto the curve asked for
ANCHOR_MODES = ("none", "full", "lr", "smooth", "branch")
#: degree of the polynomial in ln step that ``mode="smooth"`` fits to the reference's residual
ANCHOR_SMOOTH_DEGREE = 3
#: two learning rates are the same update's when ``|a - b| <= ANCHOR_LR_RTOL x max(|a|, |b|)`` (:func:`departure_step`)
ANCHOR_LR_RTOL = 1e-9


def departure_step(lr: Any, ref_lr: Any, rtol: float = ANCHOR_LR_RTOL) -> int:
    """The step at which a schedule departs from a reference's: the largest ``s`` such that every update
    ``i < s`` (0-based) has the same learning rate in both (``|a - b| <= rtol x max(|a|, |b|)``; zeros equal),
    capped at the shorter curve. A point after ``s`` updates has seen ``lr[0 .. s-1]``, so the point at step
    ``t_d`` is the last one both runs share: a WSD run's decay start, a linear or cosine decay's warmup end,
    the whole curve for the reference's own schedule, 0 for a schedule that differs from its first update."""
    a = np.asarray(lr, dtype=float).reshape(-1)
    b = np.asarray(ref_lr, dtype=float).reshape(-1)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    same = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return n if same.all() else int(np.argmin(same))


def anchored_curve(fit: Fit, lr: Any, steps: Any, ref_lr: Any, ref_steps: Any, ref_loss: Any, *,
                   mode: str = "full", level: float | None = None, seed: int = 0,
                   decay: float | None = None) -> pd.DataFrame:
    """A curve law's prediction of one schedule's loss curve anchored on a measured reference run:
    the law predicts the *difference* the schedule makes, the reference supplies the rest.

    ``L_pred(t) = law(lr, t) + m(t) r(t)`` with ``r(t) = L_ref(t) - law(ref_lr, t)``, the law's residual on
    the measured reference, linearly interpolated in step between the reference's points. In ``mode``
    ``"full"`` (m = 1) this is ``L_ref(t) + [law(lr, t) - law(ref_lr, t)]`` at the reference's steps;
    ``"lr"``: m(t) = lr(t) / ref_lr(t) (the rate of the last update before the point; m = 1 where the
    reference's rate is 0), for residual wiggles whose size follows the learning rate; ``"smooth"``:
    m = 1 on a least-squares polynomial of degree :data:`ANCHOR_SMOOTH_DEGREE` in ln step fitted to r over
    every reference point given (the law's systematic misfit kept, the point-to-point wiggles dropped);
    ``"none"``: the plain law (:func:`scalinglab.fit.predict.predict`'s output, intervals included);
    ``"branch"``: the schedule predicted as a branch of the reference at its departure step ``t_d``
    (:func:`departure_step`: the last step whose every earlier update has the reference's rate): m = 1 and
    r taken at ``min(t, t_d)``, i.e. the reference's measured curve up to ``t_d`` (where the schedules agree)
    and ``L_ref(t_d) + [law(lr, t) - law(lr, t_d)]`` after it: the law predicts only the change from the
    measured branch point (a WSD cooldown from its stable run). The reference must cover ``t_d``
    (``min(ref_steps) <= t_d <= max(ref_steps)``, when a step after ``t_d`` is asked; ``r(t_d)`` is interpolated
    between the reference's points), and only the asked steps up to ``t_d`` need lie inside the reference:
    a stable run that ends at ``t_d`` predicts its whole cooldown. ``t_d`` is in ``attrs["departure"]``.
    A reference equal to the law gives exactly the plain prediction in every mode.

    Units: ``lr`` and ``ref_lr`` are learning rates per update (``lr[i]`` the rate of update ``i``,
    0-based, as :func:`lr_curve` / :func:`schedule_curve` give; a point after ``s`` updates has seen
    ``lr[0 .. s-1]``); ``steps`` and ``ref_steps`` are optimizer steps (integers >= 1, within the
    curves); ``ref_loss`` the reference's measured loss at ``ref_steps`` (nats/token). Every step of
    ``steps`` (in mode ``"branch"``: up to ``t_d``, and ``t_d`` itself) must lie inside the reference's
    ``min(ref_steps) .. max(ref_steps)``: the reference is interpolated, never extrapolated.

    Intervals (a stated choice): each bootstrap replicate k of the fit gives its own anchored curve
    ``law_k(lr, t) + m(t) r_k(t)`` (so the law's part is the interval of the *difference*), plus normal
    draws for the measurement noise: the reference's point noise ``sigma`` (relative; the standard
    deviation of the second differences of ln ``ref_loss`` over sqrt(6), independent-point noise
    assumed) carried with weight m into ``mean_lo/mean_hi``, and the new observation's own noise of
    the same size added in ``lo/hi`` (mode ``"branch"``: r_k at ``min(t, t_d)``, the noise of the reference's
    point at ``t_d`` after it); in mode ``"smooth"`` the wiggle it drops (the relative rms of r
    about its polynomial at the reference's points, ``attrs["dropped"]``) is added in quadrature to
    the new observation's noise. A target run that shares the reference's data order shares part of
    that noise, so the interval is conservative for it. No bootstrap draws: no intervals (NaN).

    Returns one row per step: step, lr, plain (the law alone), residual (m(t) r(t), nats), prediction,
    lo, hi, mean_lo, mean_hi; ``attrs``: warnings, interval, level, mode, ref_noise (sigma), dropped, departure
    (``t_d`` in mode ``"branch"``, None otherwise)."""
    from .. import laws as _laws

    if mode not in ANCHOR_MODES:
        raise ParameterError(invalid("The anchor mode", mode, f"one of {ANCHOR_MODES}"))
    if fit.law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the anchored fit", fit.law, f"one of {CURVE_LAWS} (only a curve "
                                     "law reads a schedule)"))
    law = _laws.get(fit.law)
    eta = np.asarray(lr, dtype=float).reshape(-1)
    ref_eta = np.asarray(ref_lr, dtype=float).reshape(-1)
    st = _int_steps(steps, "The step of the anchored curve", len(eta))
    rs = _int_steps(ref_steps, "The reference's step", len(ref_eta))
    rl = np.asarray(ref_loss, dtype=float).reshape(-1)
    if rl.size != rs.size:
        raise ParameterError(invalid("The reference's losses", f"{rl.size} values", f"one per reference step "
                                     f"({rs.size})"))
    bad = ~np.isfinite(rl) | (rl <= 0)
    if bad.any():
        raise ParameterError(invalid("The reference's loss", float(rl[np.argmax(bad)]), "a positive number (nats)"))
    order = np.argsort(rs, kind="stable")
    rs, rl = rs[order], rl[order]
    if np.any(np.diff(rs) == 0):
        raise ParameterError(invalid("The reference's step", int(rs[np.flatnonzero(np.diff(rs) == 0)[0]]),
                                     "logged once (one loss per step)"))
    td = departure_step(eta, ref_eta) if mode == "branch" else None
    at = st if td is None else np.minimum(st, td)     # the steps the reference's residual is read at
    if td is not None and (st > td).any() and not rs[0] <= td <= rs[-1]:
        raise ParameterError(invalid("The departure step of the target from the reference (mode 'branch')", td,
                                     f"a step the reference covers ({int(rs[0])}..{int(rs[-1])}), where its residual "
                                     "is read; anchor on a reference measured there, or use another mode"))
    out_of = ((st < rs[0]) | (st > rs[-1])) & (st == at)
    if out_of.any():
        raise ParameterError(invalid("The step of the anchored curve", int(st[np.argmax(out_of)]),
                                     f"a step the reference covers ({int(rs[0])}..{int(rs[-1])})"))
    lam = fit_decay(fit) if decay is None else decay
    x = curve_inputs(fit.law, eta, st, lam)
    xr = curve_inputs(fit.law, ref_eta, rs, lam)
    if mode == "lr":
        a, b = eta[st - 1], ref_eta[st - 1]
        m = np.where(b > 0, a / np.where(b > 0, b, 1.0), 1.0)
    else:
        m = np.full(st.size, 0.0 if mode == "none" else 1.0)
    sigma = _point_noise(rl)

    def carried(resid: Any) -> Any:
        """The reference's residual(s) (..., n_ref) at the asked steps (..., n), times m."""
        resid = np.asarray(resid, dtype=float)
        if mode == "smooth":
            z = np.log(rs.astype(float))
            mu, sd = z.mean(), z.std() or 1.0
            V = np.vander((z - mu) / sd, ANCHOR_SMOOTH_DEGREE + 1)
            coef = np.linalg.lstsq(V, np.atleast_2d(resid).T, rcond=None)[0]   # (deg + 1, K)
            vals = (np.vander((np.log(st.astype(float)) - mu) / sd, ANCHOR_SMOOTH_DEGREE + 1) @ coef).T
        else:
            vals = np.array([np.interp(at, rs, r) for r in np.atleast_2d(resid)])
        return (vals * m).reshape(resid.shape[:-1] + (st.size,))

    if mode == "smooth" and rs.size <= ANCHOR_SMOOTH_DEGREE + 1:
        raise ParameterError(invalid("The reference's points of mode 'smooth'", int(rs.size),
                                     f"more than {ANCHOR_SMOOTH_DEGREE + 1} (a degree-{ANCHOR_SMOOTH_DEGREE} "
                                     "polynomial in ln step)"))
    plain = predict(fit, pd.DataFrame(x), level=level, seed=seed)
    lev = float(plain.attrs["level"])
    base = plain["prediction"].to_numpy(dtype=float)
    warns = list(plain.attrs["warnings"])
    if mode == "none":
        out = pd.DataFrame({"step": st, "lr": eta[st - 1], "plain": base, "residual": 0.0, "prediction": base})
        for c in ("lo", "hi", "mean_lo", "mean_hi"):
            out[c] = plain[c].to_numpy(dtype=float)
        out.attrs.update({"warnings": warns, "interval": plain.attrs["interval"], "level": lev, "mode": mode,
                          "ref_noise": sigma, "dropped": 0.0, "departure": None})
        return out
    r = rl - np.asarray(law.predict(fit.params, xr), dtype=float)
    res = carried(r)
    dropped = 0.0
    if mode == "smooth":   # the residual's wiggle about its polynomial, at the reference's own points
        z = np.log(rs.astype(float))
        V = np.vander((z - z.mean()) / (z.std() or 1.0), ANCHOR_SMOOTH_DEGREE + 1)
        dropped = float(np.sqrt(np.mean(((r - V @ np.linalg.lstsq(V, r, rcond=None)[0]) / rl) ** 2)))
    out = pd.DataFrame({"step": st, "lr": eta[st - 1], "plain": base, "residual": res, "prediction": base + res})
    draws = fit.draws()
    kind = None
    if draws is not None and len(draws) >= 2 and plain.attrs["interval"] is not None:
        P = {k: draws[k].to_numpy(dtype=float)[:, None] for k in law.param_names}
        with np.errstate(invalid="ignore", over="ignore"):
            pk = np.atleast_2d(np.asarray(law.predict(P, x), dtype=float))
            rk = rl - np.atleast_2d(np.asarray(law.predict(P, xr), dtype=float))
            curve_k = pk + carried(rk)
            rng = np.random.default_rng(seed)
            scale = sigma * out["prediction"].to_numpy(dtype=float)
            z_ref, z_new = rng.standard_normal(curve_k.shape), rng.standard_normal(curve_k.shape)
            q = [(1 - lev) / 2, (1 + lev) / 2]
            mean_k = curve_k + m * scale * z_ref
            out["mean_lo"], out["mean_hi"] = np.nanquantile(mean_k, q, axis=0)
            new_obs = np.hypot(sigma, dropped) * out["prediction"].to_numpy(dtype=float)
            out["lo"], out["hi"] = np.nanquantile(mean_k + new_obs * z_new, q, axis=0)
        kind = "anchored"
    else:
        for c in ("lo", "hi", "mean_lo", "mean_hi"):
            out[c] = np.nan
    if sigma == 0.0 and rs.size < 4:
        warns.append(f"the reference has {rs.size} points (< 4): its measurement noise is not estimated (taken as 0).")
    out.attrs.update({"warnings": warns, "interval": kind, "level": lev, "mode": mode, "ref_noise": sigma,
                      "dropped": dropped, "departure": td})
    return out


def _int_steps(v: Any, what: str, n: int) -> Any:
    """``v`` as a 1-D int64 array of steps in 1..n (a ParameterError naming the first bad one)."""
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size == 0:
        raise ParameterError(invalid(what + "s", [], "at least one step"))
    bad = ~np.isfinite(a) | (a < 1) | (a != np.round(a)) | (a > n)
    if bad.any():
        raise ParameterError(invalid(what, float(a[np.argmax(bad)]), f"an integer in 1..{n} (the curve's updates)"))
    return a.astype(np.int64)


def _point_noise(loss: Any) -> float:
    """The relative noise of one point of a curve: sd of the second differences of ln loss / sqrt(6)
    (each point's independent noise; a smooth curve's second differences are ~0); 0 under 4 points."""
    y = np.log(np.asarray(loss, dtype=float))
    if y.size < 4:
        return 0.0
    return float(np.std(np.diff(y, 2)) / np.sqrt(6.0))
