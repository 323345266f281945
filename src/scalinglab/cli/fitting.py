"""Commands that read laws and fits: ``laws``, ``fit``, ``backtest``, ``predict``, ``plan``."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import click
import pandas as pd
from rich.table import Table

from .. import laws as _laws
from .. import table as _table
from ..errors import DataError, ParameterError, invalid
from ..fit import Fit, LawFit
from ..fit.anneal import CURVE_LAWS, add_store_areas
from ..fit.backtest import backtest as _backtest
from ..fit.calibrate import DEFAULT_SCHEME, SCHEMES
from ..fit.predict import POINTS, check_input_names
from ..fit.predict import predict as _predict
from ..fit.report import fit_report
from ..fit.rollout import rollout as _rollout
from ..laws import Objective
from ..laws.anneal import derive_areas
from ..laws.multipower import derive_curves
from ..plan.dispatch import plan_fit
from ..report.contour import save_sparsity_contour
from . import main
from .dynamics import (
    add_hparams,
    anneal_requested,
    anneal_store_fit,
    hparam_options,
    predict_anneal,
    print_hparams,
    schedule_options,
)
from .output import console, emit_json, flags, floats, fmt, interval_line, numbers, sci
from .paths import check_out_file, write_error

#: the planners' names of their parameters (plan.dispatch.plan_fit) -> the plan command's options
PLAN_FLAGS = {"flops": "--flops", "max_tokens": "--max-tokens", "n_nonzero": "--n-nonzero",
              "tokens_per_d": "--tokens-per-d", "max_sparsity": "--max-sparsity", "fixed": "--at",
              "contour_n": "--contour-n", "contour_flops": "--contour-flops", "bits": "--bits"}
#: the fitter's names of its settings (fit.core.LawFit) -> the fit and backtest commands' options
FIT_FLAGS = {"weight_by='compute'": "--weight compute", "The 'ci_level' parameter of LawFit": "--ci-level",
             "The 'delta' parameter of the objective": "--delta",
             "The 'asymmetry' parameter of the objective": "--asymmetry"}
#: in fit, the calibration's internal rollouts are --calibrate's (their messages say "rollout")
CALIBRATE_FLAGS = {"The rollout key": "The --calibrate key", "The rollout bin width (decades)": "--group-decades"}


# -- options shared by the fitting commands ---------------------------------------------------------
def data_options(f: Any) -> Any:
    f = click.option("--map", "mapping", multiple=True, metavar="COL=SOURCE",
                     help="Canonical column from a file column or expression, e.g. N='Model Size'.")(f)
    f = click.option("--where", default=None, help="Keep rows where an expression is true (README, 'Expressions'), e.g. 'C < 1e21'.")(f)
    f = click.option("--store", "store_path", type=click.Path(dir_okay=False), default=None,
                     help="Read runs from a scalinglab store instead of a file (the rows --points "
                          "selects).")(f)
    f = click.option("--dataset", default=None, metavar="NAME[:TABLE]",
                     help="Read a bundled published dataset instead of a file (`scalinglab data list`).")(f)
    f = click.option("--points", "point_selection", type=click.Choice(["annealed", "final", "all"]),
                     default=None,
                     help="With --store: which points to fit. annealed (default): the final point of every "
                          "done run and the end of every WSD cooldown branch; final: final points only; all: "
                          "every curve point. Points of failed (diverged or crashed) runs are never fitted.")(f)
    f = click.option("--near-optimal", "near_optimal", type=click.IntRange(min=1), default=None, metavar="K",
                     help="Keep the K lowest-loss rows of each IsoFLOP budget (column budget_flops), after "
                          "--where: a fit of the compute-optimal frontier (table.near_optimal).")(f)
    return f


def fit_options(f: Any) -> Any:
    f = click.option("--law", "law_name", required=True, help="Law name (see `scalinglab laws`).")(f)
    f = click.option("--bootstrap", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Bootstrap replicates over rows (standard errors, intervals).")(f)
    f = click.option("--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap.")(f)
    f = click.option("--objective", "objective_kind", type=click.Choice(["huber", "ls"]), default=None,
                     help="Objective: Huber or least squares (default: the law's published choice).")(f)
    f = click.option("--space", type=click.Choice(["log", "linear"]), default=None,
                     help="Residual space (default: the law's).")(f)
    f = click.option("--delta", type=float, default=None, help="Huber delta (default: the law's, 1e-3 for most).")(f)
    f = click.option("--fix", multiple=True, metavar="NAME=VALUE", help="Hold a parameter at a value.")(f)
    f = click.option("--ci-level", default=0.95, show_default=True, type=float, help="Interval level.")(f)
    f = click.option("--bound", multiple=True, metavar="NAME=LO:HI",
                     help="Bound a parameter inside the law's range, e.g. --bound E=1.5:1.9.")(f)
    f = click.option("--asymmetry", type=float, default=None, metavar="K",
                     help="Weight over-prediction K times in the objective (asymmetric Huber).")(f)
    f = click.option("--weight", type=click.Choice(["none", "compute"]), default="none", show_default=True,
                     help="Row weights: none, or proportional to training compute C.")(f)
    f = click.option("--calibrate", default=None, metavar="KEY",
                     help="Calibrate intervals for extrapolation from internal rollouts over the groups of "
                          "KEY (budget_flops, C, N); needs --bootstrap.")(f)
    f = click.option("--calibrate-scheme", type=click.Choice(list(SCHEMES)), default=DEFAULT_SCHEME,
                     show_default=True,
                     help="How --calibrate builds the interval: group-* treat each budget's rows as one unit "
                          "(a shared offset), -rel scales the error with distance / span of the data, -union "
                          "never narrows below the observation interval, -t sizes it by a Student t quantile when "
                          "there are too few internal rollouts for a conformal one (group-tp, group-t with "
                          "the public ladders' prior on the offset, is the default, group-t the previous one); "
                          "row is the first scheme; drift centres the interval on the latest internal one-step "
                          "bias (signed), drift-p adds the public ladders' prior on its drift.")(f)
    f = click.option("--group-decades", type=float, default=None, metavar="W",
                     help="Group KEY (of --calibrate, --rollout) into bins W decades wide.")(f)
    return f


def bounds_of(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``["E=1.5:1.9"]`` -> ``{"E": (1.5, 1.9)}`` (--bound)."""
    out = {}
    names = [item.partition("=")[0].strip() for item in items]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:   # the last one silently won
        raise DataError(invalid("The --bound option", twice, "each parameter bounded once"))
    for k, v in _table.parse_assignments(items, "--bound").items():
        lo, sep, hi = v.partition(":")
        try:
            out[k] = (float(lo), float(hi))
        except ValueError:
            raise DataError(invalid(f"The value of --bound {k}", v, "LO:HI, two numbers")) from None
        if not sep:
            raise DataError(invalid(f"The value of --bound {k}", v, "LO:HI, two numbers"))
    return out


