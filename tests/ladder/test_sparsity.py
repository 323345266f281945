"""Sparse training: schedule, masks, exact zeros under AdamW, checkpoints, SPDF, Sparse-IFT, FLOPs.

Oracles: ``torch.ao.pruning`` (``CubicSL.sparsity_compute_fn`` for the schedule,
``WeightNormSparsifier`` for magnitude and n:m masks), hand counts, and LAWS.md section 4's c_mul
(``laws.sparse.cost_multiplier``).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier
from torch.ao.pruning.scheduler.cubic_scheduler import CubicSL

from scalinglab import units
from scalinglab.accounting import (
    cubic_sparsity,
    model_shape,
    phases,
    run_training_flops,
    sift_width,
    sparsity_schedule,
    training_flops,
)
from scalinglab.errors import ConfigError, ParameterError
from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.sparsity import Sparsifier, magnitude_masks, nm_mask, prunable_linears, random_masks
from scalinglab.laws.sparse import cost_multiplier
from scalinglab.runconfig import RunConfig, SparsityConfig

TINY = GPTConfig(n_layer=2, d_model=32, n_head=2, context=16, vocab=64)


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors this small gain nothing from threads, and lose a lot on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_gpt(seed: int = 0) -> GPT:
    return GPT(TINY, generator=torch.Generator().manual_seed(seed))


def batches(seed: int, n: int, batch: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randint(0, TINY.vocab, (batch, TINY.context + 1), generator=g)
        out.append((x[:, :-1].contiguous(), x[:, 1:].contiguous()))
    return out


def train(model: GPT, sp: Sparsifier, opt: torch.optim.Optimizer, data: list, start: int,
          stop: int, on_update=None) -> None:
    """The training-loop protocol of the Sparsifier docstring."""
    for step in range(start, stop):
        if sp.update(step, opt) and on_update is not None:
            on_update(step)
        x, y = data[step]
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sp.mask_grads()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sp.apply(opt)


def adamw(model: nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.95))


# -- schedule -----------------------------------------------------------------------------------------


def test_cubic_schedule_values_at_quarters() -> None:
    S, T = 0.8, 1000
    got = [cubic_sparsity(f * T // 100, T, S) for f in (0, 25, 50, 75, 100)]
    np.testing.assert_allclose(got, [0.0, 0.0, 0.875 * S, S, S], rtol=0, atol=1e-15)


def test_cubic_schedule_matches_torch_cubicsl() -> None:
    S, T = 0.9, 400
    t = np.arange(T + 1)
    ours = cubic_sparsity(t, T, S, 0.25, 0.75)
    ref = [CubicSL.sparsity_compute_fn(s_0=0.0, s_f=S, t=int(ti), t_0=100, dt=1, n=200, initially_zero=True)
           for ti in t]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_schedule_is_held_between_updates_and_spdf_lifts_it() -> None:
    cfg = SparsityConfig(target=0.5, update_every=10, end_frac=0.6, dense_finetune_frac=0.25)
    s = sparsity_schedule(cfg, 100)
    assert np.all(s[:25] == 0)
    assert s[36] == s[35] == cubic_sparsity(35, 100, 0.5, 0.25, 0.6)   # updates at 25, 35, 45, 55
    assert np.all(s[60:75] == 0.5) and np.all(s[75:] == 0)
    assert phases(cfg, 100) == [{"phase": "sparse", "start_step": 0, "end_step": 75, "corpus": ""},
                                {"phase": "dense_finetune", "start_step": 75, "end_step": 100, "corpus": ""}]
    assert np.all(sparsity_schedule(SparsityConfig(target=0.5, method="static"), 10) == 0.5)
    assert np.all(sparsity_schedule(SparsityConfig(), 10) == 0)


# -- masks against torch.ao.pruning ----------------------------------------------------------------


def _ao_mask(weight: torch.Tensor, level: float, block: tuple[int, int], zeros: int) -> torch.Tensor:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    model = nn.Sequential(lin)
    sp = WeightNormSparsifier(sparsity_level=level, sparse_block_shape=block, zeros_per_block=zeros)
    sp.prepare(model, config=[{"tensor_fqn": "0.weight"}])
    sp.step()
    return lin.parametrizations.weight[0].mask.bool()


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4), (3, 8)])
def test_nm_mask_matches_weight_norm_sparsifier(n: int, m: int) -> None:
    w = torch.randn(24, 64, generator=torch.Generator().manual_seed(n * 10 + m))
    mask = nm_mask(w, n, m)
    assert torch.equal(mask, _ao_mask(w, 1.0, (1, m), m - n))
    assert torch.all(mask.view(24, 64 // m, m).sum(-1) == n)     # every group holds the pattern
    # the kept weights are the n largest of their group
    g = w.abs().view(24, -1, m)
    kept_min = torch.where(mask.view(24, -1, m), g, torch.inf).amin(-1)
    dropped_max = torch.where(mask.view(24, -1, m), -torch.inf, g).amax(-1)
    assert torch.all(kept_min > dropped_max)


@pytest.mark.parametrize("S", [0.1, 0.5, 0.9])
def test_layer_magnitude_masks_match_weight_norm_sparsifier(S: float) -> None:
    w = torch.randn(48, 40, generator=torch.Generator().manual_seed(1))
    (mask,) = magnitude_masks([w], S)
    assert int((~mask).sum()) == round(S * w.numel())
    assert torch.equal(mask, _ao_mask(w, S, (1, 1), 1))


def test_global_masks_prune_exact_total_by_one_threshold() -> None:
    g = torch.Generator().manual_seed(2)
    ws = [torch.randn(30, 20, generator=g), 0.1 * torch.randn(20, 50, generator=g)]
    masks = magnitude_masks(ws, 0.6, "global")
    assert sum(int((~mk).sum()) for mk in masks) == round(0.6 * 1600)
    kept = torch.cat([w.abs()[mk] for w, mk in zip(ws, masks)])
    dropped = torch.cat([w.abs()[~mk] for w, mk in zip(ws, masks)])
    assert kept.min() > dropped.max()
    # the layer of small weights loses far more than the target, the other far less
    assert (~masks[1]).float().mean() > 0.8 and (~masks[0]).float().mean() < 0.3


def test_random_masks_exact_count_and_seeded() -> None:
    ws = [torch.empty(32, 16), torch.empty(16, 48)]
    a = random_masks(ws, 0.75, torch.Generator().manual_seed(3))
    b = random_masks(ws, 0.75, torch.Generator().manual_seed(3))
    c = random_masks(ws, 0.75, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])
    assert [int((~mk).sum()) for mk in a] == [384, 576]
    nm = random_masks(ws, 0.5, torch.Generator().manual_seed(3), nm=(2, 4))
    assert all(torch.all(mk.view(mk.shape[0], -1, 4).sum(-1) == 2) for mk in nm)


def test_mask_errors() -> None:
    with pytest.raises(ParameterError, match="with in a multiple of m = 4"):
        nm_mask(torch.randn(4, 6), 2, 4)
    with pytest.raises(ParameterError, match="0 < n < m"):
        nm_mask(torch.randn(4, 8), 4, 4)
    with pytest.raises(ParameterError, match="'scope' parameter"):
        magnitude_masks([torch.randn(4, 4)], 0.5, "model")
    with pytest.raises(ParameterError, match="'sparsity' parameter"):
        magnitude_masks([torch.randn(4, 4)], 1.5)


# -- which layers ---------------------------------------------------------------------------------


def test_prunable_linears_are_the_block_linears() -> None:
    names = [n for n, _ in prunable_linears(tiny_gpt())]
    assert names == [f"blocks.{i}.{p}" for i in range(2)
                     for p in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    generic = nn.ModuleDict({"emb": nn.Embedding(10, 8), "body": nn.Linear(8, 8),
                             "lm_head": nn.Linear(8, 10)})
    assert [n for n, _ in prunable_linears(generic)] == ["body"]


# -- the controller in training ----------------------------------------------------------------------


def test_every_mask_update_hits_the_schedule_to_one_weight() -> None:
    T = 40
    cfg = SparsityConfig(target=0.7, update_every=3)
    model = tiny_gpt()
    sp = Sparsifier(model, cfg, T)
    opt = adamw(model)
    seen: list[int] = []
    previous: dict[str, torch.Tensor] = {}

    def check(step: int) -> None:
        seen.append(step)
        want = sp.scheduled(step)
        for (name, mk), (_, lin) in zip(sp.masks.items(), prunable_linears(model)):
            assert abs(int((~mk).sum()) - want * mk.numel()) <= 0.5 + 1e-9, (step, name)
            assert torch.all(lin.weight[~mk] == 0)
            if name in previous:                      # GMP only ever adds to a mask
                assert not torch.any(mk & ~previous[name])
            previous[name] = mk.clone()

    train(model, sp, opt, batches(0, T), 0, T, on_update=check)
    assert seen == [13, 16, 19, 22, 25, 28, 30]    # t_s = 10 (s = 0 there), k = 3, t_e = 30
    assert not sp.update(31) and sp.sparsity()["blocks.0.mlp.c_fc"] == pytest.approx(0.7, abs=1 / 4096)
    # units rounds 0.7 x all 12 L d^2 weights at once, the masks each layer's: 4 L = 8 roundings
    assert abs(sp.n_nonzero() - units.param_counts(2, 32, 16, 64, sparsity=0.7)["N_nonzero"]) <= 4
    assert sp.n_nonzero() == units.param_counts(2, 32, 16, 64)["N_nonembed"] - sum(
        round(0.7 * lin.weight.numel()) for _, lin in prunable_linears(model))


def test_gradual_nm_ends_in_the_pattern() -> None:
    T = 24
    cfg = SparsityConfig(target=0.5, n=2, m=4, update_every=2)
    model = tiny_gpt()
    sp = Sparsifier(model, cfg, T)
    opt = adamw(model)

    def at_least_n(step: int) -> None:
        for mk in sp.masks.values():
            assert torch.all(mk.view(mk.shape[0], -1, 4).sum(-1) >= 2)

    train(model, sp, opt, batches(1, T), 0, T, on_update=at_least_n)
    for (_, mk), (_, lin) in zip(sp.masks.items(), prunable_linears(model)):
        assert torch.all(mk.view(mk.shape[0], -1, 4).sum(-1) == 2)
        assert torch.all((lin.weight != 0).view(mk.shape[0], -1, 4).sum(-1) <= 2)


@pytest.mark.parametrize("cfg", [SparsityConfig(target=0.75, method="static"),
                                 SparsityConfig(target=0.5, method="nm", n=2, m=4),
                                 SparsityConfig(target=0.6, update_every=5, scope="global")],
                         ids=["static", "nm", "gmp-global"])
def test_masked_weights_stay_exactly_zero_through_200_adamw_steps(cfg: SparsityConfig) -> None:
    T = 200
    model = tiny_gpt()
    sp = Sparsifier(model, cfg, T, seed=5)
    opt = adamw(model)
    train(model, sp, opt, batches(2, 1) * T, 0, T)
    total = 0
    for (_, mk), (_, lin) in zip(sp.masks.items(), prunable_linears(model)):
        st = opt.state[lin.weight]
        assert torch.all(lin.weight[~mk] == 0)
        assert torch.all(st["exp_avg"][~mk] == 0) and torch.all(st["exp_avg_sq"][~mk] == 0)
        assert torch.all(lin.weight[mk] != 0)          # the kept weights did train
        total += int((~mk).sum())
    assert total == round(cfg.target * 12 * 2 * 32 * 32)


def test_masks_without_the_protocol_do_not_stay_zero() -> None:
    """A control for the test above: masking once and then stepping AdamW revives masked weights."""
    model = tiny_gpt()
    sp = Sparsifier(model, SparsityConfig(target=0.5, method="static"), 10)
    opt = adamw(model)
    sp.update(0, opt)
    x, y = batches(3, 1)[0]
    for _ in range(3):
        opt.zero_grad()
        model(x, y)[1].backward()
        opt.step()
    mk = sp.masks["blocks.0.mlp.c_fc"]
    assert torch.any(model.blocks[0].mlp.c_fc.weight[~mk] != 0)


def test_resume_from_state_dict_keeps_identical_masks() -> None:
    T, cut = 30, 17
    cfg = SparsityConfig(target=0.8, update_every=2)
    data = batches(4, T)
    model = tiny_gpt()
    sp = Sparsifier(model, cfg, T)
    opt = adamw(model)
    train(model, sp, opt, data, 0, T)

    model2 = tiny_gpt()
    sp2 = Sparsifier(model2, cfg, T)
    opt2 = adamw(model2)
    train(model2, sp2, opt2, data, 0, cut)
    buf = io.BytesIO()
    torch.save({"model": model2.state_dict(), "opt": opt2.state_dict(), "sparsifier": sp2.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)     # as the trainer loads checkpoints
    model3 = tiny_gpt(seed=99)
    opt3 = adamw(model3)
    sp3 = Sparsifier(model3, cfg, T)
    model3.load_state_dict(ckpt["model"])
    opt3.load_state_dict(ckpt["opt"])
    sp3.load_state_dict(ckpt["sparsifier"])
    assert all(torch.equal(a, b) for a, b in zip(sp2.masks.values(), sp3.masks.values()))
    train(model3, sp3, opt3, data, cut, T)
    assert all(torch.equal(a, b) for a, b in zip(sp.masks.values(), sp3.masks.values()))
    with pytest.raises(ConfigError, match="mask shape"):
        bad = ckpt["sparsifier"] | {"masks": {k: v[:, :8] for k, v in ckpt["sparsifier"]["masks"].items()}}
        Sparsifier(tiny_gpt(), cfg, T).load_state_dict(bad)


def test_spdf_lifts_the_masks_for_dense_finetuning() -> None:
    T = 20
    cfg = SparsityConfig(target=0.5, method="static", dense_finetune_frac=0.25, finetune_corpus="other.txt")
    model = tiny_gpt()
    sp = Sparsifier(model, cfg, T)
    opt = adamw(model)
    train(model, sp, opt, batches(5, T), 0, 15)
    mk = sp.masks["blocks.1.attn.c_attn"]
    assert torch.all(model.blocks[1].attn.c_attn.weight[~mk] == 0)
    train(model, sp, opt, batches(5, T), 15, T)
    assert sp.masks is None and sp.n_nonzero() == units.param_counts(2, 32, 16, 64)["N_nonembed"]
    assert torch.all(model.blocks[1].attn.c_attn.weight[~mk] != 0)   # the pruned weights learn again
    assert phases(cfg, T)[1] == {"phase": "dense_finetune", "start_step": 15, "end_step": 20,
                                 "corpus": "other.txt"}


def test_a_model_without_prunable_layers_is_an_error() -> None:
    with pytest.raises(ConfigError, match="prunable linear layers must be a non-empty list"):
        Sparsifier(nn.Embedding(4, 4), SparsityConfig(target=0.5, method="static"), 10)


def test_dense_config_is_a_no_op() -> None:
    model = tiny_gpt()
    before = [p.clone() for p in model.parameters()]
    sp = Sparsifier(model, SparsityConfig(), 10)
    assert not sp.update(0) and sp.masks is None
    sp.mask_grads()
    sp.apply()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert set(sp.sparsity().values()) == {0.0}


# -- config validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,match", [
    ({"method": "rigl"}, "'sparsity.method' field must be one of"),
    ({"scope": "model"}, "'sparsity.scope' field"),
    ({"start_frac": 0.8, "end_frac": 0.5}, "0 <= start <= end <= 1"),
    ({"update_every": 0}, "'sparsity.update_every' field must be a positive integer"),
    ({"target": 0.5, "method": "nm"}, "0 < n < m"),
    ({"target": 0.6, "n": 2, "m": 4}, r"1 - n/m = 0.5 for the 2:4 pattern"),
    ({"dense_finetune_frac": 1.0}, "'sparsity.dense_finetune_frac' field"),
    ({"dense_finetune_frac": 0.5}, "at most 1 - dense_finetune_frac = 0.5"),
    ({"finetune_corpus": "x.txt"}, "empty when dense_finetune_frac is 0"),
    ({"ift": 1}, "'sparsity.ift' field must be a boolean"),
])
def test_sparsity_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SparsityConfig(**kw)


def test_run_config_reads_new_sparsity_fields() -> None:
    run = RunConfig.from_dict({"sparsity": {"target": 0.5, "method": "static", "dense_finetune_frac": 0.2,
                                            "finetune_corpus": "ft.txt", "ift": True}})
    assert run.sparsity.ift and run.sparsity.finetune_corpus == "ft.txt"


# -- Sparse-IFT ---------------------------------------------------------------------------------------


def test_sift_width_keeps_nonzero_flops() -> None:
    assert sift_width(64, 0.75) == 128 and sift_width(256, 0.75, widen="one") == 1024
    assert sift_width(64, 0.5, multiple_of=16) == 96          # 64 / sqrt(0.5) = 90.5 -> 96
    for S in (0.5, 0.75, 0.875):
        run = RunConfig(n_layer=2, d_model=128, n_head=8,
                        sparsity=SparsityConfig(target=S, method="static", ift=True))
        shape = model_shape(run)
        assert shape["d_model"] % shape["n_head"] == 0 and shape["d_model"] // shape["n_head"] == 16
        nonzero = 12 * 2 * shape["d_model"] ** 2 * (1 - S)
        assert nonzero == pytest.approx(12 * 2 * 128**2, rel=0.1)   # to the rounding of d to 16
    assert model_shape(RunConfig(n_layer=2, d_model=128, n_head=8))["d_model"] == 128
    # S = 3/4 widens d = 128 to exactly 256: the prunable FLOPs of the sparse kernel are the dense model's
    run = RunConfig(n_layer=2, d_model=128, n_head=8, tokens=8192, batch_tokens=4096,
                    sparsity=SparsityConfig(target=0.75, method="static", ift=True))
    other = units.flops_per_token(2, 256, 128, 256) - 6 * 12 * 2 * 256**2
    want = 2 * 4096 * (6 * 12 * 2 * 128**2 + other)
    assert run_training_flops(run)["flops_sparse_kernel"] == pytest.approx(want)
    with pytest.raises(ParameterError, match="'widen' parameter"):
        sift_width(64, 0.5, widen="in")


# -- FLOP accounting ----------------------------------------------------------------------------------


def test_training_flops_hand_count() -> None:
    cfg = SparsityConfig(target=0.5, update_every=1)
    s = sparsity_schedule(cfg, 8)          # t_s = 2, t_e = 6: p = 0, 1/4, 1/2, 3/4 at t = 2..5
    np.testing.assert_allclose(s, [0, 0, 0, 0.5 * (1 - 0.75**3), 0.4375, 0.5 * (1 - 0.25**3), 0.5, 0.5])
    f = training_flops(600.0, 10, s, other_flops_per_token=60.0)
    # sum of densities = 3 + 0.7109375 + 0.5625 + 0.5078125 + 0.5 + 0.5 = 5.78125
    assert f["flops_sparse_kernel"] == pytest.approx(10 * (600 * 5.78125 + 60 * 8), rel=1e-12)   # 39487.5
    assert f["flops_spent_dense_kernels"] == 10 * 8 * 660
    assert f["flops_nonzero_final"] == 10 * 8 * (300 + 60)
    assert f["c_mul"] == pytest.approx(39487.5 / 28800, rel=1e-12)


def test_run_training_flops_hand_count() -> None:
    run = RunConfig(n_layer=2, d_model=64, n_head=2, tokens=40960, batch_tokens=4096,
                    sparsity=SparsityConfig(target=0.5, method="static"))
    f = run_training_flops(run)
    lin = 12 * 2 * 64 * 64
    per_token_dense = units.flops_per_token(2, 64, 128, 256)
    assert f["flops_spent_dense_kernels"] == pytest.approx(10 * 4096 * per_token_dense)
    assert f["flops_sparse_kernel"] == pytest.approx(10 * 4096 * (per_token_dense - 3 * lin))
    assert f["c_mul"] == pytest.approx(1.0)
    four = run_training_flops(run, 4)
    assert four["flops_spent_dense_kernels"] == pytest.approx(4 * 4096 * per_token_dense)


@pytest.mark.parametrize("S", [0.5, 0.75, 0.875])
def test_cost_multiplier_of_the_25_50_25_cubic_schedule(S: float) -> None:
    # the average density under the cubic ramp is 1 - 3S/4 (midpoint rule on p in [0, 1])
    p = (np.arange(100_000) + 0.5) / 100_000
    assert np.mean(1 - S * (1 - (1 - p) ** 3)) == pytest.approx(1 - 0.75 * S, abs=1e-9)
    s = sparsity_schedule(SparsityConfig(target=S, update_every=1), 40_000)
    f = training_flops(1.0, 1.0, s)
    assert f["c_mul"] == pytest.approx(float(cost_multiplier(S)), rel=2e-4)
    coarse = training_flops(1.0, 1.0, sparsity_schedule(SparsityConfig(target=S, update_every=100), 40_000))
    assert f["c_mul"] < coarse["c_mul"] < f["c_mul"] * 1.01     # held masks lag: a little dearer


def test_training_flops_errors() -> None:
    with pytest.raises(ParameterError, match="'sparsity_per_step' parameter"):
        training_flops(1.0, 1.0, [0.5, 1.0])
    with pytest.raises(ParameterError, match="'tokens_per_step' parameter"):
        training_flops(1.0, -1.0, [0.5])
    with pytest.raises(ParameterError, match="'total_steps' parameter"):
        sparsity_schedule(SparsityConfig(), 0)


def test_update_schedule_dataclass_replace_keeps_validation() -> None:
    with pytest.raises(ConfigError, match="'sparsity.scope' field"):
        dataclasses.replace(SparsityConfig(), scope="blocks")
