"""When a run has measured enough: adaptive sampling within one run.

A run that is given a :class:`StopRule` ends as soon as the median of its timed steps is
known to the requested precision, or its time is up -- but never before a floor of timed
steps. The precision is the half-width of a distribution-free 95% interval of the median
(order statistics, binomial ranks) relative to the median. Steps of one run are not
independent (a burst of load slows several in a row), so this interval is a stopping
rule for one run, not a statement about the variant: that comes from several runs (the
run-level interval over their medians). No TensorFlow here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

Z95 = 1.959963984540054


def median_precision(samples: list[float]) -> float:
    """Half the width of the distribution-free 95% interval of the median of ``samples``,
    relative to the median; inf below 6 samples (no such interval exists)."""
    n = len(samples)
    if n < 6:
        return math.inf
    x = sorted(samples)
    half = Z95 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half))
    mid = (x[(n - 1) // 2] + x[n // 2]) / 2
    return (x[high] - x[low]) / (2 * mid) if mid > 0 else math.inf


@dataclass
class StopRule:
    """Ends a run early: at ``precision`` (relative half-width of its median's interval)
    or at ``deadline`` (``time.monotonic()``), whichever comes first, once at least
    ``min_timed_steps`` timed steps are in. Either may be None (not a reason to stop)."""

    precision: float | None = None
    deadline: float | None = None
    min_timed_steps: int = 20
    timed: list[float] = field(default_factory=list)  # per-step seconds of timed calls
    timed_steps: int = 0
    reason: str | None = None  # "precision" or "budget" once stopped

    def __post_init__(self) -> None:
        if self.precision is not None and not 0 < self.precision < 1:
            raise ValueError(f"precision={self.precision!r} must be a fraction in (0, 1)")
        if self.min_timed_steps < 1:
            raise ValueError(f"min_timed_steps={self.min_timed_steps!r} must be >= 1")

    def observe(self, seconds_per_step: float, steps: int, phase: str) -> None:
        """Takes one call's per-step time (a sample), if its phase is ``timed``."""
        if phase == "timed":
            self.timed.append(seconds_per_step)
            self.timed_steps += steps

    def should_stop(self, now: float | None = None) -> bool:
        """Whether the run has measured enough; records why in :attr:`reason`."""
        if self.reason is not None:
            return True
        if self.timed_steps < self.min_timed_steps:
            return False
        now = time.monotonic() if now is None else now
        if self.precision is not None and median_precision(self.timed) <= self.precision:
            self.reason = "precision"
        elif self.deadline is not None and now >= self.deadline:
            self.reason = "budget"
        return self.reason is not None

    def summary(self) -> dict[str, object]:
        """What the run's record says about its sampling."""
        reached = median_precision(self.timed)
        return {
            "stopped_by": self.reason or "plan",
            "precision": None if math.isinf(reached) else reached,
            "target_precision": self.precision,
            "timed_steps": self.timed_steps,
        }
