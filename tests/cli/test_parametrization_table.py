"""The run table's ``parametrization`` and ``tau`` columns, from real tiny runs through the store:
`ladder design --parametrizations sp,mus` -> `ladder run --store` -> `runs export` / `runs list` /
`Store.to_table`; a run stored before the field existed reads as ``sp`` (one test: one ladder run)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.store import TABLE_COLUMNS, Store

TINY = ["--vocab", "256", "--context", "32", "--batch-tokens", "256", "--min-steps", "3",
        "--set", "eval_tokens=256", "--set", "evals=2"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), prog_name="scalinglab")
    return r.exit_code, r.stdout, r.stderr


def test_parametrization_and_tau_columns_of_real_runs(tmp_path: Path) -> None:
    toml, db, csv = tmp_path / "p.toml", tmp_path / "runs.db", tmp_path / "t.csv"
    code, _, err = run("ladder", "design", "--params", "1e4", "--tokens", "1500", "--parametrizations", "sp,mus",
                       "--set", "parametrization.tau=0.4", "--out", str(toml), *TINY)
    assert code == 0, err
    code, _, err = run("ladder", "run", str(toml), "--store", str(db), "--no-progress")
    assert code == 0, err
    code, stdout, err = run("runs", "export", "--store", str(db), "--out", str(csv), "--json")
    assert code == 0, err
    assert {"parametrization", "tau"} <= set(json.loads(stdout)["columns"])
    table = pd.read_csv(csv)
    by = {p: g for p, g in table.groupby("parametrization")}
    assert set(by) == {"sp", "mus"}
    assert (by["mus"]["tau"] == 0.4).all() and by["sp"]["tau"].isna().all()
    assert all("-mus" in name for name in by["mus"]["run"]) and not any("-mus" in n for n in by["sp"]["run"])
    with Store(db, create=False) as st:
        final = st.to_table()
    assert sorted(final["parametrization"]) == ["mus", "sp"] and list(final.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    code, stdout, err = run("runs", "list", "--store", str(db), "--json")
    assert code == 0, err
    listed = {r["parametrization"]: r["tau"] for r in json.loads(stdout)["runs"]}
    assert listed == {"sp": None, "mus": 0.4}
    code, stdout, err = run("runs", "list", "--store", str(db))
    assert code == 0 and "parametrization" in stdout and "mus" in stdout, err

    # a run stored before the field existed (its config JSON has no parametrization) reads as sp
    con = sqlite3.connect(db)
    name, cfg_text = con.execute("SELECT name, config FROM runs WHERE name LIKE '%-mus%'").fetchone()
    cfg = json.loads(cfg_text)
    del cfg["parametrization"]
    con.execute("UPDATE runs SET config = ? WHERE name = ?", (json.dumps(cfg), name))
    con.commit()
    con.close()
    with Store(db, create=False) as st:
        row = st.to_table().set_index("run").loc[name]
    assert row["parametrization"] == "sp" and math.isnan(row["tau"])
