"""From a tracker's runs to store runs: which key is the loss, the tokens, the lr, and where N comes from.

``--map TARGET=SOURCE`` (``maps``; :func:`parse_map`) chooses; without it, a key is recognised by its name (below)
when exactly one key fits. TARGET is a point field (``loss`` the evaluation loss, ``train_loss``, ``lr``
the learning rate at the step, ``tokens`` the training tokens seen) whose SOURCE is a logged key, or a
run field (:data:`~scalinglab.store.imported.RUN_FIELDS`; ``N`` means ``N_total``; ``lr_peak`` the run's
peak learning rate, by default the largest logged lr) whose SOURCE is a number, a run parameter (an
MLflow param or tag) or a logged key (its last value). ``--run-fields FILE`` gives run fields per run:
a table with a ``run`` column (the tracker's run name or id) and a column per field.

A store point is a step at which the loss key has a value; the other keys logged at that very step come
with it: the mapped ones as the point's fields, every other as a point metric under its own name
(``eval/accuracy``). ``tokens`` is the tokens key at that step or, without one, ``step x batch``; ``flops``
is ``6 N_total tokens``. What cannot be mapped (no loss key, no N, no tokens) is one DataError line
listing the keys the run has.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError, invalid
from ..store.imported import RUN_FIELDS, ImportedRun
from .source import Series, SourceRun, store_name

POINT_TARGETS = ("loss", "train_loss", "lr", "tokens")
RUN_TARGETS = (*RUN_FIELDS, "N", "lr_peak")
_INT_FIELDS = {"N_total", "N_nonembed", "N_nonzero", "batch", "seed", "V", "context", "n_layer", "d_model", "n_head"}

# recognised names (case-insensitive), used when a target is not mapped and exactly one key matches
_LOSS = re.compile(r"(^|[/._-])(eval|val|valid|validation|test)([/._-].*)?loss|loss.*(^|[/._-])(eval|val|valid|validation)", re.I)
_TRAIN_LOSS = re.compile(r"^(train[/._-]?)?loss$|^train.*loss", re.I)
_LR = re.compile(r"(^|[/._-])(lr|learning[_-]?rate)(_0|/group0|-0)?$", re.I)
_TOKENS = re.compile(r"(^|[/._-])(tokens|tokens[_-]seen|num[_-]tokens|train[_-]tokens|consumed[_-]tokens)$", re.I)
_RUN_NAMES = {
    "N_total": ("n", "n_total", "n_params", "num_params", "params", "n_parameters", "num_parameters",
                "parameters", "model/params", "model/n_params"),
    "N_nonembed": ("n_nonembed", "n_non_embedding", "non_embedding_params", "model/n_nonembed"),
    "batch": ("batch_tokens", "batch_size_tokens", "tokens_per_step"),
    "schedule": ("schedule", "lr_schedule", "scheduler", "lr_scheduler"),
    "seed": ("seed",),
}


@dataclass
class ImportMap:
    """The parsed ``--map`` of an import: point keys and run-field sources."""

    point: dict[str, str] = field(default_factory=dict)
    run: dict[str, str] = field(default_factory=dict)
    per_run: dict[str, dict[str, Any]] = field(default_factory=dict)   # --run-fields: run -> field -> value


def parse_map(items: Iterable[str], per_run: Mapping[str, Mapping[str, Any]] | None = None) -> ImportMap:
    """``TARGET=SOURCE`` strings (see the module docstring) into a :class:`ImportMap`."""
    m = ImportMap(per_run={k: dict(v) for k, v in (per_run or {}).items()})
    for item in items:
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise DataError(invalid("The 'maps' entry", item, "of the form TARGET=SOURCE"))
        if target == "N":
            target = "N_total"
        if target in POINT_TARGETS:
            m.point[target] = source
        elif target in RUN_TARGETS:
            m.run[target] = source
        else:
            raise DataError(invalid("The 'maps' target", target, f"one of {[*POINT_TARGETS, *RUN_TARGETS]}"))
    return m


def select(runs: Sequence[SourceRun], pattern: str | None) -> list[SourceRun]:
    """The runs whose name or original id matches the glob ``pattern`` (``fnmatch``, case-sensitive:
    ``*``, ``?``, ``[abc]``); all of them without one. None matching is a DataError listing the names."""
    if not pattern:
        return list(runs)
    kept = [r for r in runs if fnmatch.fnmatchcase(r.name, pattern) or fnmatch.fnmatchcase(r.run_id, pattern)]
    if not kept:
        raise DataError(invalid("The 'run_filter'", pattern, f"a glob matching one of the runs {_names(runs)}"))
    return kept


def _names(runs: Sequence[SourceRun]) -> list[str]:
    names = [r.name for r in runs]
    return names if len(names) <= 12 else [*names[:12], f"... ({len(names)} runs)"]


def _keys(run: SourceRun) -> str:
    keys = sorted(run.series)
    shown = keys if len(keys) <= 40 else [*keys[:40], f"... ({len(keys)} keys)"]
    params = sorted(run.params)
    extra = f"; its parameters: {params if len(params) <= 20 else [*params[:20], '...']}" if params else ""
    return f"its logged keys: {shown}{extra}"


def _recognise(run: SourceRun, pattern: re.Pattern[str], what: str, flag: str, exclude: set[str]) -> str | None:
    found = [k for k in run.series if pattern.search(k) and k not in exclude]
    if len(found) > 1:
        raise DataError(f"run {run.name!r} ({run.path}): {len(found)} keys could be the {what}: {sorted(found)}; "
                        f"choose one with 'maps' {flag}=KEY.")
    return found[0] if found else None


def _series(run: SourceRun, key: str, target: str) -> Series:
    s = run.series.get(key)
    if s is None:
        raise DataError(f"run {run.name!r} ({run.path}) has no key {key!r} ('maps' {target}={key}); {_keys(run)}.")
    if s.bad is not None:
        raise DataError(invalid(f"Key {key!r} of run {run.name!r} ({run.path}) at step {s.bad[0]}", s.bad[1],
                                "a number"))
    return s


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _run_value(run: SourceRun, target: str, source: str) -> Any:
    """A run field from ``--map TARGET=SOURCE``: a number, a run parameter, or a logged key's last value."""
    if target == "schedule":
        return run.params.get(source, source)
    x = _number(source)
    if x is None and source in run.params:
        x = _number(run.params[source])
        if x is None:
            raise DataError(invalid(f"Parameter {source!r} of run {run.name!r} ('maps' {target}={source})",
                                    run.params[source], "a number"))
    if x is None and source in run.series:
        x = _series(run, source, target).last()
    if x is None:
        raise DataError(f"'maps' {target}={source}: {source!r} is neither a number nor a key of run {run.name!r} "
                        f"({run.path}); {_keys(run)}.")
    return x


