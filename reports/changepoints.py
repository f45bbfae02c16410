"""Change points in a history of step times: where a cell got slower or faster, and by how
much.

A series is one cell on one environment, one point per commit in commit order; a point
holds the median step time of each run of that commit (runs, not steps, are the
independent unit). Detection runs Apache Otava's E-Divisive means (the Hunter variant:
sliding windows, then merging weak change points by a t-test) on the log of each commit's
median, so a change is judged by its ratio whatever the cell's speed. Each change point gets
its magnitude -- the ratio of the geometric means of the run medians after and before it,
each segment bounded by the neighbouring change points -- with a Welch t interval on the
log run medians, and a direction (``slower`` is a regression of step time).

A *control* cell runs work no commit touches; when the control moves across the same
commit range in the same direction, by at least half as much and significantly, the change
is the runner's, not the code's: a ``runner shift``.

Otava is imported when detection runs, so the rest of ``reports`` imports without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
INSTALL_HINT = "pip install --no-deps apache-otava==0.8.0"


class DetectorMissingError(RuntimeError):
    """Apache Otava, the change-point detector, is not installed."""


@dataclass(frozen=True)
class CommitPoint:
    """One commit of a series: the median step time of each of its runs (seconds), and
    the runs' throughput (images/s) and final test accuracy where known."""

    commit: str
    run_medians: tuple[float, ...]
    commit_time: str | None = None
    branch: str | None = None
    throughputs: tuple[float, ...] = ()
    accuracies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.commit:
            raise ValueError("a commit point needs its commit")
        values = np.asarray(self.run_medians, dtype=float)
        if not values.size or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(
                f"commit {self.commit}: run medians must be positive numbers, "
                f"got {self.run_medians!r}"
            )

    @property
    def median(self) -> float:
        """The median of the run medians."""
        return float(np.median(self.run_medians))

    @property
    def interval(self) -> tuple[float, float]:
        """A t interval on the log run medians, back-transformed; NaN below two runs."""
        return log_t_interval(self.run_medians)


@dataclass(frozen=True)
class ChangePointPolicy:
    """How change points are found and judged.

    Attributes:
      max_pvalue: Otava's significance level for a change point (its t-test after merging).
      window: Otava's sliding-window length, in commits.
      threshold: a slowdown of at least this fraction is a regression worth failing on.
      confidence: level of the magnitude intervals.
    """

    max_pvalue: float = 0.001
    window: int = 50
    threshold: float = 0.05
    confidence: float = CONFIDENCE

    def __post_init__(self) -> None:
        if not 0 < self.max_pvalue < 1:
            raise ValueError(f"max_pvalue={self.max_pvalue!r} must be in (0, 1)")
        if self.window < 4:
            raise ValueError(f"window={self.window!r} must be at least 4 commits")
        if not 0 < self.threshold < 10:
            raise ValueError(f"threshold={self.threshold!r} must be a positive fraction")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence={self.confidence!r} must be in (0, 1)")


@dataclass(frozen=True)
class ChangePoint:
    """A change between ``before`` (the last commit of the old level) and ``commit`` (the
    first of the new one). ``ratio`` is after / before (> 1: slower)."""

    index: int
    commit: str
    before: str
    ratio: float
    ratio_low: float
    ratio_high: float
    pvalue: float
    runs_before: int
    runs_after: int

    @property
    def direction(self) -> str:
        """``slower`` (step time went up), ``faster`` or ``unchanged``."""
        return "slower" if self.ratio > 1 else "faster" if self.ratio < 1 else "unchanged"

    def is_regression(self, threshold: float) -> bool:
        """At least ``threshold`` slower (the point estimate)."""
        return self.ratio >= 1 + threshold


@dataclass(frozen=True)
class SeriesAnalysis:
    """A series' points and the change points found in it, oldest first."""

    points: tuple[CommitPoint, ...]
    change_points: tuple[ChangePoint, ...] = field(default=())

    @property
    def newest(self) -> ChangePoint | None:
        """The most recent change point, if any."""
        return self.change_points[-1] if self.change_points else None


