"""Trainer features: one small protocol of named stage hooks, and their composition.

The loop in :func:`scalinglab.ladder.train.train` knows nothing of sparsity, number formats or
measurements; it calls the hooks of one :class:`Feature` (usually a :class:`Chain` of several) once per
stage, in this order, for every optimizer step of the main line and of a cooldown branch::

    lr = schedule(step)
    features.before_forward(step)                 # e.g. new pruning masks
    data = features.train_data(step) or corpus    # e.g. SPDF's fine-tuning corpus
    n_seq = features.batch_sequences(step) or the config's   # e.g. the adaptive batch
    for i, micro-batch in enumerate(batch of n_seq sequences):
        forward; backward
        features.after_backward(step, i, n_micro) # e.g. per-micro-batch gradient norms
    features.before_clip(step)                    # e.g. zero masked gradients
    clip; optimizer.step()
    features.after_step(step)                     # e.g. masked weights and moments back to zero
    if evaluation step (the schedule's, plus features.eval_steps(total_steps)):
        loss = evaluate()
        features.on_eval(step, loss, branch)
        point = {..., **features.point_fields(step)}; report; checkpoint

and once at the end ``summary.update(features.summary_fields())``. A feature's whole resumable state
is its :meth:`Feature.state_dict`: the one training-state object
(:class:`scalinglab.ladder.checkpoint.TrainState`) writes it into checkpoints, restores it on resume,
and snapshots and restores it around cooldown branches, so a branch never leaks a feature's state
into the main line. Every hook of :class:`Feature` is a no-op, so a feature overrides only the stages it
needs, and a feature that is off does nothing at all. Features are built by
:func:`scalinglab.ladder.build.build_features` from the run config, after the model and optimizer.

Composition follows optax's ``chain``: :class:`Chain` is itself a feature that calls its members in
order; their point and summary fields are merged (a duplicate key is an error), their states are kept
under each member's ``name``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError, invalid


class Feature:
    """A trainer feature. Override the hooks you need; each default does nothing.

    ``name`` keys the feature's state in checkpoints: unique within a chain, and stable across
    versions (a renamed feature cannot resume its old checkpoints).
    """

    name: str = "feature"

    def eval_steps(self, total_steps: int) -> set[int]:
        """Steps (1..total_steps, after that many updates) at which the main line must also evaluate."""
        return set()

    def train_data(self, step: int) -> np.ndarray | None:
        """The token stream to draw ``step``'s batch from; None for the run's own training split."""
        return None

    def batch_sequences(self, step: int) -> int | None:
        """Sequences in update ``step``'s batch, a multiple of the micro-batch's; None for the config's.

        The loop then runs ``n_seq / micro`` micro-batches, passes that ``n_micro`` to
        :meth:`after_backward` and counts ``n_seq x context`` tokens seen (the points' ``tokens``)."""
        return None

    def before_forward(self, step: int) -> None:
        """After the learning rate is set, before the forward pass of update ``step`` (from 0)."""

    def after_backward(self, step: int, micro: int, n_micro: int) -> None:
        """After the backward pass of micro-batch ``micro`` of ``n_micro`` (gradients accumulate)."""

    def before_clip(self, step: int) -> None:
        """After all micro-batches, before gradient clipping and the optimizer step."""

    def after_step(self, step: int) -> None:
        """After ``optimizer.step()``, before the gradients are zeroed."""

    def on_eval(self, step: int, eval_loss: float, branch: int) -> None:
        """After the evaluation at ``step`` updates (``branch`` 0: the main line, k: cooldown branch k)."""

    def point_fields(self, step: int) -> dict[str, Any]:
        """Fields this feature adds to the point reported after ``step`` updates."""
        return {}

    def summary_fields(self) -> dict[str, Any]:
        """Fields this feature adds to the run's summary (after the last step)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs (tensors, numbers, strings, lists and dicts of them)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state."""


class Chain(Feature):
    """Several features as one: every hook calls the members in order (optax's ``chain``)."""

    name = "chain"

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features = list(features)
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(invalid("The trainer feature names", names, "unique names"))

    def eval_steps(self, total_steps: int) -> set[int]:
        return set().union(*(f.eval_steps(total_steps) for f in self.features))

    def train_data(self, step: int) -> np.ndarray | None:
        for f in self.features:
            data = f.train_data(step)
            if data is not None:
                return data
        return None

    def batch_sequences(self, step: int) -> int | None:
        for f in self.features:
            n = f.batch_sequences(step)
            if n is not None:
                return n
        return None

    def before_forward(self, step: int) -> None:
        for f in self.features:
            f.before_forward(step)

    def after_backward(self, step: int, micro: int, n_micro: int) -> None:
        for f in self.features:
            f.after_backward(step, micro, n_micro)

    def before_clip(self, step: int) -> None:
        for f in self.features:
            f.before_clip(step)

    def after_step(self, step: int) -> None:
        for f in self.features:
            f.after_step(step)

    def on_eval(self, step: int, eval_loss: float, branch: int) -> None:
        for f in self.features:
            f.on_eval(step, eval_loss, branch)

    def _merged(self, parts: list[dict[str, Any]], what: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f, part in zip(self.features, parts):
            clash = sorted(set(out) & set(part))
            if clash:
                raise ConfigError(invalid(f"The {what} field of trainer feature {f.name!r}", clash[0],
                                          "a name no other feature uses"))
            out.update(part)
        return out

    def point_fields(self, step: int) -> dict[str, Any]:
        return self._merged([f.point_fields(step) for f in self.features], "point")

    def summary_fields(self) -> dict[str, Any]:
        return self._merged([f.summary_fields() for f in self.features], "summary")

    def state_dict(self) -> dict[str, Any]:
        return {f.name: f.state_dict() for f in self.features}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = sorted(f.name for f in self.features)
        if sorted(state) != names:
            raise ConfigError(invalid("The checkpoint's trainer features", sorted(state), f"{names}"))
        for f in self.features:
            f.load_state_dict(state[f.name])


def chain(*features: Feature) -> Chain:
    """The features as one, called in the order given."""
    return Chain(features)


__all__ = ["Chain", "Feature", "chain"]
