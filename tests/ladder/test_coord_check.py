"""The coordinate check (Yang et al. 2022, "Tensor Programs V", section 6 and Fig. 5): the RMS of every
layer's activations, at init and after a few Adam steps, across widths 32-256. Under ``mup`` and
``mus`` it stays within a small factor of itself across widths; under ``sp`` it grows with the width.

Activations are the model's own: each hidden linear's output times its static multiplier (what the
next operation sees), each block's output (the residual stream) and the logits.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab.ladder import build
from scalinglab.ladder.model import GPT
from scalinglab.runconfig import ParametrizationConfig, RunConfig

WIDTHS = (32, 64, 128, 256)
STEPS = 4
LAYERS = ("attn.c_proj", "mlp.c_fc", "mlp.c_proj")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One thread: the tiny models run faster so, and the RMS values do not depend on the thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _multiplier(model: GPT, name: str) -> float:
    """The static multiplier the model applies to the output of linear ``name`` (``blocks.0.mlp.c_fc``)."""
    parent, leaf = name.rsplit(".", 1)
    return float(getattr(model.get_submodule(parent), "m_" + leaf.removeprefix("c_")))


def coord_check(parametrization: ParametrizationConfig, lr: float, d_model: int) -> list[dict[str, float]]:
    """Per step 0..STEPS: the activation RMS of every watched layer before that step's update."""
    torch.manual_seed(0)
    cfg = RunConfig(n_layer=2, d_model=d_model, n_head=d_model // 16, context=32, batch_tokens=256, tokens=2560,
                    lr=lr, weight_decay=0.0, dtype="float32", parametrization=parametrization)
    model = build.build_model(cfg, torch.device("cpu"))
    opt = build.build_optimizer(model, cfg)
    for g in opt.param_groups:          # a constant learning rate: the trainer's lr x lr_mult
        g["lr"] = lr * g["lr_mult"]
    acts: dict[str, float] = {}

    def hook(name: str, mult: float) -> Any:
        def record(module: Any, inputs: Any, output: torch.Tensor) -> None:
            acts[name] = float(output.detach().pow(2).mean().sqrt()) * mult
        return record

    for name, module in model.named_modules():
        if name.endswith(LAYERS):
            module.register_forward_hook(hook(name, _multiplier(model, name)))
        elif name.startswith("blocks.") and name.count(".") == 1:
            module.register_forward_hook(hook(name, 1.0))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, cfg.vocab, (8, cfg.context), generator=g)
    y = torch.randint(0, cfg.vocab, (8, cfg.context), generator=g)
    history = []
    for step in range(STEPS + 1):
        logits, loss = model(x, y)
        assert loss is not None
        history.append({**acts, "logits": float(logits.detach().pow(2).mean().sqrt())})
        if step < STEPS:
            loss.backward()
            opt.step()
            opt.zero_grad()
    return history


def spreads(parametrization: ParametrizationConfig, lr: float) -> tuple[dict[str, float], dict[str, float]]:
    """Per layer, at init and after STEPS steps: RMS at width 256 / RMS at width 32, and max/min over widths."""
    runs = {d: coord_check(parametrization, lr, d) for d in WIDTHS}
    growth, spread = {}, {}
    for step in (0, STEPS):
        for layer in runs[WIDTHS[0]][step]:
            values = [runs[d][step][layer] for d in WIDTHS]
            assert all(math.isfinite(v) and v > 0 for v in values)
            growth[f"{layer}@{step}"] = values[-1] / values[0]
            spread[f"{layer}@{step}"] = max(values) / min(values)
    return growth, spread


@pytest.mark.parametrize("parametrization,lr,factor", [
    (ParametrizationConfig("mus", tau=0.4), 0.1, 1.6),
    (ParametrizationConfig("mup"), 3e-3, 2.0),
])
def test_width_independent_activations(parametrization: ParametrizationConfig, lr: float, factor: float) -> None:
    growth, spread = spreads(parametrization, lr)
    hidden = {k: v for k, v in spread.items() if not k.startswith("logits")}
    assert len(hidden) == 2 * 8    # 2 blocks x (3 linears + the block output), at init and after the steps
    worst = max(hidden, key=hidden.__getitem__)
    assert hidden[worst] <= factor, f"{worst}: activations spread {hidden[worst]:.2f}x across widths 32-256"
    # the logits may shrink with the width at init (a 1/width readout), never grow
    assert growth["logits@0"] <= 1.0 and growth[f"logits@{STEPS}"] <= 1.5


def test_sp_activations_grow_with_width() -> None:
    growth, _ = spreads(ParametrizationConfig(), 3e-3)   # the learning rate of the mup case
    blocks_after = [growth[f"blocks.{i}@{STEPS}"] for i in range(2)]
    assert min(blocks_after) > 4.0           # measured 6-9x from width 32 to 256 after 4 steps
    assert min(growth[f"blocks.{i}.attn.c_proj@0"] for i in range(2)) > 4.0   # ~d at init (0.02 init)
    assert growth[f"logits@{STEPS}"] > 2.0
