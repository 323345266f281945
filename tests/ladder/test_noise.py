"""The gradient noise scale and the adaptive batch (ladder.noise): per-micro-batch gradient norms against
separate backward passes, the estimator's expectations against a known gradient distribution, the norm
test, and both features in the trainer (points, exact tokens, resume, one-micro-batch errors)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn

from scalinglab.errors import ConfigError
from scalinglab.ladder.features import Feature
from scalinglab.ladder.noise import (
    AdaptiveBatchFeature,
    MicroGradStats,
    NoiseScaleFeature,
    noise_estimates,
    norm_test_micro,
)
from scalinglab.ladder.train import train
from scalinglab.runconfig import RunConfig, ScheduleConfig

TINY = RunConfig(name="noise", n_layer=1, d_model=32, n_head=2, context=32, tokens=24 * 512, batch_tokens=512,
                 micro_batch_tokens=128, lr=1e-2, evals=3, eval_tokens=2048, seed=1, dtype="float32",
                 noise_scale=True)
ADAPTIVE = dataclasses.replace(TINY, name="adaptive", noise_scale=False, adaptive_batch_eta=0.3,
                               max_batch_tokens=2048)


# -- per-micro-batch gradients ----------------------------------------------------------------------
def test_micro_batch_norms_match_separate_backward_passes() -> None:
    """|g_j|^2 from the accumulated gradients equals each micro-batch's own gradient, computed alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x, y = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    m, size = 4, 3
    stats = MicroGradStats(model.parameters())
    accumulated = []
    for feats in ([], [stats]):
        model.zero_grad()
        for j in range(m):
            loss = nn.functional.mse_loss(model(x[j * size:(j + 1) * size]), y[j * size:(j + 1) * size])
            (loss / m).backward()
            for f in feats:
                f.after_backward(0, j, m)
        accumulated.append([p.grad.clone() for p in model.parameters()])
    # the feature leaves the accumulated gradients as they were, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(*accumulated))
    own = []
    for j in range(m):   # the oracle: each micro-batch's gradient by its own backward pass
        model.zero_grad()
        nn.functional.mse_loss(model(x[j * size:(j + 1) * size]), y[j * size:(j + 1) * size]).backward()
        own.append(sum(float(p.grad.square().sum()) for p in model.parameters()))
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    full = sum(float(p.grad.square().sum()) for p in model.parameters())
    assert stats.n_micro == m
    assert stats.small_sq == pytest.approx(np.mean(own), rel=1e-10)
    assert stats.big_sq == pytest.approx(full, rel=1e-10)


def test_estimates_are_exact_on_their_expectations() -> None:
    """With |G_B|^2 = |G|^2 + trS / B exactly, the two formulas return |G|^2 and trS."""
    g2, tr = 2.5, 300.0
    for bs, bb in ((128, 512), (32, 4096), (1, 2)):
        got = noise_estimates(g2 + tr / bs, g2 + tr / bb, bs, bb)
        assert got == pytest.approx((g2, tr), rel=1e-12)


class NoisyQuadratic(nn.Module):
    """Per-token loss 0.5 |w - c|^2 + sigma xi.w with xi ~ N(0, I): each token's gradient is
    (w - c) + sigma xi, so |G|^2 = |w - c|^2 and tr(Sigma) = sigma^2 d exactly."""

    def __init__(self, d: int, sigma: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(d, dtype=torch.float64))
        self.c = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
        self.sigma = sigma

    def forward(self, xi: torch.Tensor) -> torch.Tensor:   # xi: (tokens, d); the mean over the tokens
        return 0.5 * (self.w - self.c).square().sum() + self.sigma * (xi @ self.w).mean()


def step_through(model: NoisyQuadratic, feats: list[Feature], gen: torch.Generator, n_micro: int,
                 micro_tokens: int, step: int) -> None:
    d = model.w.numel()
    for j in range(n_micro):
        xi = torch.randn(micro_tokens, d, generator=gen, dtype=torch.float64)
        (model(xi) / n_micro).backward()
        for f in feats:
            f.after_backward(step, j, n_micro)
    for f in feats:
        f.before_clip(step)
    model.zero_grad()


