"""Capturing a profiler trace of a window of training steps.

Uses ``tf.profiler.experimental``: the profiler starts before step ``first``, every step in
``[first, last)`` is marked with a ``Trace("train", step_num=..., _r=1)`` so the tools can
find step boundaries, and it stops after step ``last - 1``. The trace is written as
``<logdir>/plugins/profile/<session>/<host>.xplane.pb`` (the TensorBoard / xprof layout).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf


@dataclass(frozen=True)
class TraceWindow:
    """Steps ``[first, last)`` (counted over the whole run) to trace into ``logdir``."""

    logdir: str
    first: int
    last: int

    def __post_init__(self) -> None:
        if not 0 <= self.first < self.last:
            raise ValueError(
                f"profile window {self.first}:{self.last} must satisfy 0 <= first < last"
            )

    def covers(self, step: int) -> bool:
        """Whether ``step`` is traced."""
        return self.first <= step < self.last

    def before(self, step: int) -> None:
        """Called before ``step`` runs: starts the profiler at the window's first step."""
        if step == self.first:
            tf.profiler.experimental.start(self.logdir)

    def after(self, step: int) -> None:
        """Called after ``step`` ran (and was synced): stops at the window's last step."""
        if step == self.last - 1:
            tf.profiler.experimental.stop()

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Marks ``step`` for the profiler's step-time analysis."""
        with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
            yield

    def abort(self) -> None:
        """Stops a profiler left running by an error (no-op if it is not running)."""
        with contextlib.suppress(Exception):
            tf.profiler.experimental.stop()


def session_dirs(logdir: str | Path) -> list[Path]:
    """The profile sessions written under ``logdir`` (``plugins/profile/<session>``)."""
    root = Path(logdir) / "plugins" / "profile"
    return sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
