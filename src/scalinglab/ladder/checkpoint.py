"""The training state of a run, and its checkpoints.

:class:`TrainState` is the one object that holds everything a run's future depends on: the model, the
optimizer, the features' states, the step, the running train loss, the cooldown branches done and the
RNG. Its :meth:`TrainState.state_dict` is what a checkpoint stores and a resume restores, and what a
cooldown branch snapshots and restores (:meth:`TrainState.snapshot`), so a new stateful feature
registers its state once, in its own ``state_dict``.

Checkpoints are written atomically (a temporary file, then a rename), right after a reported point,
so a crash never loses a reported point and a resume never reports one twice. A checkpoint names its
run config's digest; resuming another config's checkpoint is an error.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..runconfig import RunConfig
from .features import Feature

#: 2: the features' states under ``features`` (1: the sparsifier's and its phase ends at the top level)
CHECKPOINT_VERSION = 2


@dataclass
class TrainState:
    """Model, optimizer, features and the progress of the main line (see the module docstring)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    features: Feature
    device: torch.device
    step: int = 0                          # updates done on the main line
    tokens: int = 0                        # tokens seen by those updates (a branch: by the branch's run)
    batch_tokens: int = 0                  # the config's batch: a checkpoint without ``tokens`` saw step x this
    loss_sum: float = 0.0                  # main-line train loss since the previous point (sum, count)
    loss_n: int = 0
    final_loss: float = math.nan           # the last main-line eval loss
    branches_done: dict[int, dict[str, Any]] = field(default_factory=dict)   # branch index -> its record
    wall_before: float = 0.0               # seconds of training before this process (resumes)
    t0: float = field(default_factory=time.perf_counter)

    def start_clock(self) -> None:
        self.t0 = time.perf_counter()

    def wall_time(self) -> float:
        """Seconds of training, earlier processes (resumes) and cooldown branches included."""
        return self.wall_before + time.perf_counter() - self.t0

    def _rng(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _set_rng(self, rng: dict[str, Any]) -> None:
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "tokens": self.tokens, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "features": self.features.state_dict(), "branches_done": self.branches_done,
                "train_loss_sum": self.loss_sum, "train_loss_n": self.loss_n, "rng": self._rng(),
                "wall_time": self.wall_time(), "final_loss": self.final_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a resume: the clock continues from the saved wall time)."""
        self._restore(state)
        self.step, self.final_loss = int(state["step"]), float(state["final_loss"])
        self.tokens = int(state.get("tokens", self.step * self.batch_tokens))
        self.loss_sum, self.loss_n = float(state["train_loss_sum"]), int(state["train_loss_n"])
        self.branches_done = dict(state.get("branches_done") or {})
        self.wall_before = float(state["wall_time"])
        self.start_clock()

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.features.load_state_dict(state["features"])
        self._set_rng(state["rng"])

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what a cooldown branch changes: model, optimizer, features, RNG and tokens seen."""
        return copy.deepcopy({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                              "features": self.features.state_dict(), "rng": self._rng(), "tokens": self.tokens})

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put :meth:`snapshot`'s state back (tokens seen included); the main line's step, the clock
        and the branches done are kept."""
        self._restore(snapshot)
        self.tokens = int(snapshot["tokens"])


def save(path: Path, config: RunConfig, state: TrainState) -> None:
    """Write the checkpoint of ``state`` to ``path``: torch.save to a temporary file beside it, then
    rename (atomic on POSIX)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"version": CHECKPOINT_VERSION, "digest": config.digest(), "config": config.to_dict(),
                **state.state_dict()}, tmp)
    os.replace(tmp, path)


def load(path: Path, config: RunConfig) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (None if there is none), in the current version's layout.

    Loaded on the CPU (the RNG state must stay there; ``load_state_dict`` moves the rest). Raises
    ConfigError if it belongs to another run config or has an unknown version.
    """
    if not path.exists():
        return None
    ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("digest") != config.digest():
        raise ConfigError(f"The checkpoint {str(path)!r} belongs to another run config "
                          f"(digest {ckpt.get('digest')!r}, this run's {config.digest()!r}).")
    version = ckpt.get("version")
    if version == 1:   # sparsity was the only feature; its state lay at the top level
        ckpt["features"] = {"sparsity": {"sparsifier": ckpt.pop("sparsifier"),
                                         "phase_ends": dict(ckpt.pop("phase_ends") or {})}}
    elif version != CHECKPOINT_VERSION:
        raise ConfigError(f"The checkpoint {str(path)!r} has version {version!r}; this trainer reads "
                          f"versions 1 and {CHECKPOINT_VERSION}.")
    return ckpt


__all__ = ["CHECKPOINT_VERSION", "TrainState", "load", "save"]
