"""The SQLite run store: planned and finished runs, their curve points, and fits.

One file holds a ladder's whole history (DESIGN.md, "Store"). It uses WAL journaling, so readers
(``ladder status`` in another terminal) never block the writer. The process that owns the store is
its only writer: executors send points back to it, and it commits each point as soon as it arrives
(before the trainer checkpoints past it), so a crash loses at most the work since the last
checkpoint and a resumed run adds no duplicate points (``points`` has primary key ``(run_id, branch,
step)`` and inserts are ``INSERT OR IGNORE``). ``branch`` is 0 for a run's main line and k for the
point at the end of its k-th WSD cooldown branch (Hägele et al. 2024; ``ladder.schedules.branches``).

Opening a file that exists but is not a scalinglab store (not SQLite at all, or SQLite without the
``meta`` marker) raises :class:`StoreError` and leaves the file untouched. A store opened only to read
(``create=False``: ``ladder status``, ``runs list``, ``fit --store``, ``report``) is opened read-only
(SQLite's ``mode=ro``), so it can be read in a directory the user may not write; when SQLite cannot make
the WAL's shared-memory file (``-shm``) there and no write-ahead log is pending, it is read as
``immutable``. Every SQLite error (a damaged file, a read-only store being written, a lock) and every row
that does not parse (a broken config JSON) is a one-line StoreError naming the store, the run where
known, and what to do (``sqlite3 STORE .recover`` for a damaged file).

The run table (:meth:`Store.to_table`) uses these conventions:

* ``D`` is the training tokens seen at the point; ``loss`` is the held-out (eval) cross-entropy in
  nats per token.
* ``N`` is ``N_total`` (all parameters, embeddings included), the count Chinchilla (Hoffmann et al.
  2022) fits; ``N_nonembed`` (Kaplan et al. 2020) and ``N_nonzero`` are there for laws that use them.
* ``C`` is ``flops_full``, the trainer's cumulative count of training FLOPs including attention and
  the unembedding (``flops_per_token_full`` x ``D``); ``flops`` is the ``6 N``-style count without
  them. Both are kept so a law or a user can pick. A branch point's ``D``, ``C`` and ``flops`` are
  those at its own end step: what a run trained to that step and annealed there would have.
  Its ``budget_flops`` is the budget of the run it stands for when its run was merged from several
  (``branch_budgets``, ladder.merge), else its run's.
* ``branch`` says which line of a run a row is on (0 the main line, k the k-th cooldown branch).
  Which rows a fit sees is the ``points`` selection: ``final`` (the last main-line point of every
  done run), ``annealed`` (those, plus every branch point: each is the end of a learning-rate decay)
  or ``all``.
* ``parametrization`` is the run's ``sp``, ``mup`` or ``mus`` (``sp`` for runs stored before the
  field existed) and ``tau`` μS's residual fraction (NaN for ``sp`` and ``mup``), so a fit or a plot
  can group by them.
* Every field of a point beyond the fixed ``points`` columns (:data:`POINT_FIELDS`) is a per-point
  *metric* (the trainer's ``sparsity``, ``N_nonzero`` and sparse-FLOP counts such as
  ``flops_sparse_kernel`` and ``c_mul``; a branch point's ``decay_steps``), kept as JSON in
  ``points.metrics`` (migration ``0004_point_metrics``) and carried by the table as one column per
  metric name, after :data:`TABLE_COLUMNS`, in the order first seen (empty where a row lacks it). A
  metric named like a column of :data:`TABLE_COLUMNS` never replaces it: it appears as
  ``point_<name>`` (:data:`METRIC_PREFIX`), so the point's own ``N_nonzero`` is ``point_N_nonzero``
  beside the run's ``N_nonzero``. A list or dict metric appears as its JSON text.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import inspect
import json
import logging
import math
import os
import shlex
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ScalingLabError, StoreError, invalid
from ..runconfig import RunConfig
from .imported import ImportedRun, add_imported, imported_row
from .migrations import FORMAT, MIGRATIONS, SCHEMA_VERSION
from .precision_columns import PRECISION_COLUMNS, fp32_cells, precision_cells

log = logging.getLogger(__name__)

STATUSES = ("planned", "running", "done", "failed")
POINT_FIELDS = ("branch", "step", "tokens", "flops", "flops_full", "train_loss", "eval_loss", "lr",
                "wall_time")
_COUNT_FIELDS = ("N_total", "N_nonembed", "N_nonzero", "flops_per_token", "flops_per_token_full")
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the row selections of :meth:`Store.to_table`
POINT_SELECTIONS = ("final", "annealed", "all")
#: the prefix of a point metric's column in :meth:`Store.to_table` when its name is a table column
METRIC_PREFIX = "point_"
_METRIC_EXPECTED = "a number, bool, string or None, or a list or string-keyed dict of them (JSON)"

#: column order of :meth:`Store.to_table`
TABLE_COLUMNS = [
    "run", "status", "branch", "step", "D", "loss", "train_loss", "C", "flops", "flops_full", "N", "N_total",
    "N_nonembed", "N_nonzero", "S", "batch", "lr", "lr_step", "schedule", "seed", "budget_flops", "V",
    "context", "n_layer", "d_model", "n_head", "parametrization", "tau", "group", "wall_time", "target_tokens",
    "target_flops",
]


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _parametrization_cells(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The table's ``parametrization`` (sp | mup | mus; ``sp`` for a run stored before the field existed)
    and ``tau`` (μS's residual fraction; NaN for sp and mup, which have none) of a stored config."""
    par = cfg.get("parametrization") or {}
    if isinstance(par, str):
        par = {"name": par}
    name = str(par.get("name") or "sp")
    return {"parametrization": name, "tau": float(par.get("tau") or 0.0) if name == "mus" else math.nan}


