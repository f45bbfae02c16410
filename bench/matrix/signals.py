"""Turning Ctrl-C and SIGTERM into an orderly stop.

The handler only records the request; the matrix runner acts on it between reads of the
worker's events and between runs. So a signal never lands in the middle of writing a
record: the in-flight run is asked to stop, its partial record is written, and the matrix
ends. A second signal kills the worker at once (its record is still written).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


class StopRequest:
    """Counts stop signals received; ``requested`` after the first."""

    def __init__(self) -> None:
        self.count = 0
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        """True once a stop signal has arrived."""
        return self.count > 0

    @property
    def urgent(self) -> bool:
        """True after a second signal: stop without waiting."""
        return self.count > 1

    def request(self, signum: int = signal.SIGINT) -> None:
        """Records a stop request (what the signal handler calls)."""
        self.count += 1
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """Routes SIGINT and SIGTERM to ``stop`` for the duration of the block."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.request(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
