"""A quantiser block (or a PTQ group) must divide the width the trainer builds: with Sparse-IFT that is
the widened d_model (accounting.model_shape), so the check happens when the config is made (one-line
ConfigError; `ladder design` exits 2 and writes nothing), not when the run starts; and `ladder design`
checks it against each designed run's width, not the template's placeholder d_model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from scalinglab.accounting import model_shape
from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.ladder import build
from scalinglab.ladder.ladderfile import read_toml
from scalinglab.runconfig import PrecisionConfig, RunConfig, SparsityConfig

SIFT = SparsityConfig(target=0.5, ift=True)


def sun(block: int) -> PrecisionConfig:
    return PrecisionConfig(recipe="sun", weights="E2M1", activations="E2M1", scaling="block", block=block)


def test_the_block_must_divide_the_widened_width() -> None:
    # d_model 64, head dim 8, S 0.5: the trainer builds 64 / sqrt(0.5) = 90.5 -> 88 (a multiple of 8)
    assert model_shape(RunConfig(d_model=64, n_head=8, sparsity=SIFT))["d_model"] == 88
    with pytest.raises(ConfigError) as e:
        RunConfig(d_model=64, n_head=8, sparsity=SIFT, precision=sun(16))     # 16 divides 64, not 88
    msg = str(e.value)
    assert "\n" not in msg and "'precision.block'" in msg and "16" in msg and "d_model = 88" in msg
    with pytest.raises(ConfigError, match="'ptq' entry.*d_model = 88"):
        RunConfig(d_model=64, n_head=8, sparsity=SIFT, ptq=["int3_g16"])
    # without Sparse-IFT the configured width is the built one: 16 divides 64
    assert RunConfig(d_model=64, n_head=8, precision=sun(16)).precision.block == 16
    # a block dividing 88 passes, and the built model (88 wide) quantises in blocks of 8 without error
    cfg = RunConfig(d_model=64, n_head=8, context=16, batch_tokens=64, tokens=640, vocab=256, sparsity=SIFT,
                    precision=sun(8))
    model = build.build_model(cfg, torch.device("cpu"))
    _, loss = model(torch.zeros(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long))
    assert loss is not None and torch.isfinite(loss)


def test_ladder_design_rejects_it_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    args = ["ladder", "design", "--params", "1e5", "--tokens", "1e5", "--sparsities", "0.5", "--set",
            "sparsity.ift=true", "--formats", "E2M1", "--vocab", "256", "--context", "64", "--batch-tokens", "512",
            "--out", str(out)]
    r = CliRunner().invoke(main, [*args, "--blocks", "64"], prog_name="scalinglab")   # d 64 -> 96 built
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "precision.block" in r.stderr and "64" in r.stderr and "Sparse-IFT width d_model = 96" in r.stderr
    assert not out.exists()
    r = CliRunner().invoke(main, [*args, "--blocks", "32"], prog_name="scalinglab")   # 32 divides 96
    assert r.exit_code == 0 and out.exists(), r.stderr


def test_design_checks_a_group_against_each_designed_width_not_the_templates(tmp_path: Path) -> None:
    """`--set ptq=[...]` / `precision.block` are checked against the shape each run gets (here d_model
    48), not the template's placeholder d_model (64): a group of 48 is right for a 48-wide run."""
    out = tmp_path / "l.toml"
    base = ["ladder", "design", "--tokens", "1e6", "--vocab", "256", "--context", "64", "--batch-tokens", "512",
            "--out", str(out)]
    r = CliRunner().invoke(main, [*base, "--params", "5e4", "--set", 'ptq=["int3_g48"]', "--set",
                                  "precision.recipe=sun", "--set", "precision.scaling=block", "--set",
                                  "precision.block=48"], prog_name="scalinglab")
    assert r.exit_code == 0, r.stderr
    (run,) = read_toml(out)
    assert run.d_model == 48 and run.ptq == ("int3_g48",) and run.precision.block == 48
    out.unlink()
    r = CliRunner().invoke(main, [*base, "--params", "1e5", "--set", 'ptq=["int3_g48"]'], prog_name="scalinglab")
    assert r.exit_code == 2 and "d_model = 64" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()
