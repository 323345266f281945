"""What every reader returns: runs as named series of (step, value), with the run's own fields.

A reader (:mod:`.wandb`, :mod:`.tensorboard`, :mod:`.mlflow`) turns its tracker's files into
:class:`SourceRun` objects and knows nothing of the store; :mod:`.mapping` decides which series is the
loss, the tokens, the learning rate, and where N comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..runconfig import NAME_PATTERN


@dataclass
class Series:
    """One logged key of a run: steps (int64, increasing, unique), values (float64) and, when the tracker
    records it, the wall-clock time of each (seconds since the epoch). ``bad`` is the first value that
    was not a number (``(step, text)``), left out of ``values``; ``None`` when every value parsed."""

    steps: np.ndarray
    values: np.ndarray
    wall: np.ndarray | None = None
    bad: tuple[int, str] | None = None

    @classmethod
    def build(cls, steps: object, values: object, wall: object = None,
              bad: tuple[int, str] | None = None) -> Series:
        """From possibly unordered, repeated steps: sorted by step, the last value logged at a step kept
        (a resumed run that logs a step again overrides it, as TensorBoard and MLflow show it)."""
        s = np.asarray(steps, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        w = None if wall is None else np.asarray(wall, dtype=np.float64)
        if s.size > 1 and not (np.all(np.diff(s) > 0)):
            order = np.argsort(s, kind="stable")
            s, v = s[order], v[order]
            w = None if w is None else w[order]
            last = np.append(s[1:] != s[:-1], True)          # the last of each run of equal steps
            s, v = s[last], v[last]
            w = None if w is None else w[last]
        return cls(s, v, w, bad)

    def last(self) -> float:
        return float(self.values[-1])


@dataclass
class SourceRun:
    """One run as its tracker stored it: ``series`` by logged key, ``params`` (run-level values: MLflow
    params and tags, W&B config), ``notes`` about how it was read, and ``warnings`` where data may be missing (a sampled W&B history,
    a truncated event file)."""

    name: str
    run_id: str
    path: str
    series: dict[str, Series] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # data may be missing: a sampled history, a cut file


_BAD_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")


def store_name(name: str, fallback: str) -> str:
    """A valid store run name from a tracker's run name: other characters become ``-``, no ``..``, at most
    200 characters, starting with a letter or digit (``fallback`` when nothing is left)."""
    out = _BAD_CHARS.sub("-", name.strip())
    while ".." in out:
        out = out.replace("..", ".")
    out = out.lstrip("._+-")[:200].rstrip("-") or ""
    if not NAME_PATTERN.fullmatch(out):
        out = _BAD_CHARS.sub("-", fallback).lstrip("._+-")[:200] or "run"
    return out


__all__ = ["Series", "SourceRun", "store_name"]
