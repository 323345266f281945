"""The ladder and runs commands end to end (design -> run -> status -> list -> export -> import), and
their one-line errors with exit code 2 that leave the store as it was."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.execute import DEFAULT_TRAINER
from scalinglab.ladder import schedules
from scalinglab.ladder.ladderfile import read_toml, write_toml
from scalinglab.store import Store

EXECUTE_TESTS = Path(__file__).resolve().parents[1] / "execute"
TINY = ["--vocab", "256", "--context", "64", "--batch-tokens", "512", "--min-steps", "5",
        "--set", "eval_tokens=2048"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), prog_name="scalinglab")
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture()
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> str:
    """The deterministic trainer of tests/execute, importable in spawned workers (they get sys.path)."""
    monkeypatch.syspath_prepend(str(EXECUTE_TESTS))
    return "fake_trainer:train"


@pytest.fixture()
def trainer(fake_trainer: str) -> str:
    """The real trainer (the command's default) where it exists, else the fake one."""
    return DEFAULT_TRAINER if importlib.util.find_spec("scalinglab.ladder.train") else fake_trainer


@pytest.fixture()
def ladder_file(tmp_path: Path) -> Path:
    out = tmp_path / "ladder.toml"
    code, stdout, stderr = run("ladder", "design", "--budgets", "3e9,6e9", "--sizes", "2", *TINY,
                               "--out", str(out), "--json")
    assert code == 0, stderr
    d = json.loads(stdout)
    assert d["out"] == str(out) and len(d["runs"]) == 4 and d["ladder"]["budgets"] == [3e9, 6e9]
    return out


def test_design_run_status_list_export_import(ladder_file: Path, trainer: str, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code, stdout, stderr = run("ladder", "run", str(ladder_file), "--store", str(db), "--workers", "2",
                               "--trainer", trainer, "--json")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert len(res["done"]) == 4 and res["failed"] == {} and res["checkpoints"] == str(tmp_path / "runs.checkpoints")
    assert len(list((tmp_path / "runs.checkpoints").glob("*.pt"))) == 4

    code, stdout, _ = run("ladder", "run", str(ladder_file), "--store", str(db), "--trainer", trainer)
    assert code == 0 and "0 done now, 4 already done, 0 failed" in stdout

    code, stdout, _ = run("ladder", "status", "--store", str(db), "--json")
    status = json.loads(stdout)
    assert code == 0 and status["counts"] == {"planned": 0, "running": 0, "done": 4, "failed": 0}
    assert all(r["progress"] == 1.0 and r["points"] > 5 for r in status["runs"])
    code, stdout, _ = run("ladder", "status", "--store", str(db))
    assert code == 0 and "4 done" in stdout and res["done"][0] in stdout

    code, stdout, _ = run("runs", "list", "--store", str(db), "--json")
    listed = json.loads(stdout)["runs"]
    assert code == 0 and [r["status"] for r in listed] == ["done"] * 4
    assert all(r["N_total"] > r["N_nonembed"] > 0 and r["final_loss"] > 0 for r in listed)
    code, stdout, _ = run("runs", "list", "--store", str(db), "--status", "failed", "--json")
    assert code == 0 and json.loads(stdout)["runs"] == []

    every, final = tmp_path / "points.csv", tmp_path / "final.parquet"
    code, stdout, _ = run("runs", "export", "--store", str(db), "--out", str(every))
    assert code == 0 and "rows (4 runs)" in stdout
    df = pd.read_csv(every)
    n_points = sum(r["points"] for r in status["runs"])
    assert len(df) == n_points
    assert {"run", "step", "D", "loss", "C", "N", "N_total", "N_nonembed", "N_nonzero", "batch", "lr"} <= set(df.columns)
    code, stdout, _ = run("runs", "export", "--store", str(db), "--out", str(final), "--final", "--json")
    assert code == 0 and json.loads(stdout)["rows"] == 4
    last = pd.read_parquet(final)
    assert sorted(last["run"]) == sorted(res["done"]) and (last["D"] == last["target_tokens"]).all()

    copy = tmp_path / "copy.db"
    code, stdout, _ = run("runs", "import", str(db), "--store", str(copy), "--json")
    assert code == 0 and json.loads(stdout) | {} == {"source": str(db), "store": str(copy), "runs_added": 4,
                                                     "runs_updated": 0, "points_added": n_points}
    with Store(db) as a, Store(copy) as b:
        assert b.to_table(final=False).equals(a.to_table(final=False))


def test_design_grids(tmp_path: Path) -> None:
    out = tmp_path / "grid.toml"
    code, stdout, _ = run("ladder", "design", "--params", "2e4,1e5", "--tokens", "1e5,2e5", *TINY,
                          "--set", "schedule.name=wsd", "--set", "dtype=float32", "--out", str(out), "--json")
    d = json.loads(stdout)
    assert code == 0 and d["ladder"]["design"] == "nd" and len(d["runs"]) == 4
    text = out.read_text()
    assert 'dtype = "float32"' in text and 'name = "wsd"' in text
    code, stdout, _ = run("ladder", "design", "--budgets", "1e11", "--lr-grid", "1e-3,3e-3", "--batch-grid",
                          "256,512", *TINY, "--out", str(out), "--json")
    d = json.loads(stdout)
    assert code == 0 and d["ladder"]["design"] == "lr_batch" and len(d["runs"]) == 4
    assert {(r["lr"], r["batch_tokens"]) for r in d["runs"]} == {(1e-3, 256), (1e-3, 512), (3e-3, 256), (3e-3, 512)}
    code, stdout, _ = run("ladder", "design", "--budgets", "1e11", "--sizes", "3", *TINY, "--out", str(out))
    assert code == 0 and "3 runs written to" in stdout and "isoflop-1e11-" in stdout


def test_design_shape_rule_and_width_scaled_lr(tmp_path: Path) -> None:
    out = tmp_path / "iso.toml"
    code, stdout, _ = run("ladder", "design", "--budgets", "1e11,2e11", "--sizes", "5", *TINY, "--lr", "3e-3",
                          "--min-layers", "2", "--width-step", "4", "--lr-width-exponent", "1",
                          "--lr-ref-width", "64", "--out", str(out), "--json")
    assert code == 0, stdout
    d = json.loads(stdout)
    assert d["ladder"]["min_layers"] == 2 and d["ladder"]["width_step"] == 4
    for r in d["runs"]:
        assert r["n_layer"] >= 2 and r["d_model"] % 4 == 0
        assert r["d_model"] // r["n_head"] >= 16 or r["n_head"] == 1
        assert r["lr"] == pytest.approx(3e-3 * 64 / r["d_model"], rel=1e-3)   # muP's 1/width, 4 digits
    assert len({r["d_model"] for r in d["runs"]}) >= 4
    # a sparsity grid keeps its own widths: the options are refused, nothing is written
    out2 = tmp_path / "sparse.toml"
    code, _, err = run("ladder", "design", "--sparsities", "0,0.5", "--params", "2e4", "--tokens", "1e5", *TINY,
                       "--width-step", "4", "--out", str(out2))
    assert code == 2 and "--width-step" in err and not out2.exists()


def test_design_merges_prefixes_of_an_nd_grid(tmp_path: Path) -> None:
    grid = ["ladder", "design", "--params", "2e4", "--tokens", "1e5,2e5,4e5", *TINY]   # 195, 391, 781 steps
    out = tmp_path / "m.toml"
    code, stdout, stderr = run(*grid, "--schedule", "wsd", "--warmup-steps", "20", "--merge-prefixes",
                               "--out", str(out), "--json")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert res["ladder"]["merge_prefixes"] is True and res["ladder"]["design_runs"] == 3
    (only,) = read_toml(out)
    assert only.steps == 781 and only.schedule.warmup_steps == 20
    assert [row["branch_ends"] for row in res["runs"]] == [[195, 391]]   # the two shorter runs' last steps
    assert [b.end_step for b in schedules.branches(only.schedule, only.lr, only.steps)] == [195, 391]  # read back
    # without a fixed warmup a shorter run is no prefix: one line, exit 2, nothing written
    _one_line_error(*run(*grid, "--schedule", "wsd", "--merge-prefixes", "--out", str(tmp_path / "x.toml"))[::2],
                    "--merge-prefixes with schedule must be --schedule wsd with --warmup-steps N")
    assert not (tmp_path / "x.toml").exists()


def test_design_and_export_wsd_branches(tmp_path: Path) -> None:
    grid = ["ladder", "design", "--params", "2e4", "--tokens", "1e5,2e5", *TINY]   # 195 and 390 steps
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    code, stdout, stderr = run(*grid, "--wsd-branches", "0.25,0.5", "--out", str(a), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["ladder"]["wsd_branches"] == [0.25, 0.5]
    runs_a = read_toml(a)
    assert [(r.schedule.name, r.schedule.branches) for r in runs_a] == [("wsd", (0.25, 0.5))] * 2
    code, _, stderr = run(*grid, "--set", "schedule.name=wsd", "--set", "schedule.branches=[0.25, 0.5]",
                          "--out", str(b))
    assert code == 0, stderr
    assert [r.digest() for r in read_toml(b)] == [r.digest() for r in runs_a]
    _one_line_error(*run(*grid, "--schedule", "cosine", "--wsd-branches", "0.5", "--out", str(b))[::2],
                    "The 'schedule.branches' field must be empty for schedule.name = 'cosine'")
    _one_line_error(*run(*grid, "--wsd-branches", "0.5,0.25", "--out", str(b))[::2],
                    "strictly increasing. Got [0.5, 0.25] instead.")
    _one_line_error(*run(*grid, "--wsd-branches", "0.02", "--out", str(b))[::2],
                    "(195 steps): The 'schedule.branches' field must be fractions whose cooldowns start after "
                    "the warmup (10 steps)")
    bad = tmp_path / "bad.toml"   # a hand-written ladder whose branch ends before any cooldown fits
    write_toml(bad, [dataclasses.replace(runs_a[0], name="", schedule=dataclasses.replace(
        runs_a[0].schedule, branches=(0.001,)))])
    _one_line_error(*run("ladder", "run", str(bad), "--store", str(tmp_path / "r.db"))[::2],
                    "ends at step 0")
    assert not (tmp_path / "r.db").exists()

    db = tmp_path / "runs.db"   # runs export: every point with its branch; --points picks rows
    with Store(db) as st:
        st.add_planned(runs_a[:1])
        name = runs_a[0].name
        for branch, step in ((0, 1), (1, 49), (2, 98), (0, 195)):
            st.add_point(name, {"branch": branch, "step": step, "tokens": step * 512, "eval_loss": 3.0})
        st.mark_done(name, {"final_loss": 3.0})
    out = tmp_path / "points.csv"
    code, _, stderr = run("runs", "export", "--store", str(db), "--out", str(out))
    assert code == 0, stderr
    assert list(pd.read_csv(out)[["branch", "step"]].itertuples(index=False, name=None)) == [
        (0, 1), (1, 49), (2, 98), (0, 195)]
    code, stdout, _ = run("runs", "export", "--store", str(db), "--out", str(out), "--points", "annealed",
                          "--json")
    assert code == 0 and json.loads(stdout)["rows"] == 3 and json.loads(stdout)["points"] == "annealed"
    both = ("--final", "--points", "all")
    _one_line_error(*run("runs", "export", "--store", str(db), "--out", str(out), *both)[::2],
                    "--final means --points final")


def _one_line_error(code: int, stderr: str, pattern: str) -> None:
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert pattern in stderr, stderr


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    out = tmp_path / "x.toml"
    _one_line_error(*run("ladder", "design", "--out", str(out))[::2], "say what to design")
    _one_line_error(*run("ladder", "design", "--budgets", "1e11,lots", "--out", str(out))[::2],
                    "Each value of --budgets must be a number. Got 'lots' instead.")
    _one_line_error(*run("ladder", "design", "--budgets", "1e11", "--set", "width=3", "--out", str(out))[::2],
                    "'width'")
    _one_line_error(*run("ladder", "design", "--params", "1e4", "--out", str(out))[::2], "needs both --params")
    assert not out.exists()
    _one_line_error(*run("ladder", "run", str(tmp_path / "none.toml"), "--store", str(tmp_path / "r.db"))[::2],
                    "does not exist")
    _one_line_error(*run("ladder", "status", "--store", str(tmp_path / "none.db"))[::2], "no store at")
    _one_line_error(*run("runs", "list", "--store", str(tmp_path / "none.db"))[::2], "no store at")
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "r.db").exists()


def test_bad_ladder_and_foreign_or_conflicting_store_change_nothing(ladder_file: Path, fake_trainer: str,
                                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(ladder_file.read_text().replace("[[runs]]\n", "[[runs]]\nbogus = 1\n", 1))
    db = tmp_path / "runs.db"
    _one_line_error(*run("ladder", "run", str(bad), "--store", str(db))[::2], "'bogus'")
    assert not db.exists()

    foreign = tmp_path / "notes.db"
    foreign.write_bytes(b"not a database")
    _one_line_error(*run("ladder", "run", str(ladder_file), "--store", str(foreign))[::2], "not a scalinglab store")
    _one_line_error(*run("runs", "export", "--store", str(foreign), "--out", str(tmp_path / "x.csv"))[::2],
                    "not a scalinglab store")
    assert foreign.read_bytes() == b"not a database"

    code, _, stderr = run("ladder", "run", str(ladder_file), "--store", str(db), "--trainer", fake_trainer)
    assert code == 0, stderr
    with Store(db) as s:
        before = (s.to_table(final=False), [r.to_dict() for r in s.runs()])
    changed = tmp_path / "changed.toml"   # same names, another learning rate
    changed.write_text(ladder_file.read_text().replace("lr = 3e-3", "lr = 1e-3"))
    _one_line_error(*run("ladder", "run", str(changed), "--store", str(db), "--trainer", fake_trainer)[::2],
                    "with a different config")
    _one_line_error(*run("runs", "export", "--store", str(db), "--out", str(tmp_path / "x.xlsx"))[::2],
                    "extension of --out")
    _one_line_error(*run("runs", "import", str(db), "--store", str(db))[::2], "into itself")
    with Store(db) as s:
        assert s.to_table(final=False).equals(before[0]) and [r.to_dict() for r in s.runs()] == before[1]


def test_failed_runs_exit_1_and_show_in_status(ladder_file: Path, fake_trainer: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "runs.db"
    names = [r.name for r in read_toml(ladder_file)]
    monkeypatch.setenv("FAKE_TRAIN_FAIL", names[0])
    code, stdout, stderr = run("ladder", "run", str(ladder_file), "--store", str(db), "--trainer", fake_trainer,
                               "--workers", "1")
    assert code == 1 and "3 done now, 0 already done, 1 failed" in stdout
    assert f"failed: {names[0]}: RuntimeError: deliberate failure" in stderr
    code, stdout, _ = run("ladder", "status", "--store", str(db), "--json")
    (failed,) = [r for r in json.loads(stdout)["runs"] if r["status"] == "failed"]
    assert failed["run"] == names[0] and failed["error"] == f"RuntimeError: deliberate failure of {names[0]}"
