"""μnit Scaling (``parametrization = mus``) with static FP8 (``precision.recipe = fp8-static``) together:
the static multiplier is the quantised GEMM's alpha (PRECISION.md section 1 item 2), so a quantised
linear computes alpha x Q(x) Q(W)^T forward and quantises the *unscaled* incoming gradient dY (E5M2) in
both backward GEMMs; and a tiny run trains end to end with its telemetry and both name tags."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from scalinglab.ladder import build  # noqa: E402
from scalinglab.ladder.design import run_name  # noqa: E402
from scalinglab.ladder.precision import QuantLinear, quantize  # noqa: E402
from scalinglab.ladder.train import train  # noqa: E402
from scalinglab.runconfig import ParametrizationConfig, PrecisionConfig, RunConfig  # noqa: E402

TAU = 0.4   # the tau of the parametrization tests and benchmarks (Narayan et al. 2025's 4-layer value)
MUS_FP8 = RunConfig(name="fp8mus", n_layer=2, d_model=32, n_head=2, context=32, tokens=8 * 512, batch_tokens=512,
                    lr=0.5, evals=2, eval_tokens=1024, seed=3, dtype="float32",
                    parametrization=ParametrizationConfig("mus", tau=TAU),
                    # loss scale 1: the tests below check where alpha sits, on the raw (unscaled) dY
                    precision=PrecisionConfig(recipe="fp8-static", loss_scale=1.0))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _e4m3(t: torch.Tensor) -> torch.Tensor:
    return quantize(t, "E4M3")


def _e5m2(t: torch.Tensor) -> torch.Tensor:
    return quantize(t, "E5M2")


def test_the_mus_multiplier_is_the_quantised_gemms_alpha() -> None:
    model = build.build_model(MUS_FP8, torch.device("cpu"))
    d = MUS_FP8.d_model
    block = model.blocks[0]
    layers = {"attn.qkv": block.attn.c_attn, "attn.proj": block.attn.c_proj, "mlp.fc": block.mlp.c_fc,
              "mlp.proj": block.mlp.c_proj}
    fan_in = {"attn.qkv": d, "attn.proj": d, "mlp.fc": d, "mlp.proj": 4 * d}
    for role, layer in layers.items():
        assert isinstance(layer, QuantLinear)
        assert layer.multiplier == 1 / math.sqrt(fan_in[role]), role
    # folded into the layer, so the model does not apply it a second time
    assert block.attn.m_attn == block.attn.m_proj == block.mlp.m_fc == block.mlp.m_proj == 1.0

    layer = block.mlp.c_proj
    alpha = 1 / math.sqrt(4 * d)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4 * d, generator=g, requires_grad=True)
    # incoming gradients around E5M2's subnormal range (smallest 2^-16): alpha dY would flush far more
    dy = torch.randn(2, 3, d, generator=g) * 2.0 ** -13
    y = layer(x)
    y.backward(dy)
    w = layer.weight.detach()
    xq, wq, dyq = _e4m3(x.detach()), _e4m3(w), _e5m2(dy)
    assert torch.equal(y, F.linear(xq, wq) * alpha)                       # forward: alpha x Q(x) Q(W)^T
    assert x.grad is not None and layer.weight.grad is not None
    assert torch.equal(x.grad, (dyq @ wq) * alpha)                        # dX = alpha Q(dY) Q(W)
    assert torch.equal(layer.weight.grad, (dyq.reshape(-1, d).t() @ xq.reshape(-1, 4 * d)) * alpha)
    # the multiplier outside the layer (y = alpha (x W^T), autograd) would quantise alpha dY instead
    outside = _e5m2(dy * alpha) @ wq
    assert not torch.equal(x.grad, outside)
    assert (_e5m2(dy * alpha) == 0).float().mean() > (dyq == 0).float().mean() + 0.1

    # the whole MLP composes: gelu of the first scaled quantised GEMM into the second
    h_in = torch.randn(2, 3, d, generator=g)
    h = F.gelu(F.linear(_e4m3(h_in), _e4m3(block.mlp.c_fc.weight.detach())) / math.sqrt(d), approximate="tanh")
    expected = F.linear(_e4m3(h), wq) * alpha
    assert torch.equal(block.mlp(h_in), expected)


def test_fp32_mus_is_unchanged_by_folding() -> None:
    """A QuantLinear quantising only P3 (a backward operand) has the dense mus model's forward."""
    dense = build.build_model(dataclasses.replace(MUS_FP8, precision=PrecisionConfig()), torch.device("cpu"))
    folded = build.build_model(dataclasses.replace(MUS_FP8, precision=PrecisionConfig(
        weights="fp32", activations="fp32", gradients="E5M2", operands=("P3",))), torch.device("cpu"))
    assert isinstance(folded.blocks[0].mlp.c_proj, QuantLinear)
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    # the same products in the same order: alpha x (x W^T) either way, bit for bit
    assert torch.equal(folded(tokens)[0], dense(tokens)[0])


def test_a_mus_fp8_static_run_trains_with_telemetry_and_both_tags() -> None:
    points: list[dict[str, Any]] = []
    summary = train(MUS_FP8, on_point=points.append)
    losses = [p["eval_loss"] for p in points]
    assert losses and all(math.isfinite(v) for v in losses)
    assert losses[-1] < math.log(256)      # learned something beyond the uniform byte distribution
    assert math.isfinite(summary["final_loss"])
    for p in points:
        for k in ("underflow", "saturate"):
            for r in "wag":
                assert 0.0 <= p[f"{k}_{r}"] <= 1.0
    # unit-scale weights: nothing saturates or flushes among E4M3 weights
    assert points[-1]["underflow_w"] < 0.01 and points[-1]["saturate_w"] == 0.0
    name = run_name(MUS_FP8)
    assert "-qE4M3" in name and "-mus" in name
