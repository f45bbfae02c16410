"""A group-sequential comparison of paired runs: add A/B pairs until the answer is known.

The A/B gate runs the baseline (A) and the candidate (B) in pairs close together in time
and looks at the evidence after every few pairs. Looking repeatedly at a fixed-sample test
inflates its error rate (each look is another chance of a false alarm), so the interval
used at the looks is a *group-sequential* one (Pocock 1977): the looks are planned in
advance (:class:`LookSchedule`), and the intervals are widened so that they cover the true
difference *at every look at once* with the nominal probability. Stopping at any look, for
any reason, then keeps the error rates.

The statistic of a pair is ``d = log(B) - log(A)`` of the two runs' per-run statistics
(e.g. median step times); its mean is the log of the candidate/baseline ratio. At look
``k`` with ``n_k`` pairs the interval is ``mean ± c_k * sd / sqrt(n_k)``, where ``c_k`` is the
t quantile (``n_k - 1`` degrees of freedom) at one nominal level shared by all looks. That
level is found by a seeded Monte Carlo simulation of the studentised statistics under
normal differences, so it is right for the small ``n`` a gate uses, where the
normal-theory Pocock constants are not.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from reports.regression import GatePolicy, Verdict
from reports.schema import RunRecord

CONFIDENCE = 0.95
SIMULATIONS = 200_000
SEED = 20261127


@dataclass(frozen=True)
class LookSchedule:
    """When the evidence is examined: after ``looks[k]`` pairs, ascending, the first at
    least 3 (a standard deviation needs two pairs; a t quantile with 1 degree of freedom
    is too wide to decide anything)."""

    looks: tuple[int, ...]

    def __post_init__(self) -> None:
        looks = self.looks
        if not looks or looks[0] < 3 or any(b <= a for a, b in itertools.pairwise(looks)):
            raise ValueError(f"looks={looks!r} must be ascending pair counts, the first >= 3")

    @classmethod
    def every(cls, step: int, first: int, last: int) -> LookSchedule:
        """Looks after ``first``, ``first + step``, ... pairs, up to ``last`` (included)."""
        if step < 1 or last < first:
            raise ValueError(f"cannot look every {step} pairs from {first} to {last}")
        looks = list(range(first, last + 1, step))
        if looks[-1] != last:
            looks.append(last)
        return cls(tuple(looks))

    @property
    def max_pairs(self) -> int:
        """The budget: the number of pairs at the last look."""
        return self.looks[-1]


@lru_cache(maxsize=64)
def nominal_level(
    schedule: LookSchedule, confidence: float = CONFIDENCE, simulations: int = SIMULATIONS
) -> float:
    """The two-sided level every look is tested at (Pocock's equal nominal levels for t
    statistics): the ``1 - confidence`` quantile of the smallest p-value over the looks
    for independent standard normal pairs, so that all looks together err with probability
    ``1 - confidence``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be in (0, 1)")
    rng = np.random.default_rng(SEED)
    smallest = np.ones(simulations)
    chunk = 20_000
    for start in range(0, simulations, chunk):
        m = min(chunk, simulations - start)
        x = rng.standard_normal((m, schedule.max_pairs))
        total, squares = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
        for n in schedule.looks:
            mean = total[:, n - 1] / n
            var = np.maximum((squares[:, n - 1] - n * mean * mean) / (n - 1), 1e-300)
            p = 2 * sps.t.sf(np.abs(mean) / np.sqrt(var / n), n - 1)
            smallest[start : start + m] = np.minimum(smallest[start : start + m], p)
    return float(np.quantile(smallest, 1 - confidence))


@lru_cache(maxsize=1024)
def critical_value(pairs: int, schedule: LookSchedule, confidence: float = CONFIDENCE) -> float:
    """The multiple of the standard error that bounds the interval after ``pairs`` pairs."""
    return float(sps.t.ppf(1 - nominal_level(schedule, confidence) / 2, pairs - 1))


@dataclass(frozen=True)
class Look:
    """The evidence after ``pairs`` pairs: the ratio's estimate and its interval."""

    pairs: int
    ratio: float
    low: float
    high: float


