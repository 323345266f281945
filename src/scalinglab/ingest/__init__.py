"""Importing runs from other experiment trackers into the run store: W&B, TensorBoard, MLflow.

``scalinglab runs import PATH --from wandb|tensorboard|mlflow --store runs.db`` reads PATH with one
reader (:mod:`.wandb`, :mod:`.tensorboard`, :mod:`.mlflow`: each returns :class:`~.source.SourceRun`
objects and needs nothing beyond NumPy, pandas and the standard library), maps every run's keys onto
the store's fields (:mod:`.mapping`: ``--map``, ``--run-fields``, ``--run-filter``) and writes the
runs in one transaction under the store's writer lock (:meth:`Store.add_imported`, with their
provenance). Everything is read and mapped before the store is opened, so an input that cannot be
mapped is one error line and the store is unchanged (not even created). Importing the same source
again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError, invalid
from ..store.imported import ImportedRun
from . import mapping, mlflow, tensorboard, wandb
from .source import Series, SourceRun

READERS: dict[str, Callable[[Path], list[SourceRun]]] = {
    "wandb": wandb.read, "tensorboard": tensorboard.read, "mlflow": mlflow.read}


def read(path: str | Path, fmt: str) -> list[SourceRun]:
    """The runs of ``path`` as tracker ``fmt`` stored them."""
    reader = READERS.get(fmt)
    if reader is None:
        raise DataError(invalid("The source format", fmt, f"one of {sorted(READERS)}"))
    return reader(Path(path))


def run_fields(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ``--run-fields`` table: a ``run`` column (a tracker's run name or id) and run-field columns
    (``N``, ``N_nonembed``, ``batch``, ``lr_peak``, ``schedule`` ...; empty cells: not known)."""
    from ..table import read_table

    df = read_table(path)
    if "run" not in df.columns:
        raise DataError(f"run-fields file {str(path)!r} has no 'run' column; columns: {list(df.columns)}.")
    bad = [c for c in df.columns if c != "run" and c not in mapping.RUN_TARGETS]
    if bad:
        raise DataError(invalid(f"Column {bad[0]!r} of run-fields file {str(path)!r}", bad[0],
                                f"a run field, one of {list(mapping.RUN_TARGETS)}"))
    out: dict[str, dict[str, Any]] = {}
    for row in df.to_dict("records"):
        fields = {("N_total" if k == "N" else k): v for k, v in row.items() if k != "run" and v == v and v is not None}
        out[str(row["run"])] = fields
    return out


def prepare(path: str | Path, fmt: str, maps: Sequence[str] = (), run_filter: str | None = None,
            fields_file: str | Path | None = None) -> tuple[list[ImportedRun], list[str], list[str]]:
    """Read and map every selected run (nothing is written); returns the store runs, the readers' notes
    and their warnings (``run: text``: a sampled W&B history, a truncated event file)."""
    per_run = run_fields(fields_file) if fields_file is not None else None
    m = mapping.parse_map(maps, per_run)
    runs = mapping.select(read(path, fmt), run_filter)
    out = [mapping.to_imported(r, fmt, m) for r in runs]
    notes = [f"{r.name}: {n}" for r in runs for n in r.notes]
    warnings = [f"{r.name}: {w}" for r in runs for w in r.warnings]
    return out, notes, warnings


def import_into(store_path: str | Path, path: str | Path, fmt: str, maps: Sequence[str] = (),
                run_filter: str | None = None, fields_file: str | Path | None = None) -> dict[str, Any]:
    """Import ``path`` into the store at ``store_path`` (created if missing) under its writer lock;
    returns what was added, the runs, the notes and the warnings."""
    from ..store import Store

    runs, notes, warnings = prepare(path, fmt, maps, run_filter, fields_file)
    with Store(store_path) as store, store.writer_lock():
        result = store.add_imported(runs)
    return {"source": str(path), "format": fmt, "store": str(store_path), **result,
            "runs": [{"run": r.name, "run_id": r.run_id, "points": len(r.points), **r.fields} for r in runs],
            "notes": notes, "warnings": warnings}


__all__ = ["READERS", "Series", "SourceRun", "import_into", "prepare", "read", "run_fields"]
