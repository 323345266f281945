"""Checking an output path (``--out``) before a command does any work, so that a path it cannot write is
one line (exit code 2) naming the option and the path, and nothing has been written anywhere.

:func:`check_out_file` is for a file a command writes (``fit --out FIT.json``), :func:`check_out_dir`
for a directory it creates if missing and writes into (``report --out``, ``quickstart --out``). Both
refuse a path under an existing file, an existing path of the wrong kind, a missing parent (for a file)
and a directory the user may not write (``os.access``; root may write anywhere, so the write itself is
also wrapped by the command: :func:`write_error`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError, invalid

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["check_out_dir", "check_out_file", "table_suffix", "write_error", "write_table"]

#: the table writers of ``--out`` by file extension
TABLE_WRITERS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".pq")


def _nearest_existing(p: Path) -> Path:
    """``p`` or its nearest ancestor that exists (as anything: a file, a directory, a link)."""
    for q in (p, *p.parents):
        if os.path.lexists(q):
            return q
    return Path(".")


def _check_dir_writable(d: Path, option: str, out: str) -> None:
    if not d.is_dir():
        raise DataError(f"cannot write {option} {out!r}: {str(d)!r} is not a directory.")
    if not os.access(d, os.W_OK | os.X_OK):
        raise DataError(f"cannot write {option} {out!r}: directory {str(d)!r} is not writable.")


def check_out_file(out: str, option: str = "--out") -> None:
    """Raise DataError unless ``out`` names a file that can be written: its parent directory exists and
    is writable, and ``out`` is not a directory."""
    p = Path(out)
    if p.is_dir():
        raise DataError(f"cannot write {option} {out!r}: it is a directory.")
    parent = p.parent
    if not parent.exists():
        anc = _nearest_existing(parent)
        if not anc.is_dir():
            raise DataError(f"cannot write {option} {out!r}: {str(anc)!r} is not a directory.")
        raise DataError(f"cannot write {option} {out!r}: directory {str(parent)!r} does not exist.")
    _check_dir_writable(parent, option, out)
    if p.exists() and not os.access(p, os.W_OK):
        raise DataError(f"cannot write {option} {out!r}: the file is not writable.")


def check_out_dir(out: str, option: str = "--out") -> None:
    """Raise DataError unless ``out`` is a writable directory or one that can be created (its nearest
    existing ancestor is a writable directory)."""
    p = Path(out)
    if os.path.lexists(p):
        if not p.is_dir():
            raise DataError(f"cannot write {option} {out!r}: it exists and is not a directory.")
        _check_dir_writable(p, option, out)
        return
    anc = _nearest_existing(p.parent)
    _check_dir_writable(anc, option, out)


def write_error(exc: OSError, out: str, option: str = "--out") -> DataError:
    """The one-line error for an OSError met while writing ``out``."""
    return DataError(f"cannot write {option} {out!r}: {exc.strerror or exc}.")


def table_suffix(out: str, allowed: Sequence[str] = TABLE_WRITERS) -> str:
    """The lower-case extension of ``out`` if a table can be written in it (one of ``allowed``), else the
    one-line error naming it."""
    suffix = Path(out).suffix.lower()
    if suffix not in allowed:
        raise DataError(invalid(f"The extension of --out {out!r}", suffix, f"one of {list(allowed)}"))
    return suffix


def write_table(df: pd.DataFrame, out: str, suffix: str) -> None:
    """Write ``df`` to ``out`` in the format of ``suffix`` (:func:`table_suffix`); a missing Parquet engine
    or an OSError is one line."""
    try:
        if suffix in (".csv", ".tsv"):
            df.to_csv(out, index=False, sep="\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".json"):
            df.to_json(out, orient="records", lines=suffix == ".jsonl")
        else:
            df.to_parquet(out, index=False)
    except ImportError:
        raise DataError("writing Parquet needs pyarrow: pip install 'scalinglab[parquet]'.") from None
    except OSError as exc:
        raise write_error(exc, out) from None
