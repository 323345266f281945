"""The Ray executor: each run is one Ray task; points come back through a small broker actor.

Semantics are those of the local executor. This process (the driver) is the store's only writer. A
task's ``on_point`` hands the point to the broker (an async actor) and blocks until the driver has
drained it, committed it and acknowledged it, so the trainer never checkpoints past an uncommitted
point. Tasks retry on system failures (a node or worker lost) and resume from their checkpoint, which
must lie on a path every node shares. Ray is optional: ``pip install 'scalinglab[ray]'``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ScalingLabError, invalid
from ..runconfig import RunConfig
from ._common import (
    Sink,
    TrainFn,
    checkpoint_path,
    format_error,
    resolve_trainer,
    run_one,
    set_threads,
    worker_identity,
)

log = logging.getLogger(__name__)

#: system-failure retries of one run's task (each resumes from the checkpoint)
MAX_RETRIES = 2
#: seconds the driver waits for finished tasks between drains of the broker
POLL_S = 0.05


class _Broker:
    """An async actor holding points until the driver has committed them."""

    def __init__(self) -> None:
        self._items: list[tuple[str, int, str, Any]] = []
        self._waiting: dict[int, asyncio.Event] = {}
        self._seq = 0

    async def started(self, name: str, host: str) -> None:
        self._items.append(("start", 0, name, host))

    async def submit(self, name: str, point: dict[str, Any]) -> None:
        self._seq += 1
        key, event = self._seq, asyncio.Event()
        self._waiting[key] = event
        self._items.append(("point", key, name, point))
        await event.wait()   # until the driver acknowledges the commit

    async def drain(self) -> list[tuple[str, int, str, Any]]:
        items, self._items = self._items, []
        return items

    async def ack(self, keys: list[int]) -> None:
        for key in keys:
            event = self._waiting.pop(key, None)
            if event is not None:
                event.set()


#: seconds a connection to a Ray address may take before it counts as not answering
CONNECT_TIMEOUT_S = 2.0


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A ConfigError unless ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) accepts a TCP connection
    within ``timeout`` seconds: Ray retries a dead address without end. ``None`` and ``"auto"`` pass."""
    if address is None or address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(invalid("The Ray address", address, "'auto', HOST:PORT or ray://HOST:PORT"))
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"the Ray address {address!r} does not answer ({exc.strerror or type(exc).__name__}"
                          f" within {timeout:g} s): start the cluster or fix the address.") from None


def _task(train_spec: TrainFn | str | None, name: str, config: dict[str, Any], checkpoint: str, threads: int,
          device: str | None, broker: Any) -> dict[str, Any]:
    """One run, inside a Ray worker."""
    import ray

    set_threads(threads)
    train = resolve_trainer(train_spec)
    set_threads(threads)
    ray.get(broker.started.remote(name, worker_identity()))

    def on_point(point: dict[str, Any]) -> None:
        ray.get(broker.submit.remote(name, dict(point)))

    summary = run_one(train, config, checkpoint, on_point=on_point, threads=threads, device=device)
    summary.setdefault("host", worker_identity())
    return summary


def _error_text(exc: BaseException) -> str:
    import ray.exceptions

    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        return format_error(exc.cause)
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}\n\n{exc}"


def run_ray(jobs: Sequence[tuple[str, RunConfig]], sink: Sink, *, workers: int | None, threads: int | None,
            address: str | None, checkpoint_dir: Path, device: str | None,
            train_fn: TrainFn | str | None) -> tuple[int, int]:
    """Train ``jobs`` as Ray tasks; returns (runs at once, threads per run)."""
    try:
        import ray
        import ray.exceptions
    except ImportError:
        raise ConfigError("the Ray executor needs Ray: pip install 'scalinglab[ray]'.") from None
    owns = not ray.is_initialized()
    if owns:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001  (Ray raises ConnectionError, RuntimeError, ValueError ...)
            raise ScalingLabError(f"cannot start or reach Ray at {address or 'a new local instance'!r}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                                  ) from None
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    cpus = max(1, int(resources.get("CPU", 1)))
    t = threads or (max(1, cpus // workers) if workers else 1)
    k = min(workers or max(1, cpus // t), len(jobs))
    broker: Any = ray.remote(_Broker).options(num_cpus=0).remote()
    task = ray.remote(_task).options(num_cpus=t, max_retries=MAX_RETRIES)
    queue = collections.deque(jobs)
    inflight: dict[Any, str] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < k:
                name, cfg = queue.popleft()
                ref = task.remote(train_fn, name, cfg.to_dict(), str(checkpoint_path(checkpoint_dir, name)), t, device,
                                  broker)
                inflight[ref] = name
            # 1. which tasks have finished (their points and start are already with the broker) ...
            ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=POLL_S)
            # 2. ... commit every point the broker holds, then release the tasks waiting on them ...
            acks = []
            for kind, key, name, payload in ray.get(broker.drain.remote()):
                if kind == "start":
                    sink.started(name, payload)
                else:
                    sink.point(name, payload)
                    acks.append(key)
            if acks:
                ray.get(broker.ack.remote(acks))
            # 3. ... and record the finished runs
            for ref in ready:
                name = inflight.pop(ref)
                try:
                    summary = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    sink.failed_run(name, _error_text(exc))
                else:
                    sink.finished(name, summary)
    finally:
        for ref in inflight:
            ray.cancel(ref, force=True)
        ray.kill(broker)
        if owns:
            ray.shutdown()
    return k, t