#: the columns ``add_store_areas`` adds to a store's table (from each run's rebuilt learning-rate curve)
AREA_COLUMNS = ("S1", "S2", "warmup", "curve")


def needs_areas(law_name: str | None, *texts: str | None) -> bool:
    """Whether a store's rows need the learning-rate areas (:data:`AREA_COLUMNS`): the law reads a curve
    (its inputs name one of them), or an expression or key (--where, --map, --train-where, --rollout,
    --calibrate) names one. Rebuilding every run's curve costs one schedule call per update of every line,
    so a law like chinchilla skips it."""
    if law_name is None or law_name in CURVE_LAWS:
        return True
    if set(_laws.get(law_name).inputs) & set(AREA_COLUMNS):
        return True
    pattern = re.compile(r"\b(" + "|".join(AREA_COLUMNS) + r")\b")
    return any(t is not None and pattern.search(t) for t in texts)


def load_data(data: str | None, store_path: str | None, mapping: Sequence[str], where: str | None,
              points: str | None = None, near: int | None = None,
              dataset: str | None = None, areas: bool = True) -> tuple[pd.DataFrame, str]:
    """The run table from a file (with --map and --where), a bundled dataset (``datasets.load``, with
    --map and --where) or a store (the rows ``points`` selects, ``annealed`` by default: see
    ``Store.to_table``); with ``near``, each budget's ``near`` lowest-loss rows (``table.near_optimal``).
    ``areas=False``: a store's rows without the learning-rate areas (:func:`needs_areas`)."""
    if dataset is not None:
        if data is not None or store_path is not None:
            raise DataError("give one of a DATA file, --store PATH or --dataset NAME.")
        if points is not None:
            raise DataError(invalid("The --points option", points, "given only with --store"))
        from .. import datasets
        df = datasets.load(dataset)
        if mapping:
            df = _table.apply_map(df, _table.parse_assignments(mapping, "--map"))
        df, source = _table.apply_where(_table.derive_standard(df), where), f"dataset {dataset}"
    else:
        df, source = _load_rows(data, store_path, mapping, where, points, areas)
    if near is None:
        return df, source
    return _table.near_optimal(df, near), f"{source}, each budget's {near} lowest-loss rows"


def _load_rows(data: str | None, store_path: str | None, mapping: Sequence[str], where: str | None,
               points: str | None, areas: bool = True) -> tuple[pd.DataFrame, str]:
    if store_path is not None and data is None:
        from ..store import Store  # the store is part of the ladder work; imported only when asked
        with Store(store_path, create=False) as store:
            df = store.to_table(points=points or "annealed", failed=False)   # no failed run's points
            if areas:
                df = add_store_areas(df, store.run_configs())   # S1, S2 (the anneal law), curve (multi-power)
        if mapping:
            df = _table.apply_map(df, _table.parse_assignments(mapping, "--map"))
        df = _table.apply_where(_table.derive_standard(df), where)
        return df, f"store {store_path} ({points or 'annealed'} points)"
    if data is None or store_path is not None:
        raise DataError("give either a DATA file or --store PATH (exactly one).")
    if points is not None:
        raise DataError(invalid("The --points option", points, "given only with --store (a DATA file's rows "
                                "are all used; select them with --where)"))
    df = _table.load(data, mapping=_table.parse_assignments(mapping, "--map"))
    if {"step", "lr"} <= set(df.columns) and "S1" not in df.columns:   # curves: S1, S2 before --where drops rows
        with contextlib.suppress(DataError):   # not curves after all: a curve law's own derive says why
            df = derive_curves(derive_areas(df))
    return _table.apply_where(df, where), str(data)


