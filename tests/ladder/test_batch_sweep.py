"""Batch sweeps (``ladder design --batch-grid``): same tokens or same steps, the learning rate per batch
by a stated rule, combined with a learning-rate grid and several sizes and token counts."""

from __future__ import annotations

import pytest

from scalinglab.errors import ConfigError
from scalinglab.ladder import design

TINY = {"vocab": 256, "context": 64, "batch_tokens": 512}


def test_same_tokens_by_default() -> None:
    runs = design.grid_lr_batch([4e-3], [256, 512, 2048], params=[2e4], tokens=[2.048e5], **TINY)
    assert [(r.batch_tokens, r.tokens, r.steps, r.lr) for r in runs] == [
        (256, 204800, 800, 4e-3), (512, 204800, 400, 4e-3), (2048, 204800, 100, 4e-3)]
    assert len({(r.n_layer, r.d_model) for r in runs}) == 1          # one model


def test_same_steps() -> None:
    runs = design.grid_lr_batch([4e-3], [256, 512, 2048], params=[2e4], tokens=[2.048e5], keep="steps", **TINY)
    # the base batch (512) takes 400 steps on 2.048e5 tokens: every batch takes 400 steps
    assert [(r.batch_tokens, r.steps, r.tokens) for r in runs] == [
        (256, 400, 102400), (512, 400, 204800), (2048, 400, 819200)]


@pytest.mark.parametrize("rule, factors", [("none", (1.0, 1.0, 1.0)), ("sqrt", (0.5 ** 0.5, 1.0, 2.0)),
                                           ("linear", (0.5, 1.0, 4.0))])
def test_lr_per_batch_rule_with_an_lr_grid(rule: str, factors: tuple[float, ...]) -> None:
    lrs = [1e-3, 3e-3]
    runs = design.grid_lr_batch(lrs, [256, 512, 2048], params=[2e4, 6e4], tokens=[1e5, 2e5], lr_rule=rule,
                                **TINY)
    assert len(runs) == 2 * 2 * 2 * 3
    batches = [256, 512, 2048]
    points = len(runs) // (len(lrs) * len(batches))                  # (size, tokens) pairs
    for b, f in zip(batches, factors):                                # lr x (B / 512)^k at every point
        assert sorted(r.lr for r in runs if r.batch_tokens == b) == \
            sorted(float(f"{lr * f:.4g}") for lr in lrs for _ in range(points))
    assert sorted({r.lr for r in runs if r.batch_tokens == 512}) == lrs   # unscaled at the base batch


def test_design_request_records_the_sweep_and_refuses_misuse() -> None:
    made = design.make_design(design.DesignRequest(params=[2e4], tokens=[2e5], batches=[256, 1024],
                                                   batch_keep="steps", lr_batch_rule="sqrt", overrides=TINY))
    assert made.meta["batch_keep"] == "steps" and made.meta["lr_batch_rule"] == "sqrt"
    assert made.meta["base_batch_tokens"] == 512
    plain = design.make_design(design.DesignRequest(params=[2e4], tokens=[2e5], batches=[256], overrides=TINY))
    assert "batch_keep" not in plain.meta                             # existing ladder files unchanged
    with pytest.raises(ConfigError, match="'batch_keep' parameter with 'budgets'"):
        design.make_design(design.DesignRequest(budgets=[1e11], batches=[256], batch_keep="steps", overrides=TINY))
    with pytest.raises(ConfigError, match="give 'batches' with them"):
        design.make_design(design.DesignRequest(params=[2e4], tokens=[2e5], lr_batch_rule="sqrt", overrides=TINY))
    with pytest.raises(ConfigError, match="'lr_batch_rule' parameter"):
        design.grid_lr_batch([1e-3], [256], params=[2e4], tokens=[2e5], lr_rule="cube", **TINY)
    with pytest.raises(ConfigError, match="'batch_keep' parameter"):
        design.grid_lr_batch([1e-3], [256], params=[2e4], tokens=[2e5], keep="flops", **TINY)
