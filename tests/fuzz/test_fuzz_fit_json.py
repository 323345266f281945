"""Fuzzing the FIT.json boundary (issue 16): random mutations of a valid fit file given to `predict`
and `plan`. The property: a correct result (exit 0, a finite prediction) or one line on stderr with
exit 2; never a traceback or another exit code, and nothing written beside the file."""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.fit import LawFit


@functools.lru_cache(maxsize=1)
def base_fit() -> dict[str, Any]:
    """A bootstrapped Chinchilla fit of 20 synthetic points, in its JSON form."""
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 20))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 20))
    L = (1.7 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, 0.01, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # its flat-direction warnings are part of the file
        fit = LawFit("chinchilla", bootstrap=4, seed=0).fit(pd.DataFrame({"N": N, "D": D, "loss": L})).result_
    d: dict[str, Any] = json.loads(fit.to_json())
    return d


def paths(x: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree (long lists: their first few items only)."""
    out = [prefix] if prefix else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += paths(v, (*prefix, k))
    elif isinstance(x, list):
        for i, v in enumerate(x[:3]):
            out += paths(v, (*prefix, i))
    return out


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 7, 0.5]),
    st.text(max_size=8), st.sampled_from(laws.available()), st.sampled_from(["log", "linear", "E", "alpha"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=6)


def _parent(d: Any, path: tuple[Any, ...]) -> Any:
    for k in path[:-1]:
        d = d[k]
    return d


def mutate(d: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    for _ in range(data.draw(st.integers(1, 3), label="n mutations")):
        where = paths(d)
        if not where:
            break
        path = data.draw(st.sampled_from(where), label="path")
        parent, key = _parent(d, path), path[-1]
        op = data.draw(st.sampled_from(["delete", "replace", "truncate", "extend", "wrap"]), label="op")
        value = parent[key]
        if op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op == "replace":
            parent[key] = data.draw(json_value, label="value")
        elif op == "truncate" and isinstance(value, (list, dict)):
            keep = data.draw(st.integers(0, max(len(value) - 1, 0)), label="keep")
            parent[key] = value[:keep] if isinstance(value, list) else dict(list(value.items())[:keep])
        elif op == "extend" and isinstance(value, list):
            parent[key] = value + value[:2] + [data.draw(json_leaf, label="extra")]
        elif op == "extend" and isinstance(value, dict):
            parent[key] = {**value, data.draw(st.text(max_size=5), label="new key"): data.draw(json_leaf)}
        else:
            parent[key] = [value]
    return d


def check(fit_path: Path, command: list[str]) -> None:
    folder = fit_path.parent
    before = sorted(p.name for p in folder.iterdir())
    r = CliRunner().invoke(main, [command[0], str(fit_path), *command[1:]])
    assert r.exit_code in (0, 2), (r.exit_code, r.stderr, r.exception)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code == 2:
        assert r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    else:
        out = json.loads(r.stdout)
        assert math.isfinite(out["loss"])
        assert out["interval"] is None or out["interval"][0] <= out["interval"][1]
    assert sorted(p.name for p in folder.iterdir()) == before


#: examples per property: a few hundred in `make test`; set SCALINGLAB_FUZZ_EXAMPLES for a longer run
EXAMPLES = int(os.environ.get("SCALINGLAB_FUZZ_EXAMPLES", "200"))

COMMANDS = [["predict", "--at", "N=7e10", "--at", "D=1.4e12", "--json"], ["plan", "--flops", "1e21", "--json"]]


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), command=st.sampled_from(COMMANDS))
def test_mutated_fit_json_is_a_result_or_one_line(data: st.DataObject, command: list[str]) -> None:
    d = mutate(copy.deepcopy(base_fit()), data)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fit.json"
        f.write_text(json.dumps(d))
        check(f, command)


@settings(max_examples=EXAMPLES // 2, deadline=None, database=None)
@given(data=st.data(), command=st.sampled_from(COMMANDS))
def test_damaged_fit_file_is_a_result_or_one_line(data: st.DataObject, command: list[str]) -> None:
    """Random bytes, a truncated file, flipped bytes."""
    text = json.dumps(base_fit()).encode()
    how = data.draw(st.sampled_from(["random", "truncate", "flip"]), label="how")
    if how == "random":
        raw = data.draw(st.binary(max_size=200), label="bytes")
    elif how == "truncate":
        raw = text[:data.draw(st.integers(0, len(text)), label="cut")]
    else:
        at = data.draw(st.lists(st.integers(0, len(text) - 1), min_size=1, max_size=4), label="at")
        b = bytearray(text)
        for i in at:
            b[i] = data.draw(st.integers(0, 255), label="byte")
        raw = bytes(b)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fit.json"
        f.write_bytes(raw)
        check(f, command)


def test_unmutated_fit_json_gives_a_result() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fit.json"
        f.write_text(json.dumps(base_fit()))
        for command in COMMANDS:
            r = CliRunner().invoke(main, [command[0], str(f), *command[1:]])
            assert r.exit_code == 0 and json.loads(r.stdout)["interval"] is not None
