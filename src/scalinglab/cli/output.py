"""What every command shares: parsing option values, printing numbers, tables and JSON, and errors.

* **Numbers** in tables: :func:`fmt` (6 significant digits, counts with thousands separators, ``-``
  for a missing value or NaN); :func:`sci` for short table headers (``2.8e6``).
* **JSON** (``--json``): :func:`emit_json`, one object, NaN and infinities as ``null``.
* **Lists and assignments**: :func:`numbers` (``1e12,3e12``), :func:`floats` (``N=7e10``),
  :func:`parse_set` (``--set KEY=VALUE`` with TOML values).
* **Errors**: :class:`Main`, the root group, turns a :class:`~scalinglab.errors.ScalingLabError` or a
  usage error into one line on stderr and exit code 2. The library names its parameters
  (``'max_tokens'``); a command wraps its library call in :func:`flags` to name its options instead
  (``--max-tokens``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, DataError, ParameterError, ScalingLabError, invalid
from ..fit.result import json_safe
from ..table import parse_assignments

__all__ = ["Main", "console", "emit_json", "error_line", "flags", "floats", "fmt", "numbers", "parse_set",
           "interval_line", "print_rows", "sci", "translate"]


# -- printing -------------------------------------------------------------------------------------
def console() -> Console:
    """A console for tables: the terminal's width, or 200 columns when the output is a pipe or file."""
    c = Console(highlight=False)
    return c if c.is_terminal else Console(highlight=False, width=200)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON object: NumPy scalars as numbers, NaN and infinities as ``null``,
    anything else JSON cannot hold (a path) as its text."""
    click.echo(json.dumps(json_safe(obj), indent=2, default=str))


def fmt(x: Any) -> str:
    """A table cell: floats to 6 significant digits, integers with thousands separators, ``-`` for
    None and NaN, lists as ``[a, b]``."""
    return _fmt(x, group=True)


def _fmt(x: Any, group: bool) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, int):
        return f"{x:,}" if group else str(x)
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v, group=False) for v in x) + "]"
    item = getattr(x, "item", None)   # a NumPy scalar: its Python value
    if callable(item):
        return _fmt(item(), group)
    return str(x)


def sci(x: float) -> str:
    """Short scientific form for table headers: 2.8e+06 -> 2.8e6."""
    mantissa, _, exponent = f"{x:.2g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def interval_line(kind: str | None, level: float) -> str:
    """The line under a table of predictions that says which interval it shows and its nominal level
    (``fit.predict.interval_kind``: observation, extrapolation-calibrated; ``anchored`` from
    ``fit.anneal.anchored_curve``; or None: no interval)."""
    if kind is None:
        return "interval: none (the fit has no bootstrap draws)"
    what = {"observation": "observation interval: the fitted curve's bootstrap plus the residual scatter",
            "anchored": "anchored interval: the bootstrap's anchored curves plus the reference's point noise and "
                        "a new observation's"}.get(
        kind, "extrapolation-calibrated interval: inside the data the observation interval, beyond it "
              "the ladder's own extrapolation error (internal rollouts), growing with the distance")
    return f"interval: nominal {100 * level:.0f}% {what}"


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    """A table of ``rows`` (one dict each) with ``columns``: text left-aligned, numbers right."""
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col in ("name", "run", "status", "error") else "right")
    for row in rows:
        table.add_row(*(fmt(row.get(c)) for c in columns))
    console().print(table)


# -- parsing --------------------------------------------------------------------------------------
def numbers(text: str | None, what: str, kind: type = float) -> list[Any] | None:
    """``"1e12,3e12"`` -> ``[1e12, 3e12]`` (with ``kind=int``, integers); None stays None. ``what``
    names the option in the error."""
    if text is None:
        return None
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            value: Any = float(item)
        except ValueError:
            raise ParameterError(invalid(f"Each value of {what}", item, "a number")) from None
        if kind is int:
            if not (math.isfinite(value) and value == int(value)):
                raise ParameterError(invalid(f"Each value of {what}", item, "an integer"))
            value = int(value)
        out.append(value)
    return out


def floats(items: Sequence[str], what: str) -> dict[str, float]:
    """``["N=7e10", "D=1.4e12"]`` -> ``{"N": 7e10, "D": 1.4e12}``; ``what`` names the option."""
    out = {}
    for k, v in parse_assignments(items, what).items():
        try:
            out[k] = float(v)
        except ValueError:
            raise DataError(invalid(f"The value of {what} {k}", v, "a number")) from None
    return out


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` (TOML values; bare words are strings; ``schedule.name=wsd`` for sub-tables; a
    bare word given for a sub-table beside its keys is its name: ``parametrization=mus``). A key set twice
    (``lr=1e-3`` and ``lr=2e-3``, or ``schedule=wsd`` and ``schedule.name=cosine``) is a ConfigError."""
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}   # each key set (a bare word also sets KEY.name: it may name a sub-table) -> item
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(invalid("The --set argument", item, "of the form KEY=VALUE"))
        marks = [key] if "." in key else [key, f"{key}.name"]
        clash = next((seen[m] for m in marks if m in seen), None)
        if clash is not None:   # the last one silently won
            raise ConfigError(invalid("The --set option", item, f"each key set once (already set by {clash!r})"))
        seen.update({m: item for m in marks})
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        head, dot, sub = key.partition(".")
        if dot:
            table = out.setdefault(head, {})
            if not isinstance(table, dict):   # parametrization=mus then parametrization.tau=0.4
                table = out[head] = {"name": table}
            table[sub] = value
        elif isinstance(out.get(key), dict) and isinstance(value, str):
            out[key]["name"] = value          # a bare word for a sub-table names it
        else:
            out[key] = value
    return out


