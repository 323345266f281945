"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

BATCHES = (128, 256, 512)
STEPS = 40


def loss_at(step: int, batch: int) -> float:
    """A curve falling with the tokens seen; the lowest loss of the store is the 512 batch's last, 2.75."""
    return 2.5 + 0.25 * (STEPS * 512 / (step * batch)) ** 0.5


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A batch sweep of one shape (three runs, ten points each, cosine schedules), done."""
    db = tmp_path / "runs.db"
    cfgs = [RunConfig(name=f"b{b}", n_layer=1, d_model=32, n_head=2, context=32, batch_tokens=b,
                      tokens=STEPS * b, lr=3e-3, evals=10) for b in BATCHES]
    with Store(db) as st:
        st.add_planned(cfgs)
        for c in cfgs:
            for s in range(4, STEPS + 1, 4):
                st.add_point(c.name, {"step": s, "tokens": s * c.batch_tokens, "eval_loss": loss_at(s, c.batch_tokens),
                                      "lr": 3e-3})
            st.mark_done(c.name, {"N_total": 40000, "N_nonembed": 12000, "tokens": c.tokens})
    return db