def _typed(target: str, value: Any, run: SourceRun) -> Any:
    if target == "schedule" or value is None:
        return None if value is None else str(value)
    x = float(value)
    if target in _INT_FIELDS:
        if x != round(x) or x <= 0:
            raise DataError(invalid(f"The {target} of run {run.name!r}", value, "a positive whole number"))
        return int(round(x))
    if not math.isfinite(x) or (target != "seed" and x < 0):
        raise DataError(invalid(f"The {target} of run {run.name!r}", value, "a finite non-negative number"))
    return x


def to_imported(run: SourceRun, fmt: str, m: ImportMap) -> ImportedRun:
    """One store run from ``run`` (see the module docstring); a DataError line when it cannot be mapped."""
    loss_key = m.point.get("loss") or _recognise(run, _LOSS, "evaluation loss", "loss", set())
    if loss_key is None:
        raise DataError(f"run {run.name!r} ({run.path}): no evaluation-loss key; give 'maps' loss=KEY; {_keys(run)}.")
    keys: dict[str, str | None] = {"loss": loss_key}
    for target, pattern in (("train_loss", _TRAIN_LOSS), ("lr", _LR), ("tokens", _TOKENS)):
        keys[target] = m.point.get(target) or _recognise(run, pattern, target.replace("_", " "), target, {loss_key})
    series = {t: _series(run, k, t) for t, k in keys.items() if k is not None}

    fields: dict[str, Any] = {}
    given = {**m.run}
    per_run = m.per_run.get(run.name, m.per_run.get(run.run_id, {}))
    for target in RUN_TARGETS:
        if target in per_run and per_run[target] is not None:
            fields[target] = per_run[target]
        elif target in given:
            fields[target] = _run_value(run, target, given[target])
        else:
            for name in _RUN_NAMES.get(target, ()):
                hit = next((k for k in run.params if k.lower() == name), None)
                if hit is not None and (target == "schedule" or _number(run.params[hit]) is not None):
                    fields[target] = _run_value(run, target, hit)
                    break
    if "N" in fields:
        fields["N_total"] = fields.pop("N")
    peak = fields.pop("lr_peak", None)
    if peak is None and "lr" in series:
        peak = float(np.nanmax(series["lr"].values)) if series["lr"].values.size else None
    if peak is not None:
        fields["lr"] = peak
    fields = {k: _typed(k, v, run) for k, v in fields.items() if v is not None}
    if "N_total" not in fields:
        raise DataError(f"run {run.name!r} ({run.path}): no parameter count; give 'maps' N=VALUE|KEY (or "
                        f"'fields_file'); {_keys(run)}.")
    if "tokens" not in series and "batch" not in fields:
        raise DataError(f"run {run.name!r} ({run.path}): no token count; give 'maps' tokens=KEY or 'maps' batch=VALUE "
                        f"(tokens per step); {_keys(run)}.")

    loss = series["loss"]
    ok = ~np.isnan(loss.values)
    steps = loss.steps[ok]
    if steps.size == 0:
        raise DataError(f"run {run.name!r} ({run.path}): the loss key {loss_key!r} has no value.")
    if not ok.all():
        run.warnings.append(f"{int((~ok).sum())} steps where {loss_key!r} is NaN left out (a diverged run?), the first "
                            f"at step {int(loss.steps[~ok][0])}")
    cols: dict[str, np.ndarray] = {"eval_loss": loss.values[ok]}
    if "tokens" in series:
        tokens = _at(series["tokens"], steps)
        missing = np.isnan(tokens)
        if missing.any():
            if "batch" not in fields:
                raise DataError(f"run {run.name!r} ({run.path}): the tokens key {keys['tokens']!r} has no value at "
                                f"step {int(steps[missing][0])}, where {loss_key!r} has one; give 'maps' batch=VALUE.")
            tokens[missing] = steps[missing] * fields["batch"]
    else:
        tokens = steps.astype(np.float64) * fields["batch"]
    cols["train_loss"] = _at(series["train_loss"], steps) if "train_loss" in series else np.full(steps.size, np.nan)
    cols["lr"] = _at(series["lr"], steps) if "lr" in series else np.full(steps.size, np.nan)
    wall = loss.wall[ok] if loss.wall is not None else None
    t0 = _first_wall(run)
    used = {k for k in keys.values() if k}
    others = {k: s for k, s in run.series.items() if k not in used and s.bad is None}
    other_vals = {k: _at(s, steps) for k, s in others.items()}
    n_total = fields["N_total"]
    points = []
    for i, step in enumerate(steps.tolist()):
        tok = int(round(float(tokens[i])))
        p: dict[str, Any] = {"step": int(step), "tokens": tok, "eval_loss": float(cols["eval_loss"][i]),
                             "flops": 6.0 * n_total * tok}
        for name in ("train_loss", "lr"):
            v = float(cols[name][i])
            if not math.isnan(v):
                p[name] = v
        if wall is not None and t0 is not None:
            p["wall_time"] = float(wall[i] - t0)
        for k, vals in other_vals.items():
            v = float(vals[i])
            if not math.isnan(v):
                p[k] = v
        points.append(p)
    skipped = sorted(k for k, s in run.series.items() if s.bad is not None and k not in used)
    if skipped:
        run.notes.append(f"keys left out (not numbers): {skipped}")
    return ImportedRun(name=store_name(run.name, f"{fmt}-{run.run_id}"), format=fmt, path=run.path, run_id=run.run_id,
                       metric_keys=tuple(sorted(run.series)), fields=fields, points=points)


def _at(s: Series, steps: np.ndarray) -> np.ndarray:
    """The values of ``s`` at ``steps`` (NaN where it has none)."""
    out = np.full(steps.size, np.nan)
    if s.steps.size:
        i = np.clip(np.searchsorted(s.steps, steps), 0, s.steps.size - 1)
        hit = s.steps[i] == steps
        out[hit] = s.values[i[hit]]
    return out


def _first_wall(run: SourceRun) -> float | None:
    firsts = [float(s.wall[0]) for s in run.series.values() if s.wall is not None and s.wall.size]
    return min(firsts) if firsts else None


__all__ = ["POINT_TARGETS", "RUN_TARGETS", "ImportMap", "parse_map", "select", "to_imported"]