def n_convention_warning(law_name: str, store_path: str | None, mapping: Sequence[str]) -> str | None:
    """A store's ``N`` is ``N_total``: a law that counts N as non-embedding parameters (Kaplan, Kumar, the Step
    Law) fitted on it without ``--map N=...`` reads the wrong count, silently (the README maps it)."""
    law = _laws.get(law_name)
    if store_path is None or "N" not in law.inputs or not law.n_convention.startswith("non-embedding"):
        return None
    if any(m.partition("=")[0].strip() == "N" for m in mapping):
        return None
    return (f"law {law.name!r} counts N as {law.n_convention} parameters; the store's N is N_total (all "
            "parameters), used as is: --map N=N_nonembed fits the law's count.")


def make_fitter(law_name: str, bootstrap: int, seed: int, objective_kind: str | None, space: str | None,
                delta: float | None, fix: Sequence[str], ci_level: float, source: str, bound: Sequence[str] = (),
                asymmetry: float | None = None, weight: str = "none", calibrate: str | None = None,
                group_decades: float | None = None, calibrate_scheme: str | None = None,
                rollout: bool | None = None) -> LawFit:
    """The LawFit of the fitting options (``rollout``: None for fit, whether --rollout was given for
    backtest)."""
    if calibrate is not None and bootstrap < 2:   # the calibrated interval is built on the bootstrap's draws
        raise ParameterError(invalid("The --calibrate option", calibrate,
                                     "given with --bootstrap K, K >= 2 (without draws there is no interval to "
                                     "calibrate)"))
    if group_decades is not None and calibrate is None and not rollout:   # it was silently ignored
        raise ParameterError(invalid("The --group-decades option", group_decades,
                                     "given with --calibrate KEY" + (" or --rollout KEY" if rollout is not None else "")))
    law = _laws.get(law_name)
    obj = law.objective
    if objective_kind or space or delta is not None or asymmetry is not None:
        obj = Objective(objective_kind or obj.kind, obj.delta if delta is None else delta, space or obj.space,
                        obj.asymmetry if asymmetry is None else asymmetry)
    fixed = floats(fix, "--fix")
    bounds = bounds_of(bound)
    for k in (*fixed, *bounds):
        law.param(k)  # unknown names are errors
    fitter = LawFit(law, objective=obj, fixed=fixed, bootstrap=bootstrap, seed=seed, ci_level=ci_level,
                    source=source, bounds=bounds, weight_by=None if weight == "none" else weight,
                    calibrate=calibrate, calibrate_decades=group_decades, calibrate_scheme=calibrate_scheme)
    return fitter.check()   # bad --bound / --fix values: one line before any work


def fitter_kwargs(fitter: LawFit) -> dict[str, Any]:
    """The options of ``fitter`` as LawFit keyword arguments (for back-tests that refit)."""
    return {"objective": fitter.objective, "fixed": fitter.fixed, "bootstrap": fitter.bootstrap,
            "ci_level": fitter.ci_level, "source": fitter.source, "bounds": fitter.bounds,
            "weight_by": fitter.weight_by, "calibrate": fitter.calibrate,
            "calibrate_decades": fitter.calibrate_decades, "calibrate_scheme": fitter.calibrate_scheme}


