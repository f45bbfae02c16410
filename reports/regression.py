"""Regression verdicts: is the candidate really slower than the baseline, cell by cell?

The independent unit is the run (one process): steps of one process share its fate, so
treating them as independent would make every wobble significant. Per cell:

* ``ratio`` -- candidate median step time / baseline median (pooled timed steps of the
  finished runs), with a 95% Welch t interval on the log run medians
  (:func:`reports.stats.ratio_of_medians_ci`; a seeded simulation in the tests shows it
  covers 95% at 3-10 runs);
* ``p_slower`` / ``p_faster`` -- one-sided Mann-Whitney tests on the run medians. A run
  that timed out is a censored observation, slower than any finished run: it ranks above
  them all, tied with the other timed-out runs (of either side: which of two runs stopped
  at the limit was slower is unknown). The p-value is exact, over every split of the runs.
* the verdict:
  - **regression**: ratio >= 1 + threshold / 2 (half the band: the midpoint between no
    change and the slowdown the gate is sized for), p_slower < alpha, and the absolute
    slowdown is at least ``min_effect_s`` -- all three (with timed-out candidate runs,
    the ratio of the run-level medians counting them as slower than any finished run, if
    that is larger);
  - **improvement**: the mirror image;
  - **no change**: no candidate run timed out, and the whole interval lies within the
    threshold band (or within ``min_effect_s`` of the baseline);
  - **inconclusive**: anything else -- too few runs, or an interval that straddles the
    band's edge;
  - **candidate failed**: the baseline measured the cell, and the candidate has no
    finished run of it, or one of its runs failed, ran out of memory or diverged.

A regression or a failed candidate fails the gate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from reports import stats
from reports.sides import CellRuns, Side

VERDICTS = ("regression", "improvement", "no change", "inconclusive", "candidate failed")
FAILING = ("regression", "candidate failed")
# Exact p-values with ties enumerate every split of the runs; beyond this many, the normal
# approximation (with its tie correction) is close and much cheaper.
MAX_SPLITS = 20_000


@dataclass(frozen=True)
class GatePolicy:
    """When a difference counts.

    Attributes:
      threshold: the band of "no change" (±0.10), and the slowdown the gate is sized to
        catch: a significant slowdown of at least half of it is a regression.
      alpha: significance level of the one-sided Mann-Whitney test.
      min_effect_s: smallest absolute change of the median step time that matters.
      min_runs: runs per side below which no verdict but "inconclusive" is given.
    """

    threshold: float = 0.10
    alpha: float = 0.05
    min_effect_s: float = 1e-4
    min_runs: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 10:
            raise ValueError(f"threshold={self.threshold!r} must be a positive fraction")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha={self.alpha!r} must be in (0, 1)")
        if self.min_effect_s < 0 or self.min_runs < 2:
            raise ValueError("min_effect_s must be >= 0 and min_runs >= 2")


@dataclass(frozen=True)
class Verdict:
    """The outcome for one cell; ``*_runs`` count finished runs."""

    cell: str
    verdict: str
    reason: str
    baseline_median_s: float
    candidate_median_s: float
    baseline_runs: int
    candidate_runs: int
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    p_slower: float
    p_faster: float
    candidate_status: str = ""
    candidate_log: str | None = None


def rank_p(x: np.ndarray, y: np.ndarray, alternative: str) -> float:
    """One-sided Mann-Whitney p-value of ``x`` against ``y`` (``+inf`` marks a timed-out
    run); exact over every split of the runs, ties included, when that is affordable.
    NaN below two runs on a side."""
    if len(x) < 2 or len(y) < 2:
        return math.nan
    tied = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
    method: str | sps.PermutationMethod = "exact"
    if tied:
        splits = math.comb(len(x) + len(y), len(x))
        exact = splits <= MAX_SPLITS
        method = sps.PermutationMethod(n_resamples=np.inf) if exact else "asymptotic"
    return float(sps.mannwhitneyu(x, y, alternative=alternative, method=method).pvalue)


def _run_values(runs: Sequence[np.ndarray], timed_out: int) -> np.ndarray:
    return np.array([np.median(r) for r in runs] + [math.inf] * timed_out)


def _slowdown(ratio: float, cand: np.ndarray, base: np.ndarray) -> float:
    """The ratio a regression must reach: with timed-out candidate runs, the run-level
    median ratio if it is larger (timed-out runs count as slower than any finished)."""
    if not np.isinf(cand).any():
        return ratio
    return float(np.fmax(ratio, np.median(cand) / np.median(base)))


@dataclass(frozen=True)
class _Evidence:
    """What a verdict is decided on (see the module docstring)."""

    ratio: float
    slowdown: float  # the ratio a regression must reach (:func:`_slowdown`)
    low: float
    high: float
    runs: int  # the fewer runs of the two sides, timed-out runs included
    p_slower: float
    p_faster: float
    baseline_s: float
    timed_out: int  # candidate runs

    def regression(self, policy: GatePolicy) -> bool:
        return (
            self.slowdown >= 1 + policy.threshold / 2
            and self.p_slower < policy.alpha
            and (self.slowdown - 1) * self.baseline_s >= policy.min_effect_s
        )

    def improvement(self, policy: GatePolicy) -> bool:
        return (
            self.ratio <= 1 / (1 + policy.threshold / 2)
            and self.p_faster < policy.alpha
            and (1 - self.ratio) * self.baseline_s >= policy.min_effect_s
        )

    def no_change(self, policy: GatePolicy) -> bool:
        band = self.low >= 1 / (1 + policy.threshold) and self.high <= 1 + policy.threshold
        tiny = max(abs(self.low - 1), abs(self.high - 1)) * self.baseline_s < policy.min_effect_s
        return (band or tiny) and not self.timed_out


def _decide(policy: GatePolicy, ev: _Evidence) -> tuple[str, str]:
    effect = f"{(ev.ratio - 1) * ev.baseline_s * 1e3:+.2f} ms per step"
    late = f"; {ev.timed_out} candidate run(s) timed out" if ev.timed_out else ""
    interval = f"95% interval {ev.low:.3f}–{ev.high:.3f}"
    if ev.runs < policy.min_runs:
        return "inconclusive", f"{ev.runs} run(s) on one side; need {policy.min_runs} or more"
    if ev.regression(policy):
        return "regression", f"{ev.ratio - 1:+.1%}, p={ev.p_slower:.3f}, {effect}{late}"
    if ev.improvement(policy):
        return "improvement", f"{ev.ratio - 1:+.1%}, p={ev.p_faster:.3f}, {effect}"
    if ev.no_change(policy):
        return "no change", f"{interval} within ±{policy.threshold:.0%}"
    return "inconclusive", (
        f"{interval} crosses the ±{policy.threshold:.0%} band or the change is not "
        f"significant{late}"
    )


def judge(
    base: Sequence[np.ndarray],
    cand: Sequence[np.ndarray],
    policy: GatePolicy,
    cell: str = "",
    timed_out: tuple[int, int] = (0, 0),
) -> Verdict:
    """The verdict for one cell from the step times of each side's finished runs, and how
    many runs of each side (baseline, candidate) timed out."""
    m_b, m_c = stats.median(np.concatenate(base)), stats.median(np.concatenate(cand))
    values_b, values_c = _run_values(base, timed_out[0]), _run_values(cand, timed_out[1])
    ratio = m_c / m_b
    # With one finished run on a side there is no run-level interval, and so no "no change"
    low, high = (
        stats.ratio_of_medians_ci(cand, base)
        if min(len(base), len(cand)) >= 2
        else (math.nan, math.nan)
    )
    ev = _Evidence(
        ratio,
        _slowdown(ratio, values_c, values_b),
        low,
        high,
        min(len(values_b), len(values_c)),
        rank_p(values_c, values_b, "greater"),
        rank_p(values_c, values_b, "less"),
        m_b,
        timed_out[1],
    )
    verdict, why = _decide(policy, ev)
    return Verdict(
        cell=cell,
        verdict=verdict,
        reason=why,
        baseline_median_s=m_b,
        candidate_median_s=m_c,
        baseline_runs=len(base),
        candidate_runs=len(cand),
        ratio=ratio,
        ratio_ci_low=low,
        ratio_ci_high=high,
        p_slower=ev.p_slower,
        p_faster=ev.p_faster,
    )


def _candidate_failed(cell: str, base: CellRuns, cand: CellRuns) -> Verdict:
    culprit = (cand.broken or cand.unfinished or (None,))[0]
    detail = cand.status_text() if cand.finished or cand.unfinished else "no candidate run"
    if culprit is not None and culprit.reason:
        detail += f" ({culprit.reason})"
    log = culprit.log_file if culprit is not None else None
    if log is not None:
        detail += f"; log: {log}"
    m_b = stats.median(np.concatenate(base.finished))
    m_c = stats.median(np.concatenate(cand.finished)) if cand.finished else math.nan
    return Verdict(
        cell=cell,
        verdict="candidate failed",
        reason=detail,
        baseline_median_s=m_b,
        candidate_median_s=m_c,
        baseline_runs=len(base.finished),
        candidate_runs=len(cand.finished),
        ratio=m_c / m_b,
        ratio_ci_low=math.nan,
        ratio_ci_high=math.nan,
        p_slower=math.nan,
        p_faster=math.nan,
        candidate_status=cand.status_text(),
        candidate_log=log,
    )


def judge_cell(cell: str, base: CellRuns, cand: CellRuns | None, policy: GatePolicy) -> Verdict:
    """The verdict for a cell the baseline measured: the candidate failed if it has no
    finished run or a broken one; otherwise :func:`judge`."""
    cand = cand or CellRuns()
    if not cand.finished or cand.broken:
        return _candidate_failed(cell, base, cand)
    verdict = judge(base.finished, cand.finished, policy, cell, (base.timed_out, cand.timed_out))
    return replace(verdict, candidate_status=cand.status_text())


def compare_sides(base: Side, cand: Side, policy: GatePolicy) -> list[Verdict]:
    """Verdicts for every cell the baseline measured (has a finished run of), in the
    baseline's order; a cell the candidate lacks is a failed candidate."""
    return [
        judge_cell(key, runs, cand.cells.get(key), policy)
        for key, runs in base.cells.items()
        if runs.finished
    ]


def gate_fails(verdicts: Sequence[Verdict]) -> bool:
    """Whether any verdict fails the gate (a regression, or a failed candidate)."""
    return any(v.verdict in FAILING for v in verdicts)


def comparison_notes(base: Side, cand: Side) -> list[str]:
    """Cells that were not compared, and why (a cell both sides skipped goes unsaid)."""

    def attempted(runs: CellRuns | None) -> bool:
        """Ran at all: finished, or stopped some other way than being skipped."""
        return runs is not None and (
            bool(runs.finished) or any(r.status != "skipped" for r in runs.unfinished)
        )

    notes = [
        f"Not compared: the baseline has no finished run of {key} ({runs.status_text()})"
        for key, runs in base.cells.items()
        if not runs.finished and attempted(runs)
    ]
    notes += [
        f"Only in the candidate (not compared): {key} ({runs.status_text()})"
        for key, runs in cand.cells.items()
        if attempted(runs) and not attempted(base.cells.get(key))
    ]
    return notes
