"""TensorBoard event files: every scalar of a directory tree of ``events.out.tfevents.*`` files.

A run is a directory holding event files (a writer's ``log_dir``), named by its path under the imported
directory (``.`` is the directory's own name); its files are read in name order (the writer puts the
creation time in the name), and a step logged again later (a resumed run) keeps its last value. Both
kinds of scalar are read: the legacy ``simple_value`` (``SummaryWriter.add_scalar``) and tensor-style
scalars (a one-element tensor with plugin ``scalars``: TensorFlow 2's ``tf.summary.scalar``,
``torch.utils.tensorboard`` with ``new_style=True``). Every point is kept (TensorBoard's
``EventAccumulator`` keeps 10,000 per tag unless told otherwise, and its ``Scalars()`` misses tensor-style
scalars: measured with tensorboard 2.21 by the issue that asked for this reader).

Both CRCs of every record are checked (:mod:`._tfrecord`). A truncated file (a writer still running or
killed) or a corrupt record keeps what was read before it and is reported as a warning naming the file and
the byte offset; a file with no readable record at all is an error.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import _tfrecord
from .source import Series, SourceRun

PATTERN = "events.out.tfevents."


def _files(root: Path) -> dict[Path, list[Path]]:
    runs: dict[Path, list[Path]] = defaultdict(list)
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.startswith(PATTERN):
                runs[Path(dirpath)].append(Path(dirpath) / name)
    return {d: sorted(f) for d, f in sorted(runs.items())}


def read_file(path: Path, into: dict[str, list[np.ndarray]], offset: int = 0) -> tuple[str | None, int]:
    """Add the scalars of one event file to ``into`` (tag -> arrays of rows ``[order, step, value,
    wall]``; ``order`` counts records from ``offset``, so that a step logged again later wins); returns
    the warning for a truncated or corrupt file (else None) and the next ``offset``."""
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read event file {str(path)!r}: {exc.strerror}") from None
    recs = _tfrecord.records(buf)
    if not recs.starts.size and buf:
        raise DataError(f"event file {str(path)!r} holds no readable record: {recs.problem}.")
    try:
        batch, rest = _tfrecord.scalar_batch(buf, recs) if recs.starts.size else ({}, [])
        for tag, parts in batch.items():
            for part in parts:
                part[0] += offset
                into.setdefault(tag, []).append(part)
        for i in rest:
            start, length = int(recs.starts[i]), int(recs.lengths[i])
            ev = _tfrecord.scalars(buf, start, start + length)
            if ev is None:
                continue
            wall, step, values = ev
            for tag, v in values:
                into.setdefault(tag, []).append(np.array([[offset + i], [step], [v], [wall]], dtype=np.float64))
    except (ValueError, IndexError, UnicodeDecodeError, OverflowError) as exc:
        raise DataError(f"event file {str(path)!r}: a record is not an Event ({exc}).") from None
    problem = None if recs.problem is None else f"event file {str(path)!r}: {recs.problem}; read what came before"
    return problem, offset + int(recs.starts.size)


def read(path: Path) -> list[SourceRun]:
    """The runs under ``path`` (a directory tree, or one event file)."""
    if not path.exists():
        raise DataError(f"TensorBoard log directory {str(path)!r} does not exist.")
    if path.is_file():
        groups = {path.parent: [path]}
        root = path.parent
    else:
        groups = _files(path)
        root = path
    if not groups:
        raise DataError(f"TensorBoard log directory {str(path)!r} holds no event file ({PATTERN}*).")
    runs = []
    for d, files in groups.items():
        rel = d.relative_to(root).as_posix()
        name = root.resolve().name if rel == "." else rel
        run = SourceRun(name, rel, str(d))
        raw: dict[str, list[np.ndarray]] = {}
        offset = 0
        for f in files:
            problem, offset = read_file(f, raw, offset)
            if problem:
                run.warnings.append(problem)
        for tag, parts in raw.items():
            rows = np.concatenate(parts, axis=1)
            rows = rows[:, np.argsort(rows[0], kind="stable")]          # in the order they were written
            run.series[tag] = Series.build(rows[1].astype(np.int64), rows[2], rows[3])
        runs.append(run)
    return runs


__all__ = ["PATTERN", "read", "read_file"]
