"""The expression language of --where, --train-where and --map (scalinglab.expr): hostile expressions are
refused with one line and exit 2 through the real `scalinglab` group, with no side effect; legitimate
ones give exact values."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab import expr, table
from scalinglab.cli import main
from scalinglab.errors import DataError

GLOBALS = "N.__class__.__init__.__globals__['sys'].modules['os'].system('touch pwned')"
INJECTIONS = [
    f"{GLOBALS} == 0",
    "N.to_csv('out.csv') == None",
    "@pd.io.common.os.system('touch pwned')",
    "(lambda: 1)() == 1",
    "[x for x in N] == 1",
    "sum(x for x in N) > 0",
    "{k: 1 for k in N} == 1",
    "__import__('os').system('touch pwned') == 0",
    "__builtins__ == 1",
    "N.__class__ == 1",
    "getattr(N, 'to_csv')('out.csv') == None",
    "open('out.csv', 'w') == None",
    "eval('1') == 1",
    "log(N, base=2) > 1",
    "N[0] > 1",
    "(x := N) > 1",
    "f'{N}' == 'a'",
    "'a' + 'b' == 'ab'",
    "N @ D > 1",
    "N if D else D",
    "N is None",
    "N in D",
    "(N, D) == 1",
    "N > `unclosed",
    "N >",
]

FRAME = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8], "D": [2e9, 1e9, 8e9, 4e9], "loss": [3.0, 2.9, 2.7, 2.8],
                      "Training FLOP": [1.2e18, 1.2e18, 1.92e19, 1.92e19], "run": ["a", "b", "c", "d"],
                      "seed": [0, 1, 0, 1]})


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory holding nothing but the data file nd.csv (in a folder beside it)."""
    data = tmp_path / "data"
    data.mkdir()
    FRAME[["N", "D", "loss"]].to_csv(data / "nd.csv", index=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _refused(args: list[str], root: Path, needle: str = "is not allowed") -> str:
    before = _snapshot(root)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert _snapshot(root) == before, "a file was created"
    assert not Path("pwned").exists() and not Path("out.csv").exists()
    return err


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_through_where_is_refused(work: Path, bad: str) -> None:
    needle = "is not allowed" if bad != "@pd.io.common.os.system('touch pwned')" else "'@' names"
    err = _refused(["fit", str(work / "data" / "nd.csv"), "--law", "chinchilla", "--where", bad], work, needle)
    assert repr(bad) in err


@pytest.mark.parametrize("bad", [f"N + 0 * {GLOBALS}", "@pd.io.common.os.system('touch pwned')",
                                 "N.to_csv('out.csv')", "(lambda: N)()", "[n for n in N]", "N.__class__"])
def test_injection_through_map_is_refused(work: Path, bad: str) -> None:
    err = _refused(["fit", str(work / "data" / "nd.csv"), "--law", "chinchilla", "--map", f"D={bad}"], work)
    assert f"column mapping D={bad!r}" in err


def test_injection_through_train_where_is_refused(work: Path) -> None:
    _refused(["backtest", str(work / "data" / "nd.csv"), "--law", "chinchilla", "--train-where",
              f"{GLOBALS} == 0"], work)


def test_injection_through_fit_store_where_is_refused(work: Path) -> None:
    from scalinglab.runconfig import RunConfig
    from scalinglab.store import Store

    db = work / "data" / "runs.db"
    with Store(db) as st:
        cfgs = [RunConfig(name=f"r{d}", n_layer=1, d_model=d, n_head=d // 16, tokens=4096 * 50) for d in (32, 48, 64)]
        st.add_planned(cfgs)
        for i, cfg in enumerate(cfgs):
            st.add_point(cfg.name, {"step": cfg.steps, "tokens": cfg.tokens, "flops": 1.0, "flops_full": 1.0,
                                    "train_loss": 4.0 - i / 10, "eval_loss": 4.0 - i / 10, "lr": 1e-3, "wall_time": 0.0})
            st.mark_done(cfg.name, {"N_total": 12 * cfg.d_model**2, "N_nonembed": 12 * cfg.d_model**2,
                                    "N_nonzero": 12 * cfg.d_model**2, "tokens": cfg.tokens})
    _refused(["fit", "--store", str(db), "--law", "chinchilla", "--points", "final", "--where", f"{GLOBALS} == 0"],
             work / "cwd")
    _refused(["fit", "--store", str(db), "--law", "chinchilla", "--points", "final",
              "--map", "D=@pd.io.common.os.system('touch pwned')"], work / "cwd", "'@' names")


@pytest.mark.parametrize("bad, construct", [
    (f"{GLOBALS} == 0", "a method call (.system(...))"),
    ("N.__class__ == 1", "attribute access"),
    ("N[0] > 1", "subscripts"),
    ("(lambda: 1)() == 1", "a call"),
    ("lambda: 1", "lambda"),
    ("[x for x in N]", "comprehensions"),
    ("__import__ == 1", "dunder name '__import__'"),
    ("open('x') == 1", "a call of 'open'"),
    ("log(N, base=2) > 1", "keyword arguments"),
    ("'x' + 'y' == 'xy'", "a string outside a comparison"),
    ("N == None", "the constant None"),
    ("@N > 1", "'@' names"),
    ("log(N, D) > 1", "log() with 2 arguments"),
    ("N > 1j", "a complex constant"),
    ("N << 2", "the operator LShift"),
    ("N in D", "the comparison In"),
])
def test_refusals_name_the_construct(bad: str, construct: str) -> None:
    with pytest.raises(DataError) as info:
        table.apply_where(FRAME, bad)
    msg = str(info.value)
    assert construct in msg and repr(bad) in msg and "\n" not in msg


@pytest.mark.parametrize("where, rows", [
    ("N < 3e8", [0, 1]),
    ("1e8 < N <= 4e8", [1, 2]),
    ("N > 1e8 & D > 1e9", [2, 3]),                       # & binds like `and`, as in pandas
    ("(N > 1e8) | (loss >= 3)", [0, 1, 2, 3]),
    ("not (N > 1e8) or loss < 2.75", [0, 2]),
    ("~(loss > 2.8)", [2, 3]),
    ("`Training FLOP` < 1e19", [0, 1]),
    ("`Training FLOP` == 6 * N * D * 0 + 1.2e18", [0, 1]),
    ("run == 'b'", [1]),
    ("'c' <= run", [2, 3]),
    ("run != 'a' and seed == 0", [2]),
    ("rank(-loss) > 1", [1, 2, 3]),                      # = loss.rank(ascending=False) > 1
    ("rank(loss, seed) == 1", [2, 3]),                    # lowest loss of each seed
    ("log10(N) >= 8.5", [2, 3]),
    ("sqrt(N) == 1e4 or abs(-loss) == 2.9", [0, 1]),
    ("exp(log(D)) > 3e9", [2, 3]),
    ("maximum(N, D / 10) == N", [1, 3]),
    ("min(N, D, 1.5e8) == N", [0]),
    ("N % 3e8 == 1e8", [0, 2]),
    ("N ** 0.5 // 1e4 == 2", [2, 3]),
    ("log2(N / 1e8) == 3", [3]),
    ("isnan(log(loss - 2.8))", [2]),
    ("N < quantile(N, 0.5)", [0, 1]),                   # = N < N.quantile(0.5), 3e8
    ("quantile(D, 1) == D", [2]),
    ("True", [0, 1, 2, 3]),
    ("1 > 2", []),
])
def test_legitimate_filters(where: str, rows: list[int]) -> None:
    assert list(table.apply_where(FRAME, where).index) == rows


def test_legitimate_mappings_give_exact_values() -> None:
    out = table.apply_map(FRAME, {"C": "`Training FLOP`", "D": "`Training FLOP` / (6 * N)", "M": "D / N",
                                  "lr": "1e-3", "S": "maximum(0, 1 - N / 4e8)", "step": "rank(N)"})
    np.testing.assert_array_equal(out["D"].to_numpy(), FRAME["Training FLOP"].to_numpy() / (6 * FRAME["N"].to_numpy()))
    np.testing.assert_array_equal(out["M"].to_numpy(), FRAME["D"].to_numpy() / FRAME["N"].to_numpy())
    np.testing.assert_array_equal(out["lr"].to_numpy(), [1e-3] * 4)
    np.testing.assert_array_equal(out["S"].to_numpy(), [0.75, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(out["step"].to_numpy(), [1.0, 2.0, 3.0, 4.0])
    assert list(out["C"]) == list(FRAME["Training FLOP"])


def test_rank_matches_pandas_rank_with_ties() -> None:
    df = pd.DataFrame({"x": [3.0, 1.0, 3.0, np.nan, 2.0], "g": [1, 1, 2, 2, 1]})
    np.testing.assert_array_equal(expr.evaluate("rank(-x)", df), df["x"].rank(ascending=False).to_numpy())
    np.testing.assert_array_equal(expr.evaluate("rank(x, g)", df), df.groupby("g")["x"].rank().to_numpy())


@pytest.mark.parametrize("where, needle", [
    ("nosuch > 1", "no column 'nosuch' in the data"),
    ("N + 1", "must be a true/false expression"),
    ("run + 1 > 0", "could not be evaluated"),
    ("run < 1", "could not be evaluated"),
    ("N & D", "needs true/false operands"),
    ("N < quantile(N, 2)", "could not be evaluated"),
    ("N < quantile(N, D)", "one number q"),
    ("N < quantile(run, 0.5)", "could not be evaluated"),
    ("-(N > 1)", "could not be evaluated"),
    ("N > 1e999999999999999999999", None),
    ("N > " + "(" * 300 + "1" + ")" * 300, None),
    ("N" + " + N" * 5000 + " > 1", "at most"),
    (" ", "is empty"),
])
def test_bad_filters_are_one_data_error(where: str, needle: str | None) -> None:
    try:
        out = table.apply_where(FRAME, where)
    except DataError as exc:
        assert "\n" not in str(exc)
        if needle is not None:
            assert needle in str(exc)
    else:
        assert needle is None and len(out) <= len(FRAME)


def test_map_of_a_missing_column_names_it() -> None:
    with pytest.raises(DataError, match=r"column mapping N='nocolumn': no column 'nocolumn'"):
        table.apply_map(FRAME, {"N": "nocolumn"})


def test_no_file_is_written_by_a_refused_expression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for bad in INJECTIONS:
        with pytest.raises(DataError):
            table.apply_where(FRAME, bad)
        with pytest.raises(DataError):
            table.apply_map(FRAME, {"D": bad})
    assert os.listdir(tmp_path) == []
