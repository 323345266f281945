"""What the executors share: the trainer lookup, the worker-side run, and the driver-side sink.

The driver (the process that owns the store) is the only writer. Workers call the trainer with an
``on_point`` that sends each point to the driver and *waits until the driver has committed it*; the
trainer checkpoints right after ``on_point`` returns. So a checkpoint never covers a point the store
lacks, and a run resumed from its checkpoint re-emits at most points the store already has (which
``INSERT OR IGNORE`` drops): no point is lost or duplicated, whenever the ladder is killed.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, invalid
from ..runconfig import RunConfig, check_name
from ..store import Store

log = logging.getLogger(__name__)

#: the trainer: train(config, *, on_point, checkpoint_path, device, threads) -> summary
TrainFn = Callable[..., Mapping[str, Any]]
#: the default trainer, imported in the workers (so the driver never imports torch)
DEFAULT_TRAINER = "scalinglab.ladder.train:train"


def resolve_trainer(spec: TrainFn | str | None) -> TrainFn:
    """A trainer from a callable, a ``"module:function"`` string, or None for the default."""
    if callable(spec):
        return spec
    spec = spec or DEFAULT_TRAINER
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(invalid("The trainer", spec, "a callable or a 'module:function' string"))
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the trainer {spec!r}: {exc}") from None
    if not callable(fn):
        raise ConfigError(invalid("The trainer", spec, "a callable"))
    return fn  # type: ignore[no-any-return]


def checkpoint_path(checkpoint_dir: str | Path, name: str) -> Path:
    """``checkpoint_dir/<name>.pt``, resolved; a ConfigError unless it lies directly in the (resolved)
    checkpoint folder (a run name is never a path: ``runconfig.NAME_PATTERN``; a symlink out is refused)."""
    check_name(name)
    if not name:
        raise ConfigError(invalid("The run name of a checkpoint", name, "a non-empty run name"))
    folder = Path(checkpoint_dir).resolve()
    path = (folder / f"{name}.pt").resolve()
    if path.parent != folder or path.name != f"{name}.pt":
        raise ConfigError(f"the checkpoint of run {name!r} would be {str(path)!r}, outside the checkpoint "
                          f"folder {str(folder)!r}: refused.")
    return path


def set_threads(threads: int) -> None:
    """Pin this process's compute threads: the OpenMP/MKL variables now, torch's pool if it is loaded.

    Call it before loading the trainer (so the variables apply when torch starts) and again after.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def format_error(exc: BaseException) -> str:
    """``Type: message`` on the first line (what ``ladder status`` shows), then the traceback."""
    first = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return first + "\n\n" + "".join(traceback.format_exception(exc)).rstrip()


def run_one(train: TrainFn, config: Mapping[str, Any], checkpoint: str, *, on_point: Callable[[dict[str, Any]], None],
            threads: int, device: str | None) -> dict[str, Any]:
    """Run one config with the trainer (in a worker); returns its summary."""
    cfg = RunConfig.from_dict(dict(config))
    summary = train(cfg, on_point=on_point, checkpoint_path=Path(checkpoint), device=device, threads=threads)
    return dict(summary)


class Sink:
    """The driver's side: writes what workers report to the store, and drives the progress display."""

    def __init__(self, store: Store, jobs: Sequence[tuple[str, RunConfig]], progress: Any = None) -> None:
        self.store = store
        self.progress = progress
        self.done: list[str] = []
        self.failed: dict[str, str] = {}
        self.new_points = 0
        self._tokens: dict[str, int] = {}
        self._target = {name: cfg.steps * cfg.batch_tokens for name, cfg in jobs}
        for name, _ in jobs:
            pts = store.points(name)
            self._tokens[name] = int(pts[-1]["tokens"]) if pts else 0

    @property
    def tokens_done(self) -> int:
        """Training tokens the runs to execute have seen so far (resumed runs count their points)."""
        return sum(self._tokens.values())

    @property
    def tokens_target(self) -> int:
        """Training tokens of the runs to execute, in all."""
        return sum(self._target.values())

    def started(self, name: str, host: str | None) -> None:
        self.store.mark_running(name, host=host)
        log.info("run %s started on %s", name, host)

    def point(self, name: str, point: Mapping[str, Any]) -> None:
        if self.store.add_point(name, point):
            self.new_points += 1
        if point.get("branch", 0):
            return   # a cooldown branch's point: its tokens are not the main line's progress
        tokens = int(point.get("tokens") or 0)
        if tokens > self._tokens.get(name, 0):
            self.progress.advance(tokens - self._tokens[name])
            self._tokens[name] = tokens

    def finished(self, name: str, summary: Mapping[str, Any]) -> None:
        self.store.mark_done(name, summary)
        self.done.append(name)
        target = self._target.get(name, 0)
        if target > self._tokens.get(name, 0):
            self.progress.advance(target - self._tokens[name])
            self._tokens[name] = target
        self.progress.run_finished(ok=True)
        log.info("run %s done", name)

    def failed_run(self, name: str, error: str) -> None:
        self.store.mark_failed(name, error)
        self.failed[name] = error.splitlines()[0] if error else "failed"
        self.progress.run_finished(ok=False)
        log.warning("run %s failed: %s", name, self.failed[name])

