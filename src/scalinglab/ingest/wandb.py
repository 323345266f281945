"""Weights & Biases exports: the panel CSV of the web UI and history dumps of the public API.

* **Panel CSV** ("Export panel data" / CSV): a ``Step`` column, then per run and metric a column
  ``<run> - <metric>``, with ``<run> - <metric>__MIN`` and ``__MAX`` beside it (the range of the points
  the panel merged into one; left out here, the plotted value is kept). Empty cells: no value at
  that step. One file holds several runs.
* **History dump** (``pd.DataFrame(run.history()).to_csv(...)`` or the rows of ``run.scan_history()``,
  as CSV, TSV, JSONL or Parquet): one file per run (its stem is the run's name and id), columns
  ``_step``, ``_runtime`` (seconds since the run started), ``_timestamp`` (seconds since the epoch) and
  one per logged key (``eval/loss``, ``train/tokens``, ``optim/lr``: keys may hold ``/``). A
  ``<stem>.config.json`` beside it (``run.config`` as JSON) gives run parameters (N, batch ...).

``Run.history()`` returns 500 rows *sampled* from the history by default (``samples=500``), while
``scan_history()`` returns every row: a file of exactly 500 rows whose steps are unevenly spaced is
reported as sampled (a warning: points are missing), any other as full.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, row_label
from ..table import check_fields, label_by_line, read_table
from .source import Series, SourceRun

#: rows ``Run.history()`` returns by default (wandb public API, ``samples=500``)
HISTORY_SAMPLES = 500
_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def _numeric(raw: pd.Series) -> tuple[np.ndarray, tuple[int, str] | None, np.ndarray]:
    """Values as floats (NaN where empty), the first non-number (row index, text), and the rows to keep."""
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    first = None
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        first = (i, str(raw.iloc[i]))
    keep = (~values.isna()).to_numpy()
    return values.to_numpy(dtype=np.float64), first, keep


def _steps(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    values, bad, keep = _numeric(df[col])
    if bad is not None or not keep.all() or np.any(values != np.round(values)):
        row = bad[0] if bad is not None else int(np.argmax(~keep | (values != np.round(values))))
        raise DataError(f"W&B file {str(path)!r}: column {col!r} {row_label(df, df.index[row])} is "
                        f"{df[col].iloc[row]!r}, expected a whole step number.")
    return values.astype(np.int64)


def _series(steps: np.ndarray, raw: pd.Series, wall: np.ndarray | None) -> Series:
    values, bad, keep = _numeric(raw)
    bad_step = None if bad is None else (int(steps[bad[0]]), bad[1])
    return Series.build(steps[keep], values[keep], None if wall is None else wall[keep], bad_step)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".csv", ".tsv"):     # every cell as text, so that no value is guessed
        tsv = path.suffix.lower() == ".tsv"
        try:
            df = pd.read_csv(path, sep="\t" if tsv else ",", dtype=str, keep_default_na=False, na_values=[""])
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"could not read W&B file {str(path)!r}: {str(exc).splitlines()[0]}") from None
        return label_by_line(df, check_fields(path, "\t" if tsv else ",", "tsv" if tsv else "csv"))
    return read_table(path)


def read_panel(path: Path, df: pd.DataFrame | None = None) -> list[SourceRun]:
    """The runs of a panel CSV export (``df``: the file, when already read)."""
    df = _read(path) if df is None else df
    if "Step" not in df.columns:
        raise DataError(f"W&B panel export {str(path)!r} has no 'Step' column; columns: {list(df.columns)}.")
    steps = _steps(df, "Step", path)
    runs: dict[str, SourceRun] = {}
    for col in df.columns:
        if col == "Step" or col.endswith(("__MIN", "__MAX")):
            continue
        run, sep, metric = str(col).rpartition(" - ")
        if not sep:
            raise DataError(f"W&B panel export {str(path)!r}: column {col!r} is not '<run> - <metric>'.")
        r = runs.setdefault(run, SourceRun(run, run, str(path)))
        r.series[metric] = _series(steps, df[col], None)
    if not runs:
        raise DataError(f"W&B panel export {str(path)!r} has no '<run> - <metric>' column.")
    return list(runs.values())


def read_history(path: Path, df: pd.DataFrame | None = None) -> SourceRun:
    """One run from a history dump (see the module docstring), with a note saying sampled or full."""
    df = _read(path) if df is None else df
    if "_step" not in df.columns:
        raise DataError(f"W&B history {str(path)!r} has no '_step' column; columns: {list(df.columns)}.")
    steps = _steps(df, "_step", path)
    wall = None
    for col in ("_timestamp", "_runtime"):
        if col in df.columns:
            wall, _, keep = _numeric(df[col])
            wall = np.where(keep, wall, np.nan)
            break
    run = SourceRun(path.stem, path.stem, str(path))
    for col in df.columns:
        if str(col).startswith("_"):
            continue
        run.series[str(col)] = _series(steps, df[col], wall)
    gaps = np.diff(np.sort(steps))
    if len(df) == HISTORY_SAMPLES and gaps.size and np.unique(gaps).size > 1:
        run.warnings.append(f"sampled: exactly {HISTORY_SAMPLES} rows with uneven steps, as Run.history() returns by "
                         "default; points are missing: export with run.scan_history() for every row")
    else:
        run.notes.append(f"full: {len(df)} rows (as run.scan_history() returns)")
    config = path.with_name(path.stem + ".config.json")
    if config.exists():
        try:
            cfg = json.loads(config.read_text())
        except ValueError as exc:
            raise DataError(f"W&B config {str(config)!r} is not JSON: {exc}") from None
        for k, v in (cfg.items() if isinstance(cfg, dict) else ()):
            v = v.get("value", v) if isinstance(v, dict) else v      # run.config, or the files' {"value": ...}
            if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                run.params[str(k)] = str(v)
    return run


def read(path: Path) -> list[SourceRun]:
    """A panel CSV, a history dump, or a directory of history dumps (one file per run)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"W&B directory {str(path)!r} holds no history file ({', '.join(_SUFFIXES)}).")
        return [r for f in files for r in read(f)]
    if not path.exists():
        raise DataError(f"W&B export {str(path)!r} does not exist.")
    if path.stat().st_size == 0:
        raise DataError(f"W&B export {str(path)!r} is empty.")
    df = _read(path)
    head = list(df.columns)
    if "_step" in head:
        return [read_history(path, df)]
    if "Step" in head:
        return read_panel(path, df)
    raise DataError(f"{str(path)!r} is neither a W&B panel export (a 'Step' column) nor a history dump (a '_step' "
                    f"column); columns: {head}.")


__all__ = ["HISTORY_SAMPLES", "read", "read_history", "read_panel"]
