"""Reading user files, mapping columns, filtering and validating the canonical table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import table
from scalinglab.errors import DataError

ROWS = pd.DataFrame({"Model Size": [1e8, 2e8], "Training FLOP": [6e18, 2.4e19], "loss": [3.0, 2.8]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_formats_and_expression_mapping(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"runs{suffix}"
    if suffix == ".csv":
        ROWS.to_csv(p, index=False)
    elif suffix == ".tsv":
        ROWS.to_csv(p, sep="\t", index=False)
    elif suffix == ".jsonl":
        ROWS.to_json(p, orient="records", lines=True)
    else:
        ROWS.to_parquet(p)
    df = table.load(p, mapping={"N": "Model Size", "D": "`Training FLOP` / (6 * `Model Size`)"},
                    where="loss < 2.9")
    assert len(df) == 1
    assert df["D"].iloc[0] == pytest.approx(2.4e19 / (6 * 2e8))


def test_derive_c_from_n_and_d() -> None:
    df = table.derive_standard(pd.DataFrame({"N": [1e9], "D": [2e10]}))
    assert df["C"].iloc[0] == 6 * 1e9 * 2e10


def test_validation_messages() -> None:
    with pytest.raises(DataError, match=r"Column 'S' \(fraction in \[0, 1\)\) of data \(row 0\) must be a fraction in \[0, 1\). Got 1.0"):
        table.validate(pd.DataFrame({"S": [1.0]}), ["S"])
    with pytest.raises(DataError, match="lacks column"):
        table.validate(pd.DataFrame({"N": [1.0]}), ["N", "D"])
    with pytest.raises(DataError, match="no rows"):
        table.validate(pd.DataFrame({"N": []}), ["N"])
    with pytest.raises(DataError, match="does not exist"):
        table.read_table("/nonexistent/file.csv")
    with pytest.raises(DataError, match="extension"):
        table.read_table(__file__)
    with pytest.raises(DataError, match="no column 'nosuch' in the data"):
        table.apply_where(ROWS, "nosuch > 1")
    with pytest.raises(DataError, match="COL=SOURCE"):
        table.parse_assignments(["N"])
    out = table.validate(pd.DataFrame({"N": ["1e9", 2]}), ["N"])
    assert out["N"].dtype == np.float64


def test_near_optimal_keeps_each_budgets_lowest_losses() -> None:
    df = pd.DataFrame({"budget_flops": [1.0, 1.0, 1.0, 2.0, 2.0, 1.0],
                       "loss": [3.0, 2.5, 2.7, 2.0, 2.1, 2.5]})
    # ties by order of appearance; rows keep their order
    assert list(table.near_optimal(df, 2).index) == [1, 3, 4, 5]
    assert list(table.near_optimal(df, 1).index) == [1, 3]
    assert table.near_optimal(df, 9).equals(df)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DataError, match=r"near-optimal count must be a whole number of points per budget"):
            table.near_optimal(df, bad)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"needs the column 'budget_flops'"):
        table.near_optimal(df.rename(columns={"budget_flops": "C"}), 2)
    for missing in (None, 0.0):      # a store's runs without a budget have budget_flops = 0
        with pytest.raises(DataError, match=r"1 rows have none \(empty or 0\)"):
            table.near_optimal(df.assign(budget_flops=[1.0, missing, 1.0, 2.0, 2.0, 1.0]), 2)


def test_fit_near_optimal_on_porians_isoflop_points() -> None:
    """`fit --near-optimal K` fits each budget's K best points: on Porian et al.'s RefinedWeb IsoFLOP
    points (one setting, the bundled dataset), exactly the rows pandas picks by hand."""
    from click.testing import CliRunner

    from scalinglab import datasets
    from scalinglab.cli import main

    pts = datasets.load("isoflops-porian:isoflop-points")
    one = pts[(pts.dataset == "rw") & (pts.hparams == "base") & (pts.warmup == "long")
              & (pts.decay == "kaplan") & (pts.param_count == "kaplan")]
    by_hand = one.sort_values("loss").groupby("budget_flops").head(3)
    assert len(by_hand) == 3 * one.budget_flops.nunique() < len(one)
    where = ("dataset == 'rw' and hparams == 'base' and warmup == 'long' and decay == 'kaplan' and "
             "param_count == 'kaplan'")
    args = ["fit", "--dataset", "isoflops-porian", "--where", where, "--law", "chinchilla", "--json"]
    r = CliRunner().invoke(main, [*args, "--near-optimal", "3"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_points"] == len(by_hand) and "each budget's 3 lowest-loss rows" in d["data"]["source"]
    from scalinglab.fit import LawFit

    direct = LawFit("chinchilla").fit(by_hand).result_
    assert d["params"] == pytest.approx(direct.params, rel=1e-6)    # the fit of exactly those rows (row order aside)
    r = CliRunner().invoke(main, [*args, "--near-optimal", "0"])
    assert r.exit_code == 2 and "--near-optimal" in r.stderr


@pytest.mark.parametrize("suffix, text, line, hint", [
    (".csv", "N,D,loss\n1e9,1e10,2.5,7\n2e9,2e10,2.4\n", 2, ""),                   # the shifted read
    (".csv", "N,D,loss\n1e9,1e10,2.5\n2e9,2e10,2.4,\n", 3, " (a trailing delimiter?)"),
    (".csv", "N,D,loss\n1e9,1e10,2.5\n2e9,2e10\n", 3, ""),
    (".csv", "N,D,loss,\n1e9,1e10,2.5\n", 2, " (the header ends in a delimiter?)"),
    (".tsv", "N\tD\tloss\n1e9\t1e10\t2.5\n\n2e9\t2e10\t2.4\t9\n", 4, ""),
    (".csv", 'N,D,loss\n1e9,"1e10\n",2.5\n2e9,2e10,2.4,1\n', 4, ""),               # a quoted field spans lines
])
def test_ragged_rows_are_refused_naming_the_line(tmp_path: Path, suffix: str, text: str, line: int, hint: str) -> None:
    p = tmp_path / f"nd{suffix}"
    p.write_text(text)
    with pytest.raises(DataError) as info:
        table.read_table(p)
    msg = str(info.value)
    assert f"the row on line {line} has" in msg and msg.endswith(f"{hint}; every row must have the header's field count.")
    assert "\n" not in msg


def test_consistent_rows_read_unshifted(tmp_path: Path) -> None:
    p = tmp_path / "nd.csv"
    p.write_text("\nN,D,loss\n1e9,1e10,2.5\n\n2e9,2e10,2.4\n")
    df = table.read_table(p)
    assert list(df.columns) == ["N", "D", "loss"] and list(df["N"]) == [1e9, 2e9] and list(df["loss"]) == [2.5, 2.4]
    q = tmp_path / "trailing.csv"                      # every line ends in a comma: consistent, nothing shifts
    q.write_text("N,D,loss,\n1e9,1e10,2.5,\n")
    assert list(table.read_table(q)[["N", "D", "loss"]].iloc[0]) == [1e9, 1e10, 2.5]
    b = tmp_path / "binary.csv"
    b.write_bytes(b"N,D\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        table.read_table(b)


def test_ragged_row_through_the_cli_is_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from scalinglab.cli import main
    p = tmp_path / "nd.csv"
    p.write_text("N,D,loss\n1e9,1e10,2.5\n2e9,2e10,2.4,2.3\n4e9,4e10,2.3\n")
    r = CliRunner().invoke(main, ["fit", str(p), "--law", "chinchilla"])
    assert r.exit_code == 2 and "the row on line 3 has 4 fields" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_a_column_named_twice_is_refused(tmp_path: Path, suffix: str, sep: str) -> None:
    """Two columns named 'loss': pandas read the first and renamed the second 'loss.1', silently."""
    from click.testing import CliRunner

    from scalinglab.cli import main
    p = tmp_path / f"nd{suffix}"
    p.write_text("\n".join(sep.join(r) for r in (["N", "D", "loss", "loss"], ["1e9", "1e10", "2.5", "2.9"],
                                                 ["2e9", "2e10", "2.4", "2.8"])) + "\n")
    r = CliRunner().invoke(main, ["fit", str(p), "--law", "chinchilla"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == (f"error: {suffix[1:]} file {str(p)!r}: the header (line 1) names the column 'loss' twice "
                        "(fields 3 and 4); every column needs a name of its own.\n")
    q = tmp_path / f"two_blank{suffix}"          # unnamed columns (trailing delimiters) are not names given twice
    q.write_text(f"N{sep}D{sep}loss{sep}{sep}\n1e9{sep}1e10{sep}2.5{sep}{sep}\n")
    assert list(table.read_table(q)[["N", "D", "loss"]].iloc[0]) == [1e9, 1e10, 2.5]


def test_a_jsonl_row_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """JSON keeps the last of a key given twice: the row fitted N = 2e8 without a word."""
    p = tmp_path / "runs.jsonl"
    p.write_text('{"N": 1e8, "D": 1e9, "loss": 3}\n{"N": 1e8, "N": 2e8, "D": 1e9, "loss": 3}\n')
    with pytest.raises(DataError, match=r"line 2 gives the column 'N' twice; every column once per row\."):
        table.read_table(p)
    q = tmp_path / "nested.jsonl"                      # a nested object's keys are not columns
    q.write_text('{"N": 1e8, "D": 1e9, "loss": 3, "meta": {"a": 1, "a": 2}}\n')
    assert table.read_table(q)["N"].tolist() == [1e8]


@pytest.mark.parametrize("text, needle", [
    ('{"N": 1e9, "D": 1e10, "loss": 2.5}\n[1e9, 1e10, 2.5, 7]\n', "line 2 is a JSON list, expected an object"),
    ('{"N": 1e9, "D": 1e10, "loss": 2.5}\n\n{"N": 2e9,\n', "line 3 is not valid JSON"),
])
def test_jsonl_lines_must_be_objects(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "nd.jsonl"
    p.write_text(text)
    with pytest.raises(DataError, match=needle):
        table.read_table(p)


def test_file_rows_are_named_by_their_file_line(tmp_path: Path) -> None:
    """A bad value of a CSV, TSV or JSONL file is named by the line a user opens: blank lines and a quoted field
    over two lines counted (pandas skips the blank lines, so a 0-based row index named another line)."""
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('run,N,loss\n\na,"1e6",3.0\n"b\nsecond line",2e6,2.9\n\n\nc,4e6,-1\n')
    df = table.read_table(csv_file)
    assert list(df.index) == [3, 4, 8] and df.index.name == "line"
    with pytest.raises(DataError, match=r"Column 'loss' \(nats/token\) of data \(line 8\) must be a positive number"):
        table.validate(df, ["N", "loss"])
    tsv = tmp_path / "t.tsv"
    tsv.write_text("N\tloss\n1e6\t3.0\n\nx\t2.9\n")
    with pytest.raises(DataError, match=r"Column 'N' of data \(line 4\) must be a number. Got 'x'"):
        table.validate(table.read_table(tsv), ["N", "loss"])
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"N": 1e6, "loss": 3.0}\n\n{"N": 2e6, "loss": 2.9}\n{"N": 4e6, "loss": "nan"}\n')
    assert list(table.read_table(jsonl).index) == [1, 3, 4]
    pq = tmp_path / "t.parquet"           # a file without lines keeps the 0-based row
    pd.DataFrame({"N": [1e6, 2e6], "loss": [3.0, -2.9]}).to_parquet(pq)
    with pytest.raises(DataError, match=r"of data \(row 1\) must be a positive number"):
        table.validate(table.read_table(pq), ["N", "loss"])
    # filtering and mapping keep the labels: the row left after --where is still named by its line
    kept = table.load(csv_file, mapping={"D": "20 * N"}, where="N > 1.5e6")
    assert list(kept.index) == [4, 8]
    with pytest.raises(DataError, match=r"\(line 8\)"):
        table.validate(kept, ["N", "D", "loss"])
