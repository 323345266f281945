"""Learning-rate schedules: exact values at chosen steps, and validation once at the factory."""

from __future__ import annotations

import json

import pytest

from scalinglab.errors import ConfigError
from scalinglab.ladder import schedules
from scalinglab.runconfig import RunConfig, ScheduleConfig


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


def test_a_fixed_warmup_replaces_the_fraction_and_keeps_old_digests() -> None:
    from scalinglab.runconfig import RunConfig

    cfg = ScheduleConfig(name="wsd", warmup_steps=100, decay_frac=0.2, final_lr_frac=0.1)
    assert schedules.warmup_of(cfg, 400) == 100 and schedules.warmup_of(cfg, 4000) == 100
    f = schedules.from_config(cfg, 1e-2, 400)             # warmup 100, stable to 320, decay 320 -> 400
    assert f(49) == approx(5e-3) and f(99) == approx(1e-2) and f(200) == approx(1e-2)
    assert f(360) == approx(1e-2 * (0.1 + 0.9 * 0.5))
    # the cooldown branches start after the fixed warmup: at 400 steps, a branch ending at 0.25 (e = 100,
    # its 20-step decay from step 80) would start inside it
    with pytest.raises(ConfigError, match=r"cooldowns start after the warmup \(100 steps\)"):
        schedules.branches(ScheduleConfig(name="wsd", warmup_steps=100, branches=(0.25,)), 1.0, 400)
    assert [b.end_step for b in schedules.branches(
        ScheduleConfig(name="wsd", warmup_steps=100, branches=(0.5,)), 1.0, 400)] == [200]
    with pytest.raises(ConfigError, match="'schedule.warmup_steps' field must be at most the run's 50 steps"):
        schedules.from_config(cfg, 1.0, 50)
    with pytest.raises(ConfigError, match="'schedule.warmup_steps' field must be a non-negative integer"):
        ScheduleConfig(warmup_steps=-1)
    # unset (0), it leaves the digest and so every earlier run name as it was: these digests were
    # computed by the code before the field existed (commit 0a19806)
    base = RunConfig()
    assert base.to_dict()["schedule"]["warmup_steps"] == 0
    assert base.digest() == "11e9a60a09"
    assert RunConfig(schedule=ScheduleConfig(name="wsd", branches=(0.5,))).digest() == "980b2c96ab"
    assert RunConfig(schedule=ScheduleConfig(warmup_steps=10)).digest() != base.digest()


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


# -- WSD cooldown branches (Hägele et al. 2024) --------------------------------------------------------
def test_branches_decay_from_the_stable_phase_to_the_floor() -> None:
    cfg = ScheduleConfig(name="wsd", warmup_frac=0.1, decay_frac=0.2, final_lr_frac=0.1, branches=(0.5, 0.8))
    b1, b2 = schedules.branches(cfg, 1.0, 100)
    # b1 ends at round(0.5 x 100) = 50 and decays over round(0.2 x 50) = 10 steps from step 40
    assert (b1.index, b1.end_step, b1.decay_steps, b1.start_step) == (1, 50, 10, 40)
    assert b1.schedule(4) == approx(0.5) and b1.schedule(39) == 1.0    # the main line's warmup and plateau
    assert b1.schedule(40) == approx(1.0)                               # p = 0
    assert b1.schedule(45) == approx(0.1 + 0.9 * 0.5)                   # p = 5/10
    assert b1.schedule(49) == approx(0.1 + 0.9 * 0.1)                   # the branch's last update, p = 9/10
    assert b1.schedule(50) == approx(0.1)                               # the floor, at its end
    # b2 ends at 80 and decays over round(0.2 x 80) = 16 steps from 64
    assert (b2.index, b2.end_step, b2.decay_steps, b2.start_step) == (2, 80, 16, 64)
    assert b2.schedule(72) == approx(0.1 + 0.9 * 0.5) and b2.schedule(79) == approx(0.1 + 0.9 / 16)
    sqrt = schedules.branches(ScheduleConfig(name="wsd", warmup_frac=0.1, decay_frac=0.2, final_lr_frac=0.1,
                                             decay_shape="sqrt", branches=(0.8,)), 1.0, 100)[0]
    assert sqrt.schedule(68) == approx(0.1 + 0.9 * (1 - 0.25**0.5))    # p = 4/16
    assert schedules.branches(ScheduleConfig(name="wsd"), 1.0, 100) == []


@pytest.mark.parametrize("kw, message", [
    ({"name": "cosine", "branches": (0.5,)},
     r"'schedule.branches' field must be empty for schedule.name = 'cosine' .* Got \[0.5\] instead"),
    ({"name": "wsd", "branches": (0.5, 0.25)},
     r"fractions in \(0, 1\), strictly increasing. Got \[0.5, 0.25\]"),
    ({"name": "wsd", "branches": (0.5, 0.5)}, r"strictly increasing. Got \[0.5, 0.5\]"),
    ({"name": "wsd", "branches": (1.0,)}, r"fractions in \(0, 1\), strictly increasing. Got \[1.0\]"),
    ({"name": "wsd", "branches": (0.0, 0.5)}, r"Got \[0.0, 0.5\] instead"),
    ({"name": "wsd", "branches": "0.5"}, r"a list of fractions .* Got '0.5' instead"),
    ({"name": "wsd", "branches": [True]}, r"Got \[True\] instead"),
])
def test_bad_branches_name_the_field(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScheduleConfig(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("branches, message", [
    ((0.03,), (r"fractions whose cooldowns start after the warmup \(5 steps\); branch 1 \(fraction 0.03\) "
               r"ends at step 3, its 1-step decay starts at step 2. Got \[0.03\]")),
    ((0.5, 0.996), r"fractions ending before the run's last step 100; branch 2 \(fraction 0.996\) ends"),
    ((0.25, 0.252), r"fractions ending at distinct steps of the 100-step run; branches 1 and 2 both end at"),
])
def test_branches_must_fit_the_run(branches: tuple[float, ...], message: str) -> None:
    cfg = ScheduleConfig(name="wsd", warmup_frac=0.05, branches=branches)
    with pytest.raises(ConfigError, match="'schedule.branches' field must be " + message):
        schedules.branches(cfg, 1.0, 100)


def test_branches_leave_old_digests_unchanged() -> None:
    # digests of configs written before schedule.branches existed (scalinglab at commit d6c2b06)
    assert RunConfig().digest() == "11e9a60a09"
    old = RunConfig(name="x", n_layer=1, d_model=16, n_head=1,
                    schedule=ScheduleConfig(name="wsd", decay_frac=0.3))
    assert old.digest() == "def8dfad30"
    branched = RunConfig.from_dict({**old.to_dict(),
                                    "schedule": {**old.to_dict()["schedule"], "branches": [0.5]}})
    assert branched.schedule.branches == (0.5,) and branched.digest() != old.digest()
    assert RunConfig.from_dict(json.loads(json.dumps(branched.to_dict()))) == branched   # stored as JSON
