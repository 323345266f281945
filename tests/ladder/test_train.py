"""The trainer: counts that match the model, a loss that falls, determinism, resume, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab import units
from scalinglab.errors import ConfigError, DataError, TrainingError
from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.train import describe, eval_steps, train
from scalinglab.runconfig import RunConfig, ScheduleConfig, SparsityConfig

# 60 steps of 512 tokens on the default corpus: ~1 s on one CPU core
TINY = RunConfig(name="tiny", n_layer=1, d_model=32, n_head=2, context=32, tokens=60 * 512, batch_tokens=512,
                 lr=1e-2, evals=5, eval_tokens=4096, seed=3)


def run(cfg: RunConfig, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append, threads=1, **kw)
    return points, summary


def curve(points: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(v for k, v in p.items() if k != "wall_time") for p in points]


def test_model_parameters_match_units() -> None:
    model = GPT(GPTConfig(n_layer=2, d_model=32, n_head=2, context=16, vocab=300))
    c = units.param_counts(2, 32, 16, 300)
    assert sum(p.numel() for p in model.parameters()) == c["N_total"]
    assert sum(p.numel() for p in model.nonembedding_parameters()) == c["N_nonembed"]
    assert model.lm_head.weight is model.wte.weight


def test_describe_needs_no_data() -> None:
    d = describe(dataclasses.replace(TINY, corpus="/does/not/exist"))
    assert d["N_nonembed"] == 12 * 32**2 + 2 * 32 + 32 and d["steps"] == 60 and d["tokens"] == 30_720
    assert d["flops_per_token"] == 6 * d["N_nonembed"]
    assert d["flops_per_token_full"] == 6 * d["N_nonembed"] + 6 * 32 * 256 + 12 * 1 * 32 * 32
    assert d["flops"] == d["flops_per_token"] * d["tokens"]


def test_eval_steps_are_log_spaced_with_the_last() -> None:
    assert eval_steps(100, 5) == [1, 3, 10, 32, 100]
    assert eval_steps(7, 12) == [1, 2, 3, 4, 5, 6, 7]
    assert eval_steps(60, 1) == [60]


def test_tiny_run_learns_and_reports_points() -> None:
    points, summary = run(TINY)
    assert [p["step"] for p in points] == eval_steps(60, 5)
    assert points[-1]["eval_loss"] < points[0]["eval_loss"] - 1.0
    last = points[-1]
    assert last["tokens"] == 60 * 512 and last["flops"] == summary["flops_per_token"] * last["tokens"]
    assert last["flops_full"] == summary["flops_per_token_full"] * last["tokens"]
    assert summary["final_loss"] == last["eval_loss"] and summary["steps"] == 60
    assert summary["epochs"] == pytest.approx(summary["tokens"] / summary["unique_tokens"])
    assert summary["device"] == "cpu" and summary["dtype"] in ("float32", "bfloat16")
    assert len(summary["corpus_hash"]) == 64 and summary["N_nonzero"] == summary["N_nonembed"]


def test_same_config_same_curve() -> None:
    a, _ = run(TINY)
    b, _ = run(TINY)
    assert curve(a) == curve(b)
    c, _ = run(dataclasses.replace(TINY, seed=4))
    assert curve(c) != curve(a)


def test_resume_gives_the_uninterrupted_curve(tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, schedule=ScheduleConfig(name="wsd", decay_frac=0.3))
    full, _ = run(cfg)
    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []

    def crash_on_third(point: dict[str, Any]) -> None:   # the process dies while reporting point 3
        if len(first) == 2:
            raise KeyboardInterrupt
        first.append(point)

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_point=crash_on_third, checkpoint_path=ckpt, threads=1)
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp"))
    rest, summary = run(cfg, checkpoint_path=ckpt)
    assert rest[0]["step"] > first[-1]["step"]           # nothing at or before the checkpoint again
    assert curve(first + rest) == curve(full)
    assert summary["final_loss"] == full[-1]["eval_loss"]
    again, summary2 = run(cfg, checkpoint_path=ckpt)     # a finished run: no points, same summary
    assert again == [] and summary2["final_loss"] == summary["final_loss"]


def test_gradient_accumulation_matches_the_whole_batch() -> None:
    cfg = dataclasses.replace(TINY, tokens=10 * 512, dtype="float32")
    a, _ = run(cfg)
    b, _ = run(dataclasses.replace(cfg, micro_batch_tokens=128))
    assert [p["eval_loss"] for p in b] == pytest.approx([p["eval_loss"] for p in a], abs=1e-4)


def test_errors(tmp_path: Path) -> None:
    text = tmp_path / "small.txt"
    text.write_text("".join(f"line {i} of a small corpus\n" for i in range(600)))   # ~16 KB
    with pytest.raises(DataError, match="batch \\(16384 tokens\\) is larger than the training data"):
        run(dataclasses.replace(TINY, corpus=str(text), batch_tokens=16_384, tokens=16_384))
    with pytest.raises(DataError, match="does not exist"):
        run(dataclasses.replace(TINY, corpus=str(tmp_path / "missing")))
    with pytest.raises(TrainingError, match="loss of run tiny is nan at step \\d+"):
        run(dataclasses.replace(TINY, lr=1e30, grad_clip=0.0,
                                schedule=ScheduleConfig(name="constant", warmup_frac=0)))
    ckpt = tmp_path / "other.pt"
    run(dataclasses.replace(TINY, tokens=2 * 512), checkpoint_path=ckpt)
    with pytest.raises(ConfigError, match="checkpoint .* belongs to another run config"):
        run(TINY, checkpoint_path=ckpt)


# -- WSD cooldown branches (Hägele et al. 2024) -------------------------------------------------------
# 40 steps of 256 tokens at a peak lr far too high to settle at (1.0; TINY's is 1e-2), so the loss of the
# stable phase is dominated by the learning rate's noise and a cooldown has a large effect: at step 12
# the branch's loss was 0.17 to 1.8 nats below the main line's for every one of seeds 0 to 5 (1.8 for 1)
WSD = RunConfig(name="wsd", n_layer=1, d_model=16, n_head=1, context=32, tokens=40 * 256, batch_tokens=256,
                lr=1.0, evals=4, eval_tokens=2048, seed=1,
                schedule=ScheduleConfig(name="wsd", warmup_frac=0.0, decay_frac=0.5, final_lr_frac=0.0))
# branch 1 ends at step 12 (a main-line eval step) after 6 decay steps; branch 2 at 24 after 12
BRANCHED = dataclasses.replace(WSD, schedule=dataclasses.replace(WSD.schedule, branches=(0.3, 0.6)))


def branch_of(points: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    return [p for p in points if p["branch"] == k]


@pytest.mark.parametrize("sparsity", [SparsityConfig(), SparsityConfig(target=0.5, update_every=2)],
                         ids=["dense", "gmp"])
def test_branches_leave_the_main_line_bit_identical(sparsity: SparsityConfig) -> None:
    plain, plain_summary = run(dataclasses.replace(WSD, sparsity=sparsity))
    points, summary = run(dataclasses.replace(BRANCHED, sparsity=sparsity))
    assert curve(branch_of(points, 0)) == curve(plain)      # every main-line value, bit for bit
    assert summary["final_loss"] == plain_summary["final_loss"]
    b1, b2 = branch_of(points, 1), branch_of(points, 2)
    assert [(p["step"], p["tokens"], p["decay_steps"]) for p in b1 + b2] == [
        (12, 12 * 256, 6), (24, 24 * 256, 12)]
    assert b1[0]["flops_full"] == summary["flops_per_token_full"] * 12 * 256    # C at the branch's own D
    assert b1[0]["lr"] == pytest.approx(1 / 6) and b2[0]["lr"] == pytest.approx(1 / 12)   # last decay step
    assert [(b["branch"], b["end_step"], b["decay_steps"], b["tokens"]) for b in summary["branches"]] == \
        [(1, 12, 6, 12 * 256), (2, 24, 12, 24 * 256)]
    assert summary["branches"][0]["eval_loss"] == b1[0]["eval_loss"]
    assert summary["flops_spent_with_branches"] == summary["flops_per_token"] * (40 + 6 + 12) * 256
    assert summary["flops_full_spent_with_branches"] == summary["flops_per_token_full"] * (40 + 6 + 12) * 256
    if sparsity.target == 0:   # cooling down at step 12 beats the main line's plateau at step 12
        (main_12,) = [p for p in branch_of(points, 0) if p["step"] == 12]
        assert b1[0]["eval_loss"] < main_12["eval_loss"] - 0.1


def test_a_branch_ends_where_a_run_trained_to_its_end_would() -> None:
    points, _ = run(BRANCHED)
    alone, _ = run(dataclasses.replace(WSD, tokens=12 * 256))   # 12 steps, decay round(0.5 x 12) = 6
    assert branch_of(points, 1)[0]["eval_loss"] == alone[-1]["eval_loss"]


@pytest.mark.parametrize("crash_at", ["branch point", "point after it"])
def test_resume_after_a_branch_point(crash_at: str, tmp_path: Path) -> None:
    full, _ = run(BRANCHED)
    order = [(p["branch"], p["step"]) for p in full]
    assert order[:4] == [(0, 1), (0, 3), (1, 12), (0, 12)]   # branch 1 reports while the main line is at 6
    crash = 2 if crash_at == "branch point" else 3
    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []

    def crash_on(point: dict[str, Any]) -> None:
        if len(first) == crash:
            raise KeyboardInterrupt
        first.append(point)

    with pytest.raises(KeyboardInterrupt):
        train(BRANCHED, on_point=crash_on, checkpoint_path=ckpt, threads=1)
    state = torch.load(ckpt, weights_only=True)
    if crash_at == "point after it":   # the checkpoint after a branch point: the main line at its start
        assert state["step"] == 6 and sorted(state["branches_done"]) == [1]
    else:
        assert state["step"] == 3 and state["branches_done"] == {}
    rest, summary = run(BRANCHED, checkpoint_path=ckpt)
    assert curve(first + rest) == curve(full)                # no branch point repeated or skipped
    assert [b["eval_loss"] for b in summary["branches"]] == [p["eval_loss"] for p in full if p["branch"]]
