"""The run store: migrations, idempotent planning, point dedupe, foreign files, the run table, fits."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import table as _table
from scalinglab.accounting import counts
from scalinglab.errors import StoreError
from scalinglab.runconfig import RunConfig
from scalinglab.store import MIGRATIONS, POINT_FIELDS, SCHEMA_VERSION, TABLE_COLUMNS, Store


@pytest.fixture()
def store() -> Store:
    return Store(":memory:")


def cfg(name: str = "a", **kw: object) -> RunConfig:
    return RunConfig(name=name, tokens=40960, batch_tokens=4096, **kw)  # type: ignore[arg-type]


def point(step: int, loss: float = 3.0, **kw: object) -> dict[str, object]:
    return {"step": step, "tokens": step * 4096, "flops": 6.0 * step, "flops_full": 9.0 * step,
            "train_loss": loss + 0.1, "eval_loss": loss, "lr": 1e-3, "wall_time": float(step), **kw}


# -- migrations -------------------------------------------------------------------------------------
def test_new_store_has_every_migration_in_order(store: Store) -> None:
    assert store.migrations() == [name for name, _ in MIGRATIONS]
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)


def test_old_store_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)  # a store as the first migration alone left it
    for sql in MIGRATIONS[0][1]:
        con.execute(sql)
    con.execute("INSERT INTO migrations VALUES ('0001_initial', '2026-01-01')")
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "scalinglab.store"), ("schema_version", "1")])
    con.execute("INSERT INTO runs (name, config, digest, created, updated) VALUES (?, ?, ?, 'x', 'x')",
                ("old", json.dumps(cfg("old").to_dict()), cfg("old").digest()))
    con.commit()
    con.close()
    with Store(path) as s:
        assert s.migrations() == [name for name, _ in MIGRATIONS]
        assert s.schema_version == SCHEMA_VERSION
        (run,) = s.runs()
        assert run.name == "old" and run.attempts == 0 and run.config == cfg("old")


def test_a_store_before_point_branches_keeps_its_points(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    con = sqlite3.connect(path)  # a store as migrations 0001 and 0002 left it, with curve points
    for _, statements in MIGRATIONS[:2]:
        for sql in statements:
            con.execute(sql)
    con.executemany("INSERT INTO migrations VALUES (?, '2026-01-01')", [(n,) for n, _ in MIGRATIONS[:2]])
    con.executemany("INSERT INTO meta VALUES (?, ?)",
                    [("format", "scalinglab.store"), ("schema_version", "2")])
    con.execute("INSERT INTO runs (name, status, config, digest, created, updated) "
                "VALUES (?, 'done', ?, ?, 'x', 'x')", ("old", json.dumps(cfg("old").to_dict()), cfg("old").digest()))
    con.executemany("INSERT INTO points VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(point(s, 4.0 - s / 10).values()) for s in (1, 5, 10)])
    con.commit()
    con.close()
    with Store(path) as s:
        assert s.migrations()[2] == "0003_point_branches" and s.schema_version == SCHEMA_VERSION
        assert [(p["branch"], p["step"], p["eval_loss"]) for p in s.points("old")] == [
            (0, 1, 3.9), (0, 5, 3.5), (0, 10, 3.0)]
        assert s.points("old", branch=None)[1] == {"branch": 0, **point(5, 3.5)}
        assert s.add_point("old", point(10, 2.5, branch=1))          # a branch point at a main-line step
        assert not s.add_point("old", point(10, 9.9))                # the main line's is still there
        pk = [r[1] for r in s._con.execute("PRAGMA table_info(points)") if r[5]]
        assert pk == ["run_id", "branch", "step"]
    with Store(path) as s:                                           # reopening applies nothing again
        assert len(s.points("old", branch=None)) == 4 and len(s.to_table(points="final")) == 1


def test_reopening_a_store_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        s.add_planned([cfg("a")])
        s.add_point("a", point(1))
    with Store(path, create=False) as s:   # read-only (immutable: no writer holds a -wal)
        assert s.read_only
        assert [r.name for r in s.runs()] == ["a"]
        assert len(s.points("a")) == 1
        assert s.migrations() == [name for name, _ in MIGRATIONS]
    with Store(path) as s:
        assert not s.read_only
        assert s._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        s._con.execute("INSERT INTO migrations VALUES ('9999_future', 'x')")
    with pytest.raises(StoreError, match="9999_future.*newer version"):
        Store(path)


# -- foreign files ----------------------------------------------------------------------------------
def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_non_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match=r"'.*notes.db' is not a scalinglab store \(not an SQLite database\)"):
        Store(path)
    assert _snapshot(tmp_path) == before


def test_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (x INTEGER)")
    con.execute("INSERT INTO runs VALUES (1)")
    con.commit()
    con.close()
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match="an SQLite database but not a scalinglab store"):
        Store(path)
    assert _snapshot(tmp_path) == before


def test_missing_store_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nodir" / "runs.db")


# -- planning ---------------------------------------------------------------------------------------
def test_add_planned_is_idempotent_and_keeps_status(store: Store) -> None:
    assert store.add_planned([cfg("a"), cfg("b", lr=1e-3)]) == ["a", "b"]
    store.mark_running("a")
    store.mark_done("a", {"final_loss": 2.0})
    assert store.add_planned([cfg("a"), cfg("b", lr=1e-3)]) == ["a", "b"]
    assert [(r.name, r.status) for r in store.runs()] == [("a", "done"), ("b", "planned")]


def test_same_name_different_config_is_an_error_and_adds_nothing(store: Store) -> None:
    store.add_planned([cfg("a")])
    with pytest.raises(StoreError, match="run 'a' is already in store .* with a different config"):
        store.add_planned([cfg("c"), cfg("a", lr=1e-3)])
    assert [r.name for r in store.runs()] == ["a"]
    with pytest.raises(StoreError, match="two different configs are both named 'x'"):
        store.add_planned([cfg("x"), cfg("x", seed=1)])


def test_unnamed_run_and_describe(store: Store) -> None:
    c = RunConfig(tokens=40960)
    (name,) = store.add_planned([c], describe=counts)
    assert name == f"run-{c.digest()}"
    rec = store.get(name)
    expected = counts(c)
    assert rec.config.name == name and rec.config.digest() == c.digest()
    assert (rec.N_total, rec.N_nonembed, rec.N_nonzero) == (expected["N_total"], expected["N_nonembed"],
                                                            expected["N_nonzero"])
    assert rec.target_tokens == 40960
    assert rec.target_flops == pytest.approx(expected["flops_per_token_full"] * 40960)


def test_run_lifecycle(store: Store) -> None:
    store.add_planned([cfg("a")])
    store.mark_running("a", host="h:1")
    store.mark_failed("a", "RuntimeError: boom\n\ntraceback")
    rec = store.get("a")
    assert (rec.status, rec.error, rec.attempts, rec.host) == ("failed", "RuntimeError: boom\n\ntraceback", 1, "h:1")
    store.mark_running("a", host="h:2")
    assert (store.get("a").status, store.get("a").error, store.get("a").attempts) == ("running", None, 2)
    store.mark_done("a", {"N_total": 10, "N_nonembed": 5, "N_nonzero": 4, "tokens": 40960,
                          "flops_per_token_full": 100.0, "final_loss": 2.5})
    rec = store.get("a")
    assert rec.status == "done" and rec.summary is not None and rec.summary["final_loss"] == 2.5
    assert (rec.N_total, rec.N_nonzero, rec.target_flops) == (10, 4, 4096000.0)
    assert store.counts() == {"planned": 0, "running": 0, "done": 1, "failed": 0}
    assert [r.name for r in store.runs("done")] == ["a"] and store.runs(["planned", "failed"]) == []
    with pytest.raises(StoreError, match="run status must be one of"):
        store.runs("finished")
    with pytest.raises(StoreError, match="no run named 'zz'"):
        store.mark_done("zz", {})


# -- points -----------------------------------------------------------------------------------------
def test_points_are_deduplicated_by_run_and_step(store: Store) -> None:
    store.add_planned([cfg("a"), cfg("b", seed=1)])
    assert store.add_point("a", point(1, 3.0))
    assert store.add_point("a", point(2, 2.5))
    assert not store.add_point("a", point(2, 9.9))   # a resumed run re-emitting step 2
    assert store.add_point("b", point(2, 4.0))       # same step, other run
    assert [(p["step"], p["eval_loss"]) for p in store.points("a")] == [(1, 3.0), (2, 2.5)]
    assert store.n_points() == {"a": 2, "b": 1}
    with pytest.raises(StoreError, match="'tokens'"):
        store.add_point("a", {"step": 3})
    with pytest.raises(StoreError, match="no run named 'zz'"):
        store.add_point("zz", point(1))


def test_points_are_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    s = Store(path)
    s.add_planned([cfg("a")])
    s.add_point("a", point(1))
    reader = sqlite3.connect(path)   # another process's view, while the writer stays open
    assert reader.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 1
    reader.close()
    s.close()


# -- the run table ----------------------------------------------------------------------------------
def test_to_table_final_and_all_points(store: Store) -> None:
    a, b = cfg("a", budget_flops=1e12, group="isoflop"), cfg("b", seed=3)
    store.add_planned([a, b], describe=counts)
    for s, loss in ((1, 4.0), (5, 3.0), (10, 2.0)):
        store.add_point("a", point(s, loss))
    store.add_point("b", point(1, 5.0))
    store.mark_done("a", {**counts(a), "tokens": 40960})
    final = store.to_table(final=True)
    assert list(final.columns) == TABLE_COLUMNS
    assert len(final) == 1
    row = final.iloc[0]
    assert (row["run"], row["step"], row["D"], row["loss"]) == ("a", 10, 40960, 2.0)
    assert row["N"] == row["N_total"] == counts(a)["N_total"]
    assert row["C"] == row["flops_full"] == 90.0 and row["flops"] == 60.0
    assert (row["batch"], row["lr"], row["schedule"], row["budget_flops"], row["group"]) == (
        4096, 3e-3, "cosine", 1e12, "isoflop")
    # the table meets the canonical schema (positive N, D, C, loss)
    _table.validate(final, ["N", "D", "C", "loss", "N_nonembed", "N_nonzero", "batch", "lr"])
    every = store.to_table(final=False)
    assert list(every["run"]) == ["a", "a", "a", "b"]
    assert list(every["status"]) == ["done"] * 3 + ["planned"]
    assert list(every["step"]) == [1, 5, 10, 1]


def test_branch_points_and_the_row_selections(store: Store) -> None:
    a, b, c = cfg("a", seed=1), cfg("b", seed=2), cfg("c", seed=3)
    store.add_planned([a, b, c], describe=counts)
    for s in (1, 5, 10):
        store.add_point("a", point(s, 4.0 - s / 10))
    store.add_point("a", point(3, 3.5, branch=1))   # WSD cooldown branches, each at its own end step
    store.add_point("a", point(6, 3.2, branch=2))
    store.add_point("b", point(10, 3.0))             # done, no branches
    store.add_point("c", point(1, 4.0))              # still running, one branch reported
    store.add_point("c", point(4, 3.4, branch=1))
    for run in ("a", "b"):
        store.mark_done(run, {"tokens": 40960})
    assert [p["step"] for p in store.points("a")] == [1, 5, 10]       # the main line by default
    assert [(p["branch"], p["step"]) for p in store.points("a", branch=None)] == [
        (0, 1), (0, 5), (0, 10), (1, 3), (2, 6)]
    assert [p["step"] for p in store.points("a", branch=2)] == [6]

    final = store.to_table(points="final")
    assert final.equals(store.to_table(final=True)) and final.equals(store.to_table())
    assert list(zip(final["run"], final["branch"], final["step"])) == [("a", 0, 10), ("b", 0, 10)]
    annealed = store.to_table(points="annealed")
    assert list(zip(annealed["run"], annealed["branch"], annealed["step"])) == [
        ("a", 1, 3), ("a", 2, 6), ("a", 0, 10), ("b", 0, 10), ("c", 1, 4)]
    row = annealed.iloc[0]   # a branch row: D, C and flops at its own end step
    assert (row["D"], row["C"], row["flops"], row["loss"]) == (3 * 4096, 27.0, 18.0, 3.5)
    assert row["N"] == counts(a)["N_total"] and annealed["branch"].dtype == int
    every = store.to_table(points="all")
    assert every.equals(store.to_table(final=False)) and len(every) == 8
    assert list(every["branch"]) == [0, 1, 0, 2, 0, 0, 0, 1]      # by run, then step
    with pytest.raises(StoreError, match=r"'points' selection must be one of \('final', 'annealed', 'all'\). "
                                         r"Got 'last' instead"):
        store.to_table(points="last")
    with pytest.raises(StoreError, match="give either final=True or points='all'"):
        store.to_table(True, points="all")
    with pytest.raises(StoreError, match="'branch' of a curve point must be a non-negative integer .* Got -1"):
        store.add_point("a", point(2, branch=-1))


def test_a_merged_runs_branch_points_carry_their_own_budgets(store: Store) -> None:
    from scalinglab.runconfig import ScheduleConfig

    wsd = ScheduleConfig(name="wsd", warmup_steps=2, branches=(0.3, 0.6))
    a = cfg("a", schedule=wsd, budget_flops=8e12, branch_budgets=(2e12, 4e12))
    b = cfg("b", schedule=wsd, budget_flops=8e12)               # branches without budgets: the run's
    store.add_planned([a, b], describe=counts)
    for run in ("a", "b"):
        store.add_point(run, point(3, 3.5, branch=1))
        store.add_point(run, point(6, 3.2, branch=2))
        store.add_point(run, point(10, 3.0))
        store.mark_done(run, {"tokens": 40960})
    t = store.to_table(points="annealed")
    assert list(zip(t["run"], t["branch"], t["budget_flops"])) == [
        ("a", 1, 2e12), ("a", 2, 4e12), ("a", 0, 8e12), ("b", 1, 8e12), ("b", 2, 8e12), ("b", 0, 8e12)]


def test_to_table_of_an_empty_store_has_the_columns(store: Store) -> None:
    df = store.to_table()
    assert df.empty and list(df.columns) == TABLE_COLUMNS


# -- fits, locks, merging ---------------------------------------------------------------------------
def test_fits_round_trip(store: Store) -> None:
    i = store.save_fit({"law": "chinchilla", "params": {"E": 1.7}})
    j = store.save_fit(json.dumps({"law": "kaplan", "params": {}}))
    assert (i, j) == (1, 2)
    assert [f["law"] for f in store.fits()] == ["chinchilla", "kaplan"]
    (f,) = store.fits(law="chinchilla")
    assert f["fit"]["params"] == {"E": 1.7}
    with pytest.raises(StoreError, match="not valid JSON"):
        store.save_fit("{")
    with pytest.raises(StoreError, match="a Fit JSON object with a 'law'"):
        store.save_fit({"params": {}})


def test_writer_lock_is_exclusive(tmp_path: Path) -> None:
    s = Store(tmp_path / "runs.db")
    with s.writer_lock(), pytest.raises(StoreError, match="being written by another process"), \
            Store(tmp_path / "runs.db").writer_lock():
        pass
    with s.writer_lock():   # released
        pass


def test_merge_adds_runs_and_points_and_refuses_conflicts(tmp_path: Path) -> None:
    mine, theirs = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    mine.add_planned([cfg("a"), cfg("b", seed=1)])
    mine.add_point("a", point(1))
    theirs.add_planned([cfg("a"), cfg("c", seed=2)])
    for s in (1, 2):
        theirs.add_point("a", point(s))
    theirs.add_point("c", point(1))
    theirs.add_point("c", point(1, branch=1))
    theirs.mark_done("a", {"final_loss": 1.0})
    theirs.save_fit({"law": "chinchilla"})
    assert mine.merge(theirs) == {"runs_added": 1, "runs_updated": 1, "points_added": 3}
    assert [(r.name, r.status) for r in mine.runs()] == [("a", "done"), ("b", "planned"), ("c", "planned")]
    assert [p["step"] for p in mine.points("a")] == [1, 2] and len(mine.points("c")) == 1
    assert [p["branch"] for p in mine.points("c", branch=None)] == [0, 1]
    assert len(mine.fits()) == 1
    other = Store(tmp_path / "o.db")
    other.add_planned([cfg("b", seed=7)])
    before = mine.to_table(final=False)
    with pytest.raises(StoreError, match="run 'b' has a different config"):
        mine.merge(other)
    assert mine.to_table(final=False).equals(before)


# -- per-point metrics (migration 0004_point_metrics) -----------------------------------------------
#: the fields the trainer adds to a point beyond the fixed columns (sparsity, counts, sparse FLOPs)
TRAINER_FIELDS = {"sparsity": 0.5, "N_nonzero": 12288, "flops_spent_dense_kernels": 2.4e9,
                  "flops_sparse_kernel": 1.5e9, "flops_nonzero_final": 1.2e9, "c_mul": 1.25,
                  "flops_sparse_kernel_full": 1.75e9}


def test_a_points_extra_fields_round_trip_exactly(store: Store) -> None:
    store.add_planned([cfg("a")])
    extra = {**TRAINER_FIELDS, "decay_steps": 3, "pruned": True, "phase": "sparse", "note": None,
             "per_layer": {"h0": [0.25, 0.75], "h1": {"rows": 4}}, "negative_zero": -0.0, "huge": 2**70}
    assert store.add_point("a", point(1, **extra))
    (got,) = store.points("a")
    assert got == {"branch": 0, **point(1), **extra}
    assert list(got)[:len(POINT_FIELDS)] == list(POINT_FIELDS)   # the fixed columns first, then metrics
    assert math.copysign(1.0, got["negative_zero"]) == -1.0 and type(got["N_nonzero"]) is int


def test_point_metrics_normalise_numpy_scalars_and_tuples_and_keep_non_finite_floats(store: Store) -> None:
    store.add_planned([cfg("a")])
    store.add_point("a", point(1, sparsity=np.float64(0.375), N_nonzero=np.int64(77), ok=np.bool_(True),
                               shape=(2, 3), nan=math.nan, inf=math.inf, ninf=-math.inf,
                               nested={"grad_noise": [math.nan, 1.5]}))
    (got,) = store.points("a")
    assert (got["sparsity"], got["N_nonzero"], got["ok"], got["shape"]) == (0.375, 77, True, [2, 3])
    assert (type(got["sparsity"]), type(got["N_nonzero"]), type(got["ok"])) == (float, int, bool)
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf
    assert math.isnan(got["nested"]["grad_noise"][0]) and got["nested"]["grad_noise"][1] == 1.5


def test_a_metric_json_cannot_hold_is_a_one_line_error_and_writes_nothing(store: Store) -> None:
    store.add_planned([cfg("a")])
    for bad, message in (({"when": object()}, r"Field 'when' of a curve point must be a number, bool, "),
                         ({"ids": {1, 2}}, r"Field 'ids' of a curve point .* Got \{1, 2\} instead"),
                         ({"by_layer": {0: 1.0}}, r"Field 'by_layer' of a curve point"),
                         ({"per": {"h0": [1.0, b"x"]}}, r"Field 'per.h0\[1\]' of a curve point .* Got b'x'")):
        with pytest.raises(StoreError, match=message) as info:
            store.add_point("a", point(1, **bad))
        assert "\n" not in str(info.value)
    assert store.points("a") == [] and store.n_points() == {}


def test_a_resumed_run_never_duplicates_a_point_and_keeps_its_first_metrics(store: Store) -> None:
    store.add_planned([cfg("a")])
    assert store.add_point("a", point(1, sparsity=0.0, N_nonzero=100))
    assert store.add_point("a", point(2, sparsity=0.25, N_nonzero=75))
    assert not store.add_point("a", point(2, 9.9, sparsity=0.9, N_nonzero=10, extra=1))   # re-emitted
    assert store.points("a") == [{"branch": 0, **point(1), "sparsity": 0.0, "N_nonzero": 100},
                                 {"branch": 0, **point(2), "sparsity": 0.25, "N_nonzero": 75}]
    assert store.n_points() == {"a": 2}
    assert list(store.to_table(points="all").columns) == [*TABLE_COLUMNS, "sparsity", "point_N_nonzero"]


def test_to_table_carries_the_metrics_without_clobbering_the_canonical_columns(store: Store) -> None:
    a, b = cfg("a", seed=1), cfg("b", seed=2)
    store.add_planned([a, b], describe=counts)
    store.add_point("a", point(1, 4.0, sparsity=0.0, N_nonzero=1000, c_mul=1.0))
    store.add_point("a", point(10, 3.0, sparsity=0.5, N_nonzero=500, c_mul=0.75,
                               S=0.5, point_N_nonzero="mine", per_layer={"h0": 0.5}))
    store.add_point("a", point(6, 3.2, branch=1, sparsity=0.4, N_nonzero=600, c_mul=0.8, decay_steps=2))
    store.add_point("b", point(10, 3.5))                           # a run whose points have no metrics
    for run in ("a", "b"):
        store.mark_done(run, {"tokens": 40960, "N_nonzero": 400})
    every = store.to_table(points="all")
    metric_columns = ["sparsity", "point_N_nonzero", "c_mul", "decay_steps", "point_S",   # as first seen,
                      "point_point_N_nonzero", "per_layer"]                               # by table row
    assert list(every.columns) == [*TABLE_COLUMNS, *metric_columns]
    assert list(zip(every["run"], every["branch"], every["step"])) == [
        ("a", 0, 1), ("a", 1, 6), ("a", 0, 10), ("b", 0, 10)]
    assert list(every["sparsity"])[:3] == [0.0, 0.4, 0.5] and math.isnan(every["sparsity"].iloc[3])
    assert list(every["point_N_nonzero"])[:3] == [1000, 600, 500]       # the point's own count ...
    assert list(every["N_nonzero"]) == [400] * 4                        # ... beside the run's, untouched
    assert list(every["S"]) == [0.0] * 4 and every["point_S"].iloc[2] == 0.5
    assert every["point_point_N_nonzero"].iloc[2] == "mine" and every["per_layer"].iloc[2] == '{"h0": 0.5}'
    assert every["decay_steps"].iloc[1] == 2 and every["decay_steps"].isna().sum() == 3
    without_metrics = every[list(TABLE_COLUMNS)]
    assert list(without_metrics["loss"]) == [4.0, 3.2, 3.0, 3.5]
    # the final rows carry only the metrics of their points
    final = store.to_table(points="final")
    assert list(final.columns) == [*TABLE_COLUMNS, "sparsity", "point_N_nonzero", "c_mul", "point_S",
                                   "point_point_N_nonzero", "per_layer"]
    assert list(final["c_mul"])[0] == 0.75 and math.isnan(final["c_mul"].iloc[1])
    # --map and --where reach the metric columns
    mapped = _table.apply_where(_table.apply_map(final, {"N": "point_N_nonzero"}), "sparsity > 0.25")
    assert list(mapped["run"]) == ["a"] and list(mapped["N"]) == [500.0]


def test_a_store_before_point_metrics_migrates_and_keeps_every_point(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    con = sqlite3.connect(path)  # a store as migrations 0001 to 0003 left it, with points on two lines
    for _, statements in MIGRATIONS[:3]:
        for sql in statements:
            con.execute(sql)
    con.executemany("INSERT INTO migrations VALUES (?, '2026-01-01')", [(n,) for n, _ in MIGRATIONS[:3]])
    con.executemany("INSERT INTO meta VALUES (?, ?)",
                    [("format", "scalinglab.store"), ("schema_version", "3")])
    con.execute("INSERT INTO runs (name, status, config, digest, N_nonzero, created, updated) "
                "VALUES (?, 'done', ?, ?, 321, 'x', 'x')", ("old", json.dumps(cfg("old").to_dict()),
                                                            cfg("old").digest()))
    old_points = [{"branch": b, **point(s, 4.0 - s / 10)} for b, s in ((0, 1), (0, 5), (0, 10), (1, 4))]
    con.executemany(f"INSERT INTO points (run_id, {', '.join(POINT_FIELDS)}) "
                    f"VALUES (1, {', '.join('?' * len(POINT_FIELDS))})",
                    [tuple(p[k] for k in POINT_FIELDS) for p in old_points])
    con.commit()
    con.close()
    with Store(path) as s:
        assert s.migrations() == [name for name, _ in MIGRATIONS]
        assert s.migrations()[3] == "0004_point_metrics"
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        columns = [r[1] for r in s._con.execute("PRAGMA table_info(points)")]
        assert columns == ["run_id", *POINT_FIELDS, "metrics"]
        assert s.points("old", branch=None) == sorted(old_points, key=lambda p: (p["branch"], p["step"]))
        old_table = s.to_table(points="all")
        assert list(old_table.columns) == TABLE_COLUMNS and list(old_table["N_nonzero"]) == [321.0] * 4
        assert list(zip(old_table["branch"], old_table["step"], old_table["loss"])) == [
            (0, 1, 3.9), (1, 4, 3.6), (0, 5, 3.5), (0, 10, 3.0)]
        assert s.add_point("old", point(12, 2.9, sparsity=0.5))     # resumed: a new point keeps its metrics
        assert not s.add_point("old", point(10, 9.9, sparsity=0.5))  # and an old point is not duplicated
    with Store(path) as s:                                           # reopening applies nothing again
        assert s.migrations() == [name for name, _ in MIGRATIONS]
        assert len(s.points("old", branch=None)) == 5
        assert s.points("old")[-1] == {"branch": 0, **point(12, 2.9), "sparsity": 0.5}
        assert s.points("old")[2] == {"branch": 0, **point(10, 3.0)}


def test_merge_copies_the_point_metrics(tmp_path: Path) -> None:
    mine, theirs = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    theirs.add_planned([cfg("a")])
    theirs.add_point("a", point(1, **TRAINER_FIELDS))
    theirs.add_point("a", point(4, 3.3, branch=1, decay_steps=2, nan=math.nan))
    assert mine.merge(theirs)["points_added"] == 2
    got = mine.points("a", branch=None)
    assert got[0] == {"branch": 0, **point(1), **TRAINER_FIELDS}
    assert got[1]["decay_steps"] == 2 and math.isnan(got[1]["nan"])
    pd.testing.assert_frame_equal(mine.to_table(points="all"), theirs.to_table(points="all"))
