"""A small IsoFLOP-style ladder in a scalinglab store, and its runs as the trackers' writers log them.

The store is the reference ("a direct store export"): ``reference_store`` plans four runs, gives each
the fake trainer's curve (tests/execute/fake_trainer.py: a closed form of N and D) and marks them done.
``runs_of(table)`` turns its export into plain per-run data (``N_total``, ``batch``, and per point
``step``, ``tokens``, ``eval_loss``, ``train_loss``, ``lr``) that each writer logs under the keys a
user would: ``eval/loss``, ``train/loss``, ``train/tokens``, ``optim/lr``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "execute"))
import fake_trainer  # noqa: E402

from scalinglab.accounting import counts  # noqa: E402
from scalinglab.runconfig import RunConfig  # noqa: E402
from scalinglab.store import Store  # noqa: E402

#: the columns an import must reproduce exactly (TensorBoard's float32 values: to float32 precision)
COMPARED = ["run", "step", "D", "loss", "train_loss", "lr_step", "N", "N_total", "batch"]
KEYS = {"eval_loss": "eval/loss", "train_loss": "train/loss", "tokens": "train/tokens", "lr": "optim/lr"}


def configs() -> list[RunConfig]:
    shapes = [(2, 32, 2, 60), (2, 48, 2, 40), (3, 64, 4, 30), (4, 64, 4, 24)]
    return [RunConfig(name=f"iso-l{nl}-d{d}", n_layer=nl, d_model=d, n_head=h, context=64, batch_tokens=512,
                      tokens=512 * steps, lr=2e-3, evals=6, seed=i) for i, (nl, d, h, steps) in enumerate(shapes)]


def reference_store(path: Path | str) -> Store:
    store = Store(path)
    cfgs = configs()
    store.add_planned(cfgs, describe=counts)
    for cfg in cfgs:
        for step in fake_trainer.eval_steps(cfg):
            tokens = step * cfg.batch_tokens
            loss = fake_trainer.loss_at(cfg, step)
            store.add_point(cfg.name, {"step": step, "tokens": tokens, "eval_loss": loss, "train_loss": loss + 0.01,
                                       "lr": cfg.lr * (1 - step / (cfg.steps + 1))})
        store.mark_done(cfg.name, {"final_loss": loss})
    return store


def runs_of(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per run: name, N_total, batch, and its points (from a store export with every point)."""
    out = []
    for name, g in table.groupby("run", sort=False):
        out.append({"name": name, "N_total": int(g["N_total"].iloc[0]), "batch": int(g["batch"].iloc[0]),
                    "points": [{"step": int(r.step), "tokens": int(r.D), "eval_loss": float(r.loss),
                                "train_loss": float(r.train_loss), "lr": float(r.lr_step)} for r in g.itertuples()]})
    return out


if __name__ == "__main__":   # the ladder as JSON, for writers run in another environment (MLflow)
    with reference_store(":memory:") as s:
        json.dump({"keys": KEYS, "runs": runs_of(s.to_table(points="all"))}, sys.stdout, indent=1)
