"""Commands that read laws and fits: ``laws``, ``fit``, ``backtest``, ``predict``, ``plan``."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from .. import laws as _laws
from .. import table as _table
from ..errors import DataError, ParameterError, invalid
from ..fit import Fit, LawFit
from ..fit.backtest import backtest as _backtest
from ..fit.predict import predict as _predict
from ..fit.report import fit_report
from ..fit.result import _clean
from ..laws import Objective
from ..plan import plan as _plan
from . import main

console = Console(highlight=False)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2))


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.6g}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return str(x)


def _floats(items: Sequence[str], what: str) -> dict[str, float]:
    out = {}
    for k, v in _table.parse_assignments(items, what).items():
        try:
            out[k] = float(v)
        except ValueError:
            raise DataError(invalid(f"The value of {what} {k}", v, "a number")) from None
    return out


# -- options shared by the fitting commands ---------------------------------------------------------
def data_options(f: Any) -> Any:
    f = click.option("--map", "mapping", multiple=True, metavar="COL=SOURCE",
                     help="Canonical column from a file column or expression, e.g. N='Model Size'.")(f)
    f = click.option("--where", default=None, help="Keep rows matching a pandas query, e.g. 'C < 1e21'.")(f)
    f = click.option("--store", "store_path", type=click.Path(dir_okay=False), default=None,
                     help="Read runs from a scalinglab store instead of a file (final points of done runs).")(f)
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
    return f


def load_data(data: str | None, store_path: str | None, mapping: Sequence[str], where: str | None) -> tuple[pd.DataFrame, str]:
    """The run table from a file (with --map and --where) or from a store."""
    if (data is None) == (store_path is None):
        raise DataError("give either a DATA file or --store PATH (exactly one).")
    if store_path is not None:
        from ..store import Store  # the store is part of the ladder work; imported only when asked
        df = Store(store_path, create=False).to_table(final=True)
        if mapping:
            df = _table.apply_map(df, _table.parse_assignments(mapping))
        df = _table.apply_where(_table.derive_standard(df), where)
        return df, f"store {store_path}"
    return _table.load(data, mapping=_table.parse_assignments(mapping), where=where), str(data)


def make_fitter(law_name: str, bootstrap: int, seed: int, objective_kind: str | None, space: str | None,
                delta: float | None, fix: Sequence[str], ci_level: float, source: str) -> LawFit:
    law = _laws.get(law_name)
    obj = law.objective
    if objective_kind or space or delta is not None:
        obj = Objective(objective_kind or obj.kind, obj.delta if delta is None else delta, space or obj.space)
    fixed = _floats(fix, "--fix")
    for k in fixed:
        law.param(k)  # unknown names are errors
    return LawFit(law, objective=obj, fixed=fixed, bootstrap=bootstrap, seed=seed, ci_level=ci_level,
                  source=source)


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
        console.print(t)
        console.print("`scalinglab laws NAME` shows a law's formula, parameters and presets.")
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
    console.print(f"[bold]{lw.name}[/bold]: {lw.title}")
    console.print(f"  {lw.formula_text}")
    console.print(f"  units: {lw.units}")
    console.print(f"  inputs: {', '.join(lw.inputs)} -> {lw.target}; N convention: {lw.n_convention}")
    delta = f" (delta={lw.objective.delta:g})" if lw.objective.kind == "huber" else ""
    console.print(f"  objective: {lw.objective.kind}{delta} on {lw.objective.space} residuals, summed")
    console.print(f"  source: {lw.citation}")
    t = Table(title="parameters")
    for c in ("name", "bounds", "scale", "meaning"):
        t.add_column(c)
    for p in lw.params:
        t.add_row(p.name, f"[{p.lower:g}, {p.upper:g}]", "log" if p.log else "linear", p.doc)
    console.print(t)
    if lw.presets:
        t = Table(title="published presets")
        t.add_column("preset")
        for p in lw.params:
            t.add_column(p.name)
        for k, v in lw.presets.items():
            t.add_row(k, *[f"{v.params[p.name]:.6g}" for p in lw.params])
        console.print(t)
        for k, v in lw.presets.items():
            console.print(f"[bold]{k}[/bold]: {v.citation}" + (f"\n    {v.note}" if v.note else ""))
