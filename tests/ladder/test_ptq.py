"""Post-training quantisation at every evaluation (ladder.ptq): the curves are untouched, the metric
is the loss of the model with its hidden weights rounded (checked against a hand-written absmax RTN)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab.errors import ConfigError
from scalinglab.ladder import build, checkpoint
from scalinglab.ladder.corpus import load_tokens
from scalinglab.ladder.ptq import PTQFeature, quantize_weight
from scalinglab.ladder.train import train
from scalinglab.numformats import parse_ptq
from scalinglab.runconfig import PrecisionConfig, RunConfig, ScheduleConfig

TINY = RunConfig(name="p", n_layer=1, d_model=32, n_head=2, context=32, tokens=12 * 512, batch_tokens=512,
                 lr=1e-2, evals=3, eval_tokens=1024, seed=2, dtype="float32",
                 schedule=ScheduleConfig(name="wsd", decay_frac=0.5, branches=(0.5,)))
SETTINGS = ("int4", "int3_g16", "E2M1_g16", "int2")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rtn_int(w: torch.Tensor, bits: int, group: int = 0) -> torch.Tensor:
    """Symmetric absmax round-to-nearest, written out: scale = absmax / (2^(k-1) - 1) per row or group."""
    qmax = 2 ** (bits - 1) - 1
    g = w.reshape(w.shape[0], -1, group) if group else w.reshape(w.shape[0], 1, -1)
    scale = g.abs().amax(-1, keepdim=True) / qmax
    return (torch.clamp(torch.round(g / scale), -qmax, qmax) * scale).reshape(w.shape)


def test_the_integer_grid_is_symmetric_absmax_rtn() -> None:
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    for spec, bits, group in (("int4", 4, 0), ("int3_g16", 3, 16), ("int2", 2, 0), ("int8_g32", 8, 32)):
        assert torch.allclose(quantize_weight(w, parse_ptq(spec)), rtn_int(w, bits, group), rtol=1e-6, atol=1e-7)
    assert len(torch.unique(quantize_weight(w, parse_ptq("int2"))[0])) <= 3


def test_curves_are_unchanged_and_the_metric_is_a_manual_quantise_and_eval(tmp_path: Path) -> None:
    plain: list[dict[str, Any]] = []
    train(TINY, on_point=plain.append)
    cfg = dataclasses.replace(TINY, ptq=SETTINGS)
    points: list[dict[str, Any]] = []
    ckpt = tmp_path / "p.pt"
    train(cfg, on_point=points.append, checkpoint_path=ckpt)
    keys = ("branch", "step", "train_loss", "eval_loss", "lr")
    assert [{k: p[k] for k in keys} for p in points] == [{k: p[k] for k in keys} for p in plain]   # bit for bit
    assert any(p["branch"] == 1 for p in points)
    for p in points:
        for s in SETTINGS:
            assert p[f"dloss_ptq_{s}"] == pytest.approx(p[f"loss_ptq_{s}"] - p["eval_loss"], abs=1e-12)
    assert points[-1]["dloss_ptq_int2"] > points[-1]["dloss_ptq_int4"]
    # the final model (the checkpoint after the last point), quantised by hand and evaluated
    model = build.build_model(cfg, torch.device("cpu"))
    model.load_state_dict(checkpoint.load(ckpt, cfg)["model"])
    feat = PTQFeature(cfg, model, load_tokens(cfg.corpus, cfg.vocab))
    assert feat.evaluate() == points[-1]["eval_loss"]
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    with torch.no_grad():
        for name, mod in model.named_modules():
            if name.endswith(("c_attn", "c_fc", "c_proj")):
                mod.weight.copy_(rtn_int(mod.weight, 3, 16))
    manual = feat.evaluate()
    assert manual == pytest.approx(points[-1]["loss_ptq_int3_g16"], abs=1e-6)
    model.load_state_dict(before)
    assert feat.measure()["int3_g16"] == points[-1]["loss_ptq_int3_g16"]
    # the weights are restored bit for bit
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())


def test_ptq_with_stochastically_rounded_training_leaves_the_curve_alone() -> None:
    prec = PrecisionConfig(weights="E3M2", operands=("P2",), rounding="stochastic")
    base = dataclasses.replace(TINY, precision=prec, tokens=8 * 512, schedule=ScheduleConfig())
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    train(base, on_point=a.append)
    train(dataclasses.replace(base, ptq=("int4",)), on_point=b.append)
    assert [p["eval_loss"] for p in a] == [p["eval_loss"] for p in b]
    assert [p["train_loss"] for p in a] == [p["train_loss"] for p in b]


@pytest.mark.parametrize("bad", [["int9"], ["int4", "int4"], ["int4_g24"], ["q4"], "int4_g1"])
def test_bad_ptq_settings_are_one_line_errors(bad: Any) -> None:
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({**TINY.to_dict(), "ptq": bad})
    assert "'ptq'" in str(e.value) and "\n" not in str(e.value)
