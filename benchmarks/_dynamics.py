"""Shared by the dynamics benchmarks: train run configs into a store, with evaluations every k steps, and
average the curves of a config's seeds point by point."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

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


def seed_run_name(name: str, seed: int, first: int) -> str:
    """The run name of ``name`` trained with ``seed``: ``name`` itself for the first seed, else
    ``<name>-s<seed>`` (folded back into ``name`` by :func:`seed_mean`)."""
    return name if seed == first else f"{name}-s{seed}"


def seed_mean(df: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    """The curves of every config averaged over its seeds point by point (runs ``<name>-s<seed>`` folded
    into ``<name>``): loss, train_loss and the noise-scale columns are means over the seeds, at the steps
    every seed logged; a config with fewer than ``n_seeds`` finished seeds is left out, with a line. The
    other columns are the first seed's row's (a config's seeds share them: model, schedule, step)."""
    base = df["run"].str.replace(r"-s\d+$", "", regex=True)
    df = df.assign(run=base, _seed_run=df["run"])
    nseed = df.groupby("run")["_seed_run"].nunique()
    short = sorted(nseed[nseed < n_seeds].index)
    if short:
        print(f"  configs without all {n_seeds} seeds, left out of the seed mean: {short}")
    df = df[~df["run"].isin(short)]
    cols = [c for c in ("loss", "train_loss", "B_simple", "grad_sq", "trace_sigma") if c in df.columns]
    keys = ["run", "branch", "step"]
    g = df.groupby(keys, sort=False)
    out = g.first().drop(columns=cols + ["_seed_run"])
    means = g[cols].mean()
    counts = g["loss"].count()
    out[cols] = means
    out = out[counts == n_seeds].reset_index()       # only the steps every seed evaluated
    return out