def look(differences: Sequence[float], schedule: LookSchedule) -> Look:
    """The group-sequential interval of the candidate/baseline ratio after
    ``len(differences)`` pairs, which must be one of the schedule's looks."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    if n not in schedule.looks:
        raise ValueError(f"{n} pairs is not a planned look ({schedule.looks})")
    if not np.isfinite(d).all():
        raise ValueError("paired differences must be finite")
    mean = float(d.mean())
    half = critical_value(n, schedule) * float(d.std(ddof=1)) / math.sqrt(n)
    return Look(n, math.exp(mean), math.exp(mean - half), math.exp(mean + half))


@dataclass(frozen=True)
class Decision:
    """What a look decides: a verdict, or None to run more pairs."""

    verdict: str | None
    reason: str
    look: Look


def decide(
    current: Look, schedule: LookSchedule, threshold: float, baseline_s: float, min_effect_s: float
) -> Decision:
    """The verdict at a look, or ``None`` (keep going) before the last one.

    * **regression** -- the interval lies above 1 (slower, at the sequential confidence)
      and the estimate is at least half of ``threshold`` and ``min_effect_s`` per step:
      the midpoint between "no change" and the slowdown the gate is sized to catch;
    * **improvement** -- the mirror image;
    * **no change** -- the interval lies within ``±threshold``;
    * **inconclusive** -- none of these by the last look (the budget is spent).
    """
    ratio, low, high = current.ratio, current.low, current.high
    half = 1 + threshold / 2
    effect = (ratio - 1) * baseline_s
    span = f"{low:.3f}–{high:.3f} after {current.pairs} pairs"
    if low > 1 and ratio >= half and effect >= min_effect_s:
        return Decision("regression", f"{ratio - 1:+.1%}, interval {span}", current)
    if high < 1 and ratio <= 1 / half and -effect >= min_effect_s:
        return Decision("improvement", f"{ratio - 1:+.1%}, interval {span}", current)
    if 1 / (1 + threshold) <= low and high <= 1 + threshold:
        return Decision("no change", f"interval {span} within ±{threshold:.0%}", current)
    if current.pairs >= schedule.max_pairs:
        return Decision(
            "inconclusive", f"interval {span}: the budget ran out before a verdict", current
        )
    return Decision(None, f"interval {span}: undecided", current)


def simulate(
    ratio: float,
    sd: float,
    schedule: LookSchedule,
    threshold: float = 0.10,
    trials: int = 2000,
    seed: int = 0,
    tail_df: float | None = None,
) -> dict[str, float]:
    """Share of each verdict, and the mean pairs used, when the true ratio is ``ratio``
    and a pair's log difference has standard deviation ``sd`` (normal, or Student t with
    ``tail_df`` degrees of freedom scaled to that sd, for heavier tails)."""
    rng = np.random.default_rng(seed)
    n = schedule.max_pairs
    if tail_df is None:
        noise = rng.standard_normal((trials, n))
    else:
        noise = rng.standard_t(tail_df, (trials, n)) / math.sqrt(tail_df / (tail_df - 2))
    d = math.log(ratio) + sd * noise
    counts = dict.fromkeys(("regression", "improvement", "no change", "inconclusive"), 0)
    pending = np.ones(trials, dtype=bool)
    used = 0
    for k in schedule.looks:  # every trial at once, look by look
        rows = np.flatnonzero(pending)
        mean = d[rows, :k].mean(axis=1)
        half = critical_value(k, schedule) * d[rows, :k].std(axis=1, ddof=1) / math.sqrt(k)
        for i, m, h in zip(rows, mean, half, strict=True):
            current = Look(k, math.exp(m), math.exp(m - h), math.exp(m + h))
            verdict = decide(current, schedule, threshold, 1.0, 0.0).verdict
            if verdict is not None:
                counts[verdict] += 1
                used += k
                pending[i] = False
    shares: dict[str, float] = {v: c / trials for v, c in counts.items()}
    shares["mean_pairs"] = used / trials
    return shares


@dataclass(frozen=True)
class Pair:
    """The two runs of one A/B pair: the same cell and repeat, close together in time."""

    baseline: RunRecord
    candidate: RunRecord


def run_statistic(record: RunRecord) -> float:
    """What a run contributes to a pair: the median of its timed steps (NaN without any)."""
    timed = record.steps.timed_seconds
    return float(np.median(timed)) if timed else math.nan


def paired_verdict(
    cell: str,
    pairs: Sequence[Pair],
    schedule: LookSchedule,
    policy: GatePolicy,
    final: bool = False,
) -> Verdict | None:
    """The verdict on a cell from its pairs so far, or None while more pairs are due.

    A candidate run that did not finish ``ok`` is a failed candidate at once; a baseline
    run that did not is inconclusive (the gate cannot judge the candidate against it).
    Otherwise the decision is :func:`decide`'s at the last look reached; ``final`` (the
    loop is over, e.g. interrupted) turns an open question into "inconclusive".
    """
    for pair in pairs:
        if pair.candidate.status == pair.baseline.status == "skipped":
            reason = f"skipped on both sides: {pair.candidate.reason}"
            return _verdict(cell, "inconclusive", reason, pairs, None)
        if pair.candidate.status != "ok":
            return _failed(cell, pair, pairs)
        if pair.baseline.status != "ok":
            reason = f"baseline run {pair.baseline.status}: {pair.baseline.reason}"
            return _verdict(cell, "inconclusive", reason, pairs, None)
    done = [k for k in schedule.looks if k <= len(pairs)]
    if not done:
        if not final:
            return None
        reason = f"{len(pairs)} pair(s), fewer than the first look's {schedule.looks[0]}"
        return _verdict(cell, "inconclusive", reason, pairs, None)
    if done[-1] != len(pairs) and not final:
        return None  # between looks: the pairs since the last look are not judged yet
    a = np.array([run_statistic(p.baseline) for p in pairs[: done[-1]]])
    b = np.array([run_statistic(p.candidate) for p in pairs[: done[-1]]])
    current = look(np.log(b) - np.log(a), schedule)
    decision = decide(current, schedule, policy.threshold, float(np.median(a)), policy.min_effect_s)
    if decision.verdict is None and not final:
        return None
    return _verdict(cell, decision.verdict or "inconclusive", decision.reason, pairs, current)


def _verdict(
    cell: str, verdict: str, reason: str, pairs: Sequence[Pair], current: Look | None
) -> Verdict:
    base = [run_statistic(p.baseline) for p in pairs if p.baseline.status == "ok"]
    cand = [run_statistic(p.candidate) for p in pairs if p.candidate.status == "ok"]
    return Verdict(
        cell=cell,
        verdict=verdict,
        reason=reason,
        baseline_median_s=float(np.median(base)) if base else math.nan,
        candidate_median_s=float(np.median(cand)) if cand else math.nan,
        baseline_runs=len(base),
        candidate_runs=len(cand),
        ratio=current.ratio if current else math.nan,
        ratio_ci_low=current.low if current else math.nan,
        ratio_ci_high=current.high if current else math.nan,
        p_slower=math.nan,
        p_faster=math.nan,
        candidate_status="ok" if len(cand) == len(pairs) else "",
    )


def _failed(cell: str, pair: Pair, pairs: Sequence[Pair]) -> Verdict:
    run = pair.candidate
    detail = f"candidate run {run.status}" + (f" ({run.reason})" if run.reason else "")
    if run.log_file:
        detail += f"; log: {run.log_file}"
    verdict = _verdict(cell, "candidate failed", detail, pairs, None)
    return dataclasses.replace(verdict, candidate_status=run.status, candidate_log=run.log_file)


def sequential_method(schedule: LookSchedule, policy: GatePolicy) -> str:
    """How the sequential A/B decides, in a sentence for the report."""
    looks = ", ".join(map(str, schedule.looks))
    return (
        "Ratios: candidate / baseline median step time over pairs of runs close in time, "
        "with a 95% group-sequential interval (paired t on the log ratios, Pocock's "
        f"levels for looks after {looks} pairs: the error rates hold though each cell is "
        f"looked at repeatedly). A regression: the interval lies above 1 and the slowdown "
        f"is at least {policy.threshold / 2:.0%} (half the ±{policy.threshold:.0%} band) "
        f"and {policy.min_effect_s * 1e3:g} ms per step; no change: the interval lies "
        f"within ±{policy.threshold:.0%}"
    )
