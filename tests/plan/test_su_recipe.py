"""Su et al.'s recipe end to end on a store of curves drawn from known Kaplan laws: the critical
batch law, kaplan_steps on S_min, and the trajectory of a held-out run (`critical-batch --su-held-out`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.plan.steps import loss_trajectory
from scalinglab.runconfig import RunConfig, ScheduleConfig
from scalinglab.store import Store

KS = {"N_c": 1e5, "alpha_N": 0.3, "S_c": 50.0, "alpha_S": 0.7}
B_STAR, ALPHA_B = 2000 * 1.3 ** 5, 0.2          # B_crit(1.3) = 2000 tokens
BATCHES = (256, 512, 1024, 2048, 4096, 8192)
SIZES = (2e5, 6e5)


def _store(path: Path) -> None:
    steps = np.unique(np.geomspace(10, 20000, 120).astype(int))
    with Store(path) as st:
        cfgs = {(n, b): RunConfig(name=f"n{n:.0e}-b{b}".replace("+", ""), batch_tokens=b, tokens=b * 20000,
                                  schedule=ScheduleConfig(name="constant", warmup_steps=5))
                for n in SIZES for b in BATCHES}
        st.add_planned(cfgs.values())
        for (n, b), c in cfgs.items():
            loss = loss_trajectory(steps.astype(float), n, float(b), params=KS, B_star=B_STAR, alpha_B=ALPHA_B)
            for s, L in zip(steps, loss):
                st.add_point(c.name, {"step": int(s), "tokens": int(s) * b, "eval_loss": float(L)})
            st.mark_done(c.name, {"N_total": int(2 * n), "N_nonembed": int(n), "tokens": c.tokens})


@pytest.mark.slow
def test_su_recipe_recovers_the_laws_and_the_held_out_trajectory(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _store(db)
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0", "--target-loss",
                                  "1.6", "--target-loss", "1.3", "--su-held-out", "n6e05-b2048", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for f in d["fits"]:
        assert f["B_crit"] == pytest.approx(B_STAR / f["target"] ** (1 / ALPHA_B), rel=0.02)
    assert d["pooled"]["vs_loss"]["alpha_B"] == pytest.approx(ALPHA_B, rel=0.02)
    su = d["su"]
    assert su["kaplan_steps"]["alpha_S"] == pytest.approx(KS["alpha_S"], rel=0.02)
    assert su["loss_floor"] == pytest.approx((KS["N_c"] / 6e5) ** KS["alpha_N"], rel=0.02)
    assert su["mean_abs_rel_error"] < 0.005
    assert su["to_target"]["steps"] > su["to_target"]["S_min"]


def test_su_held_out_must_be_a_run(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store(db) as st:
        st.add_planned([RunConfig(name="a")])
        st.add_point("a", {"step": 10, "tokens": 40960, "eval_loss": 3.0})
    r = CliRunner().invoke(main, ["critical-batch", "--store", str(db), "--target-loss", "2.0",
                                  "--su-held-out", "nope"])
    assert r.exit_code == 2 and "'nope'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