def test_noise_scale_estimates_a_known_gaussian_gradient() -> None:
    """Averaged over many steps the estimates match |G|^2, tr(Sigma) and B_simple = trS / |G|^2."""
    d, sigma, micro_tokens, m = 8, 3.0, 16, 4
    model = NoisyQuadratic(d, sigma)
    stats = MicroGradStats(model.parameters())
    noise = NoiseScaleFeature(stats, micro_tokens, ema=0.999)
    gen = torch.Generator().manual_seed(0)
    raw = []
    for s in range(2000):
        step_through(model, [stats, noise], gen, m, micro_tokens, s)
        raw.append(noise_estimates(stats.small_sq, stats.big_sq, micro_tokens, m * micro_tokens))
    g2_true = float((model.w.detach() - model.c).square().sum())
    tr_true = sigma ** 2 * d
    g2, tr = np.mean(raw, axis=0)
    se = np.std(raw, axis=0) / math.sqrt(len(raw))
    assert abs(g2 - g2_true) < 4 * se[0] and abs(tr - tr_true) < 4 * se[1]
    fields = noise.point_fields(2000)
    assert fields["B_simple"] == pytest.approx(tr_true / g2_true, rel=0.1)
    assert fields["B_simple"] == pytest.approx(fields["trace_sigma"] / fields["grad_sq"], rel=1e-12)


# -- the norm test ----------------------------------------------------------------------------------
def test_norm_test_rule() -> None:
    # s^2 = m/(m-1) (small - big) = 4/3 * 3 = 4; the mean's variance 1; |g|^2 = 1
    assert norm_test_micro(4.0, 1.0, 4, eta=1.0) == 4          # 1 <= 1: passes
    assert norm_test_micro(4.0, 1.0, 4, eta=0.5) == 16         # 1 > 0.25: ceil(4 / 0.25)
    assert norm_test_micro(1.0, 1.0, 4, eta=0.1) == 4          # no variance: passes
    assert norm_test_micro(4.0, 0.0, 4, eta=0.5) == 4          # no gradient: nothing to scale to


