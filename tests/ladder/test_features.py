"""The trainer's feature protocol: hooks in their documented order, state through checkpoints and
cooldown branches, composition, the model's linear factory, and old checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from scalinglab.errors import ConfigError
from scalinglab.ladder import build
from scalinglab.ladder.features import Chain, Feature
from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.sparsity import prunable_linears
from scalinglab.ladder.train import train
from scalinglab.runconfig import RunConfig, ScheduleConfig, SparsityConfig

TINY = RunConfig(name="feat", n_layer=1, d_model=32, n_head=2, context=32, tokens=24 * 512, batch_tokens=512,
                 micro_batch_tokens=256, lr=1e-2, evals=3, eval_tokens=2048, seed=1, dtype="float32")
BRANCHED = dataclasses.replace(TINY, schedule=ScheduleConfig(name="wsd", decay_frac=0.5, branches=(0.5,)))


class StepCounter(Feature):
    """The example feature: counts the optimizer steps it has seen, into every point and the summary."""

    name = "step_counter"

    def __init__(self) -> None:
        self.n = 0

    def after_step(self, step: int) -> None:
        self.n += 1

    def point_fields(self, step: int) -> dict[str, Any]:
        return {"steps_counted": self.n}

    def summary_fields(self) -> dict[str, Any]:
        return {"steps_counted": self.n}

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n = state["n"]


class Recorder(Feature):
    """Records every hook call, to check the loop's order."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def before_forward(self, step: int) -> None:
        self.calls.append(("before_forward", step))

    def after_backward(self, step: int, micro: int, n_micro: int) -> None:
        self.calls.append(("after_backward", step, micro, n_micro))

    def before_clip(self, step: int) -> None:
        self.calls.append(("before_clip", step))

    def after_step(self, step: int) -> None:
        self.calls.append(("after_step", step))

    def on_eval(self, step: int, eval_loss: float, branch: int) -> None:
        self.calls.append(("on_eval", step, branch))

    def eval_steps(self, total_steps: int) -> set[int]:
        return {5}


