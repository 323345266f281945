"""The parametrizations' hooks, checked against the formulas they implement (PRECISION.md section 1 for
``mus``; Yang et al. 2022 Table 3 for ``mup``), and their run-config field."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from scalinglab.errors import ConfigError
from scalinglab.ladder import build
from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.parametrization import SP, MuP, MuS, for_config
from scalinglab.runconfig import ParametrizationConfig, RunConfig


def _config(d_model: int, parametrization: object = "sp", **kw: object) -> RunConfig:
    return RunConfig(n_layer=2, d_model=d_model, n_head=d_model // 16, context=16, batch_tokens=64, tokens=640,
                     dtype="float32", parametrization=parametrization, **kw)  # type: ignore[arg-type]


def test_for_config() -> None:
    assert type(for_config(_config(64))) is SP
    p = for_config(_config(64, ParametrizationConfig("mup", base_width=32)))
    assert isinstance(p, MuP) and p.base_width == 32
    q = for_config(_config(64, ParametrizationConfig("mus", tau=0.3)))
    assert isinstance(q, MuS) and q.tau == 0.3 and q.base_width == 64


def test_mus_init_and_multipliers() -> None:
    model = build.build_model(_config(128, ParametrizationConfig("mus", tau=0.4)), torch.device("cpu"))
    for name, p in model.named_parameters():
        if p.dim() == 1:
            assert torch.equal(p, torch.ones_like(p)), name
        else:   # N(0, 1): the sample std of >= 2048 draws is within 5% of 1
            assert abs(float(p.detach().std()) - 1.0) < 0.05, name
    block = model.blocks[0]
    assert block.attn.m_attn == block.attn.m_proj == block.mlp.m_fc == 1 / math.sqrt(128)
    assert block.mlp.m_proj == 1 / math.sqrt(512)
    assert block.attn.scale is None              # standard 1/sqrt(head_dim) attention
    assert model.logit_scale == 1 / 128
    assert block.post_ln == (math.sqrt(0.6), math.sqrt(0.4))


def test_mus_block_is_res_post_ln() -> None:
    """x <- sqrt(1 - tau) x + sqrt(tau) LN(f(x)), f = attention then MLP, each with its alpha."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=1, d_model=32, n_head=2, context=8, vocab=64)
    model = GPT(cfg, torch.Generator().manual_seed(0), parametrization=MuS(tau=0.25, base_width=32))
    b = model.blocks[0]
    x = torch.randn(2, 8, 32)
    a, c = math.sqrt(0.75), 0.5
    h = a * x + c * b.ln_1(b.attn(x))
    mlp = b.mlp.c_proj(torch.nn.functional.gelu(b.mlp.c_fc(h) / math.sqrt(32), approximate="tanh")) / math.sqrt(128)
    want = a * h + c * b.ln_2(mlp)
    assert torch.allclose(b(x), want, atol=1e-6)


def test_mup_init_and_multipliers() -> None:
    base = build.build_model(_config(64, ParametrizationConfig("mup", base_width=64)), torch.device("cpu"))
    sp = build.build_model(_config(64), torch.device("cpu"))
    for (n1, p1), (_, p2) in zip(base.named_parameters(), sp.named_parameters()):
        assert torch.equal(p1, p2), n1            # at the base width: SP's init, bit for bit
    wide = build.build_model(_config(256, ParametrizationConfig("mup", base_width=64)), torch.device("cpu"))
    w = dict(wide.named_parameters())
    assert abs(float(w["blocks.0.mlp.c_fc.weight"].detach().std()) - 0.02 * 0.5) < 5e-4      # 0.02 sqrt(64/256)
    assert abs(float(w["blocks.0.mlp.c_proj.weight"].detach().std()) - 0.01 * 0.5) < 2.5e-4  # 0.02/sqrt(2L) sqrt(256/1024)
    assert abs(float(w["wte.weight"].detach().std()) - 0.02) < 1e-3                          # embeddings as SP
    assert wide.logit_scale == 0.25 and wide.blocks[0].attn.scale == 1 / 16
    assert wide.blocks[0].post_ln is None and wide.blocks[0].mlp.m_fc == 1.0


@pytest.mark.parametrize("name,hidden_mult", [("mup", lambda d: 64 / d), ("mus", lambda d: math.sqrt(64 / d))])
def test_param_groups(name: str, hidden_mult: object) -> None:
    pc = ParametrizationConfig(name, tau=0.4 if name == "mus" else 0.0)
    for d in (32, 256):
        cfg = _config(d, pc, weight_decay=0.1)
        model = build.build_model(cfg, torch.device("cpu"))
        groups = build.build_optimizer(model, cfg).param_groups
        assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
        hidden, other, vectors = groups
        assert len(hidden["params"]) == 2 * 4 and all(p.dim() == 2 for p in hidden["params"])
        assert other["lr_mult"] == vectors["lr_mult"] == 1.0 and vectors["weight_decay"] == 0.0
        assert hidden["lr_mult"] == pytest.approx(hidden_mult(d))  # type: ignore[operator]
        # AdamW shrinks a weight by lr x lr_mult x weight_decay per step
        shrink = hidden["lr_mult"] * hidden["weight_decay"]
        assert shrink == pytest.approx(0.1 if name == "mus" else 0.1 * hidden_mult(d))  # type: ignore[operator]


def test_mus_decay_is_width_independent() -> None:
    """One AdamW step with zero gradients: every hidden matrix shrinks by the same factor at any width."""
    shrink = []
    for d in (32, 128):
        cfg = _config(d, ParametrizationConfig("mus", tau=0.4), weight_decay=0.5)
        model = build.build_model(cfg, torch.device("cpu"))
        opt = build.build_optimizer(model, cfg)
        for g in opt.param_groups:
            g["lr"] = 0.01 * g["lr_mult"]
        w = model.blocks[0].mlp.c_fc.weight
        before = w.detach().clone()
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        shrink.append(float((w.detach() / before).mean()))
    assert shrink[0] == pytest.approx(1 - 0.01 * 0.5, abs=1e-6) and shrink[1] == pytest.approx(shrink[0], abs=1e-6)


def test_config_field() -> None:
    assert RunConfig().digest() == RunConfig(parametrization=ParametrizationConfig()).digest() == "11e9a60a09"
    mus = RunConfig.from_dict({"parametrization": {"name": "mus", "tau": 0.4}})
    assert mus.parametrization == ParametrizationConfig("mus", 0.4, 64)
    assert mus.digest() != RunConfig().digest()
    assert RunConfig.from_dict(mus.to_dict()) == mus
    assert RunConfig.from_dict({"parametrization": "mup"}).parametrization.base_width == 64
    bad = [({"name": "mus"}, "'parametrization.tau'"), ({"name": "mus", "tau": 1.0}, "'parametrization.tau'"),
           ({"name": "sp", "tau": 0.2}, "'parametrization.tau'"), ({"name": "mux"}, "'parametrization.name'"),
           ({"name": "mup", "base_width": -1}, "'parametrization.base_width'"),
           ({"name": "sp", "base_width": 64}, "'parametrization.base_width'"),
           ({"name": "mus", "tau": "x"}, "'parametrization.tau'"),
           ({"name": "mus", "tau": 0.3, "width": 1}, "parametrization config key")]
    for value, field in bad:
        with pytest.raises(ConfigError, match=field) as info:
            RunConfig.from_dict({"parametrization": value})
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="'parametrization' field"):
        RunConfig.from_dict({"parametrization": 3})
