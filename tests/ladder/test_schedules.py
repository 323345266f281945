"""Learning-rate schedules: exact values at chosen steps, and validation once at the factory."""

from __future__ import annotations

import pytest

from scalinglab.errors import ConfigError
from scalinglab.ladder import schedules
from scalinglab.ladder.config import ScheduleConfig


def approx(x: float) -> object:
    """Equal up to floating-point rounding."""
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def test_constant_with_warmup() -> None:
    f = schedules.constant(2.0, total_steps=10, warmup_steps=4)
    assert [f(s) for s in (0, 1, 3, 4, 9, 50)] == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_cosine_to_a_floor() -> None:
    f = schedules.cosine(1.0, total_steps=10, warmup_steps=2, floor=0.1)
    assert f(0) == 0.5 and f(1) == 1.0                   # warmup: (s + 1) / 2
    assert f(2) == approx(1.0)                            # p = 0
    assert f(6) == approx(0.55)                           # p = 4/8: 0.1 + 0.9 * 0.5
    assert f(10) == approx(0.1) and f(99) == approx(0.1)  # the floor, held after the end


def test_linear_to_zero() -> None:
    f = schedules.linear(1.0, total_steps=10)
    assert [f(s) for s in (0, 5, 9)] == [approx(1.0), approx(0.5), approx(0.1)]
    assert f(10) == 0.0 and f(12) == 0.0


@pytest.mark.parametrize("shape, at8, at7", [("linear", 0.5, 0.75), ("cosine", 0.5, 0.5 * (1 + 2**-0.5)),
                                             ("sqrt", 1 - 0.5**0.5, 0.5)])
def test_wsd(shape: str, at8: float, at7: float) -> None:
    f = schedules.wsd(1.0, total_steps=10, warmup_steps=2, decay_steps=4, floor=0.0, shape=shape)
    assert [f(0), f(1), f(2), f(5), f(6)] == [0.5, 1.0, 1.0, 1.0, approx(1.0)]   # warmup, stable
    assert f(7) == approx(at7) and f(8) == approx(at8)    # decay: p = 1/4 and p = 1/2
    assert f(10) == approx(0.0)


def test_from_config_turns_fractions_into_steps() -> None:
    cfg = ScheduleConfig(name="wsd", warmup_frac=0.1, decay_frac=0.2, final_lr_frac=0.1)
    f = schedules.from_config(cfg, 1e-3, 100)             # warmup 10, stable to 80, decay 80 -> 100
    assert f(4) == approx(5e-4) and f(50) == approx(1e-3) and f(90) == approx(0.55e-3)
    g = schedules.from_config(ScheduleConfig(name="cosine", warmup_frac=0.0, final_lr_frac=0.0), 1.0, 4)
    assert [g(s) for s in range(5)] == [approx(1.0), approx(0.5 + 0.5 * 2**-0.5), approx(0.5),
                                        approx(0.5 - 0.5 * 2**-0.5), approx(0.0)]


def test_factories_validate_their_arguments() -> None:
    with pytest.raises(ConfigError, match="'warmup_steps' parameter must be an integer in \\[0, total_st"):
        schedules.cosine(1.0, 10, warmup_steps=11)
    with pytest.raises(ConfigError, match="'decay_steps' parameter must be"):
        schedules.wsd(1.0, 10, warmup_steps=5, decay_steps=6)
    with pytest.raises(ConfigError, match="'shape' parameter must be one of"):
        schedules.wsd(1.0, 10, decay_steps=2, shape="exp")
    with pytest.raises(ConfigError, match="'peak' learning rate must be a positive number. Got 0.0"):
        schedules.linear(0.0, 10)
    with pytest.raises(ConfigError, match="'schedule.decay_frac' field must be at most"):
        schedules.from_config(ScheduleConfig(name="wsd", warmup_frac=0.5, decay_frac=0.6), 1.0, 100)
