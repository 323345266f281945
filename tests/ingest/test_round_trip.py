"""A ladder written by each real writer imports to the points and runs of the store it came from; a fit of
an imported W&B ladder is the fit of the same runs read from CSV."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from ladder import COMPARED, KEYS

from scalinglab.cli import main
from scalinglab.store import Store

DATA = Path(__file__).parent / "data"


def _import(tmp_path: Path, source: Path, fmt: str, *extra: str) -> tuple[Path, dict[str, Any]]:
    db = tmp_path / "imported.db"
    r = CliRunner().invoke(main, ["runs", "import", str(source), "--from", fmt, "--store", str(db), *extra, "--json"])
    assert r.exit_code == 0, r.output
    return db, json.loads(r.stdout)


def _same(db: Path, ref: pd.DataFrame, rtol: float = 0.0) -> pd.DataFrame:
    with Store(db, create=False) as s:
        got = s.to_table(points="all")
    assert list(got["run"].unique()) == list(ref["run"].unique())
    a, b = got[COMPARED].reset_index(drop=True), ref[COMPARED].reset_index(drop=True)
    for col in COMPARED:
        if rtol and col in ("loss", "train_loss", "lr_step"):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=rtol, atol=0)
        else:
            assert a[col].tolist() == b[col].tolist(), col
    assert (got["status"] == "done").all() and (got["group"] == "imported").all()
    return got


def _write_tensorboard(root: Path, runs: list[dict[str, Any]], new_style: bool) -> None:
    tb = pytest.importorskip("torch.utils.tensorboard")
    for run in runs:
        w = tb.SummaryWriter(str(root / run["name"]))
        w.add_scalar("model/params", run["N_total"], 0, new_style=new_style)
        for p in run["points"]:
            for field, key in KEYS.items():
                w.add_scalar(key, p[field], p["step"], new_style=new_style)
            w.add_scalar("eval/accuracy", 1 / p["eval_loss"], p["step"], new_style=new_style)
        w.close()


@pytest.mark.parametrize("new_style", [False, True])
def test_tensorboard_round_trip(tmp_path: Path, reference: tuple[Path, pd.DataFrame],
                                ladder_runs: list[dict[str, Any]], new_style: bool) -> None:
    _write_tensorboard(tmp_path / "logs", ladder_runs, new_style)
    db, info = _import(tmp_path, tmp_path / "logs", "tensorboard", "--map", "N=model/params", "--map", "batch=512")
    assert info["runs_added"] == 4 and info["points_added"] == len(reference[1])
    got = _same(db, reference[1], rtol=1e-7)             # TensorBoard keeps float32 scalars
    np.testing.assert_allclose(got["eval/accuracy"], 1 / got["loss"], rtol=1e-6)   # any other key: a point metric
    with Store(db, create=False) as s:
        src = s.get("iso-l2-d32").source
    assert src is not None and src["format"] == "tensorboard" and src["run_id"] == "iso-l2-d32"
    assert src["metric_keys"] == sorted([*KEYS.values(), "model/params", "eval/accuracy"])
    assert src["fields"] == {"N_total": 34976, "batch": 512, "lr": pytest.approx(0.0019672131, rel=1e-7)}


def _write_wandb_history(root: Path, runs: list[dict[str, Any]]) -> None:
    root.mkdir()
    for run in runs:
        rows = [{"_step": p["step"], "_runtime": 0.5 * i, "_timestamp": 1.7e9 + 0.5 * i,
                 **{key: p[field] for field, key in KEYS.items()}} for i, p in enumerate(run["points"])]
        pd.DataFrame(rows).to_csv(root / f"{run['name']}.csv", index=False)
        (root / f"{run['name']}.config.json").write_text(json.dumps(
            {"n_params": {"value": run["N_total"]}, "batch_tokens": {"value": run["batch"]}}))


def _write_wandb_panel(path: Path, runs: list[dict[str, Any]]) -> None:
    steps = sorted({p["step"] for r in runs for p in r["points"]})
    df = pd.DataFrame({"Step": steps})
    for run in runs:
        by_step = {p["step"]: p for p in run["points"]}
        for field, key in (("eval_loss", "eval/loss"), ("tokens", "train/tokens")):
            col = [repr(by_step[s][field]) if s in by_step else "" for s in steps]
            df[f"{run['name']} - {key}"] = col
            df[f"{run['name']} - {key}__MIN"] = col
            df[f"{run['name']} - {key}__MAX"] = col
    df.to_csv(path, index=False)


def test_wandb_history_round_trip_and_fit(tmp_path: Path, reference: tuple[Path, pd.DataFrame],
                                          ladder_runs: list[dict[str, Any]]) -> None:
    _write_wandb_history(tmp_path / "wandb", ladder_runs)
    db, info = _import(tmp_path, tmp_path / "wandb", "wandb")
    assert info["runs_added"] == 4 and info["warnings"] == []
    assert all("full: " in n for n in info["notes"])            # 7-9 rows each: not a sampled history
    _same(db, reference[1])
    # fit --store on the imported ladder == fit of the same runs read from CSV
    csv = tmp_path / "runs.csv"
    reference[1].to_csv(csv, index=False)
    fits = []
    for args in (["--store", str(db), "--points", "all"], [str(csv), "--map", "N=N_total"]):
        r = CliRunner().invoke(main, ["fit", *args, "--law", "chinchilla", "--json"])
        assert r.exit_code == 0, r.output
        fits.append(json.loads(r.stdout))
    assert fits[0]["n_points"] == fits[1]["n_points"] == len(reference[1])
    assert fits[0]["params"] == pytest.approx(fits[1]["params"], rel=1e-9)


def test_wandb_panel_round_trip(tmp_path: Path, reference: tuple[Path, pd.DataFrame],
                                ladder_runs: list[dict[str, Any]]) -> None:
    _write_wandb_panel(tmp_path / "panel.csv", ladder_runs)
    fields = tmp_path / "fields.csv"
    pd.DataFrame([{"run": r["name"], "N": r["N_total"], "batch": r["batch"]} for r in ladder_runs]).to_csv(fields, index=False)
    db, info = _import(tmp_path, tmp_path / "panel.csv", "wandb", "--run-fields", str(fields))
    assert info["runs_added"] == 4
    ref = reference[1]
    with Store(db, create=False) as s:
        got = s.to_table(points="all")
    for col in ("run", "step", "D", "loss", "N_total", "batch"):        # the panel has the loss and tokens only
        assert got[col].tolist() == ref[col].tolist(), col


def test_mlflow_file_store_and_database_round_trip(tmp_path: Path, reference: tuple[Path, pd.DataFrame]) -> None:
    # written by the real MLflow client (tests/ingest/write_mlflow.py, mlflow 3.17.2)
    for source in (DATA / "mlflow" / "mlruns", DATA / "mlflow" / "mlflow.db"):
        db, info = _import(tmp_path, source, "mlflow")
        assert info["runs_added"] == 4
        got = _same(db, reference[1])
        assert (got["schedule"] == "cosine").all()             # the run's 'schedule' parameter
        db.unlink()


def test_mlflow_written_live(tmp_path: Path, reference: tuple[Path, pd.DataFrame],
                             ladder_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with the mlflow client of this environment, when it has one (optional: it is heavy)."""
    pytest.importorskip("mlflow")
    import write_mlflow
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.chdir(tmp_path)
    write_mlflow.log({"keys": KEYS, "runs": ladder_runs}, "file:./mlruns")
    db, _ = _import(tmp_path, tmp_path / "mlruns", "mlflow")
    _same(db, reference[1])


def test_mlflow_fixture_has_mlflows_tables() -> None:
    con = sqlite3.connect(DATA / "mlflow" / "mlflow.db")
    cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in ("runs", "metrics", "params", "tags")}
    assert cols["metrics"] == ["key", "value", "timestamp", "run_uuid", "step", "is_nan"]
    assert {"run_uuid", "name", "experiment_id", "lifecycle_stage"} <= set(cols["runs"])
