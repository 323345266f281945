"""Executors: train a ladder's runs and stream their curve points into the store.

>>> from scalinglab.execute import execute
>>> execute(runs, Store("runs.db"), checkpoint_dir=Path("runs.checkpoints"))   # doctest: +SKIP

One interface, two executors: ``local`` (spawned worker processes on this machine, the default) and
``ray`` (Ray tasks on a cluster; ``pip install 'scalinglab[ray]'``). In both, this process (the
driver) is the store's only writer, runs already ``done`` are skipped, and every other run is
(re)started and resumes from its checkpoint ``checkpoint_dir/<run name>.pt``. Because a worker's
``on_point`` returns only once the driver has committed the point, and the trainer checkpoints
right after, killing the whole ladder at any moment (even with SIGKILL) and running the same command
again finishes every run with no point lost or duplicated.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..accounting import cost, counts
from ..errors import ConfigError, StoreError, invalid
from ..runconfig import RunConfig
from ..store import Store
from ._common import DEFAULT_TRAINER, Sink, TrainFn, checkpoint_path
from ._progress import LadderProgress

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(invalid(f"The {name!r} parameter", value, "a positive integer or None"))


def execute(runs: Sequence[RunConfig], store: Store, *, checkpoint_dir: str | Path, workers: int | None = None,
            threads: int | None = None, executor: str = "local", address: str | None = None,
            device: str | None = None, progress: bool = True,
            train_fn: TrainFn | str | None = None) -> dict[str, Any]:
    """Train every run of ``runs`` that is not yet done, committing curve points to ``store`` as they come.

    Parameters
    ----------
    runs : the ladder (``ladder.ladderfile.read_toml``); added to the store as planned if new (by name:
        a known name with a different config is a StoreError and nothing runs).
    store : the run store; this process is its only writer while this runs (a lock file says so).
    checkpoint_dir : where each run checkpoints, as ``<run name>.pt`` (on a path every Ray node shares).
    workers : runs trained at once. Local default: ``min(runs to do, cores)``; Ray default: as many
        as the cluster's CPUs allow at ``threads`` each.
    threads : torch threads per worker. Local default: ``cores // workers`` (so workers x threads =
        cores); Ray default: 1, or ``cluster CPUs // workers`` when ``workers`` is given.
    executor : ``"local"`` or ``"ray"``; ``address`` is the Ray cluster (``"auto"``, ``HOST:PORT``;
        None starts a local Ray unless one is already initialised).
    device : passed to the trainer (None: it chooses).
    progress : show a live display (runs done, tokens/s, ETA) on a terminal.
    train_fn : the trainer, a callable or ``"module:function"``; default ``ladder.train.train``.

    Returns a summary: ``runs``, ``skipped`` (already done), ``done`` and ``failed`` (name -> first
    line of the error) this time, ``points`` committed, ``tokens`` trained, ``seconds``,
    ``workers`` and ``threads``.
    """
    if executor not in EXECUTORS:
        raise ConfigError(invalid("The 'executor' parameter", executor, f"one of {EXECUTORS}"))
    _positive("workers", workers)
    _positive("threads", threads)
    if not isinstance(store, Store):
        raise StoreError(invalid("The 'store' parameter", type(store).__name__, "a scalinglab Store"))
    ckpt = Path(checkpoint_dir)
    for r in (r for r in runs if isinstance(r, RunConfig)):   # every checkpoint lies in the checkpoint folder: checked before anything is stored
        checkpoint_path(ckpt, r.name or f"run-{r.digest()}")   # the store's name of an unnamed run
    if executor == "ray":   # before the lock and the store: a dead address fails here, in ~2 s
        from .ray_executor import check_address
        check_address(address)
    t0 = time.monotonic()
    with store.writer_lock():
        names = store.add_planned(runs, describe=counts)
        try:
            ckpt.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot make the checkpoint directory {str(ckpt)!r}: {exc.strerror}") from None
        records = {r.name: r for r in store.runs()}
        jobs: list[tuple[str, RunConfig]] = []
        skipped = []
        for name in names:
            rec = records[name]
            if rec.status == "done":
                skipped.append(name)
                continue
            stale = checkpoint_path(ckpt, name)
            if rec.status == "planned" and stale.exists():
                # never started in this store: a checkpoint here belongs to another store's history,
                # and resuming from it would skip points this store has never seen
                log.warning("removing checkpoint %s of run %s, which this store has not started", stale, name)
                stale.unlink()
            for tmp in stale.parent.glob(f"{glob.escape(name)}.pt.*.tmp"):   # half-written by a killed trainer
                tmp.unlink(missing_ok=True)
            jobs.append((name, rec.config))
        # longest first (LPT scheduling): a ladder's largest runs otherwise start last and leave the
        # other workers idle at the end
        jobs.sort(key=lambda job: -cost(job[1]))
        sink = Sink(store, jobs)
        result: dict[str, Any] = {"runs": len(names), "skipped": len(skipped), "executor": executor}
        tokens_before = sink.tokens_done
        all_tokens = sum(records[n].config.steps * records[n].config.batch_tokens for n in names)
        display = LadderProgress(enabled=progress, runs_total=len(names), runs_done=len(skipped),
                                 tokens_total=all_tokens, tokens_done=all_tokens - sink.tokens_target + tokens_before)
        sink.progress = display
        if jobs:
            with display:
                if executor == "local":
                    from .local import run_local
                    k = min(workers or cpu_count(), len(jobs))
                    t = threads or max(1, cpu_count() // k)
                    run_local(jobs, sink, workers=k, threads=t, checkpoint_dir=ckpt.resolve(), device=device,
                              train_fn=train_fn)
                else:
                    from .ray_executor import run_ray
                    k, t = run_ray(jobs, sink, workers=workers, threads=threads, address=address,
                                   checkpoint_dir=ckpt.resolve(), device=device, train_fn=train_fn)
                result.update(workers=k, threads=t)
    result.update(done=sink.done, failed=sink.failed, points=sink.new_points,
                  tokens=sink.tokens_done - tokens_before, seconds=round(time.monotonic() - t0, 3))
    return result


__all__ = ["DEFAULT_TRAINER", "EXECUTORS", "cpu_count", "execute"]
