"""The store's errors are one line (exit code 2) naming the store and what to do, and leave every file as
it was: the writer lock of `runs import`, empty files under read commands, failed runs left out of fits,
SQLite's own errors (a damaged file, a broken row, a read-only store) and the store check's diagnosis."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from scalinglab.cli import main
from scalinglab.errors import StoreError
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

TRUE = {"E": 1.5, "A": 60.0, "B": 90.0, "alpha": 0.3, "beta": 0.3}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(r: Result, *names: str) -> str:
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def _cfgs(prefix: str = "r") -> list[RunConfig]:
    return [RunConfig(name=f"{prefix}{L}-{d}-{k}", n_layer=L, d_model=d, n_head=d // 16, tokens=4096 * 50 * k)
            for L, d in ((1, 32), (2, 48), (2, 64), (3, 96), (4, 128)) for k in (1, 3, 9)]


def _store(path: Path, prefix: str = "r", failed: int = 0) -> Path:
    """Runs on a known Chinchilla surface, written through the store's API, each with 3 points; the
    last ``failed`` runs are marked failed (with absurd losses, as a diverged run has), the rest done."""
    rng = np.random.default_rng(0)
    cfgs = _cfgs(prefix)
    with Store(path) as st:
        st.add_planned(cfgs)
        for i, cfg in enumerate(cfgs):
            n_total = 12 * cfg.n_layer * cfg.d_model**2 + (256 + 128) * cfg.d_model
            bad = i >= len(cfgs) - failed
            for frac in (0.25, 0.5, 1.0):
                tokens = int(frac * cfg.tokens)
                loss = 50.0 if bad else float((TRUE["E"] + TRUE["A"] / n_total ** TRUE["alpha"]
                                               + TRUE["B"] / tokens ** TRUE["beta"]) * np.exp(rng.normal(0, 0.002)))
                st.add_point(cfg.name, {"step": max(1, int(frac * cfg.steps)), "tokens": tokens, "flops": 1.0,
                                        "flops_full": 1.0, "eval_loss": loss})
            if bad:
                st.mark_failed(cfg.name, "TrainingError: the loss diverged")
            else:
                st.mark_done(cfg.name, {"N_total": n_total, "N_nonembed": 12 * cfg.n_layer * cfg.d_model**2,
                                        "N_nonzero": 12 * cfg.n_layer * cfg.d_model**2, "tokens": cfg.tokens})
    return path


# -- item 11: the writer lock of `runs import`, empty files, failed runs ---------------------------------
def test_runs_import_takes_the_writer_lock(tmp_path: Path) -> None:
    dest = _store(tmp_path / "dest.db")
    src = _store(tmp_path / "src.db", prefix="s")
    before = _files(tmp_path)
    holder = Store(dest)
    try:
        with holder.writer_lock():   # a `ladder run` writing the store
            r = CliRunner().invoke(main, ["runs", "import", str(src), "--store", str(dest)])
            _one_line_error(r, str(dest), "being written by another process")
            assert _digest(dest) == before["dest.db"] and _digest(src) == before["src.db"]
    finally:
        holder.close()
    assert {k: v for k, v in _files(tmp_path).items() if not k.endswith(".lock")} == before
    r = CliRunner().invoke(main, ["runs", "import", str(src), "--store", str(dest), "--json"])   # released
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["runs_added"] == 15


def test_read_commands_leave_an_empty_file_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    for args in (["ladder", "status"], ["runs", "list"], ["runs", "export", "--out", str(tmp_path / "x.csv")],
                 ["fit", "--law", "chinchilla"], ["report", "--out", str(tmp_path / "rep")]):
        r = CliRunner().invoke(main, [*args, "--store", str(empty)])
        _one_line_error(r, str(empty), "empty file")
        assert empty.stat().st_size == 0
        assert [p.name for p in tmp_path.iterdir()] == ["empty.db"], args


def test_fit_points_all_leaves_out_failed_runs(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db", failed=3)
    before = _digest(db)
    with Store(db, create=False) as st:
        assert len(st.to_table(points="all")) == 45                      # exporting: every point
        table = st.to_table(points="all", failed=False)
        assert len(table) == 36 and set(table["status"]) == {"done"}
        assert len(st.to_table(points="annealed", failed=False)) == 12
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--points", "all",
                                  "--bootstrap", "0", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_points"] == 36
    assert abs(d["params"]["alpha"] - TRUE["alpha"]) < 0.05
    r = CliRunner().invoke(main, ["runs", "export", "--store", str(db), "--out", str(tmp_path / "all.csv")])
    assert r.exit_code == 0 and "45 rows" in r.stdout
    assert _digest(db) == before


# -- item 6: SQLite's errors and broken rows are one line naming the store, the run and what to do ----------
def _damage(src: Path, dst: Path) -> Path:
    """A copy of the store ``src`` whose pages after the sixth are overwritten (a damaged disk)."""
    data = bytearray(src.read_bytes())
    data[4096 * 6:] = b"\xab" * (len(data) - 4096 * 6)
    dst.write_bytes(bytes(data))
    return dst


def _big_store(path: Path) -> Path:
    with Store(path) as st:
        st.add_planned([RunConfig(name=f"r{i}", n_layer=1, d_model=32, n_head=2, tokens=4096 * 50)
                        for i in range(300)])
    return path


def test_a_damaged_store_is_one_line_with_the_recovery(tmp_path: Path) -> None:
    bad = _damage(_big_store(tmp_path / "good.db"), tmp_path / "bad.db")
    before = _files(tmp_path)
    for args in (["ladder", "status"], ["runs", "list"], ["fit", "--law", "chinchilla"]):
        r = CliRunner().invoke(main, [*args, "--store", str(bad)])
        line = _one_line_error(r, str(bad), "malformed", ".recover")
        assert "not a scalinglab store" not in line
        assert _files(tmp_path) == before


def test_a_row_with_a_broken_config_names_the_run(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET config = '{\"n_layer\": 1,' WHERE name = 'r2-48-3'")
    con.commit()
    con.close()
    before = _files(tmp_path)
    for args in (["ladder", "status"], ["runs", "list"], ["runs", "export", "--out", str(tmp_path / "x.csv")],
                 ["fit", "--law", "chinchilla"]):
        r = CliRunner().invoke(main, [*args, "--store", str(db)])
        _one_line_error(r, str(db), "'r2-48-3'", "config", "sqlite3")
        assert _files(tmp_path) == before, args


def test_writing_a_read_only_store_is_one_line(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db")
    before = _files(tmp_path)
    with Store(db, create=False) as st:   # mode=ro: what a store the user may not write behaves like
        assert st.read_only
        with pytest.raises(StoreError, match=r"cannot be written .*readonly") as info:
            st.add_planned([RunConfig(name="new", n_layer=1, d_model=32, n_head=2, tokens=4096 * 50)])
        assert str(db) in str(info.value)
        with pytest.raises(StoreError, match=r"\(run 'r1-32-1'\) cannot be written"):
            st.mark_failed("r1-32-1", "boom")
    assert _files(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_ladder_run_on_a_read_only_store(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db")
    ladder = tmp_path / "ladder.toml"
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--out", str(ladder)])
    assert r.exit_code == 0, r.output
    db.chmod(0o444)
    try:
        before = _files(tmp_path)
        r = CliRunner().invoke(main, ["ladder", "run", str(ladder), "--store", str(db), "--no-progress"])
        _one_line_error(r, str(db))
        assert _files(tmp_path) == before
    finally:
        db.chmod(0o644)


# -- item 7: the store check's diagnosis; read commands open read-only ------------------------------------
def test_a_truncated_store_is_called_damaged(tmp_path: Path) -> None:
    good = _big_store(tmp_path / "good.db")
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[:4096 * 3])
    before = _files(tmp_path)
    r = CliRunner().invoke(main, ["ladder", "status", "--store", str(cut)])
    line = _one_line_error(r, str(cut), "damaged", ".recover")
    assert "not a scalinglab store" not in line
    r = CliRunner().invoke(main, ["runs", "import", str(cut), "--store", str(tmp_path / "new.db")])
    _one_line_error(r, str(cut), "damaged")
    assert _files(tmp_path) == before


def test_only_a_foreign_file_is_not_a_store(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    text = tmp_path / "notes.db"
    text.write_text("hello\n")
    before = _files(tmp_path)
    for path in (foreign, text):
        r = CliRunner().invoke(main, ["runs", "list", "--store", str(path)])
        _one_line_error(r, str(path), "not a scalinglab store")
    assert _files(tmp_path) == before


def test_read_commands_change_nothing_on_disk(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db")
    before = _files(tmp_path)
    for args in (["ladder", "status"], ["runs", "list"], ["fit", "--law", "chinchilla", "--bootstrap", "0"]):
        r = CliRunner().invoke(main, [*args, "--store", str(db)])
        assert r.exit_code == 0, r.output
        assert _files(tmp_path) == before, args   # no -wal, no -shm, the same bytes


def test_a_store_is_read_while_it_is_written(tmp_path: Path) -> None:
    db = _store(tmp_path / "runs.db")
    with Store(db) as writer, writer.writer_lock():
        writer.mark_running("r1-32-1")   # a ladder run, with its write-ahead log open
        r = CliRunner().invoke(main, ["ladder", "status", "--store", str(db), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["counts"]["running"] == 1


_SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(os.geteuid() == 0 and _SETPRIV is None, reason="needs a user that may not write the directory")
def test_a_store_in_a_directory_the_user_may_not_write(tmp_path: Path) -> None:
    """A valid store in a directory readable but not writable: read commands work (read-only), a write
    is one line. As root, the commands run as `nobody` (setpriv); otherwise as the user."""
    base = Path(tempfile.mkdtemp(prefix="scalinglab-ro-"))   # outside pytest's root-only tmp directory
    try:
        base.chmod(0o755)
        ro = base / "ro"
        ro.mkdir()
        db = _store(ro / "runs.db")
        db.chmod(0o644)
        ro.chmod(0o555)
        before = _files(ro)
        prefix = [_SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        env = {**os.environ, "MPLCONFIGDIR": str(base), "HOME": str(base)}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*prefix, sys.executable, "-m", "scalinglab.cli", *args], capture_output=True,
                                  text=True, cwd=base, env=env, timeout=120)

        p = cli("ladder", "status", "--store", str(db), "--json")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["counts"]["done"] == 15
        p = cli("runs", "list", "--store", str(db))
        assert p.returncode == 0, p.stderr
        assert _files(ro) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
