"""The shared output module of the commands: number formatting, list parsing, and errors that name
the command's options where the library names its parameters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main, output
from scalinglab.errors import ConfigError, ParameterError


def test_fmt_prints_every_number_one_way() -> None:
    assert output.fmt(2.0837214) == "2.08372" and output.fmt(1.00489e11) == "1.00489e+11"
    assert output.fmt(27792) == "27,792" and output.fmt(np.int64(27792)) == "27,792"
    assert output.fmt(np.float64(0.003)) == "0.003"
    assert output.fmt(None) == "-" and output.fmt(math.nan) == "-" and output.fmt(True) == "True"
    assert output.fmt([1950, 3910]) == "[1950, 3910]" and output.fmt((1.5, 2.25)) == "[1.5, 2.25]"
    assert output.sci(2.8e6) == "2.8e6" and output.sci(0.5) == "0.5"


def test_emit_json_is_one_object_without_nan(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_json({"a": np.float64(1.5), "b": math.nan, "c": [np.int64(2)], "d": math.inf})
    assert json.loads(capsys.readouterr().out) == {"a": 1.5, "b": None, "c": [2], "d": None}


def test_lists_and_assignments() -> None:
    assert output.numbers("1e12, 3e12", "--budgets") == [1e12, 3e12] and output.numbers(None, "--x") is None
    assert output.numbers("256,512", "--batch-grid", int) == [256, 512]
    with pytest.raises(ParameterError, match=r"Each value of --budgets must be a number. Got 'lots' instead."):
        output.numbers("1e11,lots", "--budgets")
    with pytest.raises(ParameterError, match=r"Each value of --batch-grid must be an integer. Got '256.5'"):
        output.numbers("256.5", "--batch-grid", int)
    assert output.floats(["N=7e10", "D=1.4e12"], "--at") == {"N": 7e10, "D": 1.4e12}
    assert output.parse_set(["dtype=float32", "schedule.branches=[0.25, 0.5]", "seed=3"]) == {
        "dtype": "float32", "schedule": {"branches": [0.25, 0.5]}, "seed": 3}
    with pytest.raises(ConfigError, match="The --set argument must be of the form KEY=VALUE"):
        output.parse_set(["bad"])


def test_translate_names_the_options_not_the_values() -> None:
    names = {"budgets": "--budgets", "tokens": "--tokens", "schedule.name = 'wsd'": "--schedule wsd"}
    assert output.translate("Each value of the 'budgets' parameter must be positive.", names) == \
        "Each value of --budgets must be positive."
    assert output.translate("an N x D grid needs 'tokens'; must be schedule.name = 'wsd'.", names) == \
        "an N x D grid needs --tokens; must be --schedule wsd."
    listed = "The run config key must be one of ['seed', 'tokens']. Got 'width' instead."
    assert output.translate(listed, names) == listed            # a listed field is a value, not a parameter
    with pytest.raises(ConfigError, match="^The FLOP budget --flops must be positive.$"):
        with output.flags({"flops": "--flops"}):
            raise ConfigError("The FLOP budget 'flops' must be positive.")


def test_library_errors_reach_the_command_line_with_its_option_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(main, ["ladder", "design", "--budgets", "-1", "--out", str(tmp_path / "x.toml")])
    assert r.exit_code == 2 and r.stderr == \
        "error: Each value of --budgets must be a positive finite number. Got -1.0 instead.\n"
    r = CliRunner().invoke(main, ["plan", "--law", "chinchilla", "--preset", "hoffmann2022", "--flops", "1e21",
                                  "--max-tokens", "0"])
    assert r.exit_code == 2 and r.stderr.startswith("error: The token limit --max-tokens must be")