def _sqlite_message(path: str, exc: sqlite3.Error, run: str | int | None = None) -> str:
    """One line for an SQLite error on the store at ``path``: what happened (SQLite's words), and what
    to do about it."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    where = f"store {path!r}" + (f" (run {run!r})" if run is not None else "")
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB" or "malformed" in text \
            or "not a database" in text:
        return (f"{where} is damaged (SQLite: {text}); recover what it holds with `sqlite3 {shlex.quote(path)} "
                ".recover | sqlite3 recovered.db` and use recovered.db, or restore the store from a copy.")
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return (f"{where} cannot be written (SQLite: {text}): the file or its directory is read-only; make "
                "both writable, or copy the store to a directory you may write.")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
        return f"{where} is locked by another process (SQLite: {text}); wait for it to finish, then try again."
    if name == "SQLITE_FULL":
        return f"{where} cannot grow: the disk is full (SQLite: {text}); free some space, then try again."
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return (f"{where} cannot be read or written (SQLite: {text}); check the disk, and the permissions of "
                "the file and its directory.")
    return f"{where}: SQLite error: {text}."


def _guarded(method: Callable[Concatenate[Store, _P], _R]) -> Callable[Concatenate[Store, _P], _R]:
    """A Store method whose SQLite errors are StoreErrors (:func:`_sqlite_message`), naming the run when
    the method's first argument is one."""
    takes_run = list(inspect.signature(method).parameters)[1:2] == ["run"]

    @functools.wraps(method)
    def wrapper(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            run = (args[0] if args else kwargs.get("run")) if takes_run else None
            raise StoreError(_sqlite_message(self.path, exc, run if isinstance(run, (str, int)) else None)) from None
    return wrapper


def _broken_row(path: str, what: str, exc: Exception) -> StoreError:
    """The error for a row the store holds but cannot parse (changed outside scalinglab)."""
    return StoreError(f"store {path!r}: {what} cannot be read ({type(exc).__name__}: {exc}); the store was "
                      f"changed outside scalinglab: fix or delete that row with `sqlite3 {shlex.quote(path)}`, or "
                      "restore the store from a copy.")


def _loads(path: str, text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise _broken_row(path, what, exc) from None


def _budget_of(cfg: dict[str, Any], branch: int) -> float:
    """The IsoFLOP budget of a point: a merged run's k-th cooldown branch has its own
    (``branch_budgets[k - 1]``, ladder.merge); other points have their run's ``budget_flops``."""
    own = cfg.get("branch_budgets") or ()
    if branch > 0 and branch <= len(own):
        return float(own[branch - 1])
    return float(cfg["budget_flops"])


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _jsonable(field: str, value: Any) -> Any:
    """A point metric as JSON holds it: numpy scalars become Python numbers, tuples lists; anything
    else JSON cannot hold exactly is a StoreError naming the field (``field[i]``, ``field.key``)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return _jsonable(field, value.item())
    if isinstance(value, (list, tuple)):
        return [_jsonable(f"{field}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(f"{field}.{k}", v) for k, v in value.items()}
    raise StoreError(invalid(f"Field {field!r} of a curve point", value, _METRIC_EXPECTED))


def _metrics_json(point: Mapping[str, Any]) -> str | None:
    """The JSON object of a point's fields beyond :data:`POINT_FIELDS`; None when it has none.

    NaN and +-Infinity are written as Python's json writes them (``NaN``, ``Infinity``), so they
    read back as the same floats."""
    metrics: dict[str, Any] = {}
    for key, value in point.items():
        if not isinstance(key, str):
            raise StoreError(invalid("A curve point's field name", key, "a string"))
        if key not in POINT_FIELDS:
            metrics[key] = _jsonable(key, value)
    return json.dumps(metrics) if metrics else None


def _metric_columns(names: Iterable[str]) -> dict[str, str]:
    """Metric name -> its column in the run table, in the order of ``names``: ``point_<name>`` for a
    name in :data:`TABLE_COLUMNS`, else the name itself, unless that is some ``point_<name>``: then it
    is prefixed again until free (so the point's ``N_nonzero`` is always ``point_N_nonzero``)."""
    names = list(names)
    prefixed = {n: METRIC_PREFIX + n for n in names if n in TABLE_COLUMNS}
    taken = set(TABLE_COLUMNS) | set(names) | set(prefixed.values())
    out: dict[str, str] = {}
    for name in names:
        col = prefixed.get(name, name)
        if name not in prefixed and name in prefixed.values():
            while col in taken:
                col = METRIC_PREFIX + col
            taken.add(col)
        out[name] = col
    return out


def _cell(value: Any) -> Any:
    """A metric's value in a table cell: a list or dict as its JSON text, anything else as it is."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table."""

    id: int
    name: str
    status: str
    config: RunConfig
    digest: str
    N_total: int | None
    N_nonembed: int | None
    N_nonzero: int | None
    target_tokens: int | None
    target_flops: float | None
    flops_per_token: float | None
    flops_per_token_full: float | None
    code_version: str | None
    host: str | None
    error: str | None
    created: str
    updated: str
    summary: dict[str, Any] | None
    attempts: int
    #: an imported run's provenance and known fields (``ingest``; migration ``0005_run_sources``), else None
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["config"] = self.config.to_dict()
        return d


class Store:
    """A scalinglab run store in one SQLite file (``":memory:"`` for a throwaway one).

    Parameters
    ----------
    path : the database file. A missing file is created (with ``create=True``); an existing one must
        be a scalinglab store.
    create : whether a missing file may be created (or an empty, 0-byte one made a store); ``False``
        makes a missing or empty file a StoreError and leaves it as it is (commands that only read,
        such as ``ladder status``).
    """

    def __init__(self, path: str | Path = ":memory:", *, create: bool = True) -> None:
        self.path = str(path)
        self._ids: dict[str, int] = {}
        memory = self.path == ":memory:"
        if not memory:
            p = Path(self.path)
            if p.is_dir():
                raise StoreError(f"store path {self.path!r} is a directory, expected a .db file.")
            if p.exists() and p.stat().st_size > 0:
                _check_is_store(p)
            elif p.exists() and not create:   # a read must not turn an empty file into a store
                raise StoreError(f"{self.path!r} is an empty file (0 bytes), not a scalinglab store; left "
                                 "unchanged (`scalinglab ladder run` makes a store there).")
            elif not p.exists():
                if not create:
                    raise StoreError(f"no store at {self.path!r} (run `scalinglab ladder run` to make one).")
                if not p.parent.exists():
                    raise StoreError(f"cannot create store {self.path!r}: directory {str(p.parent)!r} "
                                     "does not exist.")
        #: opened only to read (``create=False``): SQLite's ``mode=ro``, so nothing on disk changes
        self.read_only = not create and not memory
        try:
            if self.read_only:
                self._con = _connect_read_only(Path(self.path))
                self._con.row_factory = sqlite3.Row
                if self._pending_migrations():   # an older store: migrating it is a write
                    self._con.close()
                    self.read_only = False
            if not self.read_only:
                self._con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                            check_same_thread=False)
                self._con.row_factory = sqlite3.Row
                self._con.execute("PRAGMA foreign_keys = ON")
                if not memory:
                    self._con.execute("PRAGMA journal_mode = WAL")
                    # NORMAL in WAL mode: a committed transaction survives the process being killed
                    self._con.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self._con.close()
            raise StoreError(_sqlite_message(self.path, exc)) from None

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or (on any exception) none of it."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def _pending_migrations(self) -> bool:
        has = self._con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='migrations'").fetchone()
        applied = {r[0] for r in self._con.execute("SELECT name FROM migrations")} if has else set()
        return any(name not in applied for name, _ in MIGRATIONS)

    def _migrate(self) -> None:
        con = self._con
        has = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='migrations'").fetchone()
        applied = {r[0] for r in con.execute("SELECT name FROM migrations")} if has else set()
        known = [name for name, _ in MIGRATIONS]
        newer = sorted(applied - set(known))
        if newer:
            raise StoreError(f"store {self.path!r} has schema migration {newer[0]!r}, unknown to scalinglab "
                             f"{__version__}: it was written by a newer version.")
        for name, statements in MIGRATIONS:
            if name in applied:
                continue
            with self._tx():
                for sql in statements:
                    con.execute(sql)
                con.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (name, _now()))
                con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [("format", FORMAT), ("schema_version", str(known.index(name) + 1))])
                con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?)", (_now(),))
            log.debug("store %s: applied migration %s", self.path, name)

    @property
    @_guarded
    def schema_version(self) -> int:
        row = self._con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    @_guarded
    def migrations(self) -> list[str]:
        """Names of the applied migrations, in order."""
        return [r[0] for r in self._con.execute("SELECT name FROM migrations ORDER BY name")]

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the store's writer lock (a ``flock`` on ``<path>.lock``) for the duration.

        A second ``ladder run`` on the same store fails at once instead of interleaving writes. The
        operating system releases the lock when the process dies, even by SIGKILL.
        """
        if self.path == ":memory:":
            yield
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, one writer is then the user's responsibility
            yield
            return
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot take the writer lock of store {self.path!r}: cannot open {lock_path!r} "
                             f"({exc.strerror}); the store's directory must be writable.") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise StoreError(f"store {self.path!r} is being written by another process (pid {holder}); "
                                 "wait for it to finish or stop it.") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)   # closing the descriptor releases the lock

    # -- runs -----------------------------------------------------------------------------------
    @_guarded
    def add_planned(self, configs: Iterable[RunConfig],
                    describe: Callable[[RunConfig], Mapping[str, Any]] | None = None) -> list[str]:
        """Add runs as ``planned``; returns their names in order.

        Idempotent by name: a run already in the store with the same config digest is kept as it is
        (whatever its status); the same name with a different config is a StoreError, and then
        nothing is added. ``describe(config)`` (``ladder.train.describe``), when given, fills the
        parameter counts and FLOPs per token of new runs (and of old ones still lacking them).
        A config without a name gets ``run-<digest>``.
        """
        batch: dict[str, RunConfig] = {}
        for cfg in configs:
            if not isinstance(cfg, RunConfig):
                raise StoreError(invalid("Each planned run", type(cfg).__name__, "a RunConfig"))
            name = cfg.name or f"run-{cfg.digest()}"
            prev = batch.get(name)
            if prev is not None and prev.digest() != cfg.digest():
                raise StoreError(f"two different configs are both named {name!r}; run names must be unique.")
            batch[name] = cfg
        existing = {r["name"]: r for r in self._con.execute(
            "SELECT name, digest, N_total FROM runs WHERE name IN (SELECT value FROM json_each(?))",
            (json.dumps(list(batch)),))}
        for name, cfg in batch.items():
            old = existing.get(name)
            if old is not None and old["digest"] != cfg.digest():
                raise StoreError(f"run {name!r} is already in store {self.path!r} with a different config "
                                 f"(digest {old['digest']} there, {cfg.digest()} here); rename the run or use "
                                 "another store.")
        described = {name: dict(describe(cfg)) for name, cfg in batch.items()
                     if describe is not None and (name not in existing or existing[name]["N_total"] is None)}
        now = _now()
        with self._tx() as con:
            for name, cfg in batch.items():
                d = described.get(name, {})
                target_tokens = cfg.steps * cfg.batch_tokens
                fpt_full = d.get("flops_per_token_full")
                counts = [d.get(k) for k in _COUNT_FIELDS]
                target_flops = fpt_full * target_tokens if fpt_full else None
                if name not in existing:
                    stored = cfg if cfg.name == name else RunConfig.from_dict({**cfg.to_dict(), "name": name})
                    con.execute(
                        "INSERT INTO runs (name, status, config, digest, N_total, N_nonembed, N_nonzero, "
                        "flops_per_token, flops_per_token_full, target_tokens, target_flops, code_version, "
                        "created, updated) VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, json.dumps(stored.to_dict()), cfg.digest(), *counts, target_tokens, target_flops,
                         __version__, now, now))
                elif d:
                    con.execute(
                        "UPDATE runs SET N_total=?, N_nonembed=?, N_nonzero=?, flops_per_token=?, "
                        "flops_per_token_full=?, target_flops=? WHERE name=?",
                        (*counts, target_flops, name))
        return list(batch)

    def _id(self, run: str | int) -> int:
        if isinstance(run, bool):
            raise StoreError(invalid("A run", run, "a run name or id"))
        if isinstance(run, int):
            return run
        rid = self._ids.get(run)
        if rid is None:
            row = self._con.execute("SELECT id FROM runs WHERE name = ?", (run,)).fetchone()
            if row is None:
                raise StoreError(f"no run named {run!r} in store {self.path!r}.")
            rid = self._ids[run] = int(row[0])
        return rid

    @_guarded
    def get(self, run: str | int) -> RunRecord:
        """The record of one run, by name or id."""
        row = self._con.execute("SELECT * FROM runs WHERE id = ?", (self._id(run),)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run!r} in store {self.path!r}.")
        return _record(row, self.path)

    @_guarded
    def runs(self, status: str | Iterable[str] | None = None) -> list[RunRecord]:
        """Runs in the order they were planned, optionally only those with the given status(es)."""
        if status is None:
            rows = self._con.execute("SELECT * FROM runs ORDER BY id").fetchall()
        else:
            wanted = [status] if isinstance(status, str) else list(status)
            for s in wanted:
                if s not in STATUSES:
                    raise StoreError(invalid("The run status", s, f"one of {STATUSES}"))
            rows = self._con.execute(
                "SELECT * FROM runs WHERE status IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(wanted),)).fetchall()
        return [_record(r, self.path) for r in rows]

    @_guarded
    def run_configs(self) -> dict[str, RunConfig]:
        """The configs of the store's own runs by name, for rebuilding their learning-rate curves
        (``fit.anneal.add_store_areas``). Imported runs are left out: their config is a placeholder
        (one token per step, so ``steps`` is the run's whole token count) with no schedule to rebuild."""
        return {r.name: r.config for r in self.runs() if r.source is None}

    @_guarded
    def counts(self) -> dict[str, int]:
        """Number of runs in each status (every status present, zero included)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            out[status] = int(n)
        return out

    @_guarded
    def mark_running(self, run: str | int, *, host: str | None = None) -> None:
        """The executor has started (or restarted) the run; counts an attempt, clears any old error."""
        with self._tx() as con:
            con.execute("UPDATE runs SET status='running', host=COALESCE(?, host), error=NULL, "
                        "attempts=attempts+1, code_version=?, updated=? WHERE id=?",
                        (host, __version__, _now(), self._id(run)))

    @_guarded
    def mark_done(self, run: str | int, summary: Mapping[str, Any]) -> None:
        """The run finished; store the trainer's summary and the counts it reports."""
        summary = dict(summary)
        counts = [summary.get(k) for k in _COUNT_FIELDS]
        tokens = summary.get("tokens")
        fpt_full = summary.get("flops_per_token_full")
        with self._tx() as con:
            con.execute(
                "UPDATE runs SET status='done', error=NULL, summary=?, updated=?, "
                "N_total=COALESCE(?, N_total), N_nonembed=COALESCE(?, N_nonembed), "
                "N_nonzero=COALESCE(?, N_nonzero), flops_per_token=COALESCE(?, flops_per_token), "
                "flops_per_token_full=COALESCE(?, flops_per_token_full), "
                "target_tokens=COALESCE(?, target_tokens), target_flops=COALESCE(?, target_flops), "
                "host=COALESCE(?, host) WHERE id=?",
                (json.dumps(summary, default=str), _now(), *counts, tokens,
                 fpt_full * tokens if fpt_full and tokens else None, summary.get("host"), self._id(run)))

    @_guarded
    def mark_failed(self, run: str | int, error: str) -> None:
        """The run stopped with an error (kept, with its points, until it is run again)."""
        with self._tx() as con:
            con.execute("UPDATE runs SET status='failed', error=?, updated=? WHERE id=?",
                        (str(error), _now(), self._id(run)))

    # -- points ---------------------------------------------------------------------------------
    @_guarded
    def add_point(self, run: str | int, point: Mapping[str, Any]) -> bool:
        """Commit one curve point now; returns False if the run already had a point at that step (of
        that branch).

        ``point`` holds ``step`` and ``tokens`` and, optionally, ``branch`` (0, the main line, when
        absent; k for the end of the k-th cooldown branch), ``flops``, ``flops_full``, ``train_loss``,
        ``eval_loss``, ``lr``, ``wall_time`` (the fixed columns, :data:`POINT_FIELDS`). Every other key
        is a metric of the point, kept as JSON (``points.metrics``) and given back by :meth:`points`:
        a number (NaN and +-Infinity included), bool, string or None, or a list (a tuple is kept as a
        list) or string-keyed dict of them; numpy scalars are kept as Python numbers. Anything else
        is a StoreError naming the field, and nothing is written. A point already there (a resumed run
        reporting it again) keeps its first values, metrics included.
        """
        for key in ("step", "tokens"):
            if point.get(key) is None:
                raise StoreError(invalid("A curve point", dict(point), f"a mapping with a {key!r} value"))
        branch = point.get("branch", 0)
        if isinstance(branch, bool) or not isinstance(branch, int) or branch < 0:
            raise StoreError(invalid("The 'branch' of a curve point", branch,
                                     "a non-negative integer (0 for the main line)"))
        values = [branch, *(point.get(k) for k in POINT_FIELDS[1:]), _metrics_json(point)]
        cur = self._con.execute(
            f"INSERT OR IGNORE INTO points (run_id, {', '.join(POINT_FIELDS)}, metrics) "
            f"VALUES (?, {', '.join('?' * (len(POINT_FIELDS) + 1))})", (self._id(run), *values))
        return cur.rowcount == 1

    @_guarded
    def points(self, run: str | int, branch: int | None = 0) -> list[dict[str, Any]]:
        """A run's curve points by step: of its main line (``branch=0``), of one cooldown branch, or
        of every line (``branch=None``, ordered by branch, then step). Each is a dict of the fixed
        columns (:data:`POINT_FIELDS`) followed by the point's metrics, as :meth:`add_point` got them."""
        rows = self._con.execute(
            f"SELECT {', '.join(POINT_FIELDS)}, metrics FROM points WHERE run_id = ? "
            "AND (? IS NULL OR branch = ?) ORDER BY branch, step", (self._id(run), branch, branch))
        out = []
        for r in rows:
            d = dict(r)
            metrics = d.pop("metrics")
            out.append({**d, **(_loads(self.path, metrics, f"a point's metrics of run {run!r}") if metrics else {})})
        return out

    @_guarded
    def n_points(self) -> dict[str, int]:
        """Number of points of each run that has any, by run name."""
        return {r[0]: int(r[1]) for r in self._con.execute(
            "SELECT r.name, COUNT(*) FROM points p JOIN runs r ON r.id = p.run_id GROUP BY r.id")}

    # -- the run table --------------------------------------------------------------------------
    @_guarded
    def to_table(self, final: bool | None = None, *, points: str | None = None,
                 failed: bool = True) -> pd.DataFrame:
        """The canonical run table (see the module docstring for N, D, C, loss and branch).

        ``points`` selects the rows (one of :data:`POINT_SELECTIONS`):

        * ``"final"`` (the default): one row per *done* run, at the last evaluated step of its main
          line (for a WSD schedule the end of its decay, the only main-line point fully annealed);
        * ``"annealed"``: those rows plus the end point of every cooldown branch, of every run
          (a branch point is final once reported, even while its run goes on): for WSD runs with
          ``schedule.branches``, every point at the end of a decay (Hägele et al. 2024). The same as
          ``"final"`` when no run has branches;
        * ``"all"``: every curve point of every run and branch, with its ``status``, so partial curves
          can be inspected.

        ``failed=False`` leaves out every point of a run whose status is ``failed`` (a diverged or
        crashed run: its curve is no evidence for a law). Fits of a store's runs (``fit --store``,
        ``backtest --store``, ``report``) use it, so ``--points all`` fits no failed run's points; the
        default (``True``) keeps them, for inspecting and exporting partial curves. ``"final"`` never
        has them (only done runs have a final point).

        ``final=True`` / ``final=False`` (the older form) mean ``"final"`` / ``"all"``. Rows are in the
        order the runs were planned, then by step (a run's rows by D), then branch.

        The columns are :data:`TABLE_COLUMNS`, then one per metric of the selected rows' points (see
        the module docstring: a metric named like a table column is ``point_<name>``).
        """
        if final is not None and points is not None:
            raise StoreError(f"give either final={final!r} or points={points!r} to to_table, not both.")
        selection = points if points is not None else ("all" if final is False else "final")
        if selection not in POINT_SELECTIONS:
            raise StoreError(invalid("The 'points' selection", selection, f"one of {POINT_SELECTIONS}"))
        sql = ("SELECT r.name, r.status, r.config, r.N_total, r.N_nonembed, r.N_nonzero, r.target_tokens, "
               "r.target_flops, r.source, p.branch, p.step, p.tokens, p.flops, p.flops_full, p.train_loss, "
               "p.eval_loss, p.lr, p.wall_time, p.metrics FROM points p JOIN runs r ON r.id = p.run_id")
        last_of_done_run = ("(r.status = 'done' AND p.branch = 0 AND p.step = "
                            "(SELECT MAX(q.step) FROM points q WHERE q.run_id = r.id AND q.branch = 0))")
        where = []
        if selection == "final":
            where.append(last_of_done_run)
        elif selection == "annealed":
            where.append(f"({last_of_done_run} OR p.branch > 0)")
        if not failed:
            where.append("r.status != 'failed'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.id, p.step, p.branch"
        rows, metrics, formats = [], [], []
        for r in self._con.execute(sql):
            metrics.append(_loads(self.path, r["metrics"], f"a point's metrics of run {r['name']!r}")
                           if r["metrics"] else {})
            cfg = _loads(self.path, r["config"], f"the config of run {r['name']!r}")
            try:
                row = self._table_row(r, cfg)
                if r["source"]:
                    row.update(imported_row(_loads(self.path, r["source"], f"the source of run {r['name']!r}"), r))
                rows.append(row)
                formats.append(precision_cells(cfg) or fp32_cells(cfg))
            except (KeyError, TypeError, ValueError, IndexError, ScalingLabError) as exc:
                raise _broken_row(self.path, f"the config of run {r['name']!r}", exc) from None
        # the number-format columns, when some run quantises (store.precision_columns)
        fmt_columns = list(PRECISION_COLUMNS) if any(f["format"] != "fp32" for f in formats) else []
        if fmt_columns:
            for row, f in zip(rows, formats, strict=True):
                row.update(f)
        columns = _metric_columns(dict.fromkeys(k for m in metrics for k in m))
        for row, m in zip(rows, metrics, strict=True):
            row.update({columns[k]: _cell(v) for k, v in m.items()})
        df = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *fmt_columns, *columns.values()])
        df["branch"] = df["branch"].astype(int)
        for col in ("N", "N_total", "N_nonembed", "N_nonzero", "C", "flops", "flops_full", "loss",
                    "train_loss", "lr_step", "wall_time", "target_flops", "tau"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        return df

    @staticmethod
    def _table_row(r: sqlite3.Row, cfg: dict[str, Any]) -> dict[str, Any]:
        """One row of :meth:`to_table` (without its metrics) from a point's row and its run's config."""
        return {
            "run": r["name"], "status": r["status"], "branch": r["branch"], "step": r["step"],
            "D": r["tokens"],
            "loss": r["eval_loss"], "train_loss": r["train_loss"], "C": r["flops_full"],
            "flops": r["flops"], "flops_full": r["flops_full"], "N": r["N_total"],
            "N_total": r["N_total"], "N_nonembed": r["N_nonembed"], "N_nonzero": r["N_nonzero"],
            "S": cfg["sparsity"]["target"], "batch": cfg["batch_tokens"], "lr": cfg["lr"],
            "lr_step": r["lr"], "schedule": cfg["schedule"]["name"], "seed": cfg["seed"],
            "budget_flops": _budget_of(cfg, r["branch"]), "V": cfg["vocab"], "context": cfg["context"],
            "n_layer": cfg["n_layer"], "d_model": cfg["d_model"], "n_head": cfg["n_head"],
            **_parametrization_cells(cfg), "group": cfg["group"], "wall_time": r["wall_time"], "target_tokens": r["target_tokens"],
            "target_flops": r["target_flops"],
        }

    # -- fits -----------------------------------------------------------------------------------
    @_guarded
    def save_fit(self, fit: str | Mapping[str, Any] | Any) -> int:
        """Store a fit (its JSON text, its dict, or an object with ``to_json()``); returns its id."""
        if hasattr(fit, "to_json"):
            fit = fit.to_json()
        if isinstance(fit, str):
            try:
                data = json.loads(fit)
            except json.JSONDecodeError as exc:
                raise StoreError(f"the fit to save is not valid JSON: {exc}") from None
        else:
            data = dict(fit)
        if not isinstance(data, dict) or not isinstance(data.get("law"), str):
            raise StoreError(invalid("The fit to save", type(data).__name__, "a Fit JSON object with a 'law'"))
        with self._tx() as con:
            cur = con.execute("INSERT INTO fits (law, created, fit) VALUES (?, ?, ?)",
                              (data["law"], _now(), json.dumps(data)))
        return int(cur.lastrowid or 0)

    @_guarded
    def fits(self, law: str | None = None) -> list[dict[str, Any]]:
        """Saved fits, oldest first: ``{"id", "law", "created", "fit": <Fit JSON as a dict>}``."""
        rows = self._con.execute("SELECT * FROM fits WHERE ? IS NULL OR law = ? ORDER BY id", (law, law))
        return [{"id": r["id"], "law": r["law"], "created": r["created"],
                 "fit": _loads(self.path, r["fit"], f"saved fit {r['id']}")} for r in rows]

    # -- imported runs --------------------------------------------------------------------------
    @_guarded
    def add_imported(self, runs: Sequence[ImportedRun]) -> dict[str, int]:
        """Write runs read from another tracker (``runs import --from``; :mod:`.imported`); returns
        ``{"runs_added", "runs_unchanged", "points_added"}``. Idempotent: the same runs again add nothing."""
        return add_imported(self, runs)

    # -- merging stores -------------------------------------------------------------------------
    @_guarded
    def merge(self, other: Store) -> dict[str, int]:
        """Copy another store's runs and points into this one (``runs import``).

        Runs match by name and must have the same config digest (else StoreError, nothing changed).
        New runs are copied whole; for a run in both, missing points are added and a ``done`` status
        (with its summary and counts) wins over any other. Returns counts of what was added.
        """
        theirs = other.runs()
        mine = {r.name: r for r in self.runs()}
        for r in theirs:
            m = mine.get(r.name)
            if m is not None and m.digest != r.digest:
                raise StoreError(f"run {r.name!r} has a different config in {other.path!r} (digest {r.digest}) "
                                 f"than in {self.path!r} (digest {m.digest}); nothing was imported.")
        added_runs = added_points = updated = 0
        cols = [c for c in RunRecord.__dataclass_fields__ if c != "id"]
        with self._tx() as con:
            for r in theirs:
                m = mine.get(r.name)
                row = other._con.execute("SELECT * FROM runs WHERE id = ?", (r.id,)).fetchone()
                if m is None:
                    cur = con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                      [row[c] for c in cols])
                    rid = int(cur.lastrowid or 0)
                    added_runs += 1
                else:
                    rid = m.id
                    if r.status == "done" and m.status != "done":
                        keep = [c for c in cols if c not in ("name", "created", "attempts")]
                        con.execute(f"UPDATE runs SET {', '.join(c + '=?' for c in keep)} WHERE id=?",
                                    [row[c] for c in keep] + [rid])
                        updated += 1
                fields = [*POINT_FIELDS, "metrics"]
                pts = other._con.execute(f"SELECT {', '.join(fields)} FROM points WHERE run_id = ?",
                                         (r.id,)).fetchall()
                before = con.total_changes
                con.executemany(
                    f"INSERT OR IGNORE INTO points (run_id, {', '.join(fields)}) "
                    f"VALUES (?, {', '.join('?' * len(fields))})", [(rid, *tuple(p)) for p in pts])
                added_points += con.total_changes - before
            for f in other.fits():
                con.execute("INSERT INTO fits (law, created, fit) VALUES (?, ?, ?)",
                            (f["law"], f["created"], json.dumps(f["fit"])))
        self._ids.clear()
        return {"runs_added": added_runs, "runs_updated": updated, "points_added": added_points}


