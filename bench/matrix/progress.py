"""Progress on the terminal (stderr): the overall position and the current run's steps.

On a TTY one status line is redrawn in place; otherwise (CI logs, pipes) a line is written
when each run starts and ends, and every 30 s while one runs, so logs stay readable.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, TextIO

from reports.schema import RunRecord

LOG_INTERVAL_S = 30.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports matrix progress: runs done of total, elapsed time, ETA, and steps."""

    def __init__(
        self, total: int, stream: TextIO | None = None, timeout_s: float | None = None
    ) -> None:
        self.total = total
        self.timeout_s = timeout_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0
        self.label = ""
        self._epochs = 1
        self._durations: list[float] = []
        self._run_start = self.start
        self._last_log = self.start
        self._fraction = 0.0  # of the current run's steps

    def _eta(self) -> str:
        running = time.monotonic() - self._run_start
        if self._fraction > 0:
            current = running * (1 - self._fraction) / self._fraction
        elif self._durations:
            current = max(statistics.median(self._durations) - running, 0.0)
        else:
            return "ETA ?"
        if self.timeout_s is not None:
            current = min(current, max(self.timeout_s - running, 0.0))
        later = self.total - self.done - 1
        if later and not self._durations:
            return "ETA ?"
        rest = later * statistics.median(self._durations) if later else 0.0
        return f"ETA {_clock(current + rest)}"

    def _head(self) -> str:
        elapsed = _clock(time.monotonic() - self.start)
        return f"[{self.done + 1}/{self.total}] {elapsed} {self._eta()}  {self.label}"

    def _write(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        self.stream.flush()

    def _status(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\033[K" + text[:200])
            self.stream.flush()
        elif now - self._last_log >= LOG_INTERVAL_S:
            self._write(text)
            self._last_log = now

    def note(self, text: str) -> None:
        """A one-off message."""
        self._write(text)

    def run_begin(self, label: str, epochs: int) -> None:
        """A run starts."""
        self.label, self._epochs, self._fraction = label, epochs, 0.0
        self._run_start = self._last_log = time.monotonic()
        if self.tty:
            self._status(self._head() + "  starting worker")
        else:
            self._write(self._head() + " ...")

    def on_event(self, event: dict[str, Any]) -> None:
        """An event from the running worker."""
        if event.get("event") == "progress":
            done = event["epoch"] * event["steps"] + event["step"]
            self._fraction = done / (self._epochs * event["steps"])
            self._status(
                f"{self._head()}  epoch {event['epoch'] + 1}/{self._epochs}"
                f"  step {event['step']}/{event['steps']}"
            )

    def run_end(self, record: RunRecord) -> None:
        """A run finished (any status)."""
        self._durations.append(time.monotonic() - self._run_start)
        timed = record.steps.timed_seconds
        median = f", median step {statistics.median(timed) * 1e3:.1f} ms" if timed else ""
        why = f" ({record.reason})" if record.reason and record.status != "ok" else ""
        self._write(
            f"[{self.done + 1}/{self.total}] {self.label}: {record.status}{why}"
            f"{median}, {self._durations[-1]:.1f} s"
        )
        self.done += 1
