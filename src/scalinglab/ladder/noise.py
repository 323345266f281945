"""The gradient noise scale and the adaptive batch: two trainer features over per-micro-batch gradients.

**Per-micro-batch gradients.** The loop accumulates gradients: after micro-batch ``j`` of ``m`` the
parameters hold ``A_j = (1/m) sum_{i<=j} g_i``, where ``g_i`` is micro-batch i's mean gradient (the loss
is a mean over its tokens, divided by ``m``). :class:`MicroGradStats` keeps one copy of the accumulated
gradient, ``P = A_{j-1}``, and after each backward turns it in place into ``P - A_j = -g_j / m``, takes
its squared norm (``|g_j|^2 = m^2 |P - A_j|^2``) and copies ``A_j`` back into it: one subtraction, one
norm and one copy over the parameters per micro-batch (the first needs only the norm and the copy, the
last no copy) (``torch._foreach_*``, one fused kernel per op),
one buffer the size of the gradients, and one host sync per step. This is exact up to the rounding of
the accumulation (no second backward, no per-example gradients). After the last micro-batch it has
``|G_small|^2 = mean_j |g_j|^2`` (batches of ``B_small`` = micro-batch tokens) and ``|G_big|^2 = |A_m|^2``
(the whole batch, ``B_big = m B_small`` tokens). Gradients are taken before clipping and masking.

**Noise scale** (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", App. A.1). With
``E|G_est(B)|^2 = |G|^2 + tr(Sigma)/B`` (Sigma the per-token gradient covariance):

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

both unbiased. :class:`NoiseScaleFeature` keeps exponential moving averages of the two (decay
:data:`NOISE_EMA`, bias-corrected like Adam's moments, as the paper advises averaging numerator and
denominator separately) and reports at every point ``grad_sq`` (|G|^2), ``trace_sigma`` (tr Sigma,
per token) and ``B_simple = trace_sigma / grad_sq`` in **tokens** (NaN, with a warning in the summary,
while the averaged |G|^2 is not positive). Tokens of one sequence are correlated, so ``trace_sigma`` is
an effective per-token variance and ``B_simple`` a batch in tokens, comparable with a fitted B_crit.

**Adaptive batch** (the norm test of Byrd, Chin, Nocedal & Wu 2012, "Sample size selection in
optimization methods for machine learning", Sec. 3, as used for Adam/AdaGrad by Lau et al. 2024,
"AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods"). With the ``m`` micro-batch
gradients of a step as the samples, ``s^2 = (1/(m-1)) sum_j |g_j - gbar|^2 = m/(m-1) (|G_small|^2 -
|G_big|^2)`` estimates the variance of one micro-batch gradient; the mean of ``m`` has variance
``s^2 / m``. The test passes when ``s^2 / m <= eta^2 |gbar|^2``; when it fails, the next steps use
``ceil(s^2 / (eta^2 |gbar|^2))`` micro-batches (the batch at which it would pass), never fewer than
now and at most ``max_batch_tokens``. The batch only grows. In tokens the rule is ``B >= tr(Sigma) /
(eta^2 |G|^2) = B_simple / eta^2``. :class:`AdaptiveBatchFeature` sets each step's batch through the
loop's ``batch_sequences`` hook and reports ``batch_tokens`` (the batch of the point's step) at every
point.

**Counting.** A step is one optimizer update whatever its batch; a run takes ``config.steps``
updates (``tokens // batch_tokens``) and its learning-rate schedule runs over those steps, as for a
fixed batch. With a growing batch it therefore sees more than ``config.tokens`` tokens; the loop
counts every token it trains on (``TrainState.tokens``: the sum of each step's batch), so the points'
``tokens`` (and ``flops``) are exact, and the summary adds ``tokens_seen``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..runconfig import RunConfig
from .features import Feature

#: the decay of the noise scale's moving averages of |G|^2 and tr(Sigma), per step
NOISE_EMA = 0.95


class MicroGradStats(Feature):
    """``|G_small|^2`` (mean squared norm of the micro-batch gradients) and ``|G_big|^2`` (squared norm of
    the batch gradient) of the last step, from the accumulated gradients (see the module docstring).
    Must come before its readers in the chain; it holds no state across steps."""

    name = "grad_stats"

    def __init__(self, params: Iterable[nn.Parameter]) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.prev: list[torch.Tensor] = []
        self.sum_sq: torch.Tensor | None = None
        self.small_sq = math.nan     # |G_small|^2 of the last step
        self.big_sq = math.nan       # |G_big|^2 of the last step
        self.n_micro = 0             # micro-batches of the last step

    def _grads(self) -> list[torch.Tensor]:
        return [p.grad for p in self.params if p.grad is not None]

    def after_backward(self, step: int, micro: int, n_micro: int) -> None:
        grads = self._grads()
        if micro == 0:                                             # A_0 = g_0 / m: no difference to take
            if len(self.prev) != len(grads):
                self.prev = [torch.empty_like(g) for g in grads]
            norms = torch._foreach_norm(grads)
            self.sum_sq = torch.zeros((), dtype=torch.float64, device=grads[0].device)
        else:
            torch._foreach_sub_(self.prev, grads)                  # A_{j-1} - A_j = -g_j / m
            norms = torch._foreach_norm(self.prev)
        assert self.sum_sq is not None
        self.sum_sq += torch.stack(norms).double().square().sum() * float(n_micro) ** 2
        if micro == n_micro - 1:
            big = torch.stack(torch._foreach_norm(grads)).double().square().sum()
            small_sq, big_sq = torch.stack([self.sum_sq / n_micro, big]).tolist()
            self.small_sq, self.big_sq, self.n_micro = float(small_sq), float(big_sq), n_micro
        else:
            torch._foreach_copy_(self.prev, grads)


def noise_estimates(small_sq: float, big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
    """McCandlish et al. 2018, App. A.1: the unbiased ``(|G|^2, tr Sigma)`` from the squared norms of
    gradients over ``b_small`` and ``b_big`` tokens (``b_small < b_big``)."""
    grad_sq = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    return grad_sq, trace


class NoiseScaleFeature(Feature):
    """The gradient noise scale B_simple at every point (``noise_scale = true``; module docstring)."""

    name = "noise_scale"

    def __init__(self, stats: MicroGradStats, micro_tokens: int, ema: float = NOISE_EMA) -> None:
        self.stats, self.micro_tokens, self.ema = stats, micro_tokens, ema
        self.grad_sq_avg = 0.0    # uncorrected moving averages and the number of steps in them
        self.trace_avg = 0.0
        self.n = 0
        self.bad_points = 0       # points at which the averaged |G|^2 was not positive

    def before_clip(self, step: int) -> None:
        s = self.stats
        g, t = noise_estimates(s.small_sq, s.big_sq, self.micro_tokens, s.n_micro * self.micro_tokens)
        self.grad_sq_avg = self.ema * self.grad_sq_avg + (1.0 - self.ema) * g
        self.trace_avg = self.ema * self.trace_avg + (1.0 - self.ema) * t
        self.n += 1

    def current(self) -> tuple[float, float, float]:
        """``(grad_sq, trace_sigma, B_simple)`` from the bias-corrected averages (NaN before any step)."""
        if not self.n:
            return math.nan, math.nan, math.nan
        corr = 1.0 - self.ema ** self.n
        g, t = self.grad_sq_avg / corr, self.trace_avg / corr
        return g, t, (t / g if g > 0 else math.nan)

    def point_fields(self, step: int) -> dict[str, Any]:
        g, t, b = self.current()
        if not math.isfinite(b):
            self.bad_points += 1
        return {"B_simple": b, "grad_sq": g, "trace_sigma": t}

    def summary_fields(self) -> dict[str, Any]:
        g, t, b = self.current()
        out: dict[str, Any] = {"B_simple": b}
        if self.bad_points:
            out["noise_scale_warning"] = (
                f"B_simple is undefined (NaN) at {self.bad_points} point(s): the averaged |G|^2 estimate was "
                "not positive (gradient noise dominates; use larger batches or a longer average)")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"grad_sq_avg": self.grad_sq_avg, "trace_avg": self.trace_avg, "n": self.n,
                "bad_points": self.bad_points}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.grad_sq_avg, self.trace_avg = float(state["grad_sq_avg"]), float(state["trace_avg"])
        self.n, self.bad_points = int(state["n"]), int(state["bad_points"])


def norm_test_micro(small_sq: float, big_sq: float, n_micro: int, eta: float) -> int:
    """The micro-batches the norm test asks for after a step of ``n_micro`` (Byrd et al. 2012):
    ``n_micro`` when ``s^2 / n_micro <= eta^2 |gbar|^2``, else ``ceil(s^2 / (eta^2 |gbar|^2))``, with
    ``s^2 = n_micro / (n_micro - 1) (small_sq - big_sq)`` (see the module docstring)."""
    var = n_micro / (n_micro - 1) * max(small_sq - big_sq, 0.0)
    bound = eta * eta * big_sq
    if var / n_micro <= bound:
        return n_micro
    return n_micro if bound <= 0 else max(n_micro, math.ceil(var / bound))


class AdaptiveBatchFeature(Feature):
    """Grows the batch by the norm test (``adaptive_batch_eta > 0``; module docstring)."""

    name = "adaptive_batch"

    def __init__(self, stats: MicroGradStats, config: RunConfig) -> None:
        self.stats, self.eta = stats, float(config.adaptive_batch_eta)
        self.micro_seq = config.micro_batch_tokens // config.context
        self.context = config.context
        self.n_micro = config.batch_tokens // config.micro_batch_tokens      # of the next step
        self.max_micro = config.max_batch_tokens // config.micro_batch_tokens
        self.last_batch_tokens = config.batch_tokens                         # of the last step taken
        self.tokens_seen = 0
        self.failures = 0                                                    # steps whose test failed

    def batch_sequences(self, step: int) -> int | None:
        return self.n_micro * self.micro_seq

    def before_clip(self, step: int) -> None:
        s = self.stats
        self.last_batch_tokens = s.n_micro * self.micro_seq * self.context
        self.tokens_seen += self.last_batch_tokens
        want = norm_test_micro(s.small_sq, s.big_sq, s.n_micro, self.eta)
        if want > s.n_micro:
            self.failures += 1
        self.n_micro = min(self.max_micro, max(self.n_micro, want))

    def point_fields(self, step: int) -> dict[str, Any]:
        return {"batch_tokens": self.last_batch_tokens}

    def summary_fields(self) -> dict[str, Any]:
        return {"batch_tokens_final": self.last_batch_tokens, "norm_test_failures": self.failures,
                "tokens_seen": self.tokens_seen}

    def state_dict(self) -> dict[str, Any]:
        return {"n_micro": self.n_micro, "last_batch_tokens": self.last_batch_tokens,
                "tokens_seen": self.tokens_seen, "failures": self.failures}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_micro, self.last_batch_tokens = int(state["n_micro"]), int(state["last_batch_tokens"])
        self.tokens_seen, self.failures = int(state["tokens_seen"]), int(state["failures"])


def features_for(config: RunConfig, model: nn.Module) -> list[Feature]:
    """The noise-scale and adaptive-batch features ``config`` turns on (none: an empty list)."""
    if not (config.noise_scale or config.adaptive_batch_eta > 0):
        return []
    stats = MicroGradStats(model.parameters())
    out: list[Feature] = [stats]
    if config.noise_scale:
        out.append(NoiseScaleFeature(stats, config.micro_batch_tokens))
    if config.adaptive_batch_eta > 0:
        out.append(AdaptiveBatchFeature(stats, config))
    return out


__all__ = ["NOISE_EMA", "AdaptiveBatchFeature", "MicroGradStats", "NoiseScaleFeature", "features_for",
           "noise_estimates", "norm_test_micro"]
