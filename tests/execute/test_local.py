"""The local executor: runs, skips, failures, crashes, and resuming a ladder killed with SIGKILL."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import fake_trainer
import pytest

from scalinglab.errors import ScalingLabError, StoreError
from scalinglab.execute import execute
from scalinglab.ladder import design, ladderfile
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

HERE = Path(__file__).resolve().parent
FAKE = "fake_trainer:train"
REAL = "scalinglab.ladder.train:train"
HAVE_TORCH = importlib.util.find_spec("torch") is not None   # the real trainer needs the ladder extra


def ladder(n_budgets: int = 2) -> list[RunConfig]:
    return design.isoflop([1e10, 3e10][:n_budgets], 2, vocab=256, context=64, batch_tokens=512,
                          rule=design.ShapeRule(min_steps=5))


def curves(store: Store) -> dict[str, list[tuple[int, int, int, float, float]]]:
    """Every run's points, cooldown branches included, without wall time (which differs between runs of
    one ladder)."""
    return {r.name: [(p["branch"], p["step"], p["tokens"], p["train_loss"], p["eval_loss"])
                     for p in store.points(r.name, branch=None)] for r in store.runs()}


def test_execute_trains_every_run_then_skips_them(tmp_path: Path) -> None:
    runs = ladder()
    store = Store(tmp_path / "runs.db")
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck", workers=2, train_fn=FAKE, progress=False)
    assert sorted(res["done"]) == sorted(r.name for r in runs) and res["failed"] == {}
    assert (res["workers"], res["threads"], res["skipped"]) == (2, 1, 0)
    for r in runs:
        assert [p["step"] for p in store.points(r.name)] == fake_trainer.eval_steps(r)
        rec = store.get(r.name)
        assert rec.status == "done" and rec.attempts == 1
        assert rec.summary is not None and rec.summary["final_loss"] == fake_trainer.loss_at(r, r.steps)
        assert (tmp_path / "ck" / f"{r.name}.pt").exists()
    assert res["points"] == sum(len(fake_trainer.eval_steps(r)) for r in runs)
    assert res["tokens"] == sum(r.tokens for r in runs)
    final = store.to_table(final=True)
    assert len(final) == len(runs) and set(final["budget_flops"]) == {1e10, 3e10}
    again = execute(runs, store, checkpoint_dir=tmp_path / "ck", train_fn=FAKE, progress=False)
    assert (again["skipped"], again["done"], again["points"]) == (len(runs), [], 0)


def test_a_failing_run_is_recorded_and_resumed_next_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = ladder(1)
    store = Store(tmp_path / "runs.db")
    monkeypatch.setenv("FAKE_TRAIN_FAIL", runs[0].name)
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck", workers=1, train_fn=FAKE, progress=False)
    assert res["failed"] == {runs[0].name: f"RuntimeError: deliberate failure of {runs[0].name}"}
    assert res["done"] == [runs[1].name]
    rec = store.get(runs[0].name)
    assert rec.status == "failed" and rec.error is not None and "Traceback" in rec.error
    monkeypatch.delenv("FAKE_TRAIN_FAIL")
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck", train_fn=FAKE, progress=False)
    assert res["done"] == [runs[0].name] and res["skipped"] == 1
    assert store.get(runs[0].name).attempts == 2 and store.get(runs[0].name).error is None


def test_a_worker_that_dies_fails_its_run_and_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = ladder(1)
    store = Store(tmp_path / "runs.db")
    monkeypatch.setenv("FAKE_TRAIN_CRASH", runs[0].name)
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck", workers=1, train_fn=FAKE, progress=False)
    assert res["failed"] == {runs[0].name: "worker process exited with code 3 during the run"}
    assert res["done"] == [runs[1].name]
    assert len(store.points(runs[0].name)) == 1   # the point it sent before dying was committed
    monkeypatch.delenv("FAKE_TRAIN_CRASH")
    execute(runs, store, checkpoint_dir=tmp_path / "ck", train_fn=FAKE, progress=False)
    assert [p["step"] for p in store.points(runs[0].name)] == fake_trainer.eval_steps(runs[0])


def test_a_trainer_that_cannot_load_stops_the_ladder(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    with pytest.raises(ScalingLabError, match="a worker could not start: ConfigError: cannot load the trainer"):
        execute(ladder(1), store, checkpoint_dir=tmp_path / "ck", workers=1, train_fn="no_such_module:train",
                progress=False)
    assert {r.status for r in store.runs()} == {"planned"}


def test_a_conflicting_ladder_runs_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    runs = ladder(1)
    store.add_planned(runs)
    changed = [RunConfig.from_dict({**runs[0].to_dict(), "seed": 9})]
    with pytest.raises(StoreError, match="different config"):
        execute(changed, store, checkpoint_dir=tmp_path / "ck", train_fn=FAKE, progress=False)
    assert {r.status for r in store.runs()} == {"planned"} and store.n_points() == {}


def test_a_stale_checkpoint_of_a_planned_run_is_not_resumed(tmp_path: Path) -> None:
    runs = ladder(1)[:1]
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / f"{runs[0].name}.pt").write_text('{"step": 1000000}')   # from another store
    store = Store(tmp_path / "runs.db")
    execute(runs, store, checkpoint_dir=tmp_path / "ck", train_fn=FAKE, progress=False)
    assert [p["step"] for p in store.points(runs[0].name)] == fake_trainer.eval_steps(runs[0])


def test_bad_arguments(tmp_path: Path) -> None:
    store = Store(":memory:")
    with pytest.raises(ScalingLabError, match="'executor' parameter must be one of"):
        execute(ladder(1), store, checkpoint_dir=tmp_path, executor="slurm")
    with pytest.raises(ScalingLabError, match="'workers' parameter must be a positive integer"):
        execute(ladder(1), store, checkpoint_dir=tmp_path, workers=0)


# -- SIGKILL at any moment, then the same command again --------------------------------------------
def _points_in(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0   # not created yet


def _launch(ladder_file: Path, db: Path, ck: Path, trainer: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(HERE / "run_ladder.py"), str(ladder_file), str(db), str(ck), trainer],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", [
    FAKE, pytest.param(REAL, marks=pytest.mark.skipif(not HAVE_TORCH, reason="needs torch (the ladder extra)"))])
def test_sigkill_then_rerun_gives_the_uninterrupted_result(trainer: str, tmp_path: Path) -> None:
    if trainer == FAKE:
        runs = ladder()
    else:   # the real trainer: two tiny models, about a second of training each, with WSD cooldown branches
        runs = design.grid_nd([2e4, 5e4], [6e4], vocab=256, context=64, batch_tokens=512,
                              rule=design.ShapeRule(min_steps=5),
                              eval_tokens=2048, schedule={"name": "wsd", "branches": [0.3, 0.6]})
    ladder_file = tmp_path / "ladder.toml"
    ladderfile.write_toml(ladder_file, runs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}

    # the reference: one uninterrupted run of the ladder
    ref = _launch(ladder_file, tmp_path / "ref.db", tmp_path / "ref-ck", trainer, env)
    assert ref.wait(timeout=120) == 0, ref.stderr.read().decode() if ref.stderr else ""

    # the same ladder, killed (driver and workers at once) as points land, then run to the end
    db, ck = tmp_path / "killed.db", tmp_path / "killed-ck"
    slow = {**env, "FAKE_TRAIN_SLEEP": "0.003"}
    total = sum(len(p) for p in curves(Store(tmp_path / "ref.db", create=False)).values())
    kills = 0
    for threshold in (3, total // 2) if trainer == FAKE else (3,):
        proc = _launch(ladder_file, db, ck, trainer, slow)
        deadline = time.monotonic() + 60
        while _points_in(db) < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 1
    with Store(db, create=False) as killed:        # the kills left a run part-way through ...
        assert any(r.status == "running" and killed.points(r.name) for r in killed.runs())
    last = _launch(ladder_file, db, ck, trainer, env)
    assert last.wait(timeout=120) == 0, last.stderr.read().decode() if last.stderr else ""

    with Store(tmp_path / "ref.db", create=False) as a, Store(db, create=False) as b:
        assert b.counts()["done"] == len(runs)     # ... and the rerun finished every run,
        assert curves(b) == curves(a)              # with no point lost, duplicated or changed
        fa = a.to_table(final=True).set_index("run")["loss"]
        fb = b.to_table(final=True).set_index("run")["loss"]
        assert fb.to_dict() == fa.to_dict()        # identical final losses
