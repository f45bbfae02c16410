"""Progress on the terminal (stderr): the overall position and the current run's steps.

On a TTY one status line is redrawn in place; otherwise (CI logs, pipes) a line is written
when each run starts and ends, so logs stay readable.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, TextIO

from reports.schema import RunRecord


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports matrix progress: runs done of total, elapsed time, ETA, and steps."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0
        self.label = ""
        self._epochs = 1
        self._run_durations: list[float] = []
        self._run_start = self.start

    def _eta(self) -> str:
        if not self._run_durations:
            return "ETA ?"
        remaining = (self.total - self.done) * statistics.median(self._run_durations)
        return f"ETA {_clock(remaining)}"

    def _head(self) -> str:
        elapsed = _clock(time.monotonic() - self.start)
        return f"[{self.done + 1}/{self.total}] {elapsed} {self._eta()}  {self.label}"

    def _draw(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text[:200])
            self.stream.flush()

    def run_begin(self, label: str, epochs: int) -> None:
        """A run starts."""
        self.label, self._epochs, self._run_start = label, epochs, time.monotonic()
        if self.tty:
            self._draw(self._head() + "  starting worker")
        else:
            self.stream.write(self._head() + " ...\n")
            self.stream.flush()

    def on_event(self, event: dict[str, Any]) -> None:
        """An event from the running worker."""
        kind = event.get("event")
        if kind == "progress":
            self._draw(
                f"{self._head()}  epoch {event['epoch'] + 1}/{self._epochs}"
                f"  step {event['step']}/{event['steps']}"
            )
        elif kind == "epoch" and event.get("eval_seconds") is not None:
            self._draw(f"{self._head()}  epoch {event['epoch'] + 1}/{self._epochs} evaluated")

    def run_end(self, record: RunRecord) -> None:
        """A run finished (any status)."""
        self._run_durations.append(time.monotonic() - self._run_start)
        timed = [
            s for s, p in zip(record.steps.seconds, record.steps.phase, strict=True) if p == "timed"
        ]
        median = f", median step {statistics.median(timed) * 1e3:.1f} ms" if timed else ""
        why = f" ({record.reason})" if record.reason and record.status != "ok" else ""
        line = (
            f"[{self.done + 1}/{self.total}] {self.label}: {record.status}{why}"
            f"{median}, {self._run_durations[-1]:.1f} s"
        )
        self.done += 1
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        self.stream.flush()
