"""WSD cooldown branches (Hägele et al. 2024; ``schedules.branches``), taken off the main line.

When the main line reaches a branch's start step, :func:`run_branch` snapshots the training state,
trains the branch's decay on the batches the main line would see at those steps, evaluates at the
branch's end and reports that point (``"branch": k``, with ``decay_steps``), then restores the
snapshot. The main curve is bit-identical to the same run without branches; each branch adds one fully
annealed loss at its own D. The branch is recorded in the state's ``branches_done``, so the checkpoint
written next holds the main line's state and the branches done, and a resume neither repeats nor
skips one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .checkpoint import TrainState
from .schedules import Branch


class Stepper(Protocol):
    """What a branch needs of the loop (``ladder.train.Loop``)."""

    def take_step(self, step: int, lr: float, branch: int = 0) -> float: ...

    def evaluate(self, step: int, branch: int = 0) -> float: ...

    def point(self, step: int, train_loss: float, eval_loss: float, lr: float, branch: int) -> dict[str, Any]: ...


def run_branch(loop: Stepper, state: TrainState, br: Branch, on_point: Callable[[dict[str, Any]], None]) -> None:
    """Train cooldown branch ``br`` from the main line's state (now at its start step), report its
    point, and put the main line's state back exactly as it was."""
    saved = state.snapshot()
    total, lr = 0.0, 0.0
    for s in range(br.start_step, br.end_step):   # the batches the main line would see at these steps
        lr = br.schedule(s)
        total += loop.take_step(s, lr, br.index)
    eval_loss = loop.evaluate(br.end_step, br.index)
    point = loop.point(br.end_step, total / br.decay_steps, eval_loss, lr, br.index)
    on_point({**point, "decay_steps": br.decay_steps})
    state.restore(saved)
    state.branches_done[br.index] = {"branch": br.index, "end_step": br.end_step, "decay_steps": br.decay_steps,
                                     "eval_loss": eval_loss, "tokens": point["tokens"],
                                     "decay_tokens": point["tokens"] - int(saved["tokens"])}


__all__ = ["Stepper", "run_branch"]