# -- laws -------------------------------------------------------------------------------------------
@main.command("laws")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def laws_cmd(name: str | None, as_json: bool) -> None:
    """The catalog of laws, or one law's formula, parameters, inputs and presets."""
    if name is None:
        items = [_laws.get(n) for n in _laws.available()]
        if as_json:
            emit_json({"laws": [{"name": lw.name, "title": lw.title, "formula": lw.formula_text,
                                 "inputs": list(lw.inputs), "target": lw.target,
                                 "n_convention": lw.n_convention, "presets": sorted(lw.presets)} for lw in items]})
            return
        t = Table(title="scalinglab laws")
        for c in ("name", "law", "inputs -> target", "N convention", "presets"):
            t.add_column(c)
        for lw in items:
            t.add_row(lw.name, lw.title, f"{', '.join(lw.inputs)} -> {lw.target}", lw.n_convention,
                      "\n".join(sorted(lw.presets)))
        console().print(t)
        console().print("`scalinglab laws NAME` shows a law's formula, parameters and presets.")
        return
    lw = _laws.get(name)
    info = {
        "name": lw.name, "title": lw.title, "formula": lw.formula_text, "units": lw.units,
        "citation": lw.citation, "inputs": list(lw.inputs), "target": lw.target,
        "n_convention": lw.n_convention,
        "objective": {"kind": lw.objective.kind, "delta": lw.objective.delta, "space": lw.objective.space},
        "params": [{"name": p.name, "lower": p.lower, "upper": p.upper, "log": p.log, "doc": p.doc,
                    "grid": list(p.grid)} for p in lw.params],
        "grid": lw.grid_note,
        "presets": {k: {"params": dict(v.params), "citation": v.citation, "note": v.note}
                    for k, v in lw.presets.items()},
    }
    if as_json:
        emit_json(info)
        return
    console().print(f"[bold]{lw.name}[/bold]: {lw.title}")
    console().print(f"  {lw.formula_text}")
    console().print(f"  units: {lw.units}")
    console().print(f"  inputs: {', '.join(lw.inputs)} -> {lw.target}; N convention: {lw.n_convention}")
    delta = f" (delta={lw.objective.delta:g})" if lw.objective.kind == "huber" else ""
    console().print(f"  objective: {lw.objective.kind}{delta} on {lw.objective.space} residuals, summed")
    console().print(f"  source: {lw.citation}")
    t = Table(title="parameters")
    for c in ("name", "bounds", "scale", "meaning"):
        t.add_column(c)
    for p in lw.params:
        t.add_row(p.name, f"[{p.lower:g}, {p.upper:g}]", "log" if p.log else "linear", p.doc)
    console().print(t)
    if lw.presets:
        t = Table(title="published presets")
        t.add_column("preset")
        for p in lw.params:
            t.add_column(p.name)
        for k, v in lw.presets.items():
            t.add_row(k, *[f"{v.params[p.name]:.6g}" for p in lw.params])
        console().print(t)
        for k, v in lw.presets.items():
            console().print(f"[bold]{k}[/bold]: {v.citation}" + (f"\n    {v.note}" if v.note else ""))


# -- fit --------------------------------------------------------------------------------------------
@main.command("fit")
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@fit_options
@data_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the fit as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def fit_cmd(data: str | None, law_name: str, bootstrap: int, seed: int, objective_kind: str | None,
            space: str | None, delta: float | None, fix: Sequence[str], ci_level: float, mapping: Sequence[str],
            where: str | None, store_path: str | None, dataset: str | None, point_selection: str | None,
            near_optimal: int | None, out: str | None, as_json: bool, **extra: Any) -> None:
    """Fit a law to DATA (CSV, TSV, JSONL or Parquet) or to a run store."""
    if out:
        check_out_file(out)
    if law_name in CURVE_LAWS and store_path and point_selection is None:
        point_selection = "all"   # the anneal and multi-power laws fit whole curves
    df, source = load_data(data, store_path, mapping, where, point_selection, near_optimal, dataset,
                           areas=needs_areas(law_name, where, *mapping, extra.get("calibrate")))
    with flags(FIT_FLAGS):
        fitter = make_fitter(law_name, bootstrap, seed, objective_kind, space, delta, fix, ci_level, source, **extra)
    with warnings.catch_warnings(), flags({**FIT_FLAGS, **CALIBRATE_FLAGS}):
        warnings.simplefilter("ignore")
        result = (anneal_store_fit(fitter, store_path, df) if law_name == "anneal" and store_path
                  else fitter.fit(df).result_)   # the anneal law: lambda of S2 profiled
    result.data.update({"source": source, "where": where, "map": list(mapping)})
    convention = n_convention_warning(law_name, store_path, mapping)
    if convention:
        result.warnings.append(convention)
    if out:
        try:
            result.to_json(out)
        except OSError as exc:
            raise write_error(exc, out) from None
    if as_json:
        d = result.to_dict()
        d.pop("residuals", None)
        d["bootstrap"] = {k: v for k, v in d.get("bootstrap", {}).items() if k != "draws"}
        emit_json(d)
    else:
        console().print(fit_report(result))
        if out:
            console().print(f"fit written to {out}")


# -- backtest ---------------------------------------------------------------------------------------
@main.command("backtest")
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@fit_options
@data_options
@click.option("--train-where", default=None, help="Rows to fit on (an expression, as --where); the rest are predicted.")
@click.option("--rollout", "rollout_key", default=None, metavar="KEY",
              help="Rollout back-test over the sorted groups of KEY (budget_flops, N): fit on the first k, "
                   "predict the next (instead of --train-where).")
