"""The ladder's progress display (rich): runs done, tokens per second and the time left."""

from __future__ import annotations

import math
import time
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LadderProgress:
    """A one-line live display on stderr; silent when disabled or when stderr is not a terminal.

    Tokens count the training tokens of every run to execute (points report how far each run got),
    so the rate is training throughput and the ETA is the remaining tokens at that rate.
    """

    def __init__(self, *, enabled: bool, runs_total: int, runs_done: int, tokens_total: int,
                 tokens_done: int) -> None:
        self.runs_total, self.runs_done, self.runs_failed = runs_total, runs_done, 0
        self.tokens_total, self.tokens_done = tokens_total, tokens_done
        self._tokens_here = 0
        self._t0 = time.monotonic()
        console = Console(stderr=True)
        self._p: Progress | None = None
        if enabled and console.is_terminal:
            self._p = Progress(TextColumn("[bold]ladder"), BarColumn(), TextColumn("{task.fields[info]}"),
                               console=console, transient=False)
            self._task = self._p.add_task("ladder", total=max(tokens_total, 1), completed=tokens_done,
                                          info=self._info())

    def _info(self) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self._tokens_here / elapsed if elapsed > 0 else 0.0
        left = (self.tokens_total - self.tokens_done) / rate if rate > 0 else float("nan")
        failed = f", {self.runs_failed} failed" if self.runs_failed else ""
        return (f"runs {self.runs_done}/{self.runs_total} done{failed} | {rate:,.0f} tokens/s | "
                f"ETA {_duration(left)}")

    def _refresh(self) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=self.tokens_done, info=self._info())

    def advance(self, tokens: int) -> None:
        self.tokens_done += tokens
        self._tokens_here += tokens
        self._refresh()

    def run_finished(self, ok: bool) -> None:
        if ok:
            self.runs_done += 1
        else:
            self.runs_failed += 1
        self._refresh()

    def __enter__(self) -> Self:
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._refresh()
            self._p.stop()
