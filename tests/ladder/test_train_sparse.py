"""Sparse training in the trainer: masks on schedule, exact zeros, checkpoints, SPDF, Sparse-IFT, FLOPs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab.accounting import sparsity_schedule
from scalinglab.errors import ConfigError
from scalinglab.ladder import build
from scalinglab.ladder.train import describe, eval_steps, train
from scalinglab.runconfig import RunConfig, SparsityConfig

L, D_MODEL, CTX, B = 1, 32, 32, 512
LINEAR = 12 * L * D_MODEL**2                     # the prunable block weights
NONEMBED = LINEAR + 2 * L * D_MODEL + D_MODEL
# 40 steps of 512 tokens on the default corpus: ~1 s on one CPU core
BASE = RunConfig(name="tiny-sparse", n_layer=L, d_model=D_MODEL, n_head=2, context=CTX, tokens=40 * B,
                 batch_tokens=B, lr=1e-2, evals=4, eval_tokens=2048, seed=3, dtype="float32")


def sparse(**kw: Any) -> RunConfig:
    return dataclasses.replace(BASE, sparsity=SparsityConfig(**kw))


def run(cfg: RunConfig, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append, threads=1, **kw)
    return points, summary


def prunable(state: dict[str, Any]) -> dict[str, Any]:
    """The block linear weights of a checkpointed GPT, by layer name."""
    return {k.removesuffix(".weight"): v for k, v in state.items()
            if k.startswith("blocks.") and k.endswith(".weight") and v.dim() == 2}


def test_gmp_follows_the_schedule_and_checkpoints_hold_exact_zeros(tmp_path: Path) -> None:
    cfg = sparse(target=0.75, method="gmp", update_every=2)
    ckpt = tmp_path / "gmp.pt"
    points, summary = run(cfg, checkpoint_path=ckpt)
    sched = sparsity_schedule(cfg.sparsity, cfg.steps)
    for p in points:   # the point after step s ran with the masks of step s - 1
        assert p["sparsity"] == pytest.approx(sched[p["step"] - 1], abs=1.0 / LINEAR)
        assert p["N_nonzero"] == NONEMBED - round(p["sparsity"] * LINEAR)
    assert summary["N_nonzero"] == NONEMBED - LINEAR * 3 // 4 == summary["N_nonzero_sparse"]
    assert summary["sparsity"] == 0.75 and summary["N_nonembed"] == NONEMBED
    assert [ph["phase"] for ph in summary["phases"]] == ["sparse"]
    assert summary["phases"][0]["eval_loss"] == summary["final_loss"]
    state = torch.load(ckpt, weights_only=True)
    masks = state["features"]["sparsity"]["sparsifier"]["masks"]
    weights = prunable(state["model"])
    assert sorted(masks) == sorted(weights) and len(masks) == 4 * L
    for name, w in weights.items():   # pruned weights exactly zero, after weight decay and momentum
        assert torch.all(w[~masks[name]] == 0)
        assert int((~masks[name]).sum()) == 3 * w.numel() // 4
    assert int(sum((w == 0).sum() for w in weights.values())) == LINEAR * 3 // 4


def test_flop_accounting_in_the_summary_matches_a_hand_count() -> None:
    cfg = dataclasses.replace(sparse(target=0.5, update_every=1), tokens=8 * B, evals=2)
    _, summary = run(cfg)
    # 8 steps, t_s = 2, t_e = 6: densities 1, 1, 1, 1 - 0.5 (1 - (3/4)^3), 1 - 0.4375, 1 - 0.5 (1 - (1/4)^3),
    # 0.5, 0.5; their sum is 5.78125 (tests/ladder/test_sparsity.py)
    P = 6 * LINEAR                                          # prunable FLOPs per token
    Q = 6 * (2 * L * D_MODEL + D_MODEL)                     # LayerNorm weights: the rest of 6 N_nonembed
    attn_head = 6 * D_MODEL * 256 + 12 * L * CTX * D_MODEL
    assert summary["flops_spent_dense_kernels"] == 8 * B * (P + Q) == 8 * B * 6 * NONEMBED
    assert summary["flops_sparse_kernel"] == pytest.approx(B * (P * 5.78125 + Q * 8), rel=1e-12)
    assert summary["flops_sparse_kernel_full"] == pytest.approx(B * (P * 5.78125 + (Q + attn_head) * 8), rel=1e-12)
    assert summary["flops_nonzero_final"] == pytest.approx(8 * B * (P / 2 + Q), rel=1e-12)
    assert summary["c_mul"] == pytest.approx((P * 5.78125 + Q * 8) / (8 * (P / 2 + Q)), rel=1e-12)
    # the dense-kernel count is what the points report as flops
    assert summary["flops_per_token"] * summary["tokens"] == summary["flops_spent_dense_kernels"]


def test_dense_runs_report_a_cost_multiplier_of_one() -> None:
    points, summary = run(dataclasses.replace(BASE, tokens=10 * B, evals=2))
    assert summary["c_mul"] == 1.0 and summary["N_nonzero"] == NONEMBED and summary["sparsity"] == 0.0
    assert summary["flops_sparse_kernel"] == summary["flops_spent_dense_kernels"]
    assert [ph["phase"] for ph in summary["phases"]] == ["dense"] and points[-1]["sparsity"] == 0.0


@pytest.mark.parametrize("kw", [{"target": 0.5, "method": "nm", "n": 2, "m": 4},
                                {"target": 0.5, "method": "static", "n": 2, "m": 4},
                                {"target": 0.5, "method": "gmp", "n": 2, "m": 4, "update_every": 5}])
def test_nm_runs_end_in_the_pattern(tmp_path: Path, kw: dict[str, Any]) -> None:
    ckpt = tmp_path / "nm.pt"
    _, summary = run(dataclasses.replace(sparse(**kw), tokens=20 * B, evals=2), checkpoint_path=ckpt)
    assert summary["N_nonzero"] == NONEMBED - LINEAR // 2
    for w in prunable(torch.load(ckpt, weights_only=True)["model"]).values():
        groups = w.reshape(w.shape[0], -1, 4)
        assert torch.all((groups == 0).sum(dim=2) >= 2)     # every group of 4 inputs: at least 2 zeros


def test_static_mask_is_drawn_at_step_0_and_kept() -> None:
    points, summary = run(sparse(target=0.875, method="static"))
    assert all(p["sparsity"] == 0.875 for p in points)
    assert summary["N_nonzero"] == NONEMBED - LINEAR * 7 // 8
    assert summary["c_mul"] == pytest.approx(1.0)


def test_sparse_resume_gives_the_uninterrupted_curve(tmp_path: Path) -> None:
    cfg = dataclasses.replace(sparse(target=0.5, method="gmp", update_every=3), evals=8)
    full, summary_full = run(cfg)        # points at steps 1, 2, 3, 5, 8, 14, 24, 40; pruning from 10 to 30
    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []

    def crash_at_step_24(point: dict[str, Any]) -> None:   # dies inside the pruning ramp
        if point["step"] == 24:
            raise KeyboardInterrupt
        first.append(point)

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_point=crash_at_step_24, checkpoint_path=ckpt, threads=1)
    mid = torch.load(ckpt, weights_only=True)["features"]["sparsity"]["sparsifier"]
    assert 0 < mid["level"] < 0.5 and mid["masks"] is not None
    rest, summary = run(cfg, checkpoint_path=ckpt)
    strip = [{k: v for k, v in p.items() if k != "wall_time"} for p in first + rest]
    assert strip == [{k: v for k, v in p.items() if k != "wall_time"} for p in full]
    assert summary["N_nonzero"] == summary_full["N_nonzero"] and summary["phases"] == summary_full["phases"]


def test_spdf_records_two_phases_on_another_corpus(tmp_path: Path) -> None:
    text = tmp_path / "finetune.txt"
    text.write_text("".join(f"fine-tuning line {i}: the quick brown fox jumps over the lazy dog\n"
                            for i in range(3000)))
    cfg = sparse(target=0.5, method="static", dense_finetune_frac=0.25, finetune_corpus=str(text))
    points, summary = run(cfg)
    t_ft = 30                                              # 40 steps, the last 25% dense
    assert t_ft in [p["step"] for p in points] and set(eval_steps(40, 4)) <= {p["step"] for p in points}
    sparse_ph, dense_ph = summary["phases"]
    assert (sparse_ph["phase"], sparse_ph["start_step"], sparse_ph["end_step"]) == ("sparse", 0, t_ft)
    assert (dense_ph["phase"], dense_ph["start_step"], dense_ph["end_step"]) == ("dense_finetune", t_ft, 40)
    assert dense_ph["corpus"] == str(text) and sparse_ph["corpus"] == ""
    assert sparse_ph["N_nonzero"] == NONEMBED - LINEAR // 2 == summary["N_nonzero_sparse"]
    assert dense_ph["N_nonzero"] == NONEMBED == summary["N_nonzero"]
    assert sparse_ph["eval_loss"] == next(p["eval_loss"] for p in points if p["step"] == t_ft)
    assert dense_ph["eval_loss"] == summary["final_loss"]
    # the dense phase costs full FLOPs in the sparse-kernel count
    P, Q = 6 * LINEAR, 6 * (NONEMBED - LINEAR)
    assert summary["flops_sparse_kernel"] == pytest.approx(B * (30 * (P / 2 + Q) + 10 * (P + Q)))
    # the same run on its own corpus trains differently in its dense phase only
    same, _ = run(sparse(target=0.5, method="static", dense_finetune_frac=0.25))
    assert [p["eval_loss"] for p in same if p["step"] <= t_ft] == [p["eval_loss"] for p in points if p["step"] <= t_ft]
    assert same[-1]["eval_loss"] != points[-1]["eval_loss"]


def test_spdf_with_bpe_needs_the_run_tokenizer(tmp_path: Path) -> None:
    cfg = dataclasses.replace(sparse(target=0.5, method="static", dense_finetune_frac=0.25,
                                     finetune_corpus=str(tmp_path / "other.txt")), vocab=300)
    with pytest.raises(ConfigError, match="needs the run corpus's tokenizer"):
        run(cfg)


def test_sparse_ift_widens_to_equal_nonzero_flops() -> None:
    cfg = sparse(target=0.75, method="static", ift=True)
    points, summary = run(cfg)
    assert summary["shape"] == {"n_layer": 1, "d_model": 64, "n_head": 4}   # head size 16 kept
    wide_linear = 12 * 64**2
    assert summary["N_nonembed"] == wide_linear + 3 * 64
    assert summary["N_nonzero"] == wide_linear // 4 + 3 * 64                 # = LINEAR + 3 d'
    # prunable FLOPs of the sparse kernel equal the dense model's; only the norms grow (2 L d + d)
    assert summary["flops_sparse_kernel"] == pytest.approx(40 * B * 6 * (LINEAR + 3 * 64))
    assert summary["flops_spent_dense_kernels"] == pytest.approx(40 * B * 6 * (wide_linear + 3 * 64))
    assert points[-1]["flops"] == summary["flops_spent_dense_kernels"]


@pytest.mark.parametrize("cfg", [BASE, sparse(target=0.5), sparse(target=0.75, ift=True, method="static"),
                                 sparse(target=0.5, dense_finetune_frac=0.2, end_frac=0.7)])
def test_describe_counts_the_model_the_trainer_builds(cfg: RunConfig) -> None:
    """describe() (the counts the designer, executors and store use) against the parameters of the
    model the trainer builds, and against the counts worked out by hand."""
    d = describe(cfg)
    model = build.build_model(cfg, torch.device("cpu"))
    L, dm = model.cfg.n_layer, model.cfg.d_model
    assert d["shape"] == {"n_layer": L, "d_model": dm, "n_head": model.cfg.n_head}
    assert d["N_total"] == sum(p.numel() for p in model.parameters())
    assert d["N_nonembed"] == sum(p.numel() for p in model.nonembedding_parameters()) == 12 * L * dm**2 + 2 * L * dm + dm
    assert d["N_nonzero"] == d["N_nonembed"] - round(cfg.sparsity.target * 12 * L * dm**2)
    assert d["flops_per_token"] == 6 * d["N_nonembed"]
    assert d["flops_per_token_full"] == 6 * d["N_nonembed"] + 6 * dm * cfg.vocab + 12 * L * cfg.context * dm
    assert d["flops"] == d["flops_per_token"] * cfg.steps * cfg.batch_tokens
