"""Number formats from the command line: `ladder design --formats/--blocks/--operands` and
`--set precision.*`, their one-line errors (exit 2, nothing written or stored), the run table's format
columns, and `fit --store --law precision` on a store of Sun-law losses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab import laws
from scalinglab.cli import main
from scalinglab.ladder.ladderfile import read_toml
from scalinglab.runconfig import PrecisionConfig, RunConfig
from scalinglab.store import Store

TINY = ["--vocab", "256", "--context", "64", "--batch-tokens", "512", "--min-steps", "5",
        "--set", "eval_tokens=1024"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), prog_name="scalinglab")
    return r.exit_code, r.stdout, r.stderr


def test_design_format_block_operand_grids(tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    code, stdout, err = run("ladder", "design", "--params", "2e4,5e4", "--tokens", "1e5", "--formats",
                            "E1M2,E2M1,E3M0,fp32", "--set", "precision.recipe=sun", "--out", str(out), "--json", *TINY)
    assert code == 0, err
    runs = read_toml(out)
    assert len(runs) == 8 and len({r.name for r in runs}) == 8
    fp32 = [r for r in runs if not r.precision.active]
    assert len(fp32) == 2 and all(r.precision == PrecisionConfig() for r in fp32)
    quant = [r.precision.resolved() for r in runs if r.precision.active]
    assert {q["weights"] for q in quant} == {"E1M2", "E2M1", "E3M0"}
    assert all(q["operands"] == ("P2", "P4", "P6") and q["convention"] == "finite" for q in quant)
    assert json.loads(stdout)["ladder"]["formats"] == ["E1M2", "E2M1", "E3M0", "fp32"]
    code, _, err = run("ladder", "design", "--params", "2e4", "--tokens", "1e5", "--formats", "E2M1",
                       "--blocks", "8,16,channel", "--operands", "P1,P5,P2+P4+P6", "--out", str(out), *TINY)
    assert code == 0, err
    runs = read_toml(out)
    assert len(runs) == 9
    res = [r.precision.resolved() for r in runs]
    assert {q["operands"] for q in res} == {("P1",), ("P5",), ("P2", "P4", "P6")}
    assert {(q["scaling"], q["block"]) for q in res} == {("block", 8), ("block", 16), ("channel", 0)}
    assert all(q["gradients"] == "E2M1" for q in res if q["operands"] == ("P5",))
    code, _, err = run("ladder", "design", "--params", "2e4", "--tokens", "1e5", "--set",
                       "precision.recipe=fp8-static", "--out", str(out), *TINY)
    assert code == 0, err
    (r,) = read_toml(out)
    assert r.precision.recipe == "fp8-static" and "-qE4M3-" in r.name


@pytest.mark.parametrize(("extra", "needle"), [
    (["--formats", "E9M2"], "--formats"), (["--formats", "E2M9,fp32"], "--formats"),
    (["--operands", "P7"], "--operands"), (["--operands", "P1+P1"], "--operands"),
    (["--formats", "E2M1", "--blocks", "36"], "precision.block"), (["--blocks", "x"], "--blocks"),
    (["--set", "precision.weights=E4M9"], "precision.weights"), (["--set", "precision.operands=[\"P9\"]"],
                                                                 "precision.operands"),
    (["--set", "precision.recipe=fp4"], "precision.recipe"), (["--set", "ptq=[\"int4_g36\"]"], "ptq"),
])
def test_design_errors_are_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    out = tmp_path / "bad.toml"
    code, _, err = run("ladder", "design", "--params", "2e4", "--tokens", "1e5", "--out", str(out), *TINY, *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_bad_ladder_file_leaves_the_store_unchanged(tmp_path: Path) -> None:
    out, db = tmp_path / "l.toml", tmp_path / "runs.db"
    assert run("ladder", "design", "--params", "2e4", "--tokens", "1e5", "--formats", "E2M1", "--out", str(out),
               *TINY)[0] == 0
    with Store(db) as st:
        st.add_planned([RunConfig(name="other", tokens=4096)])
    before = db.read_bytes()
    out.write_text(out.read_text().replace('weights = "E2M1"', 'weights = "E2M11"'))
    code, _, err = run("ladder", "run", str(out), "--store", str(db), "--no-progress")
    assert code == 2 and "precision.weights" in err and len(err.strip().splitlines()) == 1, err
    assert db.read_bytes() == before


SUN = dict(laws.get("precision").preset("sun2025").params)


def test_table_format_columns_and_a_precision_fit_from_the_store(tmp_path: Path) -> None:
    """Runs whose losses are Sun et al.'s law (Table 2) at their own N_nonembed, D and format, written
    through the store's API: the table carries e_bits, m_bits, P, block and the fit recovers the law."""
    db = tmp_path / "runs.db"
    law = laws.get("precision")
    rng = np.random.default_rng(0)
    formats = ["E1M2", "E2M1", "E3M0", "E2M2", "E3M1", "E1M3", "E4M3", "E2M3", "E3M2"]
    with Store(db) as st:
        cfgs = []
        for L, d in ((2, 64), (3, 96), (4, 128), (6, 192)):
            for k in (1, 3, 9):
                for f in formats:
                    cfgs.append(RunConfig(n_layer=L, d_model=d, n_head=d // 16, tokens=4096 * 200 * k,
                                          name=f"r{L}-{k}-{f}", precision=PrecisionConfig(recipe="sun", weights=f,
                                                                                          activations=f,
                                                                                          scaling="block",
                                                                                          block=32)))
        st.add_planned(cfgs)
        for cfg in cfgs:
            n = 12 * cfg.n_layer * cfg.d_model ** 2
            p = cfg.precision.resolved()
            e, m = int(p["weights"][1]), int(p["weights"][3])
            x = {"N_nonembed": n * 1e3, "D": cfg.tokens * 1e4, "e_bits": e, "m_bits": m, "block": 32}
            loss = float(law.predict(SUN, x)) * float(np.exp(rng.normal(0, 1e-4)))
            st.add_point(cfg.name, {"step": cfg.steps, "tokens": cfg.tokens, "flops": 1.0, "flops_full": 1.0,
                                    "train_loss": loss, "eval_loss": loss, "lr": 1e-3, "wall_time": 0.0,
                                    "loss_ptq_int4": loss + 0.01})
            st.mark_done(cfg.name, {"N_total": n + 1000, "N_nonembed": n, "N_nonzero": n, "tokens": cfg.tokens})
        table = st.to_table()
    assert {"format", "operands", "e_bits", "m_bits", "P", "block", "loss_ptq_int4"} <= set(table.columns)
    row = table[table.run == "r2-1-E2M1"].iloc[0]
    assert (row.e_bits, row.m_bits, row.P, row.block, row.operands) == (2, 1, 4, 32.0, "P2+P4+P6")
    # fitted in the law's own units: the losses above put N and D at 1e3 and 1e4 times the runs'
    csv = tmp_path / "t.csv"
    table.assign(N_nonembed=table.N_nonembed * 1e3, D=table.D * 1e4).to_csv(csv, index=False)
    code, stdout, err = run("fit", str(csv), "--law", "precision", "--json")
    assert code == 0, err
    fitted = json.loads(stdout)["params"]
    for name in ("alpha", "beta", "delta", "nu"):
        assert fitted[name] == pytest.approx(SUN[name], rel=0.05), name
    code, stdout, err = run("fit", "--store", str(db), "--law", "precision", "--json")
    assert code == 0, err
    assert json.loads(stdout)["law"] == "precision"
