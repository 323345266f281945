"""Write the test ladder with the real MLflow client: a file store and an SQLite tracking database.

Run with a Python that has mlflow (it needs neither scalinglab nor NumPy)::

    python tests/ingest/ladder.py > ladder.json                       # scalinglab's environment
    MLFLOW_ALLOW_FILE_STORE=true MLFLOW_PYTHON tests/ingest/write_mlflow.py ladder.json OUT

OUT gets ``mlruns/`` and ``mlflow.db``. The database is then cut down to the tables the importer reads
(``experiments``, ``runs``, ``metrics``, ``latest_metrics``, ``params``, ``tags``; their CREATE
statements as MLflow made them), so the committed fixture is small. ``tests/ingest/data/mlflow`` was
written this way with mlflow 3.17.2 (mlflow-skinny, SQLAlchemy 2, alembic).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import mlflow

KEEP = ("experiments", "runs", "metrics", "latest_metrics", "params", "tags")


def log(ladder: dict, uri: str) -> None:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("ladder")
    keys = ladder["keys"]
    for run in ladder["runs"]:
        with mlflow.start_run(run_name=run["name"]):
            mlflow.log_params({"n_params": run["N_total"], "batch_tokens": run["batch"], "schedule": "cosine"})
            for p in run["points"]:
                mlflow.log_metrics({keys[k]: p[k] for k in ("eval_loss", "train_loss", "tokens", "lr")}, step=p["step"])


def prune(src: Path, dest: Path) -> None:
    old = sqlite3.connect(src)
    new = sqlite3.connect(dest)
    for (name, sql) in old.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"):
        if name in KEEP:
            new.execute(sql)
            rows = old.execute(f"SELECT * FROM {name}").fetchall()
            if rows:
                new.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    new.commit()
    new.execute("VACUUM")
    new.close()
    old.close()


if __name__ == "__main__":
    ladder = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)
    log(ladder, "file:./mlruns")
    log(ladder, "sqlite:///full.db")
    prune(out / "full.db", out / "mlflow.db")
    (out / "full.db").unlink()
