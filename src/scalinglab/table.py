"""The canonical run table: schema and units, reading files, column mapping and validation.

A run table is a :class:`pandas.DataFrame` whose columns carry the canonical names below (DESIGN.md,
"Units and canonical columns"). A user's file maps onto them with ``--map COL=SOURCE``, where SOURCE
is a column of the file or an expression over its columns (:mod:`.expr`; backticks quote names with spaces):
``--map D='`Training FLOP` / (6 * `Model Size`)'``. A store's table (``Store.to_table``) also carries
each point's metrics as columns (``sparsity``, ``c_mul``; ``point_N_nonzero``, the point's count beside
the run's ``N_nonzero``), so ``--map N=point_N_nonzero`` and ``--where 'sparsity > 0.5'`` reach them.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import LINE_INDEX, DataError, invalid, row_label
from .expr import Expression

#: canonical column -> (meaning, unit, constraint). Constraint: "positive", "nonnegative",
#: "fraction" ([0, 1)), "integer", "any" or "text".
COLUMNS: dict[str, tuple[str, str, str]] = {
    "run": ("run identifier", "text", "text"),
    "N_total": ("all parameters", "count", "positive"),
    "N_nonembed": ("parameters without embedding and unembedding matrices", "count", "positive"),
    "N_nonzero": ("non-zero non-embedding parameters", "count", "positive"),
    "N": ("the parameter count a law uses, when a file gives only one", "count", "positive"),
    "D": ("training tokens seen", "tokens", "positive"),
    "C": ("training compute", "FLOPs", "positive"),
    "budget_flops": ("the IsoFLOP budget a run belongs to (0: none); groups --near-optimal", "FLOPs",
                     "nonnegative"),
    "loss": ("evaluation cross-entropy", "nats/token", "positive"),
    "loss_u": ("unigram-normalised loss (Tao et al. 2024); negative in practice", "nats/token", "any"),
    "step": ("optimizer step", "steps", "nonnegative"),
    "steps": ("optimizer steps (to a target loss, or of training)", "steps", "positive"),
    "batch": ("batch size", "tokens", "positive"),
    "lr": ("learning rate: the peak of a run, or the rate at a logged step of a curve", "1", "positive"),
    "S": ("weight sparsity of the non-embedding weights", "fraction in [0, 1)", "fraction"),
    "U": ("unique tokens in the data", "tokens", "positive"),
    "M": ("token multiplier D/N", "tokens/parameter", "positive"),
    "e_bits": ("exponent bits of the number format", "bits", "nonnegative"),
    "m_bits": ("mantissa bits of the number format", "bits", "nonnegative"),
    "block": ("elements sharing one scaling factor", "elements", "positive"),
    # the training and post-training precision of Kumar et al. 2024 and Ouyang et al. 2024 (laws kumar,
    # kumar_ptq, ouyang_qid)
    "P_w": ("bits of the weights during training", "bits", "positive"),
    "P_a": ("bits of the activations during training", "bits", "positive"),
    "P_kv": ("bits of the attention keys and values during training", "bits", "positive"),
    "P_post": ("bits of the post-training quantisation", "bits", "positive"),
    "dL_ptq": ("loss increase from post-training quantisation", "nats/token", "positive"),
    "V": ("vocabulary size", "count", "positive"),
    "d_model": ("embedding width", "count", "positive"),
    "H": ("training characters", "characters", "positive"),
    "S1": ("forward area of the learning-rate schedule, sum of lr over steps", "lr x steps", "positive"),
    "S2": ("annealing area of the learning-rate schedule (with momentum)", "lr x steps", "nonnegative"),
    "err": ("downstream average top-1 error", "fraction", "nonnegative"),
    "seed": ("random seed", "integer", "any"),
}

_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL or Parquet file into a DataFrame (columns as in the file).

    A CSV, TSV or JSONL table's index is the file line each row starts on (index name :data:`LINE_INDEX`),
    so that :func:`row_label` names it in messages; a Parquet or JSON table keeps its 0-based row index."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist.")
    if p.is_dir():
        raise DataError(f"data file {str(p)!r} is a directory, expected a CSV, TSV, JSONL or Parquet file.")
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise DataError(invalid(f"The extension of data file {str(p)!r}", p.suffix,
                                "one of .csv, .tsv, .jsonl, .json, .parquet"))
    if p.stat().st_size == 0:
        raise DataError(f"data file {str(p)!r} is empty.")
    lines: list[int] | None = None
    if kind in ("csv", "tsv"):
        lines = check_fields(p, "," if kind == "csv" else "\t", kind)
    elif kind == "jsonl":
        lines = _check_json_lines(p)
    try:
        if kind == "csv":
            df = pd.read_csv(p, index_col=False)
        elif kind == "tsv":
            df = pd.read_csv(p, sep="\t", index_col=False)
        elif kind == "jsonl":
            df = pd.read_json(p, lines=True)
        elif kind == "json":
            df = pd.DataFrame(json.loads(p.read_text()))
        else:
            df = pd.read_parquet(p)
    except (ValueError, TypeError, RecursionError, pd.errors.ParserError, pd.errors.EmptyDataError, ImportError,
            OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not read {str(p)!r} as {kind}: {first}") from None
    if df.empty:
        raise DataError(f"data file {str(p)!r} has no rows.")
    return df if lines is None else label_by_line(df, lines)


def label_by_line(df: pd.DataFrame, lines: Sequence[int]) -> pd.DataFrame:
    """``df`` with each row labelled by the file line its record starts on (``lines``: :func:`check_fields`'s),
    index name :data:`LINE_INDEX`; where the readers disagree on the records (another count), the 0-based rows."""
    if len(lines) == len(df):
        df.index = pd.Index(lines, name=LINE_INDEX)
    return df


def check_fields(p: Path, delimiter: str, kind: str) -> list[int]:
    """Every record of a CSV/TSV file has the header's field count (pandas would otherwise take a row with
    one field more than the header as an index and shift every column); blank lines are skipped, as pandas
    skips them. A file whose every line ends in the same trailing delimiter is consistent and passes. A
    header that names a column twice is refused (pandas would read the first and rename the second).
    Returns the line each data record starts on (1-based; a quoted field may span lines)."""
    starts: list[int] = []
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header: list[str] | None = None
            header_line = 1
            end = 0   # the line the previous record (or blank line) ended on
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:
                    continue
                if header is None:
                    header, header_line = row, reader.line_num
                    names = list(header)
                    twice = next((h for i, h in enumerate(names) if h and h in names[:i]), None)
                    if twice is not None:   # pandas would rename the second 'loss' to 'loss.1' and read the first
                        first, second = [i + 1 for i, h in enumerate(names) if h == twice][:2]
                        raise DataError(f"{kind} file {str(p)!r}: the header (line {header_line}) names the column "
                                        f"{twice!r} twice (fields {first} and {second}); every column needs a name "
                                        "of its own.")
                    continue
                if len(row) != len(header):
                    hint = ""
                    if len(row) == len(header) + 1 and row[-1] == "":
                        hint = " (a trailing delimiter?)"
                    elif len(row) + 1 == len(header) and header[-1] == "":
                        hint = " (the header ends in a delimiter?)"
                    raise DataError(
                        f"{kind} file {str(p)!r}: the row on line {reader.line_num} has {len(row)} fields, the header "
                        f"(line {header_line}) has {len(header)}{hint}; every row must have the header's field count.")
                starts.append(start)
    except UnicodeDecodeError as exc:
        raise DataError(f"could not read {str(p)!r} as {kind}: it is not UTF-8 text (byte {exc.start}).") from None
    except csv.Error as exc:
        line = f" on line {reader.line_num}" if "reader" in locals() else ""
        raise DataError(f"could not read {str(p)!r} as {kind}{line}: {exc}") from None
    return starts


class _Row(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once (``json`` keeps the last)."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__(items)
        keys = [k for k, _ in items]
        self.twice = [k for j, k in enumerate(keys) if k in keys[:j]]


def _check_json_lines(p: Path) -> list[int]:
    """Every non-blank line of a JSONL file is one JSON object (a row: column -> value); returns their lines."""
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"could not read {str(p)!r} as jsonl: it is not UTF-8 text (byte {exc.start}).") from None
    rows: list[int] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rows.append(i)
        try:
            row = json.loads(line, object_pairs_hook=_Row)
        except (ValueError, RecursionError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"jsonl file {str(p)!r}: line {i} is not valid JSON ({msg}).") from None
        if not isinstance(row, dict):
            raise DataError(f"jsonl file {str(p)!r}: line {i} is a JSON {type(row).__name__}, expected an object "
                            "of column: value.")
        if isinstance(row, _Row) and row.twice:   # json keeps the last value of a key given twice, silently
            raise DataError(f"jsonl file {str(p)!r}: line {i} gives the column {row.twice[0]!r} twice; every column "
                            "once per row.")
    return rows


def parse_assignments(items: Iterable[str], what: str = "column mapping") -> dict[str, str]:
    """Parse ``COL=SOURCE`` strings into a dict (the value may itself contain '='). A name given twice is an
    error (``--fix E=1 --fix E=2``, ``--at N=1 --at N=2``): a dict would silently keep the last."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise DataError(invalid(f"The {what} argument", item, "of the form COL=SOURCE"))
        key, value = item.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key or not value:
            raise DataError(invalid(f"The {what} argument", item, "of the form COL=SOURCE"))
        if key in out:
            raise DataError(invalid(f"The {what} option", key, f"each name given once (got {key}={out[key]} and "
                                    f"{key}={value})"))
        out[key] = value
    return out