# -- errors ---------------------------------------------------------------------------------------
#: a parameter's name (written quoted in a message), as opposed to a phrase
_NAME = re.compile(r"[\w.]+")
#: a list in a message (``one of ['a', 'b']``, ``Got [0.5] instead``): its items are values, not names
_LIST = re.compile(r"(\[[^\[\]]*\])")


def translate(message: str, names: Mapping[str, str]) -> str:
    """``message`` with the library's names of parameters replaced by a command's options.

    ``names`` maps a parameter (``"max_tokens"``, written ``'max_tokens'`` in library messages) or
    any other literal phrase of a message (``"schedule.name = 'wsd'"``) to the command's words
    (``--max-tokens``, ``--schedule wsd``); ``the 'x' parameter`` becomes the option alone. Lists in
    the message (``[...]``) are left as they are: a RunConfig field ``'tokens'`` listed there is no
    parameter.
    """
    parts = _LIST.split(message)
    for i in range(0, len(parts), 2):        # the text between lists
        for key in sorted(names, key=len, reverse=True):
            flag = names[key]
            phrase = f"'{key}'" if _NAME.fullmatch(key) else key
            parts[i] = re.sub(rf"\b[Tt]he {re.escape(phrase)} parameter\b", flag.replace("\\", "\\\\"), parts[i])
            parts[i] = parts[i].replace(phrase, flag)
    return "".join(parts)


@contextlib.contextmanager
def flags(names: Mapping[str, str]) -> Iterator[None]:
    """Inside: a :class:`ScalingLabError` is raised again with its parameters named as the command's
    options (:func:`translate`)."""
    try:
        yield
    except ScalingLabError as exc:
        message = translate(str(exc), names)
        if message == str(exc):
            raise
        try:
            new = type(exc)(message)
        except TypeError:   # an error class with another constructor: the base class says the same
            new = ScalingLabError(message)
        raise new from None


def error_line(problem: object) -> str:
    """One line for stderr: ``error: `` and the message with its line breaks as spaces."""
    return "error: " + " ".join(str(problem).split("\n"))


class Main(click.Group):
    """The root group: turns scalinglab's errors and usage errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:   # click's own message names the option and the value
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            click.echo(error_line(f"{where}{exc.format_message()} (see --help)"), err=True)
            ctx.exit(2)
        except ScalingLabError as exc:
            click.echo(error_line(exc), err=True)
            ctx.exit(2)
        except FileNotFoundError as exc:
            click.echo(error_line(f"{exc.strerror}: {exc.filename!r}"), err=True)
            ctx.exit(2)
