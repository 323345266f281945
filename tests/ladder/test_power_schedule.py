"""The Power scheduler (Shen et al. 2024): exact values, its power law in tokens and proportionality to
the batch, the cap at the peak, warmup and final decay, the run-config fields and the trainer's use."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scalinglab.errors import ConfigError
from scalinglab.ladder import schedules
from scalinglab.runconfig import RunConfig, ScheduleConfig


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def test_paper_defaults() -> None:
    assert (schedules.POWER_A, schedules.POWER_B) == (4.6, -0.51)
    cfg = ScheduleConfig(name="power")
    assert (cfg.power_a, cfg.power_b) == (4.6, -0.51)


def test_exact_values_warmup_power_phase_and_decay() -> None:
    f = schedules.power(2.0, 10, batch_sequences=8, tokens_per_step=1024, warmup_steps=2, decay_steps=2)
    level = [4.6 * 8 * ((s + 1) * 1024) ** -0.51 for s in range(10)]
    assert max(level) < 2.0                                           # below the cap throughout
    assert f(0) == approx(level[1] / 2) and f(1) == approx(level[1])  # warmup to the level at its end
    assert [f(s) for s in range(2, 8)] == [approx(v) for v in level[2:8]]
    assert f(8) == approx(level[8]) and f(9) == approx(level[8] / 2)  # linear decay from the level at 8
    assert f(10) == 0.0 and f(20) == 0.0                              # floor 0, held after the end


def test_power_law_in_tokens_and_linear_in_batch() -> None:
    kw: dict[str, Any] = {"tokens_per_step": 4096, "a": 0.01, "b": -0.5}
    f = schedules.power(1.0, 1000, batch_sequences=4, **kw)
    g = schedules.power(1.0, 1000, batch_sequences=8, **kw)
    assert f(99) / f(24) == approx((100 / 25) ** -0.5)                # lr ~ n^b
    assert g(99) == approx(2 * f(99))                                 # lr ~ batch at the same n


def test_the_peak_caps_it() -> None:
    f = schedules.power(3e-3, 100, batch_sequences=64, tokens_per_step=64 * 128)
    assert f(0) == 3e-3 and f(99) == 3e-3                             # a = 4.6 at tiny n: far above the cap


def test_from_config_and_for_run() -> None:
    cfg = ScheduleConfig(name="power", warmup_steps=3, decay_frac=0.2, final_lr_frac=0.1, power_a=0.5)
    f = schedules.from_config(cfg, 1.0, 50, batch_tokens=2048, context=128)
    g = schedules.power(1.0, 50, batch_sequences=16, tokens_per_step=2048, a=0.5, warmup_steps=3,
                        decay_steps=10, floor=0.1)
    assert [f(s) for s in range(52)] == [g(s) for s in range(52)]
    run = RunConfig(context=128, batch_tokens=2048, tokens=50 * 2048, lr=1.0, schedule=cfg)
    h = schedules.for_run(run)
    assert [h(s) for s in range(52)] == [g(s) for s in range(52)]
    with pytest.raises(ConfigError, match="'batch_tokens' and 'context' of a 'power' schedule"):
        schedules.from_config(cfg, 1.0, 50)
    assert schedules.branches(cfg, 1.0, 50) == []                     # validates without a batch


@pytest.mark.parametrize("kw, pattern", [
    ({"name": "cosine", "power_a": 1.0}, "'schedule.power_a' field must be its default 4.6"),
    ({"name": "power", "power_b": 0.5}, "'schedule.power_b' field must be a negative number"),
    ({"name": "power", "power_a": 0.0}, "'schedule.power_a' field must be a positive"),
    ({"name": "power", "branches": (0.5,)}, "'schedule.branches'"),
])
def test_bad_power_fields(kw: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        ScheduleConfig(**kw)


def test_digests() -> None:
    # taken before the power schedule existed (commit 493900f): unchanged
    assert RunConfig().digest() == "11e9a60a09"
    assert RunConfig(micro_batch_tokens=1024, schedule=ScheduleConfig(name="wsd", warmup_steps=3)).digest() == \
        "fae5d88f73"
    p = RunConfig(schedule=ScheduleConfig(name="power"))
    assert p.digest() != dataclasses.replace(p, schedule=ScheduleConfig(name="power", power_a=1.0)).digest()


def test_the_trainer_follows_it(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from scalinglab.ladder.train import train

    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    cfg = RunConfig(name="pw", n_layer=1, d_model=32, n_head=2, context=32, tokens=16 * 512, batch_tokens=512,
                    lr=1e-2, evals=4, eval_tokens=2048, dtype="float32",
                    schedule=ScheduleConfig(name="power", warmup_steps=2, power_a=0.02))
    points: list[dict[str, Any]] = []
    train(cfg, on_point=points.append, threads=1)
    f = schedules.for_run(cfg)
    assert [p["lr"] for p in points] == [f(p["step"] - 1) for p in points]
    assert len({p["lr"] for p in points}) == len(points)              # it does change over the run
