"""Fitting options on a store from the command line: ``fit --store --law anneal`` keeps --bound and
--weight (its lambda profile dropped them), and --weight compute on rows without a compute figure is one
line naming it (it was 'the objective is not finite at any of the starts')."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalinglab.cli import main


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_anneal_store_fit_keeps_the_bound(store: Path) -> None:
    free = CliRunner().invoke(main, ["fit", "--store", str(store), "--law", "anneal", "--json"])
    assert free.exit_code == 0, free.output
    assert not 2.5 <= json.loads(free.stdout)["params"]["L0"] <= 2.6       # the bound below binds
    r = CliRunner().invoke(main, ["fit", "--store", str(store), "--law", "anneal", "--bound", "L0=2.5:2.6", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert 2.5 <= d["params"]["L0"] <= 2.6
    assert d["data"]["bounds"] == {"L0": [2.5, 2.6]}
    assert any("'L0'" in w and "bound" in w for w in d["warnings"])


@pytest.mark.parametrize("law", ["anneal", "chinchilla"])
def test_compute_weight_without_compute_is_one_line(store: Path, law: str) -> None:
    before = digest(store)
    r = CliRunner().invoke(main, ["fit", "--store", str(store), "--law", law, "--points", "all", "--weight", "compute"])
    assert r.exit_code == 2, r.output
    assert r.stderr == ("error: The compute weighting (--weight compute) must be rows with a finite positive C "
                        "(a table without a C column gets C = 6 N D). Got '30 of 30 rows without C' instead.\n")
    assert digest(store) == before


def test_backtest_compute_weight_without_compute_is_one_line(store: Path) -> None:
    before = digest(store)
    r = CliRunner().invoke(main, ["backtest", "--store", str(store), "--law", "chinchilla", "--points", "all",
                                  "--weight", "compute", "--rollout", "batch"])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: The compute weighting (--weight compute) must be rows with a finite positive C")
    assert r.stderr.count("\n") == 1 and digest(store) == before


@pytest.mark.parametrize("law, mapped, warned", [("kaplan_steps", False, True), ("kaplan_steps", True, False),
                                                 ("anneal", False, False)])
def test_store_fit_of_a_non_embedding_law_warns_about_n_total(store: Path, law: str, mapped: bool,
                                                              warned: bool) -> None:
    """A store's N is N_total; a law counting non-embedding N (Kaplan, Kumar, the Step Law) fitted on it without
    --map N=N_nonembed read the wrong count without a word."""
    extra = ["--map", "N=N_nonembed"] if mapped else []
    extra += ["--map", "steps=step"] if law == "kaplan_steps" else []
    r = CliRunner().invoke(main, ["fit", "--store", str(store), "--law", law, "--points", "all", *extra, "--json"])
    assert r.exit_code == 0, r.output
    note = (f"law {law!r} counts N as non-embedding parameters; the store's N is N_total (all parameters), used as "
            "is: --map N=N_nonembed fits the law's count.")
    assert (note in json.loads(r.stdout)["warnings"]) == warned


@pytest.mark.parametrize("law", ["anneal", "multipower"])
def test_backtest_of_a_curve_law_reads_whole_curves(store: Path, law: str) -> None:
    """`backtest --store --law anneal` back-tested the runs' final points (2 to fit, 1 to predict) where
    `fit --store --law anneal` fits every curve point; both now read every point unless --points says."""
    r = CliRunner().invoke(main, ["backtest", "--store", str(store), "--law", law, "--train-where", "run != 'b256'",
                                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["train_points"], d["test_points"]) == (20, 10)
    assert d["fit"]["data"]["source"] == f"store {store} (all points)"
