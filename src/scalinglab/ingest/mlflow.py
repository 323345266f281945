"""MLflow tracking data, read with the standard library: the ``mlruns/`` file store and the SQLite database.

* **File store** (``mlruns/``): ``<experiment id>/meta.yaml`` (``name: ...``) and, per run,
  ``<experiment id>/<run id>/meta.yaml`` (``run_id``, ``run_name``, ``lifecycle_stage``),
  ``metrics/<key>`` (one line per logged value, ``timestamp value step``, timestamp in milliseconds;
  a key with ``/`` is a path of folders), ``params/<key>`` (the value as text) and ``tags/<key>``
  (``tags/mlflow.runName`` the run's name). PATH may be ``mlruns/``, one experiment's folder or one run's.
* **SQLite tracking database** (``sqlite:///mlflow.db``, the default store since MLflow 3.7): tables
  ``experiments`` (``experiment_id``, ``name``), ``runs`` (``run_uuid``, ``name``, ``experiment_id``,
  ``lifecycle_stage``), ``metrics`` (``key``, ``value``, ``timestamp``, ``run_uuid``, ``step``,
  ``is_nan``: the whole history), ``params`` and ``tags`` (``key``, ``value``, ``run_uuid``).

Runs come in the order they started (``start_time``). Deleted runs (``lifecycle_stage: deleted``, in
``.trash`` too) are left out. Params and tags are the
run's parameters (``--map N=n_params``). A run's name is its ``mlflow.runName`` tag, else its
``run_name``, else its id.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from pathlib import Path

from ..errors import DataError
from .source import Series, SourceRun

_SQLITE_MAGIC = b"SQLite format 3\x00"
_TABLES = ("runs", "metrics", "params", "experiments")


def _meta(path: Path) -> dict[str, str]:
    """The top-level ``key: value`` lines of an MLflow meta.yaml (all this reader needs of YAML)."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read MLflow {str(path)!r}: {exc}") from None
    for line in text.splitlines():
        if line[:1].isspace() or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def _number(text: str, path: Path, line: int, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"MLflow metric file {str(path)!r} line {line}: the {what} {text!r} is not a number.") from None


def _metric_file(path: Path) -> Series:
    steps, values, wall = [], [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            raise DataError(f"MLflow metric file {str(path)!r} line {i} is {line!r}, expected 'timestamp value step'.")
        ts = _number(parts[0], path, i, "timestamp")
        v = _number(parts[1], path, i, "value")
        st = _number(parts[2], path, i, "step") if len(parts) == 3 else 0.0
        if st != math.floor(st):
            raise DataError(f"MLflow metric file {str(path)!r} line {i}: the step {parts[2]!r} is not a whole number.")
        steps.append(int(st))
        values.append(v)
        wall.append(ts / 1000.0)
    return Series.build(steps, values, wall)


def _texts(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8").strip()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _file_run(d: Path) -> SourceRun | None:
    meta = _meta(d / "meta.yaml")
    if meta.get("lifecycle_stage") == "deleted":
        return None
    run_id = meta.get("run_id") or meta.get("run_uuid") or d.name
    tags = _texts(d / "tags")
    name = tags.get("mlflow.runName") or meta.get("run_name") or run_id
    run = SourceRun(name, run_id, str(d))
    metrics = d / "metrics"
    if metrics.is_dir():
        for p in sorted(metrics.rglob("*")):
            if p.is_file():
                run.series[p.relative_to(metrics).as_posix()] = _metric_file(p)
    run.params = {**{f"tags.{k}": v for k, v in tags.items()}, **_texts(d / "params")}
    return run


def _is_run(d: Path) -> bool:
    return (d / "meta.yaml").is_file() and any((d / s).is_dir() for s in ("metrics", "params", "tags"))


def read_file_store(path: Path) -> list[SourceRun]:
    """The runs of a file store (``mlruns/``, an experiment folder or a run folder)."""
    if _is_run(path):
        candidates = [path]
    else:
        exps = [path] if (path / "meta.yaml").is_file() else sorted(
            p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "models")
        candidates = [r for e in exps for r in sorted(e.iterdir()) if r.is_dir() and _is_run(r)]
    starts = {d: _meta(d / "meta.yaml").get("start_time", "") for d in candidates}
    candidates.sort(key=lambda d: (len(starts[d]), starts[d], d.name))     # in the order they were started
    runs = [r for r in (_file_run(d) for d in candidates) if r is not None]
    if not runs:
        raise DataError(f"MLflow store {str(path)!r} holds no run (expected <experiment>/<run>/meta.yaml with "
                        "metrics/, params/ or tags/).")
    return runs


def read_database(path: Path) -> list[SourceRun]:
    """The runs of an SQLite tracking database (read-only)."""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"cannot open MLflow database {str(path)!r}: {exc}") from None
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise DataError(f"{str(path)!r} is an SQLite database but not an MLflow tracking store (no table "
                            f"{missing[0]!r}).")
        runs = {}
        for run_id, name, stage in con.execute("SELECT run_uuid, name, lifecycle_stage FROM runs ORDER BY start_time, "
                                               "run_uuid"):
            if stage != "deleted":
                runs[run_id] = SourceRun(name or run_id, run_id, f"{path}#{run_id}")
        raw: dict[tuple[str, str], tuple[list[int], list[float], list[float]]] = defaultdict(lambda: ([], [], []))
        for key, value, ts, run_id, step, is_nan in con.execute(
                "SELECT key, value, timestamp, run_uuid, step, is_nan FROM metrics ORDER BY run_uuid, key, step, "
                "timestamp"):
            if run_id in runs:
                s, v, w = raw[(run_id, key)]
                s.append(int(step))
                v.append(float("nan") if is_nan else float(value))
                w.append(float(ts) / 1000.0)
        for (run_id, key), (s, v, w) in raw.items():
            runs[run_id].series[key] = Series.build(s, v, w)
        if "tags" in tables:
            for key, value, run_id in con.execute("SELECT key, value, run_uuid FROM tags"):
                if run_id in runs:
                    runs[run_id].params[f"tags.{key}"] = str(value)
                    if key == "mlflow.runName" and value:
                        runs[run_id].name = str(value)
        for key, value, run_id in con.execute("SELECT key, value, run_uuid FROM params"):
            if run_id in runs:
                runs[run_id].params[key] = str(value)
    except sqlite3.Error as exc:
        raise DataError(f"cannot read MLflow database {str(path)!r}: {exc}") from None
    finally:
        con.close()
    if not runs:
        raise DataError(f"MLflow database {str(path)!r} holds no run.")
    return list(runs.values())


def read(path: Path) -> list[SourceRun]:
    """A file store (a directory) or an SQLite tracking database (a file)."""
    if not path.exists():
        raise DataError(f"MLflow store {str(path)!r} does not exist.")
    if path.is_dir():
        return read_file_store(path)
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise DataError(f"{str(path)!r} is neither an MLflow file store (a directory) nor an SQLite tracking "
                        "database.")
    return read_database(path)


__all__ = ["read", "read_database", "read_file_store"]
