"""A deterministic stand-in for ``ladder.train.train`` with the same contract, for executor tests.

Its "loss" is a closed form of the config and the step; it checkpoints (atomically) right after each
``on_point`` and resumes from the checkpoint without re-emitting points at or before it. The
environment variable ``FAKE_TRAIN_SLEEP`` (seconds per optimizer step) slows it down so a test can
kill a ladder mid-run; ``FAKE_TRAIN_FAIL`` names a run that raises, ``FAKE_TRAIN_CRASH`` one whose
process dies (exit code 3) after its first point.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalinglab.accounting import counts
from scalinglab.runconfig import RunConfig


def eval_steps(config: RunConfig) -> list[int]:
    """Log-spaced evaluation steps, the last step included (as the trainer does)."""
    n, steps = config.evals, config.steps
    return sorted({max(1, round(steps ** (i / max(n - 1, 1)))) for i in range(n)} | {steps})


def loss_at(config: RunConfig, step: int) -> float:
    c = counts(config)
    tokens = step * config.batch_tokens
    return 1.5 + 300.0 / c["N_nonembed"] ** 0.3 + 200.0 / tokens ** 0.3 + 1e-3 * math.sin(config.seed + step)


def train(config: RunConfig, *, on_point: Callable[[dict[str, Any]], None], checkpoint_path: Path | None = None,
          device: str | None = None, threads: int | None = None, log_every: int = 0) -> dict[str, Any]:
    if config.name == os.environ.get("FAKE_TRAIN_FAIL"):
        raise RuntimeError(f"deliberate failure of {config.name}")
    delay = float(os.environ.get("FAKE_TRAIN_SLEEP", "0"))
    c = counts(config)
    start = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        start = json.loads(checkpoint_path.read_text())["step"]
    prev = start
    for step in eval_steps(config):
        if step <= start:
            continue
        time.sleep(delay * (step - prev))
        prev = step
        tokens = step * config.batch_tokens
        on_point({"step": step, "tokens": tokens, "flops": c["flops_per_token"] * tokens,
                  "flops_full": c["flops_per_token_full"] * tokens, "train_loss": loss_at(config, step) + 0.01,
                  "eval_loss": loss_at(config, step), "lr": config.lr, "wall_time": 0.0})
        if config.name == os.environ.get("FAKE_TRAIN_CRASH"):
            os._exit(3)
        if checkpoint_path is not None:
            tmp = checkpoint_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"step": step}))
            os.replace(tmp, checkpoint_path)
    return {**c, "steps": config.steps, "tokens": config.steps * config.batch_tokens, "epochs": 0.0,
            "corpus_hash": "fake", "final_loss": loss_at(config, config.steps), "device": "cpu",
            "dtype": "float32"}
