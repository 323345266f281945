"""The trainer: counts that match the model, a loss that falls, determinism, resume, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from scalinglab import units
from scalinglab.errors import ConfigError, DataError, TrainingError
from scalinglab.ladder.config import RunConfig, ScheduleConfig
from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.train import describe, eval_steps, train

# 60 steps of 512 tokens on the default corpus: ~1 s on one CPU core
TINY = RunConfig(name="tiny", n_layer=1, d_model=32, n_head=2, context=32, tokens=60 * 512, batch_tokens=512,
                 lr=1e-2, evals=5, eval_tokens=4096, seed=3)


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALINGLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


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