def run(cfg: RunConfig, *features: Feature, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    points: list[dict[str, Any]] = []
    summary = train(cfg, on_point=points.append, threads=1, features=features, **kw)
    return points, summary


def crash_after(n: int, kept: list[dict[str, Any]]) -> Any:
    """An on_point that keeps the first ``n`` points, then interrupts the run (as a SIGKILL would)."""
    def on_point(point: dict[str, Any]) -> None:
        if len(kept) == n:
            raise KeyboardInterrupt
        kept.append(point)
    return on_point


def test_a_feature_adds_fields_and_leaves_the_curve_alone() -> None:
    plain, _ = run(TINY)
    points, summary = run(TINY, StepCounter())
    assert [p["steps_counted"] for p in points] == [p["step"] for p in points]
    assert summary["steps_counted"] == TINY.steps == 24
    assert [p["eval_loss"] for p in points] == [p["eval_loss"] for p in plain]


def test_hooks_run_once_per_stage_in_order() -> None:
    rec = Recorder()
    points, _ = run(TINY, rec)
    first = rec.calls[:5]
    assert first == [("before_forward", 0), ("after_backward", 0, 0, 2), ("after_backward", 0, 1, 2),
                     ("before_clip", 0), ("after_step", 0)]
    assert sum(c[0] == "after_step" for c in rec.calls) == TINY.steps
    assert [p["step"] for p in points] == [1, 5, 24]   # log-spaced 1, 5, 24 (and the feature's 5)
    assert [c[1:] for c in rec.calls if c[0] == "on_eval"] == [(1, 0), (5, 0), (24, 0)]


def test_a_feature_can_add_an_evaluation_step() -> None:
    class At7(Feature):
        name = "at7"

        def eval_steps(self, total_steps: int) -> set[int]:
            return {7}

    points, _ = run(TINY, At7())
    assert [p["step"] for p in points] == [1, 5, 7, 24]


def test_feature_state_resumes_from_a_checkpoint(tmp_path: Path) -> None:
    full, _ = run(TINY, StepCounter())
    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []
    with pytest.raises(KeyboardInterrupt):
        train(TINY, on_point=crash_after(2, first), checkpoint_path=ckpt, threads=1, features=[StepCounter()])
    assert torch.load(ckpt, weights_only=True)["features"]["step_counter"] == {"n": 5}
    rest, summary = run(TINY, StepCounter(), checkpoint_path=ckpt)
    drop = ("wall_time",)
    assert [{k: v for k, v in p.items() if k not in drop} for p in first + rest] == \
        [{k: v for k, v in p.items() if k not in drop} for p in full]
    assert summary["steps_counted"] == 24


def test_a_cooldown_branch_does_not_leak_feature_state() -> None:
    points, summary = run(BRANCHED, StepCounter())
    (branch,) = [p for p in points if p["branch"] == 1]
    assert branch["step"] == 12 and branch["decay_steps"] == 6
    assert branch["steps_counted"] == 12     # the branch's 6 steps after the main line's 6
    assert [p["steps_counted"] for p in points if p["branch"] == 0] == [1, 5, 24]
    assert summary["steps_counted"] == 24    # the main line's count: the branch was undone


def test_chain_refuses_clashing_names_and_fields() -> None:
    with pytest.raises(ConfigError, match="unique names"):
        Chain([StepCounter(), StepCounter()])

    class Other(StepCounter):
        name = "other"

    with pytest.raises(ConfigError, match="steps_counted"):
        Chain([StepCounter(), Other()]).point_fields(1)


def test_resuming_with_other_features_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(TINY, on_point=crash_after(1, []), checkpoint_path=ckpt, threads=1, features=[StepCounter()])
    with pytest.raises(ConfigError, match="trainer features"):
        run(TINY, checkpoint_path=ckpt)


def test_a_version_1_checkpoint_resumes(tmp_path: Path) -> None:
    """Checkpoints written before features existed held the sparsifier at the top level."""
    cfg = dataclasses.replace(TINY, sparsity=SparsityConfig(target=0.5, update_every=2, dense_finetune_frac=0.25,
                                                            end_frac=0.6))
    full, full_summary = run(cfg)
    ckpt = tmp_path / "run.pt"
    first: list[dict[str, Any]] = []
    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_point=crash_after(2, first), checkpoint_path=ckpt, threads=1)
    state = torch.load(ckpt, weights_only=True)
    sparsity = state.pop("features")["sparsity"]
    torch.save({**state, "version": 1, "sparsifier": sparsity["sparsifier"],
                "phase_ends": sparsity["phase_ends"]}, ckpt)
    rest, summary = run(cfg, checkpoint_path=ckpt)
    assert [p["eval_loss"] for p in first + rest] == [p["eval_loss"] for p in full]
    assert summary["phases"] == full_summary["phases"]
    torch.save({**state, "version": 7}, ckpt)
    with pytest.raises(ConfigError, match="version 7"):
        run(cfg, checkpoint_path=ckpt)


class CountingLinear(nn.Linear):
    """An nn.Linear subclass, as an emulated low-precision linear will be."""

    roles: list[str] = []

    def __init__(self, in_features: int, out_features: int, role: str) -> None:
        super().__init__(in_features, out_features, bias=False)
        CountingLinear.roles.append(role)


def test_the_linear_factory_builds_every_linear_and_pruning_still_finds_them() -> None:
    CountingLinear.roles = []
    model = GPT(GPTConfig(n_layer=2, d_model=32, n_head=2, context=16), linear=CountingLinear)
    assert CountingLinear.roles == ["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"] * 2 + ["lm_head"]
    layers = prunable_linears(model)
    assert [n for n, _ in layers] == [f"blocks.{i}.{m}" for i in range(2)
                                      for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    assert all(isinstance(m, CountingLinear) for _, m in layers)
    plain = build.build_model(RunConfig(n_layer=2, d_model=32, n_head=2, context=16), torch.device("cpu"))
    same_seed = GPT(GPTConfig(n_layer=2, d_model=32, n_head=2, context=16),
                    generator=torch.Generator().manual_seed(0), linear=CountingLinear)
    for (n1, p1), (n2, p2) in zip(plain.named_parameters(), same_seed.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)   # the factory changes the class, not the init


def test_sp_param_groups_decay_matrices_only() -> None:
    model = build.build_model(TINY, torch.device("cpu"))
    opt = build.build_optimizer(model, TINY)
    matrices, vectors = opt.param_groups
    assert matrices["weight_decay"] == TINY.weight_decay and vectors["weight_decay"] == 0.0
    assert matrices["lr_mult"] == vectors["lr_mult"] == 1.0
    assert all(p.dim() >= 2 for p in matrices["params"]) and all(p.dim() == 1 for p in vectors["params"])
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())   # the tied unembedding counted once