def _adaptive(sigma: float) -> tuple[AdaptiveBatchFeature, list[int]]:
    cfg = RunConfig(context=1, batch_tokens=4, micro_batch_tokens=2, tokens=400, adaptive_batch_eta=0.5,
                    max_batch_tokens=64)
    model = NoisyQuadratic(4, sigma)
    with torch.no_grad():
        model.w.fill_(0.5)
    stats = MicroGradStats(model.parameters())
    feat = AdaptiveBatchFeature(stats, cfg)
    gen = torch.Generator().manual_seed(1)
    batches = []
    for s in range(30):
        n_seq = feat.batch_sequences(s)
        assert n_seq is not None
        step_through(model, [stats, feat], gen, n_seq // 2, 2, s)
        batches.append(n_seq)
    return feat, batches


def test_the_batch_grows_when_the_norm_test_fails_and_not_otherwise() -> None:
    grown, batches = _adaptive(sigma=5.0)
    assert batches[0] == 4 and batches[-1] == 64 and batches == sorted(batches) and grown.failures > 0
    still, batches = _adaptive(sigma=0.0)   # every token's gradient is the same: no variance
    assert set(batches) == {4} and still.failures == 0


# -- in the trainer ---------------------------------------------------------------------------------
class MicroCounter(Feature):
    """Counts the tokens the loop trains on, from the micro-batches it reports."""

    name = "micro_counter"

    def __init__(self, micro_tokens: int) -> None:
        self.micro_tokens, self.tokens = micro_tokens, 0

    def after_backward(self, step: int, micro: int, n_micro: int) -> None:
        self.tokens += self.micro_tokens

    def point_fields(self, step: int) -> dict[str, Any]:
        return {"counted": self.tokens}

    def state_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokens = state["tokens"]


def run(cfg: RunConfig, *features: Feature, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append, threads=1, features=features, **kw)
    return points, summary


def test_noise_scale_points_and_an_unchanged_curve() -> None:
    points, summary = run(TINY)
    plain, _ = run(dataclasses.replace(TINY, noise_scale=False))
    assert [p["eval_loss"] for p in points] == [p["eval_loss"] for p in plain]   # it only measures
    for p in points:
        assert p["B_simple"] == pytest.approx(p["trace_sigma"] / p["grad_sq"]) and p["B_simple"] > 0
    assert summary["B_simple"] == points[-1]["B_simple"]
    assert TINY.digest() != dataclasses.replace(TINY, noise_scale=False).digest()


def test_adaptive_batch_counts_every_token_and_resumes(tmp_path: Path) -> None:
    full, summary = run(ADAPTIVE, MicroCounter(128))
    assert [p["tokens"] for p in full] == [p["counted"] for p in full]     # the loop's count is exact
    assert full[-1]["tokens"] == summary["tokens_seen"] > ADAPTIVE.steps * ADAPTIVE.batch_tokens
    sizes = [p["batch_tokens"] for p in full]
    assert sizes == sorted(sizes) and sizes[0] == 512 and sizes[-1] <= 2048 and summary["norm_test_failures"] > 0
    assert max(p["step"] for p in full) == ADAPTIVE.steps                  # steps stay the config's

    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []

    def crash_after_2(point: dict[str, Any]) -> None:
        if len(first) == 2:
            raise KeyboardInterrupt
        first.append(point)

    with pytest.raises(KeyboardInterrupt):
        train(ADAPTIVE, on_point=crash_after_2, checkpoint_path=ckpt, threads=1, features=[MicroCounter(128)])
    rest, resumed = run(ADAPTIVE, MicroCounter(128), checkpoint_path=ckpt)
    drop = ("wall_time",)
    assert [{k: v for k, v in p.items() if k not in drop} for p in first + rest] == \
        [{k: v for k, v in p.items() if k not in drop} for p in full]
    assert resumed["tokens_seen"] == summary["tokens_seen"]


def test_cooldown_branch_points_count_their_own_tokens() -> None:
    cfg = dataclasses.replace(ADAPTIVE, noise_scale=True,
                              schedule=ScheduleConfig(name="wsd", decay_frac=0.5, branches=(0.5,)))
    points, summary = run(cfg, MicroCounter(128))
    (branch,) = [p for p in points if p["branch"] == 1]
    assert branch["step"] == 12 and math.isfinite(branch["B_simple"])
    assert [p["tokens"] for p in points] == [p["counted"] for p in points]   # the branch's too
    assert points[-1]["tokens"] == summary["tokens_seen"]                    # the branch was undone


def test_a_lenient_norm_test_keeps_the_batch() -> None:
    points, summary = run(dataclasses.replace(ADAPTIVE, adaptive_batch_eta=1e6))
    assert {p["batch_tokens"] for p in points} == {512} and summary["norm_test_failures"] == 0
    assert [p["tokens"] for p in points] == [p["step"] * 512 for p in points]


@pytest.mark.parametrize("fields, pattern", [
    ({"noise_scale": True, "micro_batch_tokens": 0}, "'noise_scale' field with micro_batch_tokens"),
    ({"noise_scale": True, "micro_batch_tokens": 512}, "at most half of batch_tokens = 512"),
    ({"adaptive_batch_eta": 0.5, "micro_batch_tokens": 0, "max_batch_tokens": 1024}, "'adaptive_batch_eta'"),
    ({"adaptive_batch_eta": 0.5, "micro_batch_tokens": 128, "max_batch_tokens": 512}, "'max_batch_tokens'"),
    ({"adaptive_batch_eta": 0.5, "micro_batch_tokens": 128, "max_batch_tokens": 1000}, "'max_batch_tokens'"),
    ({"max_batch_tokens": 1024}, "0 when adaptive_batch_eta is 0"),
    ({"adaptive_batch_eta": -1.0}, "'adaptive_batch_eta'"),
    ({"noise_scale": 1}, "'noise_scale' field must be a boolean"),
])
def test_bad_dynamic_batch_configs_are_one_line_errors(fields: dict[str, Any], pattern: str) -> None:
    base = {"context": 32, "batch_tokens": 512, "tokens": 5120}
    with pytest.raises(ConfigError, match=pattern.replace("(", r"\(")) as err:
        RunConfig.from_dict({**base, **fields})
    assert "\n" not in str(err.value)
