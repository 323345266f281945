"""Property-based fuzzing of the input boundary: expressions (--where, --map) from a grammar that includes
hostile constructs, and random CSV/TSV/JSONL content. The property: a correct result, or one DataError
line (exit 2 through the CLI); never another exception, never a file created."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalinglab import table
from scalinglab.cli import main
from scalinglab.errors import DataError

FRAME = pd.DataFrame({"N": [1e8, 2e8, 4e8, np.nan], "D": [2e9, 0.0, -8e9, 4e9], "loss": [3.0, 2.9, 2.7, 2.8],
                      "Training FLOP": [1.2e18, 1.2e18, 1.92e19, 1.92e19], "run": ["a", "b", "c", None],
                      "seed": [0, 1, 0, 1], "flag": [True, False, True, False]})

#: examples per target; SCALINGLAB_FUZZ_EXAMPLES=20000 for a longer run
EXAMPLES = int(os.environ.get("SCALINGLAB_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])

ATOMS = st.sampled_from(["N", "D", "loss", "`Training FLOP`", "seed", "flag", "run", "1", "0", "-1", "2.5", "1e21",
                         "1e999", "True", "False", "'a'", "\"b\"", "None", "nosuch", "`nosuch`", "log", "__class__",
                         "__import__", "@pd", "@N", "...", "1j", "b'x'", "x", "`", "'", "0x1F", "1_000"])
HOSTILE = st.sampled_from([
    "N.__class__.__init__.__globals__['sys'].modules['os'].system('touch pwned')",
    "N.to_csv('pwned')", "@pd.io.common.os.system('touch pwned')", "open('pwned', 'w')",
    "__import__('os').system('touch pwned')", "(lambda: 1)()", "[x for x in N]", "{x: 1 for x in N}",
    "(x := N)", "getattr(N, 'to_csv')('pwned')", "f'{N}'", "N[0]", "N[::2]", "*N", "N if D else loss",
    "exec('1')", "globals()", "vars()", "log(N, out=N)", "rank(N, ascending=False)", "N.rank()",
])
BINOPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "<=", ">", ">=", "==", "!=", "and", "or",
                          "&", "|", "@", "<<", "is", "in", "not in", ","])
UNARY = st.sampled_from(["-", "+", "not ", "~"])
FUNCS = st.sampled_from(["log", "log10", "log2", "exp", "sqrt", "abs", "isnan", "minimum", "maximum", "min",
                         "max", "rank", "eval", "print", "N"])


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, BINOPS, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(UNARY, inner).map(lambda t: f"{t[0]}{t[1]}"),
            inner.map(lambda s: f"({s})"),
            st.tuples(FUNCS, st.lists(inner, min_size=0, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        )
    return st.recursive(st.one_of(ATOMS, HOSTILE), extend, max_leaves=12)


def _check_value(value: pd.DataFrame, kind: str) -> None:
    if kind == "where":
        assert len(value) <= len(FRAME) and set(value.index) <= set(FRAME.index)
    else:
        assert len(value) == len(FRAME) and "M" in value.columns


@SETTINGS
@given(text=st.one_of(_expressions(), st.text(max_size=60)), kind=st.sampled_from(["where", "map"]))
def test_expressions_give_a_result_or_one_data_error(tmp_path: Path, text: str, kind: str) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        before = sorted(os.listdir(tmp_path))
        try:
            out = table.apply_where(FRAME, text) if kind == "where" else table.apply_map(FRAME, {"M": text})
        except DataError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            _check_value(out, kind)
        assert sorted(os.listdir(tmp_path)) == before
    finally:
        os.chdir(cwd)


@SETTINGS
@given(text=st.one_of(_expressions(), st.text(max_size=40)))
def test_expressions_through_the_cli(tmp_path: Path, text: str) -> None:
    data = tmp_path / "nd.csv"
    if not data.exists():
        FRAME[["N", "D", "loss"]].dropna().abs().replace(0.0, 1e9).to_csv(data, index=False)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        before = sorted(os.listdir(tmp_path))
        r = CliRunner().invoke(main, ["fit", str(data), "--law", "chinchilla", "--where", text, "--json"])
        assert r.exit_code in (0, 2), (r.exit_code, r.exception)
        if r.exit_code == 2:
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert sorted(os.listdir(tmp_path)) == before
    finally:
        os.chdir(cwd)


CELLS = st.one_of(st.sampled_from(["1e9", "2.5", "-1", "0", "nan", "inf", "", "abc", '"1,2"', '"x\ny"', "1e999",
                                   "\t", ",", '"', "N", "\x00"]),
                  st.floats(allow_nan=True).map(repr), st.text(max_size=6))


@st.composite
def _delimited(draw: st.DrawFn, sep: str) -> str:
    header = draw(st.sampled_from([["N", "D", "loss"], ["N", "D", "loss", ""], ["", "N", "D"], ["N"], ["N", "N"]]))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 2), max_size=6))
    lines = [sep.join(header), *(sep.join(r) for r in rows)]
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", sep, sep + "\n"]))


JSONL_LINES = st.one_of(
    st.fixed_dictionaries({"N": st.one_of(st.floats(), st.integers(), st.text(max_size=4), st.none()),
                           "D": st.one_of(st.floats(), st.booleans(), st.lists(st.integers(), max_size=2)),
                           "loss": st.floats()}).map(json.dumps),
    st.sampled_from(["{", "[]", "1", "null", '"x"', "{}", '{"N": 1e999}', '[{"N": 1}]', "\x00", "", '{"N":1}{"D":2}']),
    st.text(max_size=20),
)


@SETTINGS
@given(kind=st.sampled_from(["csv", "tsv", "jsonl", "json"]), data=st.data())
def test_random_files_give_a_table_or_one_data_error(tmp_path: Path, kind: str, data: st.DataObject) -> None:
    if kind == "csv":
        text = data.draw(_delimited(","))
    elif kind == "tsv":
        text = data.draw(_delimited("\t"))
    else:
        text = "\n".join(data.draw(st.lists(JSONL_LINES, max_size=5)))
    path = tmp_path / f"in.{kind}"
    raw = text.encode("utf-8")
    path.write_bytes(raw if data.draw(st.booleans()) else raw + data.draw(st.binary(max_size=4)))
    before = sorted(os.listdir(tmp_path))
    try:
        df = table.read_table(path)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(df, pd.DataFrame) and not df.empty
        if kind in ("csv", "tsv") and list(df.columns)[:3] == ["N", "D", "loss"]:
            # never a shifted read (a data column taken as the index): the index is each record's file line
            # (after the header, increasing), or the plain row count where the readers disagreed on a record
            idx = df.index
            lines = len(path.read_bytes().decode("utf-8", "replace").splitlines()) + 1   # splits at least as often
            assert idx.equals(pd.RangeIndex(len(df))) or (
                idx.name == "line" and idx.is_unique and idx.is_monotonic_increasing
                and 2 <= int(idx.min()) and int(idx.max()) <= lines), list(idx)
    r = CliRunner().invoke(main, ["fit", str(path), "--law", "chinchilla", "--json"])
    assert r.exit_code in (0, 2), (r.exit_code, r.exception)
    if r.exit_code == 2:
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == before
