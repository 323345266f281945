"""Shared by the dynamics benchmarks: train run configs into a store, with evaluations every k steps."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from scalinglab.ladder.features import Feature
from scalinglab.ladder.train import train
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store


class EvalEvery(Feature):
    """Evaluate the main line every ``every`` steps as well (whole curves, not only log-spaced points)."""

    name = "eval_every"

    def __init__(self, every: int) -> None:
        self.every = every

    def eval_steps(self, total_steps: int) -> set[int]:
        return set(range(self.every, total_steps + 1, self.every))


def train_all(store_path: Path, configs: Sequence[RunConfig], every: int = 0) -> Store:
    """Train every config not already done in the store (one thread), reporting its points there."""
    store = Store(str(store_path))
    done = {r.name for r in store.runs("done")}
    store.add_planned(configs)   # idempotent by name
    for cfg in configs:
        if cfg.name in done:
            continue
        t0 = time.perf_counter()
        store.mark_running(cfg.name)
        summary = train(cfg, on_point=lambda p, n=cfg.name: store.add_point(n, p), threads=1,
                        features=[EvalEvery(every)] if every else [])
        store.mark_done(cfg.name, summary)
        print(f"  trained {cfg.name}: {cfg.steps} steps, final loss {summary['final_loss']:.4f}, "
              f"{time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return store
