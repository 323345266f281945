"""The local executor: a pool of spawned worker processes, one run at a time each.

Each worker holds a duplex pipe to the driver. The driver sends it a run; the worker trains it and
sends each curve point, then waits for the driver's acknowledgement (sent after the point is
committed) before the trainer goes on to checkpoint. The driver waits on every pipe and every
worker's process sentinel at once (``multiprocessing.connection.wait``), so it notices both messages
and deaths; a worker that dies mid-run fails that run, and a fresh worker takes its place.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ..errors import ScalingLabError
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


def _worker(conn: Connection, train_spec: TrainFn | str | None, threads: int, device: str | None) -> None:
    """A worker process: train the runs the driver sends until it says stop (or goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the driver's to handle
    try:
        try:
            set_threads(threads)
            train = resolve_trainer(train_spec)
            set_threads(threads)
        except Exception as exc:  # noqa: BLE001  (e.g. the trainer cannot be imported: no run can go on)
            conn.send(("fatal", "", format_error(exc)))
            return
        conn.send(("ready",))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            _, name, config, checkpoint = msg
            conn.send(("start", name, worker_identity()))

            def on_point(point: dict[str, Any], name: str = name) -> None:
                conn.send(("point", name, dict(point)))
                conn.recv()   # the driver's ack: the point is committed, the trainer may checkpoint

            try:
                summary = run_one(train, config, checkpoint, on_point=on_point, threads=threads, device=device)
            except (EOFError, BrokenPipeError, ConnectionResetError):
                return   # the driver is gone: stop quietly, the checkpoint is consistent with the store
            except Exception as exc:  # noqa: BLE001  (any error of the run is the run's failure)
                conn.send(("failed", name, format_error(exc)))
            else:
                summary.setdefault("host", worker_identity())
                conn.send(("done", name, summary))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return


class _Worker:
    def __init__(self, ctx: Any, train_spec: TrainFn | str | None, threads: int, device: str | None) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker, args=(child, train_spec, threads, device), daemon=True)
        self.proc.start()
        child.close()
        self.run: str | None = None
        self.stopped = False   # told to stop: idle, exiting


def run_local(jobs: Sequence[tuple[str, RunConfig]], sink: Sink, *, workers: int, threads: int,
              checkpoint_dir: Path, device: str | None, train_fn: TrainFn | str | None) -> None:
    """Train ``jobs`` (name, config) on ``workers`` spawned processes of ``threads`` threads each."""
    ctx = mp.get_context("spawn")
    queue = collections.deque(jobs)
    pool: list[_Worker] = [_Worker(ctx, train_fn, threads, device) for _ in range(min(workers, len(jobs)))]

    def send(w: _Worker, msg: tuple[Any, ...]) -> bool:
        try:
            w.conn.send(msg)
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False   # the worker died; its sentinel will say so

    def dispatch(w: _Worker) -> None:
        if not queue:
            w.run, w.stopped = None, True
            send(w, ("stop",))
            return
        name, cfg = job = queue.popleft()
        w.run = name
        if not send(w, ("run", name, cfg.to_dict(), str(checkpoint_path(checkpoint_dir, name)))):
            queue.appendleft(job)
            w.run = None

    def handle(w: _Worker, msg: tuple[Any, ...], alive: bool = True) -> None:
        kind = msg[0]
        if kind == "point":
            sink.point(msg[1], msg[2])
            if alive:
                send(w, ("ack",))
        elif kind == "start":
            sink.started(msg[1], msg[2])
        elif kind in ("done", "failed"):
            w.run = None
            if kind == "done":
                sink.finished(msg[1], msg[2])
            else:
                sink.failed_run(msg[1], msg[2])
            if alive:
                dispatch(w)
        elif kind == "ready" and alive:
            dispatch(w)
        elif kind == "fatal":
            raise ScalingLabError(f"a worker could not start: {msg[2].splitlines()[0]}")

    try:
        while any(not w.stopped for w in pool):
            by_conn = {w.conn: w for w in pool}
            by_sentinel = {w.proc.sentinel: w for w in pool}
            for obj in wait(list(by_conn) + list(by_sentinel)):
                if obj in by_conn:
                    w = by_conn[obj]
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        continue   # the process is ending; its sentinel says how
                    handle(w, msg)
                else:
                    w = by_sentinel[obj]
                    if w not in pool:
                        continue
                    while True:   # messages sent just before it exited
                        try:
                            if not w.conn.poll():
                                break
                            msg = w.conn.recv()
                        except (EOFError, OSError):
                            break
                        handle(w, msg, alive=False)
                    w.proc.join()
                    pool.remove(w)
                    if w.run is not None:
                        sink.failed_run(w.run, f"worker process exited with code {w.proc.exitcode} "
                                               "during the run")
                        if queue:   # a fresh worker takes the place of one that crashed mid-run
                            pool.append(_Worker(ctx, train_fn, threads, device))
        if queue:
            raise ScalingLabError(f"the workers exited before running {len(queue)} run(s); "
                                  "they stay planned, run the same command again.")
    finally:
        # idle workers are exiting (tearing torch down takes a while: no need to wait for it);
        # busy ones exist here only when the driver stops early (an error, Ctrl-C)
        for w in pool:
            if w.proc.is_alive():
                w.proc.terminate()
        for w in pool:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
