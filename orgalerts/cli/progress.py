"""Progress of a run over many accounts, on stderr: done / failed / remaining, rate, ETA.

Owns: how progress looks. On a terminal, one live line redrawn in place (`\\r`), at most every
`redraw` seconds, and left on screen with the final count when the batch ends. Without a terminal
(cron, CI, a pipe), plain lines: one every `interval` seconds, plus a final one if any was written,
so a short run stays silent and a long one leaves a readable trail in the log. Never writes to stdout
(stdout carries only the report). Clock and stream are injectable; tests never sleep.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from orgalerts.engine.results import Status


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressReporter:
    """Engine's progress callback (`__call__` per finished account) and batch start (`start(total)`)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        interval: float = 10.0,
        redraw: float = 0.1,
        label: str = "accounts",
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self.interval = interval
        self.redraw = redraw
        self.label = label
        self.total = 0
        self.done = 0
        self.failed = 0
        self._started = 0.0
        self._last_write: float | None = None
        self._wrote = False  # a line (or the live line) is on screen for this batch
        self._open = False  # a batch is running
        self._width = 0
        self._lock = threading.Lock()

    # --- engine callbacks ---------------------------------------------------------------------------
    def start(self, total: int) -> None:
        """A batch of `total` accounts begins (a run may have several: members, then orphans)."""
        with self._lock:
            self._end()
            self.total, self.done, self.failed = total, 0, 0
            self._started = self.clock()
            self._last_write = None
            self._wrote = False
            self._open = total > 0
            if self._open and self.live:
                self._write(self._line())

    def __call__(self, result: Any) -> None:
        """One account finished (an engine SideResult; only its `status` is read)."""
        with self._lock:
            if getattr(result, "status", None) == Status.FAILED:
                self.failed += 1
            else:
                self.done += 1
            if self.finished >= self.total:
                self._end()
                return
            now = self.clock()
            last = self._started if self._last_write is None else self._last_write
            if now - last >= (self.redraw if self.live else self.interval):
                self._write(self._line())

    def close(self) -> None:
        """End the current batch now (on an error or an interrupt); idempotent."""
        with self._lock:
            self._end()

    # --- figures ------------------------------------------------------------------------------------
    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.finished)

    def rate(self) -> float:
        elapsed = self.clock() - self._started
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        return self.remaining / rate if rate > 0 else None

    def _line(self) -> str:
        eta = self.eta()
        parts = [
            f"{self.finished}/{self.total} {self.label}",
            f"{self.done} done",
            f"{self.failed} failed",
            f"{self.remaining} remaining",
            f"{self.rate():.1f}/s",
        ]
        if self.remaining:
            parts.append(f"ETA {_duration(eta)}" if eta is not None else "ETA --")
        else:
            parts.append(f"in {_duration(self.clock() - self._started)}")
        return "orgalerts: " + ", ".join(parts)

    # --- output -------------------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        self._last_write = self.clock()
        self._wrote = True
        if self.live:
            padding = " " * max(0, self._width - len(line))
            self._width = len(line)
            self.stream.write("\r" + line + padding)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._wrote:  # the last state stays on screen / closes the trail in the log
            self._write(self._line())
            if self.live:
                self.stream.write("\n")
                self.stream.flush()
        self._width = 0
