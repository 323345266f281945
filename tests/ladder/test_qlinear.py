"""Quantised linear layers (ladder.precision.QuantLinear): the six GEMM operands, straight-through
gradients, the loss scale, the linear factory, the telemetry feature, and the precision run config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab.errors import ConfigError
from scalinglab.ladder import build
from scalinglab.ladder.precision import QuantContext, QuantLinear, quant_context, quantize
from scalinglab.ladder.train import train
from scalinglab.runconfig import OPERANDS, PrecisionConfig, RunConfig, ScheduleConfig

TINY = RunConfig(name="q", n_layer=1, d_model=32, n_head=2, context=32, tokens=12 * 512, batch_tokens=512,
                 micro_batch_tokens=256, lr=1e-2, evals=3, eval_tokens=1024, seed=1, dtype="float32")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _layer(operands: tuple[str, ...], **kw: Any) -> QuantLinear:
    cfg = PrecisionConfig(weights="E2M1", activations="E3M2", gradients="E5M2", operands=operands, **kw)
    layer = QuantLinear(16, 8, QuantContext(cfg))
    with torch.no_grad():
        layer.weight.copy_(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)))
    return layer


@pytest.mark.parametrize("operands", [("P1",), ("P2",), ("P3",), ("P4",), ("P5",), ("P6",), OPERANDS,
                                      ("P2", "P4", "P6")])
def test_each_operand_is_quantised_where_it_enters_its_gemm(operands: tuple[str, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 16, generator=g, requires_grad=True)
    dy = torch.randn(3, 5, 8, generator=g)
    layer = _layer(operands)
    y = layer(x)
    y.backward(dy)
    w = layer.weight.detach()

    def qa(t: torch.Tensor) -> torch.Tensor:
        return quantize(t, "E3M2")

    def qw(t: torch.Tensor) -> torch.Tensor:
        return quantize(t, "E2M1")

    def qg(t: torch.Tensor) -> torch.Tensor:
        return quantize(t, "E5M2")

    on = set(operands)
    xd = x.detach()
    want_y = (qa(xd) if "P1" in on else xd) @ (qw(w) if "P2" in on else w).T
    want_dx = (qg(dy) if "P3" in on else dy) @ (qw(w) if "P4" in on else w)
    want_dw = (qg(dy) if "P5" in on else dy).reshape(-1, 8).T @ (qa(xd) if "P6" in on else xd).reshape(-1, 16)
    assert torch.allclose(y, want_y, rtol=1e-6, atol=1e-6)
    assert torch.allclose(x.grad, want_dx, rtol=1e-6, atol=1e-6)
    assert torch.allclose(layer.weight.grad, want_dw, rtol=1e-6, atol=1e-5)


def test_fp32_formats_quantise_nothing() -> None:
    layer = QuantLinear(16, 8, QuantContext(PrecisionConfig(operands=OPERANDS)))
    x = torch.randn(4, 16)
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight))


def test_loss_scale_rescues_underflowing_gradients() -> None:
    x = torch.randn(4, 16, requires_grad=True)
    dy = torch.full((4, 8), 1e-7)        # below E5M2's smallest subnormal 2^-16 ~ 1.5e-5
    for ls, zero in ((0.0, True), (2.0 ** 16, False)):
        layer = _layer(("P3",), loss_scale=ls)
        x.grad = None
        layer(x).backward(dy)
        assert bool((x.grad == 0).all()) is zero
    # the rescued gradient is the scaled gradient quantised, scaled back
    assert torch.allclose(x.grad, (quantize(dy * 2 ** 16, "E5M2") / 2 ** 16) @ layer.weight.detach(), rtol=1e-6)


def test_linear_factory_and_recipes() -> None:
    assert not TINY.precision.active
    model = build.build_model(TINY, torch.device("cpu"))
    assert quant_context(model) is None
    cfg = dataclasses.replace(TINY, precision=PrecisionConfig(recipe="fp8-static"))
    model = build.build_model(cfg, torch.device("cpu"))
    qc = quant_context(model)
    assert qc is not None and qc.operands == frozenset(OPERANDS)
    quantised = {n for n, m in model.named_modules() if isinstance(m, QuantLinear)}
    assert quantised == {"blocks.0.attn.c_attn", "blocks.0.attn.c_proj", "blocks.0.mlp.c_fc", "blocks.0.mlp.c_proj"}
    assert not isinstance(model.lm_head, QuantLinear)
    r = PrecisionConfig(recipe="sun").resolved()
    assert r["operands"] == ("P2", "P4", "P6") and r["scaling"] == "channel" and r["convention"] == "finite"
    assert PrecisionConfig(recipe="fp8-dynamic").resolved()["scaling"] == "tensor"
    # a format alone quantises the operands of its role
    assert PrecisionConfig(weights="E2M1").resolved()["operands"] == ("P2", "P4")
    assert PrecisionConfig(block=16).resolved()["scaling"] == "block"


@pytest.mark.parametrize(("fields", "named"), [
    ({"weights": "E9M3"}, "precision.weights"), ({"gradients": "E4M9"}, "precision.gradients"),
    ({"activations": "fp7"}, "precision.activations"), ({"operands": ["P7"]}, "precision.operands"),
    ({"recipe": "fp4"}, "precision.recipe"), ({"scaling": "row"}, "precision.scaling"),
    ({"rounding": "up"}, "precision.rounding"), ({"scaling": "block"}, "precision.block"),
    ({"block": 24, "weights": "E2M1"}, "precision.block"), ({"convention": "x"}, "precision.convention")])
def test_bad_precision_fields_are_one_line_errors(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({**TINY.to_dict(), "precision": fields})
    assert named in str(e.value) and "\n" not in str(e.value)


def test_default_precision_keeps_the_digest() -> None:
    d = TINY.to_dict()
    d.pop("precision")
    d.pop("ptq")
    assert RunConfig.from_dict(d).digest() == TINY.digest()
    assert dataclasses.replace(TINY, precision=PrecisionConfig(recipe="fp8-static")).digest() != TINY.digest()


def test_a_quantised_run_trains_reports_telemetry_and_resumes(tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, precision=PrecisionConfig(recipe="fp8-static", rounding="stochastic",
                                                              loss_scale=1.0),
                              schedule=ScheduleConfig(name="wsd", decay_frac=0.5, branches=(0.5,)))
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append)
    assert all(0.0 <= p[f"{k}_{r}"] <= 1.0 for p in points for k in ("underflow", "saturate") for r in "wag")
    # SP's tiny mean-reduced gradients mostly flush to zero in E5M2 with loss scale 1 (the recipe's
    # default, the batch in tokens, is what prevents it)
    assert points[-1]["underflow_g"] > 0.2
    assert any(p["branch"] == 1 and "underflow_w" in p for p in points)
    # a quantised run differs from the fp32 one, and is deterministic
    plain: list[dict[str, Any]] = []
    train(dataclasses.replace(cfg, precision=PrecisionConfig()), on_point=plain.append)
    assert [p["eval_loss"] for p in plain] != [p["eval_loss"] for p in points]
    # interrupted after the first point and resumed: the same curve (stochastic rounding's generator resumes)
    ckpt = tmp_path / "q.pt"
    first: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def stop_after_two(p: dict[str, Any]) -> None:
        first.append(p)
        if len(first) == 2:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, on_point=stop_after_two, checkpoint_path=ckpt)
    rest: list[dict[str, Any]] = []
    train(cfg, on_point=rest.append, checkpoint_path=ckpt)
    resumed = {(p["branch"], p["step"]): p["eval_loss"] for p in first + rest}
    assert resumed == {(p["branch"], p["step"]): p["eval_loss"] for p in points}   # deterministic too
    assert summary["final_loss"] == [p for p in points if p["branch"] == 0][-1]["eval_loss"]


def test_fp8_static_loss_scale_is_the_batch_in_tokens() -> None:
    """The fp8-static recipe's static loss scale is the run's batch in tokens; an explicit one wins;
    the other recipes keep 1."""
    from scalinglab.ladder.precision import QuantContext
    from scalinglab.runconfig import PrecisionConfig

    assert QuantContext(PrecisionConfig(recipe="fp8-static"), batch_tokens=2048).loss_scale == 2048.0
    assert QuantContext(PrecisionConfig(recipe="fp8-static", loss_scale=8.0), batch_tokens=2048).loss_scale == 8.0
    assert QuantContext(PrecisionConfig(recipe="fp8-dynamic"), batch_tokens=2048).loss_scale == 1.0
    assert QuantContext(PrecisionConfig(recipe="fp8-static")).loss_scale == 1.0   # no batch given
