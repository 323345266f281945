"""Fuzzing the ladder file: random types and values in every run-config field.

Property: reading the ladder (and checking its corpora, as ``ladder run`` does before anything is
stored) either gives valid run configs or raises one ScalingLabError whose message is one line; the
real ``ladder run`` command on a ladder that does not read exits 2 with one line and creates no store,
no checkpoint folder, nothing. ``SCALINGLAB_FUZZ_EXAMPLES`` sets a longer run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalinglab.cli import main
from scalinglab.errors import ScalingLabError
from scalinglab.ladder import ladderfile
from scalinglab.runconfig import RunConfig, ScheduleConfig, SparsityConfig

EXAMPLES = int(os.environ.get("SCALINGLAB_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = [f.name for f in dataclasses.fields(RunConfig) if f.name not in ("schedule", "sparsity")]
SUB = {"schedule": [f.name for f in dataclasses.fields(ScheduleConfig)],
       "sparsity": [f.name for f in dataclasses.fields(SparsityConfig)]}

# TOML values of every type, hostile ones included (paths out of the folder, huge and special numbers)
VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=20), st.sampled_from(["../../../etc/evil", "/abs/name", "", "default", "a b"]),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3), st.lists(st.floats(0, 1), max_size=3),
    st.dictionaries(st.sampled_from(["x", "name"]), st.integers(0, 3), max_size=2))


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').encode("unicode_escape").decode().replace(
            "\\\\", "\\") + '"' if v.isprintable() else '"x"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"


@st.composite
def ladders(draw: Any) -> str:
    """A one-run ladder: a small valid run with 1-3 fields replaced by random values."""
    run: dict[str, Any] = {"name": "fz", "n_layer": 1, "d_model": 32, "n_head": 2, "context": 32,
                           "tokens": 4096, "batch_tokens": 512}
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            run[draw(st.sampled_from(FIELDS))] = draw(VALUES)
        else:
            table = draw(st.sampled_from(sorted(SUB)))
            sub = run.setdefault(table, {})
            if isinstance(sub, dict):
                sub[draw(st.sampled_from(SUB[table]))] = draw(VALUES)
    lines = ["[[runs]]"] + [f"{k} = {toml_value(v)}" for k, v in run.items()]
    return "\n".join(lines) + "\n"


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@SETTINGS
@given(ladders())
def test_a_ladder_file_reads_or_is_one_clear_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ladder.toml"
        path.write_text(text, encoding="utf-8")
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return   # our printer made invalid TOML: the reader's own error is tested elsewhere
        before = listing(Path(tmp))
        try:
            runs, _ = ladderfile.read_ladder(path)
            ladderfile.check_corpora(runs)
        except ScalingLabError as exc:
            assert "\n" not in str(exc).strip(), str(exc)
            r = CliRunner().invoke(main, ["ladder", "run", str(path), "--store", str(Path(tmp) / "runs.db"),
                                          "--checkpoints", str(Path(tmp) / "ckpt"), "--no-progress"])
            assert r.exit_code == 2, (r.output, r.exception)
            assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
            assert listing(Path(tmp)) == before      # no store, no checkpoint folder
        else:
            assert all(isinstance(r, RunConfig) for r in runs)
            for r in runs:   # a config that reads is a valid one: it round-trips through its dict
                assert RunConfig.from_dict(r.to_dict()) == r