def apply_map(df: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Add canonical columns from file columns or expressions.

    A SOURCE that names a column of ``df`` is copied; anything else is evaluated as an expression
    over the columns (:mod:`.expr`). A SOURCE that is neither is an error naming it.
    """
    out = df.copy()
    for col, source in mapping.items():
        if col not in COLUMNS:
            raise DataError(invalid(f"The column mapping target {col!r}", col, f"a canonical column, one of {sorted(COLUMNS)}"))
        if source in df.columns:
            out[col] = df[source]
            continue
        label = f"The column mapping {col}={source!r}"
        value = Expression(source, label=label).evaluate(df)
        out[col] = _broadcast(value, len(df), label)
    return out


def _broadcast(value: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.full(n, arr[()])
    if arr.shape != (n,):
        raise DataError(f"{what} gives {arr.size} values for {n} rows.")  # pragma: no cover  (never, by construction)
    return arr


def apply_where(df: pd.DataFrame, where: str | None, what: str = "filter") -> pd.DataFrame:
    """Keep the rows selected by a boolean expression (``C < 1e21``; the language of :mod:`.expr`)."""
    if not where:
        return df
    mask = _broadcast(Expression(where, what).evaluate(df), len(df), f"The {what} {where!r}")
    if mask.dtype != bool:
        raise DataError(invalid(f"The {what}", where, "a true/false expression over the columns, e.g. 'C < 1e21'"))
    return df[mask]


def near_optimal(df: pd.DataFrame, k: int, *, by: str = "budget_flops", target: str = "loss") -> pd.DataFrame:
    """The ``k`` rows of lowest ``target`` in each group of equal ``by`` (an IsoFLOP profile's points
    nearest its minimum), in their original order.

    Chinchilla's additive form fits the compute-optimal frontier but not the far ends of an IsoFLOP
    profile: small models trained far past their optimum saturate faster than ``B / D^beta`` allows
    (in this project's ladders such points sat 3-6% above a fit to every point), and those points pull
    the fitted ``E`` and exponents. A fit meant to extrapolate the frontier can use the frontier only.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(invalid("The near-optimal count", k, "a whole number of points per budget, >= 1"))
    for col in (by, target):
        if col not in df.columns:
            raise DataError(f"near-optimal selection needs the column {col!r}; the data has {list(df.columns)}.")
    missing = df[by].isna() | (df[by] == 0)        # a store's budget_flops is 0 for a run without a budget
    if missing.any():
        raise DataError(f"near-optimal selection groups by {by!r}, but {int(missing.sum())} rows have none "
                        "(empty or 0); select IsoFLOP runs with a row filter, or map the column.")
    rank = df.groupby(by, sort=False)[target].rank(method="first")
    return df[rank <= k]


def derive_standard(df: pd.DataFrame) -> pd.DataFrame:
    """Fill the canonical columns that follow from others: ``C = 6 N D`` and ``D = C / (6 N)``.

    Only ``N`` is used for these conversions; the explicit counts (``N_total`` ...) are never guessed.
    """
    out = df
    if "N" in out and "D" in out and "C" not in out:
        out = out.assign(C=6.0 * _numeric(out["N"]) * _numeric(out["D"]))
    if "N" in out and "C" in out and "D" not in out:
        out = out.assign(D=_numeric(out["C"]) / (6.0 * _numeric(out["N"])))
    return out


def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def validate(df: pd.DataFrame, columns: Sequence[str], *, source: str = "data") -> pd.DataFrame:
    """Check that ``columns`` exist and hold finite numbers meeting their constraints.

    Returns a DataFrame whose named columns are float64. The first problem raises a
    :class:`DataError` naming the column, the row and the value.
    """
    if df.empty:
        raise DataError(f"{source} has no rows (after filtering).")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{source} lacks column(s) {missing} (columns present: {list(df.columns)}); map them "
            f"({missing[0]}=SOURCE).")
    out = df.copy()
    for col in columns:
        raw = out[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            row = bad.idxmax()
            raise DataError(invalid(f"Column {col!r} of {source} ({row_label(out, row)})", raw.loc[row], "a number"))
        arr = values.to_numpy(dtype=float)
        nonfinite = ~np.isfinite(arr)
        if nonfinite.any():
            i = int(np.argmax(nonfinite))
            raise DataError(invalid(f"Column {col!r} of {source} ({row_label(out, out.index[i])})",
                                    _pretty(arr[i]), "a finite number"))
        constraint = COLUMNS.get(col, ("", "", "any"))[2]
        bad_mask = _violates(arr, constraint)
        if bad_mask is not None and bad_mask.any():
            i = int(np.argmax(bad_mask))
            expected = {"positive": "a positive number", "nonnegative": "a non-negative number",
                        "fraction": "a fraction in [0, 1)", "integer": "an integer"}[constraint]
            unit = COLUMNS[col][1]
            unit = "" if unit == "1" else f" ({unit})"   # a dimensionless column read "Column 'lr' (1)"
            raise DataError(invalid(f"Column {col!r}{unit} of {source} ({row_label(out, out.index[i])})",
                                    _pretty(arr[i]), expected))
        out[col] = arr
    return out


def _violates(arr: np.ndarray, constraint: str) -> np.ndarray | None:
    if constraint == "positive":
        return arr <= 0
    if constraint == "nonnegative":
        return arr < 0
    if constraint == "fraction":
        return (arr < 0) | (arr >= 1)
    if constraint == "integer":
        return np.asarray(arr != np.round(arr))
    return None


def _pretty(x: float) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return float("nan")
    return float(x)


def load(path: str | Path, *, mapping: Mapping[str, str] | None = None, where: str | None = None) -> pd.DataFrame:
    """Read a file, map its columns onto canonical ones, derive C or D, and filter rows."""
    df = read_table(path)
    if mapping:
        df = apply_map(df, mapping)
    df = derive_standard(df)
    return apply_where(df, where)
