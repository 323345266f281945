"""Curves pinned from before the trainer became a loop over features: the same config on the same
machine gives bit-identical losses, learning rates and non-zero counts.

Each case holds one digest per CPU type it was pinned on (float32 kernels differ in their last bits between
instruction sets): the first from the machine of commit 7825623, the second re-pinned on 2026-12-03 on an AMD
EPYC machine where commit 4314964 (trainer untouched since) gave it. A change of the trainer that alters a curve
changes it on every CPU type, so it still fails here.

The digests were taken with the 245-line ``train()`` of commit 7825623 (float32, one thread), so a
refactor of the loop, the model builder, the parametrization or the sparsity feature that changes one
bit of a curve fails here. A float32 run on one thread is deterministic on a given CPU type; if this
fails on a new machine with the trainer untouched, re-pin it there with ``git stash`` of the change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab.ladder.train import train
from scalinglab.runconfig import RunConfig, ScheduleConfig, SparsityConfig

BASE = RunConfig(name="pin", n_layer=1, d_model=32, n_head=2, context=32, tokens=40 * 512, batch_tokens=512,
                 lr=1e-2, evals=4, eval_tokens=2048, seed=5, dtype="float32")

CASES = {
    "dense": (BASE, ("1eb64b971bb7ed20", "0cc0af0d35a9dd57")),
    # micro-batching (two forward passes per step), a warmup in steps and one cooldown branch
    "micro_wsd_branches": (dataclasses.replace(BASE, micro_batch_tokens=256, schedule=ScheduleConfig(
        name="wsd", branches=(0.5,), warmup_steps=4)), ("41019e1fd8dfe3d1", "ea2d8a1fd86e1f1c")),
    # gradual magnitude pruning, SPDF's dense phase and Sparse-IFT widening
    "sparse_spdf_ift": (dataclasses.replace(BASE, sparsity=SparsityConfig(
        target=0.5, update_every=3, start_frac=0.1, end_frac=0.5, dense_finetune_frac=0.25, ift=True)),
        ("892a0236616928bc", "1c6ff80d27d69d93")),
    "nm": (dataclasses.replace(BASE, sparsity=SparsityConfig(target=0.5, method="nm", n=2, m=4)),
           ("e07adfaff95367d9", "9580f44330dfaa33")),
}


def digest(points: list[dict[str, Any]]) -> str:
    """Exact: floats as their hex form."""
    rows = [[p["branch"], p["step"], p["tokens"], p["train_loss"].hex(), p["eval_loss"].hex(), p["lr"].hex(),
             p.get("N_nonzero"), float(p.get("sparsity", 0.0)).hex()] for p in points]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


@pytest.mark.parametrize("case", sorted(CASES))
def test_curve_is_bit_identical_to_the_pinned_one(case: str) -> None:
    config, pinned = CASES[case]
    points: list[dict[str, Any]] = []
    train(config, on_point=points.append, threads=1)
    assert digest(points) in pinned
