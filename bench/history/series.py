"""The stored runs as per-cell series, one point per commit, and their verdicts.

A run enters its series when it finished ``ok`` with timed steps, names its commit and
ran that commit's code (not a checkout with uncommitted changes). Commits are ordered by
commit time, then by when their first run started (for commits git could not date).

Verdict of a series, from its newest change point: ``regression`` (at least the threshold
slower, and the control did not move with it), ``runner shift`` (the control moved alike),
``slower`` (below the threshold), ``improvement``, or ``no change point``. A control
series is never a regression itself: its work does not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.changepoints import (
    ChangePoint,
    ChangePointPolicy,
    CommitPoint,
    SeriesAnalysis,
    analyse,
    moves_with_control,
)


@dataclass(frozen=True)
class Series:
    """One cell on one environment: its commit points, oldest first."""

    key: str
    label: str
    env_hash: str
    environment: dict[str, Any]
    points: tuple[CommitPoint, ...]
    left_out: int = 0  # stored runs that are not points (not ok, dirty, no commit, ...)


def _usable(runs: pd.DataFrame) -> pd.Series:
    return (
        (runs["status"] == "ok")
        & runs["median_step_s"].notna()
        & (runs["median_step_s"] > 0)
        & runs["git_commit"].notna()
        & (runs["git_dirty"].fillna(False).astype(bool) == False)  # noqa: E712
    )


def _values(group: pd.DataFrame, column: str) -> tuple[float, ...]:
    return tuple(float(v) for v in group[column].dropna())


def _points(runs: pd.DataFrame) -> tuple[CommitPoint, ...]:
    order = (
        runs.groupby("git_commit")
        .agg(time=("commit_time", "first"), started=("started_at", "min"))
        .fillna({"time": "~", "started": ""})  # undated commits after the dated ones
        .sort_values(["time", "started"])
    )
    points = []
    for commit in order.index:
        group = runs[runs["git_commit"] == commit]
        time, branch = group["commit_time"].dropna(), group["branch"].dropna()
        points.append(
            CommitPoint(
                str(commit),
                _values(group, "median_step_s"),
                str(time.iloc[0]) if len(time) else None,
                str(branch.iloc[0]) if len(branch) else None,
                _values(group, "images_per_s"),
                _values(group, "test_accuracy"),
            )
        )
    return tuple(points)


def build_series(runs: pd.DataFrame) -> list[Series]:
    """Every series with at least one point, in label order."""
    if not len(runs):
        return []
    usable = _usable(runs)
    result = []
    for key, group in runs.groupby("series_key", sort=False):
        good = group[usable[group.index]]
        if not len(good):
            continue
        first = group.iloc[0]
        result.append(
            Series(
                str(key),
                str(first["label"]),
                str(first["env_hash"]),
                json.loads(first["fields_json"]),
                _points(good),
                len(group) - len(good),
            )
        )
    return sorted(result, key=lambda s: (s.label, s.env_hash))


def is_control(series: Series, control: str | None) -> bool:
    """Whether ``control`` (a label, or its leading variant part) names ``series``."""
    return bool(control) and (series.label == control or series.label.startswith(f"{control} "))


@dataclass(frozen=True)
class SeriesCheck:
    """A series, its change points and the verdict on its newest one."""

    series: Series
    analysis: SeriesAnalysis
    verdict: str
    control: bool = False

    @property
    def fails(self) -> bool:
        """Whether this series fails the check."""
        return self.verdict == "regression"


def _verdict(
    analysis: SeriesAnalysis, policy: ChangePointPolicy, control: tuple[CommitPoint, ...] | None
) -> str:
    newest: ChangePoint | None = analysis.newest
    if newest is None:
        return "no change point"
    if newest.direction == "faster":
        return "improvement"
    if not newest.is_regression(policy.threshold):
        return "slower"
    if control is not None and moves_with_control(analysis, newest, control, policy.confidence):
        return "runner shift"
    return "regression"


def check_series(
    series: list[Series], policy: ChangePointPolicy, control: str | None = None
) -> list[SeriesCheck]:
    """Change points and verdicts of every series; ``control`` names the control cell
    (compared within the same environment).

    Raises:
      ValueError: ``control`` names no series.
    """
    controls = {s.env_hash: s for s in series if is_control(s, control)}
    if control and not controls:
        raise ValueError(f"--control {control!r} names no series (see `history list`)")
    checks = []
    for s in series:
        analysis = analyse(s.points, policy)
        if is_control(s, control):
            checks.append(
                SeriesCheck(s, analysis, f"control: {_verdict(analysis, policy, None)}", True)
            )
            continue
        reference = controls.get(s.env_hash)
        verdict = _verdict(analysis, policy, reference.points if reference else None)
        checks.append(SeriesCheck(s, analysis, verdict))
    return checks
