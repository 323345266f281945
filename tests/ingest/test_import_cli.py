"""`runs import --from`: mapping, run filter, idempotence, the writer lock, and one-line errors that leave
the store as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import DataError
from scalinglab.ingest import mapping, wandb
from scalinglab.ingest.source import store_name
from scalinglab.store import Store


def _history(path: Path, steps: list[int] | np.ndarray, **cols: object) -> Path:
    steps = list(steps)
    df = pd.DataFrame({"_step": steps, "_runtime": np.arange(len(steps)) * 2.0,
                       "eval/loss": 3.0 - 0.001 * np.arange(len(steps)), "train/tokens": np.array(steps) * 1024})
    for k, v in cols.items():
        df[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def _cli(*args: str) -> object:
    return CliRunner().invoke(main, ["runs", "import", *args])


def test_import_twice_changes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "wandb"
    for i in range(3):
        _history(src / f"run-{i}.csv", range(0, 100, 10), **{"optim/lr": 1e-3})
    db = tmp_path / "s.db"
    args = [str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6", "--json"]
    first = json.loads(_cli(*args).stdout)
    assert (first["runs_added"], first["points_added"]) == (3, 30)
    with Store(db, create=False) as s:
        before = (s.to_table(points="all"), [r.to_dict() for r in s.runs()])
    again = json.loads(_cli(*args).stdout)
    assert (again["runs_added"], again["runs_unchanged"], again["points_added"]) == (0, 3, 0)
    with Store(db, create=False) as s:
        pd.testing.assert_frame_equal(s.to_table(points="all"), before[0])
        assert [r.to_dict() for r in s.runs()] == before[1]               # not even a timestamp changed
    r = _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=2e6")
    assert r.exit_code == 2 and "was imported with other fields" in r.stderr


def test_run_filter_is_a_glob_on_the_name_or_id(tmp_path: Path) -> None:
    src = tmp_path / "wandb"
    for name in ("small-1", "small-2", "big-1"):
        _history(src / f"{name}.csv", range(0, 50, 10))
    db = tmp_path / "s.db"
    r = _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6", "--run-filter", "small-*", "--json")
    assert r.exit_code == 0, r.output
    assert [x["run"] for x in json.loads(r.stdout)["runs"]] == ["small-1", "small-2"]
    r = _cli(str(src), "--from", "wandb", "--store", str(tmp_path / "t.db"), "--map", "N=1e6", "--run-filter", "huge*")
    assert r.exit_code == 2 and "--run-filter" in r.stderr and "big-1" in r.stderr


@pytest.mark.parametrize("args, message", [
    ([], "no parameter count; give --map N=VALUE|KEY"),                                   # no N
    (["--map", "N=1e6", "--map", "loss=val/ppl"], "has no key 'val/ppl'"),                # a missing metric
    (["--map", "N=n_layers"], "'n_layers' is neither a number nor a key"),
    (["--map", "N=1e6", "--map", "train_loss=notes"], "at step 10 must be a number. Got 'diverged?' instead"),
    (["--map", "N=1.5"], "a positive whole number"),
    (["--map", "flops=1"], "The --map target must be one of"),
    (["--map", "N=1e6", "--run-fields", "missing.csv"], "does not exist"),
])
def test_what_cannot_be_mapped_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    src = _history(tmp_path / "run-a.csv", range(0, 50, 10), notes=["", "diverged?", "", "", ""])
    db = tmp_path / "s.db"
    r = _cli(str(src), "--from", "wandb", "--store", str(db), *args)
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1
    assert not db.exists()                                                          # not even created


def test_no_loss_key_lists_the_keys_found(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"_step": [1, 2], "train/loss": [3.0, 2.9], "acc": [0.1, 0.2]}).to_csv(src, index=False)
    r = _cli(str(src), "--from", "wandb", "--store", str(tmp_path / "s.db"), "--map", "N=1e6")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"error: run 'r' ({src}): no evaluation-loss key; give --map loss=KEY; its logged "
                                "keys: ['acc', 'train/loss'].")


def test_a_store_being_written_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    src = _history(tmp_path / "run-a.csv", range(0, 50, 10))
    db = tmp_path / "s.db"
    with Store(db) as s, s.writer_lock():       # as a `ladder run` holds it
        r = _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6")
    assert r.exit_code == 2 and "is being written by another process" in r.stderr
    with Store(db, create=False) as s:
        assert s.runs() == [] and s.n_points() == {}


def test_scalinglab_run_of_the_same_name_is_not_overwritten(tmp_path: Path) -> None:
    from ladder import reference_store
    db = tmp_path / "s.db"
    reference_store(db).close()
    src = _history(tmp_path / "iso-l2-d32.csv", range(0, 50, 10))
    r = _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6")
    assert r.exit_code == 2 and "is a scalinglab run, not an import" in r.stderr


def test_history_sampled_or_full(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sampled = np.sort(rng.choice(np.arange(1, 100_000), size=500, replace=False))
    [run] = wandb.read(_history(tmp_path / "sampled.csv", sampled))
    assert run.warnings and run.warnings[0].startswith("sampled: exactly 500 rows with uneven steps")
    for name, steps in (("even.csv", range(0, 5000, 10)), ("long.csv", sampled[:499])):
        [run] = wandb.read(_history(tmp_path / name, steps))
        assert not run.warnings and run.notes[0].startswith("full:")
    r = _cli(str(tmp_path / "sampled.csv"), "--from", "wandb", "--store", str(tmp_path / "s.db"), "--map", "N=1e6")
    assert r.exit_code == 0 and "warning: sampled: sampled: exactly 500 rows" in r.stderr     # run 'sampled'



def test_tokens_from_step_times_batch_and_metrics_keep_their_keys(tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    pd.DataFrame({"_step": [0, 10, 20], "val/loss": [3.0, 2.5, 2.2], "eval/acc": [0.1, "", 0.3],
                  "text": ["a", "b", "c"]}).to_csv(src, index=False)
    db = tmp_path / "s.db"
    r = _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6", "--map", "batch=2048")
    assert r.exit_code == 0, r.output
    assert "keys left out (not numbers): ['text']" in r.stderr
    with Store(db, create=False) as s:
        pts = s.points("r")
    assert [p["tokens"] for p in pts] == [0, 20480, 40960] and [p["flops"] for p in pts] == [0.0, 6e6 * 20480, 6e6 * 40960]
    assert [p.get("eval/acc") for p in pts] == [0.1, None, 0.3]


def test_ambiguous_loss_keys_ask_for_a_map() -> None:
    from scalinglab.ingest.source import Series, SourceRun
    run = SourceRun("r", "r", "x", series={k: Series.build([1], [1.0]) for k in ("eval/loss", "val/loss")})
    with pytest.raises(DataError, match=r"2 keys could be the evaluation loss: \['eval/loss', 'val/loss'\]; choose"):
        mapping.to_imported(run, "wandb", mapping.parse_map(["N=1"]))


def test_mlflow_malformed_metric_line(tmp_path: Path) -> None:
    run = tmp_path / "mlruns" / "1" / "abc"
    (run / "metrics" / "eval").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: abc\nrun_name: r1\nlifecycle_stage: active\n")
    (run / "metrics" / "eval" / "loss").write_text("1700000000000 3.0 0\n1700000000100 oops 10\n")
    r = _cli(str(tmp_path / "mlruns"), "--from", "mlflow", "--store", str(tmp_path / "s.db"), "--map", "N=1")
    assert r.exit_code == 2 and "line 2: the value 'oops' is not a number" in r.stderr


def test_store_names_are_valid_run_names() -> None:
    assert store_name("my run/1: lr=3e-4", "x") == "my-run-1-lr-3e-4"
    assert store_name("../..", "wandb-abc") == "wandb-abc"
    assert len(store_name("a" * 300, "x")) == 200


def test_an_imported_store_merges_with_its_provenance(tmp_path: Path) -> None:
    src = _history(tmp_path / "run-a.csv", range(0, 50, 10))
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    assert _cli(str(src), "--from", "wandb", "--store", str(a), "--map", "N=1e6").exit_code == 0
    assert _cli(str(a), "--store", str(b)).exit_code == 0                     # store into store, as before
    with Store(a, create=False) as s1, Store(b, create=False) as s2:
        assert s2.get("run-a").source == s1.get("run-a").source and s2.get("run-a").source["format"] == "wandb"
        pd.testing.assert_frame_equal(s1.to_table(points="all"), s2.to_table(points="all"))
    r = _cli(str(src), "--store", str(b), "--map", "N=1")
    assert r.exit_code == 2 and "need --from" in r.stderr


def test_nan_losses_are_left_out_with_a_warning(tmp_path: Path) -> None:
    run = tmp_path / "mlruns" / "1" / "abc"
    (run / "metrics" / "val").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text("run_id: abc\nrun_name: r1\nlifecycle_stage: active\nstart_time: 1\n")
    (run / "params" / "n_params").write_text("1000000")
    (run / "metrics" / "val" / "loss").write_text("1 3.0 0\n2 2.5 10\n3 nan 20\n4 nan 30\n")
    r = _cli(str(tmp_path / "mlruns"), "--from", "mlflow", "--store", str(tmp_path / "s.db"), "--map", "batch=64")
    assert r.exit_code == 0, r.output
    assert "warning: r1: 2 steps where 'val/loss' is NaN left out (a diverged run?), the first at step 20" in r.stderr
    with Store(tmp_path / "s.db", create=False) as s:
        assert [p["step"] for p in s.points("r1")] == [0, 10] and s.get("r1").N_total == 1_000_000


def test_runs_list_shows_an_imported_runs_known_fields(tmp_path: Path) -> None:
    src = _history(tmp_path / "run-a.csv", range(0, 50, 10), **{"optim/lr": [1e-3, 3e-3, 2e-3, 1e-3, 5e-4]})
    db = tmp_path / "s.db"
    assert _cli(str(src), "--from", "wandb", "--store", str(db), "--map", "N=1e6", "--map", "batch=1024",
                "--map", "schedule=wsd").exit_code == 0
    r = CliRunner().invoke(main, ["runs", "list", "--store", str(db), "--json"])
    [row] = json.loads(r.stdout)["runs"]
    assert (row["N_total"], row["batch_tokens"], row["lr"], row["schedule"], row["n_layer"]) == (1_000_000, 1024, 3e-3,
                                                                                                  "wsd", None)
    assert row["source"]["format"] == "wandb" and row["source"]["run_id"] == "run-a" and row["config"] is None


def test_a_bad_step_of_a_history_file_is_named_by_its_file_line(tmp_path: Path) -> None:
    """A W&B history row whose step is not a whole number names the line of the file it is on (a blank line
    before it counted), and nothing is written."""
    f = _history(tmp_path / "h.csv", [0, 10, 20, 30])
    lines = f.read_text().splitlines()
    lines[3] = lines[3].replace("20,", "20.5,", 1)        # the third data row, line 4 of the file
    f.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")     # a blank line before it: now line 5
    db = tmp_path / "s.db"
    r = _cli(str(f), "--from", "wandb", "--store", str(db), "--map", "N=1e6")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "column '_step' line 5 is '20.5', expected a whole step number." in r.stderr
    assert not db.exists()