def _record(row: sqlite3.Row, path: str) -> RunRecord:
    d = dict(row)
    what = f"the config of run {d.get('name')!r}"
    try:
        d["config"] = RunConfig.from_dict(_loads(path, d["config"], what))
    except (ScalingLabError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise _broken_row(path, what, exc) from None
    d["summary"] = _loads(path, d["summary"], f"the summary of run {d.get('name')!r}") if d["summary"] else None
    d["source"] = _loads(path, d["source"], f"the source of run {d.get('name')!r}") if d.get("source") else None
    return RunRecord(**d)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path`` (``mode=ro``), which changes nothing on disk.

    With no write-ahead log beside the file (``<path>-wal``: no process is writing it, every commit is
    in the file itself) it is read as ``immutable``: SQLite then needs no shared-memory file
    (``<path>-shm``), so it reads in a directory the user may not write, and leaves no ``-wal`` or
    ``-shm`` behind. With a log (a ``ladder run`` writing now, or one that was killed) it is read through
    the log, which needs the ``-shm`` file: where SQLite cannot make it (SQLITE_READONLY_DIRECTORY) an
    empty log is ignored (immutable again), a pending one is a StoreError saying so. Other SQLite errors
    are raised as they are."""
    uri = path.resolve().as_uri() + "?mode=ro"
    wal = Path(str(path) + "-wal")
    if os.path.lexists(wal):
        con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=False)
        try:
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError as exc:
            con.close()
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY":
                raise
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(f"store {str(path)!r} cannot be read here: its directory {str(path.parent)!r} is "
                             f"not writable and it has a pending write-ahead log ({str(wal)!r}), which SQLite "
                             "reads only through a shared-memory file (-shm) it must create there; ask for write "
                             "access to the directory, or copy the store with its -wal file to one you may write.")
    con = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        con.close()
        raise
    return con


def _check_is_store(path: Path) -> None:
    """Raise StoreError unless ``path`` is a scalinglab store; reads only, writes nothing.

    The error says what is wrong: not SQLite at all, or SQLite without the scalinglab marker (a foreign
    file), or a store SQLite cannot read (damaged or truncated: ``sqlite3 .recover``; unreadable where it
    is: the permissions)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read store {str(path)!r}: {exc.strerror}") from None
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{str(path)!r} is not a scalinglab store (not an SQLite database); left unchanged.")
    try:
        con = _connect_read_only(path)
        try:
            has_meta = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() if has_meta else None
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(_sqlite_message(str(path), exc) + " The file was left unchanged.") from None
    if row is None or row[0] != FORMAT:
        raise StoreError(f"{str(path)!r} is an SQLite database but not a scalinglab store (no scalinglab "
                         "meta marker); left unchanged.")


__all__ = ["METRIC_PREFIX", "POINT_FIELDS", "POINT_SELECTIONS", "SCHEMA_VERSION", "STATUSES", "TABLE_COLUMNS",
           "RunRecord", "Store"]