def log_t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A Student t interval of the mean of log(values), back-transformed (an interval of
    the geometric mean); NaN below two values."""
    logs = np.log(np.asarray(values, dtype=float))
    if logs.size < 2:
        return math.nan, math.nan
    if np.ptp(logs) == 0:
        return float(np.exp(logs[0])), float(np.exp(logs[0]))
    ci = sps.ttest_1samp(logs, 0.0).confidence_interval(confidence)
    return float(np.exp(ci.low)), float(np.exp(ci.high))


def ratio_interval(
    before: Sequence[float], after: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """geomean(after) / geomean(before) with a Welch t interval on the logs; the interval
    is NaN unless both sides have two values or more."""
    a, b = np.log(np.asarray(after, dtype=float)), np.log(np.asarray(before, dtype=float))
    ratio = float(np.exp(a.mean() - b.mean()))
    if a.size < 2 or b.size < 2:
        return ratio, math.nan, math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return ratio, ratio, ratio
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return ratio, float(np.exp(ci.low)), float(np.exp(ci.high))


def detect(values: Sequence[float], policy: ChangePointPolicy) -> list[tuple[int, float]]:
    """Indices (the first point of each new level) and p-values of the change points
    Otava finds in ``log(values)``."""
    if len(values) < 3:
        return []
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        raise DetectorMissingError(
            f"change-point detection needs Apache Otava: {INSTALL_HINT}"
        ) from None
    logs = [float(v) for v in np.log(np.asarray(values, dtype=float))]
    found, _ = compute_change_points(logs, window_len=policy.window, max_pvalue=policy.max_pvalue)
    return [(int(cp.index), float(cp.stats.pvalue)) for cp in found]


def _runs(points: Sequence[CommitPoint]) -> list[float]:
    return [v for p in points for v in p.run_medians]


def analyse(points: Sequence[CommitPoint], policy: ChangePointPolicy) -> SeriesAnalysis:
    """Change points of a series of commit points (oldest first), with their magnitudes."""
    points = tuple(points)
    found = detect([p.median for p in points], policy)
    bounds = [0, *(i for i, _ in found), len(points)]
    change_points = []
    for k, (index, pvalue) in enumerate(found):
        before = _runs(points[bounds[k] : index])
        after = _runs(points[index : bounds[k + 2]])
        ratio, low, high = ratio_interval(before, after, policy.confidence)
        change_points.append(
            ChangePoint(
                index,
                points[index].commit,
                points[index - 1].commit,
                ratio,
                low,
                high,
                pvalue,
                len(before),
                len(after),
            )
        )
    return SeriesAnalysis(points, tuple(change_points))


def moves_with_control(
    analysis: SeriesAnalysis,
    change: ChangePoint,
    control: Sequence[CommitPoint],
    confidence: float = CONFIDENCE,
) -> bool:
    """Whether the control moved across ``change``'s commit range like the cell did: the
    same direction, significantly (its interval excludes 1), and at least half as much in
    log terms. Compared over the commits of the cell's two segments that the control has."""
    bounds = [0, *(c.index for c in analysis.change_points), len(analysis.points)]
    k = bounds.index(change.index)
    commits = [p.commit for p in analysis.points]
    before_commits = set(commits[bounds[k - 1] : change.index])
    after_commits = set(commits[change.index : bounds[k + 1]])
    before = _runs([p for p in control if p.commit in before_commits])
    after = _runs([p for p in control if p.commit in after_commits])
    if len(before) < 2 or len(after) < 2 or change.ratio == 1:
        return False
    ratio, low, high = ratio_interval(before, after, confidence)
    cell_log, control_log = math.log(change.ratio), math.log(ratio)
    significant = low > 1 if cell_log > 0 else high < 1
    return significant and control_log / cell_log >= 0.5


def short(commit: str) -> str:
    """A commit's short hash."""
    return commit[:8]


def describe(change: ChangePoint) -> str:
    """``BEFORE..COMMIT: +12.3% [+8.1%, +16.6%] slower`` (the interval where known)."""
    interval = (
        ""
        if math.isnan(change.ratio_low)
        else f" [{change.ratio_low - 1:+.1%}, {change.ratio_high - 1:+.1%}]"
    )
    return (
        f"{short(change.before)}..{short(change.commit)}: "
        f"{change.ratio - 1:+.1%}{interval} {change.direction}"
    )