@click.option("--horizon", default=1, show_default=True, type=click.IntRange(min=1),
              help="With --rollout: also predict up to the K-th next group.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def backtest_cmd(data: str | None, law_name: str, bootstrap: int, seed: int, objective_kind: str | None,
                 space: str | None, delta: float | None, fix: Sequence[str], ci_level: float,
                 mapping: Sequence[str], where: str | None, store_path: str | None, dataset: str | None,
                 point_selection: str | None, near_optimal: int | None, train_where: str | None,
                 rollout_key: str | None, horizon: int, as_json: bool, **extra: Any) -> None:
    """Fit on the rows TRAIN-WHERE selects and score the predictions of the others; or, with
    --rollout KEY, fit on the first k groups of KEY and predict the next, for every k."""
    if (train_where is None) == (rollout_key is None):
        raise ParameterError("give either --train-where EXPR or --rollout KEY (exactly one).")
    if law_name in CURVE_LAWS and store_path and point_selection is None:
        point_selection = "all"   # as fit: the curve laws fit whole curves (it back-tested the final points only)
    df, source = load_data(data, store_path, mapping, where, point_selection, near_optimal, dataset,
                           areas=needs_areas(law_name, where, train_where, rollout_key, *mapping,
                                             extra.get("calibrate")))
    with flags(FIT_FLAGS):
        fitter = make_fitter(law_name, bootstrap, seed, objective_kind, space, delta, fix, ci_level, source,
                             rollout=rollout_key is not None, **extra)
    if rollout_key is not None:
        with warnings.catch_warnings(), flags(FIT_FLAGS):
            warnings.simplefilter("ignore")
            roll = _rollout(df, fitter.law, rollout_key, horizon=horizon, decades=fitter.calibrate_decades,
                            seed=seed, **fitter_kwargs(fitter))
        if as_json:
            emit_json(roll)
        else:
            _print_rollout(roll)
        return
    assert train_where is not None
    with warnings.catch_warnings(), flags(FIT_FLAGS):
        warnings.simplefilter("ignore")
        res = _backtest(df, fitter.law, train_where, seed=seed, **fitter_kwargs(fitter))
    convention = n_convention_warning(law_name, store_path, mapping)
    if convention:
        res["fit"]["warnings"].append(convention)
    if as_json:
        res["fit"].pop("residuals", None)
        res["fit"]["bootstrap"] = {k: v for k, v in res["fit"].get("bootstrap", {}).items() if k != "draws"}
        emit_json(res)
        return
    t = Table(title=f"back-test of {res['law']}: fit on {res['train_points']} rows ({train_where}), "
                    f"predict {res['test_points']}")
    law = _laws.get(res["law"])
    for c in list(law.inputs) + ["actual", "predicted", "interval", "ARE"]:
        t.add_column(c)
    for p in res["per_point"]:
        t.add_row(*[fmt(p["inputs"][c]) for c in law.inputs], fmt(p["actual"]), fmt(p["predicted"]),
                  fmt(p["interval"]), f"{100 * p['are']:.2f}%")
    console().print(t)
    console().print(f"mean ARE {100 * res['are_mean']:.2f}%, max ARE {100 * res['are_max']:.2f}%, "
                    f"coverage: {_coverage_line(res)}")
    for w in res["fit"]["warnings"]:
        console().print(f"[yellow]warning:[/yellow] {w}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _coverage_line(res: dict[str, Any]) -> str:
    kind = res["interval"]["kind"]
    if kind is None:
        return "no intervals (fit with --bootstrap K)"
    return (f"{_pct(res['coverage_80'])} of nominal 80%, {_pct(res['coverage_95'])} of nominal 95% "
            f"{kind} prediction intervals")


def _print_rollout(roll: dict[str, Any]) -> None:
    t = Table(title=f"rollout back-test of {roll['law']} over {roll['key']} ({len(roll['groups'])} groups, "
                    f"horizon {roll['horizon']})")
    for c in ("train groups", "up to", "test group", "decades of C", "points", "mean ARE", "cov 80%", "cov 95%"):
        t.add_column(c)
    for s in roll["rollout"]:
        d = s["distance_decades"]
        t.add_row(str(len(s["train_groups"])), fmt(s["train_groups"][-1]), fmt(s["test_group"]),
                  "-" if d is None else f"{d:.2f}", str(s["test_points"]), f"{100 * s['are_mean']:.2f}%",
                  _pct(s["coverage_80"]), _pct(s["coverage_95"]))
    console().print(t)
    console().print(f"over all {roll['n_points']} predicted points: mean ARE {100 * roll['are_mean']:.2f}%, "
                    f"coverage: {_coverage_line(roll)}")


# -- predict and plan -------------------------------------------------------------------------------
def _load_fit(fit_path: str | None, law_name: str | None, preset: str | None) -> Fit:
    if fit_path and (law_name or preset):
        raise ParameterError("give either FIT.json or --law with --preset, not both.")
    if fit_path:
        return Fit.from_json(fit_path)
    if not (law_name and preset):
        raise ParameterError("give a FIT.json, or --law NAME --preset NAME.")
    return Fit.from_preset(law_name, preset)


def _check_at_complete(fit: Fit, pts: pd.DataFrame) -> None:
    """--at gives every input of the law, or what it is derived from (D from C = 6 N D); the table's
    own message advised 'map them (D=SOURCE)', an option --at does not have."""
    law = fit.law_
    derived = _table.derive_standard(pts)
    if law.derive is not None:
        with contextlib.suppress(DataError, ParameterError):   # the derivation's own check says why
            derived = law.derive(derived)
    missing = [c for c in law.inputs if c not in derived.columns]
    if missing:
        given = ", ".join(f"{k}={v:g}" for k, v in pts.iloc[0].items())
        also = " (D also from C = 6 N D: --at C=VALUE)" if missing == ["D"] and "N" in pts.columns else ""
        raise ParameterError(invalid("The --at values", given, f"a value of every input of law {fit.law!r} "
                                     f"({', '.join(law.inputs)}): add --at {missing[0]}=VALUE{also}"))


@main.command("predict")
@click.argument("fit_path", required=False, type=click.Path(dir_okay=False))
@click.option("--law", "law_name", default=None, help="With --preset: a published coefficient set instead of a fit.")
@click.option("--preset", default=None, help="Preset name (see `scalinglab laws NAME`).")
@click.option("--at", multiple=True, metavar="COL=VALUE", help="An input value, e.g. --at N=7e10 --at D=1.4e12.")
@click.option("--points", type=click.Path(dir_okay=False), default=None, help="A file of input points.")
@click.option("--map", "mapping", multiple=True, metavar="COL=SOURCE", help="Column mapping for --points.")
@click.option("--seed", default=0, type=int, show_default=True, help="Seed of the residual draws.")
@click.option("--point", type=click.Choice(POINTS), default="fit", show_default=True,
              help="The point prediction: the law at the fitted parameters (fit), or the median of the law over "
                   "the fit's bootstrap fits (bagged; Breiman 1996), steadier where a small ladder's fit swings.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@schedule_options
def predict_cmd(fit_path: str | None, law_name: str | None, preset: str | None, at: Sequence[str],
                points: str | None, mapping: Sequence[str], seed: int, point: str, as_json: bool,
                **sched: Any) -> None:
    """Predict with a fit (or a published preset) at given inputs, with a prediction interval; for an
    anneal fit, the whole loss curve of a schedule (--schedule) or of a file of run, step, lr (--points)."""
    fit = _load_fit(fit_path, law_name, preset)
    if anneal_requested(sched) or (fit.law in CURVE_LAWS and points and not at):
        if point != "fit":
            raise ParameterError(invalid("--point", point, "fit for a whole-curve prediction (--schedule, or "
                                         "--points of a curve law)"))
        return predict_anneal(fit, points, mapping, seed, as_json, sched)
    if points and at:
        raise ParameterError("give either --at values or --points FILE, not both.")
    if points:
        pts = _table.load(points, mapping=_table.parse_assignments(mapping, "--map"))
    elif at:
        values = floats(at, "--at")
        check_input_names(fit, values, "--at")
        pts = pd.DataFrame({k: [v] for k, v in values.items()})
        _check_at_complete(fit, pts)
    else:
        raise ParameterError(f"give the inputs of law {fit.law!r} ({', '.join(fit.law_.inputs)}) with --at or --points.")
    pred = _predict(fit, pts, seed=seed, point=point)
    warns = list(pred.attrs["warnings"])   # the fit's, and any interval clipped at 0
    kind = {"interval_kind": pred.attrs["interval"], "level": fit.ci_level, "point": point}
    target = fit.law_.target
    rows: list[dict[str, Any]] = []
    for i in range(len(pred)):
        lo, hi = pred["lo"].iloc[i], pred["hi"].iloc[i]
        interval = None if math.isnan(lo) else [float(lo), float(hi)]
        mlo = pred["mean_lo"].iloc[i]
        rows.append({"inputs": {c: float(pred[c].iloc[i]) for c in fit.law_.inputs},
                     target: float(pred["prediction"].iloc[i]), "prediction": float(pred["prediction"].iloc[i]),
                     "interval": interval,
                     "mean_interval": None if math.isnan(mlo) else [float(mlo), float(pred["mean_hi"].iloc[i])]})
    if as_json:
        if len(rows) == 1:
            emit_json({"law": fit.law, "preset": fit.preset, "ci_level": fit.ci_level, **kind, **rows[0],
                       "warnings": warns})
        else:
            emit_json({"law": fit.law, "preset": fit.preset, "ci_level": fit.ci_level, **kind, "predictions": rows,
                       "warnings": warns})
        return
    t = Table(title=f"{fit.law} predictions" + (f" (preset {fit.preset})" if fit.preset else ""))
    for c in list(fit.law_.inputs) + [target, f"{100 * fit.ci_level:.0f}% interval"]:
        t.add_column(c)
    for r in rows:
        t.add_row(*[fmt(r["inputs"][c]) for c in fit.law_.inputs], fmt(r[target]), fmt(r["interval"]))
    console().print(t)
    if point == "bagged":
        console().print(f"point prediction: bagged, the median of the law over the {pred.attrs['bagged_from']} "
                        "bootstrap fits (not the fitted parameters' law)")
    console().print(interval_line(kind["interval_kind"], fit.ci_level))
    for w in warns:
        console().print(f"warning: {w}")


@main.command("plan")
@click.argument("fit_path", required=False, type=click.Path(dir_okay=False))
@click.option("--law", "law_name", default=None, help="With --preset: a published coefficient set instead of a fit.")
@click.option("--preset", default=None, help="Preset name.")
@click.option("--flops", required=True, type=float, help="Training budget C in FLOPs (C = 6 N D).")
@click.option("--at", multiple=True, metavar="COL=VALUE",
              help="Values of the law's other inputs (e.g. U=25e9); for the sparse law, S=0.5 holds the sparsity.")
@click.option("--n-nonzero", type=float, default=None,
              help="Sparse law: hold the non-zero parameters N and plan the optimal sparsity for them.")
@click.option("--tokens-per-d", type=float, default=None,
              help="Sparse law: tokens per unit of the law's D (default: 1 for fits of scalinglab runs, where D "
                   "is tokens; 65,536 for the T5 preset, where D is steps).")
@click.option("--max-sparsity", type=float, default=0.99, show_default=True,
              help="Sparse law: the largest sparsity considered.")
@click.option("--contour-n", default=None, help="Sparse law: N values (comma-separated) of the contour table.")
@click.option("--contour-flops", default=None, help="Sparse law: budgets (comma-separated) of the contour table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Sparse law: draw the optimal-sparsity contour to this image file (.png, .svg, .pdf).")
@click.option("--max-tokens", type=float, default=None,
              help="The most training tokens the run may use (e.g. 4 epochs of your corpus): when the optimum "
                   "needs more, plan D = this and the larger N = C/(6 D) (data-constrained).")
@click.option("--bits", default=None, metavar="LO..HI|P1,P2,...",
              help="Precision laws (precision, kumar): plan the format over these bit widths, e.g. 4..16 "
                   "(best E/M split, compute-optimal precision at C = (6/16) P N D, critical data size).")
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@hparam_options
def plan_cmd(fit_path: str | None, law_name: str | None, preset: str | None, flops: float, at: Sequence[str],
             n_nonzero: float | None, tokens_per_d: float | None, max_sparsity: float, contour_n: str | None,
             contour_flops: str | None, plot_path: str | None, max_tokens: float | None, bits: str | None,
             seed: int, as_json: bool, hparams: str | None, critical_batch: str | None) -> None:
    """Compute-optimal N, D, tokens per parameter and predicted loss (with interval) at --flops.

    For the sparse law (Frantar et al. 2023): the optimal sparsity (at --n-nonzero N, or jointly with
    N), the training tokens and the predicted loss with interval, the dense run it beats, and the
    contour of the optimal sparsity over (N, C) as a table (--json: "contour") and a plot (--plot).
    """
    fit = _load_fit(fit_path, law_name, preset)
    with flags(PLAN_FLAGS):
        res = plan_fit(fit, flops, fixed=floats(at, "--at"), max_tokens=max_tokens, n_nonzero=n_nonzero,
                       tokens_per_d=tokens_per_d, max_sparsity=max_sparsity,
                       contour_n=numbers(contour_n, "--contour-n"),
                       contour_flops=numbers(contour_flops, "--contour-flops"), seed=seed,
                       bits=_bit_widths(bits))
    if bits is not None:
        if hparams is not None or critical_batch is not None:
            raise ParameterError("--hparams and --critical-batch apply to a size plan, not to a --bits format plan.")
        emit_json(res) if as_json else _print_bits_plan(fit, res)
        return
    res = add_hparams(res, hparams, critical_batch, seed)
    if plot_path:
        if res["law"] != "sparse":
            raise ParameterError(f"--plot only applies to the sparse law; this fit is of law {fit.law!r}.")
        res["plot"] = save_sparsity_contour(plot_path, res, fit)
    if as_json:
        emit_json(res)
    elif res["law"] == "sparse":
        _print_sparse_plan(fit, res)
    else:
        _print_plan(fit, res, max_tokens)
        print_hparams(res)


def _bit_widths(text: str | None) -> list[float] | None:
    """``--bits 4..16`` (an integer range) or ``4,6,8``; the planner checks the values."""
    if text is None:
        return None
    lo, sep, hi = text.partition("..")
    if sep:
        if not (lo.strip().isdigit() and hi.strip().isdigit() and int(lo) <= int(hi)):
            raise ParameterError(invalid("The --bits argument", text, "LO..HI with integers LO <= HI, or a list"))
        return [float(b) for b in range(int(lo), int(hi) + 1)]
    return numbers(text, "--bits")


def _print_bits_plan(fit: Fit, res: dict[str, Any]) -> None:
    """The format plan: one row per bit width, then the compute-optimal precision."""
    out = console()
    sun = res["law"] == "precision"
    t = Table(title=f"format plan at C = {res['flops']:.3g} FLOPs = {res['k']:.4g} P N D ({fit.law}"
                    + (f", preset {fit.preset}" if fit.preset else "") + (f", block {res['block']:g}" if sun else "")
                    + ")")
    cols = ["P (bits)"] + (["split", "agree"] if sun else ["N_eff/N"]) + \
        [f"N ({res['n_convention']})", "D (tokens)", "loss", "loss interval"] + (["D_crit", "D_crit interval"] if sun else [])
    for c in cols:
        t.add_column(c)
    for r in res["rows"]:
        agree = "" if r.get("split_agreement") is None else f"{100 * r['split_agreement']:.0f}%"
        head = [f"E{r['e_bits']}M{r['m_bits']}", agree] if sun else [f"{r['N_eff_fraction']:.4f}"]
        tail = [fmt(r["D_crit"]), fmt(r.get("D_crit_interval"))] if sun else []
        t.add_row(str(r["P"]), *head, fmt(r["N"]), fmt(r["D"]), fmt(r["loss"]), fmt(r.get("loss_interval")), *tail)
    out.print(t)
    o = res["optimum"]
    out.print(f"compute-optimal precision: P = {o['P']:.2f} bits (interval {fmt(o['P_interval'])}); best listed "
              f"width {o['best_bits']} bits: N = {fmt(o['N'])}, D = {fmt(o['D'])}, loss {fmt(o['loss'])}")
    if res.get("note"):
        out.print(res["note"])
    for w in res["warnings"]:
        out.print(f"warning: {w}")


def _ratio(x: float) -> str:
    """Tokens per parameter: one decimal, or significant digits where one decimal would show 0.0."""
    return f"{x:.1f}" if abs(x) >= 0.1 or x == 0 else fmt(x)


def _no_interval(fit: Fit) -> str:
    """Why a plan has no interval: a preset's published coefficients come without draws, a fit without
    --bootstrap too (only a fit can be redone with it)."""
    if fit.preset:
        return f"no interval: the published preset {fit.preset!r} has no bootstrap draws (a fit of your runs with " \
               "--bootstrap K has)."
    return "no interval: the fit has no bootstrap draws (fit with --bootstrap K to get one)."


def _print_plan(fit: Fit, res: dict[str, Any], max_tokens: float | None) -> None:
    """The compute-optimal plan as a table, with the data constraint, warnings and a missing interval."""
    out = console()
    t = Table(title=f"compute-optimal plan at C = {res['flops']:.3g} FLOPs ({fit.law}"
                    + (f", preset {fit.preset}" if fit.preset else "") + ")")
    t.add_column("quantity")
    t.add_column("value")
    t.add_column("interval")
    t.add_row(f"N ({res['n_convention']} parameters)", fmt(res["N"]), fmt(res["N_interval"]))
    t.add_row("D (tokens)", fmt(res["D"]), fmt(res["D_interval"]))
    t.add_row("tokens per parameter", _ratio(res['tokens_per_param']), "")
    t.add_row("loss", fmt(res["loss"]), fmt(res["interval"]))
    out.print(t)
    if res["interval"] is not None:
        out.print(interval_line(res.get("interval_kind"), res.get("ci_level", fit.ci_level)))
    if res["data_constrained"]:
        u = res["unconstrained"]
        out.print(f"data-constrained: the optimum wants D = {fmt(u['D'])} tokens, more than --max-tokens "
                  f"{fmt(max_tokens)}; unconstrained: N = {fmt(u['N'])}, loss {fmt(u['loss'])}.")
    for w in res.get("warnings", []):
        out.print(f"warning: {w}")
    if res["interval"] is None and not fit.too_few_points():   # too few points: its warning says why
        out.print(_no_interval(fit))


def _print_sparse_plan(fit: Fit, res: dict[str, Any]) -> None:
    """The sparse law's plan as a table, then the optimal-sparsity contour table."""
    out = console()
    held = ", ".join(f"{k} = {fmt(v)}" for k, v in res["held"].items())
    t = Table(title=f"sparse plan at C = {res['flops']:.3g} FLOPs" + (f", preset {fit.preset}" if fit.preset else "")
                    + (f" ({held} held)" if held else ""))
    for c in ("quantity", "value", "interval"):
        t.add_column(c)
    t.add_row("optimal sparsity S" if "S" not in res["held"] else "sparsity S", f"{res['S']:.4f}",
              fmt(res["S_interval"]))
    t.add_row("N (non-zero non-embedding parameters)", fmt(res["N_nonzero"]), fmt(res["N_interval"]))
    t.add_row(f"D ({res['D_unit']})", fmt(res["D"]), "")
    t.add_row("training tokens", fmt(res["tokens"]), fmt(res["tokens_interval"]))
    t.add_row("tokens per non-zero parameter", _ratio(res['tokens_per_param']), "")
    t.add_row("cost multiplier c_mul(S)", f"{res['c_mul']:.3f}", "")
    t.add_row("loss (nats/token)", fmt(res["loss"]), fmt(res["interval"]))
    d = res["dense"]
    t.add_row("dense at this budget: N, tokens, loss",
              f"{fmt(d['N_nonzero'])}, {fmt(d['tokens'])}, {fmt(d['loss'])}", "")
    out.print(t)
    for w in res.get("warnings", []):
        out.print(f"warning: {w}")
    if res["interval"] is None and not fit.too_few_points():   # too few points: its warning says why
        out.print(_no_interval(fit))
    ct = res["contour"]
    table = Table(title="optimal sparsity over (N_nonzero, C): rows C (FLOPs), columns N (non-zero parameters)")
    table.add_column("C \\ N")
    for n in ct["N_nonzero"]:
        table.add_column(sci(n), justify="right")
    for c, row in zip(ct["flops"], ct["S_opt"]):
        table.add_row(sci(c), *[f"{v:.3f}" for v in row])
    out.print(table)
    out.print(f"C = 6 N D x {res['tokens_per_d']:g} tokens per unit of D x c_mul(S) (gradual pruning from "
              f"{res['pruning_window'][0]:.0%} to {res['pruning_window'][1]:.0%} of training)."
              + (f" Contour plot: {res['plot']}" if res.get("plot") else ""))
