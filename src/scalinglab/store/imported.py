"""Runs imported from another experiment tracker (W&B, TensorBoard, MLflow: :mod:`scalinglab.ingest`).

An imported run has no scalinglab run config: only what its tracker recorded. The store keeps it as a
``done`` run whose ``source`` column (migration ``0005_run_sources``) holds, as JSON, its provenance
(``format``, ``path``, ``run_id``: the tracker's id, ``metric_keys``: every key the tracker logged) and
the run fields that were known (:data:`RUN_FIELDS`: N counts, batch, peak lr, schedule ...). Its
``config`` column holds a placeholder :class:`~scalinglab.runconfig.RunConfig` (group ``imported``)
that nothing reads back: the run table (:meth:`Store.to_table`) takes the config columns of an imported
run from its known fields (empty where unknown), and its ``C`` from the points' ``flops`` (6 N D) when
the tracker gave no full count. The ``digest`` is a hash of the format, the original id and the fields,
so importing the same source again finds every run unchanged and adds no point (``INSERT OR IGNORE``
on ``(run, branch, step)``), and an import of the same run with other fields is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..runconfig import RunConfig

if TYPE_CHECKING:
    from .sqlite import Store

#: run-level fields an import may know -> (unit, the run-table column it fills)
RUN_FIELDS: dict[str, tuple[str, str]] = {
    "N_total": ("parameters", "N_total"), "N_nonembed": ("parameters", "N_nonembed"),
    "N_nonzero": ("parameters", "N_nonzero"), "batch": ("tokens per optimizer step", "batch"),
    "lr": ("peak learning rate", "lr"), "schedule": ("schedule name", "schedule"), "seed": ("integer", "seed"),
    "S": ("sparsity fraction", "S"), "budget_flops": ("FLOPs", "budget_flops"), "V": ("vocabulary size", "V"),
    "context": ("tokens per sequence", "context"), "n_layer": ("layers", "n_layer"),
    "d_model": ("width", "d_model"), "n_head": ("heads", "n_head"),
}
_TEXT_FIELDS = {"schedule"}


@dataclass(frozen=True)
class ImportedRun:
    """One run read from a tracker, ready for the store.

    ``points`` are dicts of the store's point fields (``step``, ``tokens``, ``eval_loss``, ``train_loss``,
    ``lr``, ``wall_time``, ``flops``) plus any metrics (other logged keys, by their original names)."""

    name: str
    format: str
    path: str
    run_id: str
    metric_keys: tuple[str, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    points: Sequence[Mapping[str, Any]] = ()

    def source(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "run_id": self.run_id,
                "metric_keys": list(self.metric_keys), "fields": dict(self.fields)}

    def digest(self) -> str:
        ident = {"format": self.format, "run_id": self.run_id, "fields": dict(self.fields)}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]

    def config(self) -> RunConfig:
        """The placeholder config the ``runs.config`` column needs (never shown: see the module docstring)."""
        tokens = max([int(p["tokens"]) for p in self.points] + [1])
        lr = self.fields.get("lr")
        return RunConfig(name=self.name, n_layer=1, d_model=1, n_head=1, context=1, vocab=1, tokens=tokens,
                         batch_tokens=1, lr=float(lr) if isinstance(lr, (int, float)) and lr > 0 else 1.0,
                         corpus=f"imported:{self.format}", group="imported", evals=1, eval_tokens=1)


def imported_row(source: Mapping[str, Any], r: Mapping[str, Any]) -> dict[str, Any]:
    """The run-table columns of an imported run's point ``r`` that come from its known fields."""
    known = source.get("fields") or {}
    out: dict[str, Any] = {col: known.get(name) for name, (_, col) in RUN_FIELDS.items()
                           if not name.startswith("N_")}
    out["budget_flops"] = float(known.get("budget_flops") or 0.0)
    out["group"] = "imported"
    out["target_tokens"] = None
    if r["flops_full"] is None:
        out["C"] = r["flops"]
    return out


def add_imported(store: Store, runs: Sequence[ImportedRun]) -> dict[str, int]:
    """Write imported runs into ``store`` in one transaction (all or nothing); see the module docstring.

    A run name already in the store must be the same run of the same tracker with the same fields (then
    only its missing points are added); anything else is a StoreError and nothing is written."""
    from .sqlite import _metrics_json, _now, POINT_FIELDS   # noqa: I001  (sqlite imports this module)

    names: dict[str, ImportedRun] = {}
    for run in runs:
        if run.name in names:
            other = names[run.name]
            raise StoreError(f"two imported runs are both named {run.name!r} ({other.run_id!r} and {run.run_id!r}); "
                             "select one of them, or import them into separate stores.")
        names[run.name] = run
    existing = {}
    for run in runs:
        row = store._con.execute("SELECT id, digest, source FROM runs WHERE name = ?", (run.name,)).fetchone()
        if row is None:
            continue
        if row["source"] is None:
            raise StoreError(f"run {run.name!r} of store {store.path!r} is a scalinglab run, not an import of "
                             f"{run.format} run {run.run_id!r}; nothing was imported (use another store).")
        src = json.loads(row["source"])
        if (src.get("format"), src.get("run_id")) != (run.format, run.run_id):
            raise StoreError(f"run {run.name!r} of store {store.path!r} was imported from {src.get('format')} run "
                             f"{src.get('run_id')!r}, not {run.format} run {run.run_id!r}; nothing was imported.")
        if row["digest"] != run.digest():
            raise StoreError(f"run {run.name!r} of store {store.path!r} was imported with other fields "
                             f"({src.get('fields')}, now {dict(run.fields)}); nothing was imported (use another "
                             "store, or the same fields as before).")
        existing[run.name] = int(row["id"])
    added = points = 0
    now = _now()
    with store._tx() as con:
        for run in runs:
            rid = existing.get(run.name)
            if rid is None:
                cfg = run.config()
                f = run.fields
                last = max(run.points, key=lambda p: p["step"]) if run.points else {}
                summary = {"final_loss": last.get("eval_loss"), "tokens": last.get("tokens"), "imported": run.format}
                cur = con.execute(
                    "INSERT INTO runs (name, status, config, digest, N_total, N_nonembed, N_nonzero, target_tokens, "
                    "code_version, created, updated, summary, source) VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.name, json.dumps(cfg.to_dict()), run.digest(), f.get("N_total"), f.get("N_nonembed"),
                     f.get("N_nonzero"), last.get("tokens"), None, now, now, json.dumps(summary),
                     json.dumps(run.source())))
                rid = int(cur.lastrowid or 0)
                added += 1
            before = con.total_changes
            con.executemany(
                f"INSERT OR IGNORE INTO points (run_id, {', '.join(POINT_FIELDS)}, metrics) "
                f"VALUES (?, {', '.join('?' * (len(POINT_FIELDS) + 1))})",
                [(rid, p.get("branch", 0), *(p.get(k) for k in POINT_FIELDS[1:]), _metrics_json(p))
                 for p in run.points])
            points += con.total_changes - before
    store._ids.clear()
    return {"runs_added": added, "runs_unchanged": len(existing), "points_added": points}


__all__ = ["RUN_FIELDS", "ImportedRun", "add_imported", "imported_row"]
