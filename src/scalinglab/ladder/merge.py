"""Merge ladder runs that share a prefix: one WSD run with cooldown branches instead of several runs.

A warmup-stable-decay run with a fixed warmup (``schedule.warmup_steps``) is, up to the start of its
decay, the same trajectory whatever its length: the batches of step s depend only on ``(seed, s)``
(``ladder.train``), and the learning rate only on the warmup and the peak. A run of ``e`` steps is
therefore exactly a cooldown branch ending at ``e`` (Hägele et al. 2024) of a longer run of the same
config: the branch leaves the main line at ``e - round(decay_frac x e)`` and decays as the short
run's own schedule does (``schedules.branches``). In an IsoFLOP ladder the same shape appears at
several budgets (in ratio 1:2:4:8 its runs train D, 2D, 4D, 8D tokens), so merging them into the
longest costs ``1 + decay_frac x (1/8 + 1/4 + 1/2)`` of that run instead of ``1 + 1/2 + 1/4 + 1/8``:
about 37% less compute for a shape at four budgets, with the same points.

Pure Python (no torch): the designer and the quickstart use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..runconfig import RunConfig
from .schedules import warmup_of

__all__ = ["MergedRun", "merge_prefixes"]


@dataclasses.dataclass(frozen=True)
class MergedRun:
    """A run of the merged ladder and the design runs it stands for: ``ends`` maps each one's name to
    the step at which its point is evaluated (its steps: a branch end, or the run's own last step)."""

    run: RunConfig
    ends: dict[str, int]


def _key(run: RunConfig) -> str:
    """Everything that decides a run's trajectory up to its decay, as a hashable key."""
    d: dict[str, Any] = run.to_dict()
    for k in ("name", "tokens", "budget_flops"):
        d.pop(k)
    d["schedule"] = {k: v for k, v in d["schedule"].items() if k != "branches"}
    return repr(sorted((k, repr(v)) for k, v in d.items()))


def _mergeable(run: RunConfig) -> bool:
    # a fractional warmup or a sparsity schedule (its fractions are of the run's own steps) makes the
    # prefix depend on the length; existing branches are kept apart too
    return (run.schedule.name == "wsd" and run.schedule.warmup_steps > 0 and not run.schedule.branches
            and run.sparsity.target == 0.0)


def merge_prefixes(runs: Sequence[RunConfig],
                   rename: Callable[[RunConfig], str] | None = None) -> list[MergedRun]:
    """Merge runs that differ only in length (and budget) into the longest, with a cooldown branch at
    each shorter one's last step; a run that cannot be a branch (not WSD with a fixed warmup, sparse,
    or so short that its decay rounds to no step or starts inside the warmup) stays a run of its own.

    ``rename(config)`` names a changed run (default: ``design.run_name``). The merged run keeps the
    longest run's fields (its budget among them) and gains ``schedule.branches`` at the fractions
    ``e / steps`` of the shorter runs' steps ``e``, with their budgets as ``branch_budgets`` (when every
    one has a budget), so the store files each branch point under its own IsoFLOP budget. Returns the
    merged ladder in the order of each group's first run, each with the design runs it stands for.
    """
    if rename is None:
        from .design import run_name
        rename = run_name
    groups: dict[str, list[RunConfig]] = {}
    out: list[MergedRun | None] = []
    slot: dict[str, int] = {}
    for r in runs:
        if not _mergeable(r):
            out.append(MergedRun(r, {r.name: r.steps}))
            continue
        k = _key(r)
        if k not in groups:
            groups[k] = []
            slot[k] = len(out)
            out.append(None)
        groups[k].append(r)
    for k, members in groups.items():
        longest = max(members, key=lambda r: r.steps)
        total = longest.steps
        warmup = warmup_of(longest.schedule, total)
        decay_start = total - round(longest.schedule.decay_frac * total)
        fractions: list[float] = []
        budgets: list[float] = []
        ends = {longest.name: total}
        alone: list[MergedRun] = []
        for r in sorted(members, key=lambda r: r.steps):
            if r is longest:
                continue
            e = r.steps
            n = round(longest.schedule.decay_frac * e)      # the short run's own decay, in steps
            # a branch decays over max(1, n) steps: a short run without decay (n = 0) is not one
            if n < 1 or e == total or e - n < warmup or e - n > decay_start or e in ends.values():
                alone.append(MergedRun(r, {r.name: r.steps}))
                continue
            f = e / total
            assert round(f * total) == e   # the branch ends exactly at the short run's last step
            fractions.append(f)
            budgets.append(r.budget_flops)
            ends[r.name] = e
        merged = longest
        if fractions:
            # each branch point keeps the IsoFLOP budget of the run it stands for (when they all have one)
            merged = dataclasses.replace(longest, schedule=dataclasses.replace(longest.schedule,
                                                                               branches=tuple(fractions)),
                                         branch_budgets=tuple(budgets) if all(b > 0 for b in budgets) else ())
            merged = dataclasses.replace(merged, name=rename(merged))
        out[slot[k]] = MergedRun(merged, ends)
        out.extend(alone)
    return [m for m in out if m is not None]
