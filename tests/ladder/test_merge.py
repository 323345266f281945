"""ladder.merge: runs that differ only in length become one WSD run with a cooldown branch at each
shorter one's end; the branch gives the very loss the short run would have."""

from __future__ import annotations

import dataclasses

import pytest

from scalinglab.ladder import design, ladderfile
from scalinglab.ladder.merge import merge_prefixes
from scalinglab.runconfig import RunConfig, ScheduleConfig, SparsityConfig

FIXED = ScheduleConfig(name="wsd", warmup_steps=4, decay_frac=0.25, final_lr_frac=0.0)
BASE = RunConfig(n_layer=1, d_model=16, n_head=1, context=32, batch_tokens=256, lr=1e-2, evals=3,
                 eval_tokens=2048, seed=3, schedule=FIXED, group="m")


def named(steps: int, **kw: object) -> RunConfig:
    r = dataclasses.replace(BASE, tokens=steps * 256, **kw)  # type: ignore[arg-type]
    return dataclasses.replace(r, name=design.run_name(r))


def test_runs_of_one_config_merge_into_the_longest() -> None:
    short, mid, long_ = named(20, budget_flops=1.0), named(40, budget_flops=2.0), named(80, budget_flops=4.0)
    other = named(40, d_model=32, n_head=2)                            # another shape: a run of its own
    merged = merge_prefixes([short, other, mid, long_])
    assert [m.run.steps for m in merged] == [80, 40]
    m = merged[0]
    assert m.run.schedule.branches == (20 / 80, 40 / 80)
    assert [round(f * m.run.steps) for f in m.run.schedule.branches] == [20, 40]   # ends at their steps
    assert m.ends == {long_.name: 80, short.name: 20, mid.name: 40}
    assert m.run.budget_flops == 4.0 and m.run.name == design.run_name(m.run) != long_.name
    assert m.run.branch_budgets == (1.0, 2.0)          # each branch point keeps its run's budget
    assert merged[1].run == other and merged[1].ends == {other.name: 40}


def test_what_cannot_be_a_branch_stays_a_run() -> None:
    frac = dataclasses.replace(FIXED, warmup_steps=0, warmup_frac=0.05)  # the prefix depends on the length
    cosine = ScheduleConfig(name="cosine", warmup_steps=4)
    sparse = SparsityConfig(target=0.5)
    for kw in ({"schedule": frac}, {"schedule": cosine}, {"sparsity": sparse}):
        runs = [named(20, **kw), named(80, **kw)]
        assert [m.run for m in merge_prefixes(runs)] == runs
    # a run so short that its decay rounds to no step (0.05 x 8 = 0.4) has no branch to be
    brief = dataclasses.replace(FIXED, decay_frac=0.05)
    merged = merge_prefixes([named(8, schedule=brief), named(80, schedule=brief)])
    assert [m.run.steps for m in merged] == [80, 8] and not merged[0].run.schedule.branches


def test_a_branch_is_the_short_run_bit_for_bit() -> None:
    pytest.importorskip("torch")
    from scalinglab.ladder.train import train

    short, long_ = named(12), named(40)
    (m,) = merge_prefixes([short, long_])
    alone: list[dict[str, object]] = []
    s_short = train(short, on_point=alone.append, threads=1)
    points: list[dict[str, object]] = []
    train(m.run, on_point=points.append, threads=1)
    (branch,) = [p for p in points if p["branch"] == 1]
    assert branch["step"] == 12 and branch["tokens"] == short.steps * 256
    assert branch["eval_loss"] == s_short["final_loss"]          # exactly: the same updates
    assert branch["lr"] == alone[-1]["lr"]


def test_branch_budgets_are_checked_and_leave_old_digests_alone() -> None:
    from scalinglab.errors import ConfigError

    with_branches = dataclasses.replace(FIXED, branches=(0.25, 0.5))
    run = dataclasses.replace(BASE, schedule=with_branches)
    assert dataclasses.replace(run, branch_budgets=()).digest() == run.digest()
    tagged = dataclasses.replace(run, branch_budgets=[1e12, 2e12])   # a TOML list becomes a tuple
    assert tagged.branch_budgets == (1e12, 2e12) and tagged.digest() != run.digest()
    for bad in ((1e12,), (1e12, 0.0), (1e12, "2e12")):
        with pytest.raises(ConfigError, match=r"'branch_budgets' field must be 2 positive FLOP budgets"):
            dataclasses.replace(run, branch_budgets=bad)
    # a merged ladder's file reads back to the same runs, budgets included
    (m,) = merge_prefixes([named(20, budget_flops=1.0), named(80, budget_flops=4.0)])
    runs, _ = ladderfile.loads_toml(ladderfile.dumps_toml([m.run]))
    assert runs == [m.run]
