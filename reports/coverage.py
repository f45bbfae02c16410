"""Do the report's 95% intervals cover 95%? A seeded two-level simulation says.

Step times are simulated as two levels of log-normal noise around a known median: each
run (process) draws its own offset (run-to-run sd, e.g. 5%), then each of its steps its own
(step-to-step sd, 2%). An interval method is run on many simulated experiments, and its
coverage is the fraction of intervals that hold the true median (or the true ratio of two
medians). The run-level t intervals of :mod:`reports.stats` are checked this way by the
tests and by ``python -m bench.benchmarks.coverage``, next to the hierarchical bootstrap
they replaced (kept here, and only here, for that comparison).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reports import stats
from reports.regression import GatePolicy, judge

STEP_SD = 0.02
STEPS = 100
TRUE_RATIO = 1.2  # candidate median / baseline median in the ratio experiments
# The grid the tests and the benchmark cover: the run counts people use, run-to-run sds
# from none to 10%, and for ratios also sides with different sds.
RUN_COUNTS = (3, 5, 10)
RUN_SDS = (0.0, 0.025, 0.05, 0.10)
RATIO_SDS = ((0.0, 0.0), (0.025, 0.025), (0.05, 0.05), (0.10, 0.10), (0.0, 0.10), (0.10, 0.0))

MedianMethod = Callable[[Sequence[np.ndarray]], tuple[float, float]]
RatioMethod = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], tuple[float, float]]


@dataclass(frozen=True)
class Scenario:
    """One side of a simulated experiment.

    Attributes:
      runs: processes.
      run_sd: sd of the log of each run's offset (0.05: runs differ by about 5%).
      step_sd: sd of the log of each step's noise within a run.
      steps: timed steps per run.
    """

    runs: int
    run_sd: float
    step_sd: float = STEP_SD
    steps: int = STEPS

    def __post_init__(self) -> None:
        if self.runs < 1 or self.steps < 1:
            raise ValueError(f"runs={self.runs!r} and steps={self.steps!r} must be >= 1")
        if self.run_sd < 0 or self.step_sd < 0:
            raise ValueError(f"run_sd={self.run_sd!r} and step_sd={self.step_sd!r} must be >= 0")

    def simulate(self, rng: np.random.Generator, trials: int, median: float = 1.0) -> np.ndarray:
        """Step times of ``trials`` experiments: shape (trials, runs, steps)."""
        offsets = rng.normal(0.0, self.run_sd, (trials, self.runs, 1))
        noise = rng.normal(0.0, self.step_sd, (trials, self.runs, self.steps))
        return median * np.exp(offsets + noise)


def median_coverage(method: MedianMethod, scenario: Scenario, trials: int, seed: int) -> float:
    """Fraction of ``trials`` simulated experiments whose interval holds the true median."""
    data = scenario.simulate(np.random.default_rng(seed), trials)
    hits = 0
    for experiment in data:
        low, high = method(list(experiment))
        hits += low <= 1.0 <= high
    return hits / trials


def ratio_coverage(
    method: RatioMethod, base: Scenario, cand: Scenario, trials: int, seed: int
) -> float:
    """Fraction of ``trials`` experiments whose interval of candidate / baseline median
    holds the true ratio (:data:`TRUE_RATIO`)."""
    rng = np.random.default_rng(seed)
    bases, cands = base.simulate(rng, trials), cand.simulate(rng, trials, TRUE_RATIO)
    hits = 0
    for b, c in zip(bases, cands, strict=True):
        low, high = method(list(c), list(b))
        hits += low <= TRUE_RATIO <= high
    return hits / trials


def _hierarchical_medians(
    groups: Sequence[np.ndarray], n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Runs resampled with replacement, then steps within each chosen run, then the pooled
    median; vectorised, so runs must have equal lengths (as simulated ones do)."""
    runs = np.stack([np.asarray(g, float) for g in groups])
    n, steps = runs.shape
    picks = rng.integers(n, size=(n_resamples, n, 1))
    within = rng.integers(steps, size=(n_resamples, n, steps))
    return np.median(runs[picks, within].reshape(n_resamples, -1), axis=1)


def hierarchical_median_ci(
    groups: Sequence[np.ndarray], n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED
) -> tuple[float, float]:
    """The interval the report used before: the percentile interval of the hierarchical
    bootstrap (runs, then steps) of the pooled median."""
    rng = np.random.default_rng(seed)
    low, high = np.quantile(_hierarchical_medians(groups, n_resamples, rng), [0.025, 0.975])
    return float(low), float(high)


def hierarchical_ratio_ci(
    numerator: Sequence[np.ndarray],
    denominator: Sequence[np.ndarray],
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = stats.SEED,
) -> tuple[float, float]:
    """The ratio interval used before: both sides bootstrapped hierarchically."""
    rng = np.random.default_rng(seed)
    ratios = _hierarchical_medians(numerator, n_resamples, rng) / _hierarchical_medians(
        denominator, n_resamples, rng
    )
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


METHODS: dict[str, tuple[MedianMethod, RatioMethod]] = {
    "before": (hierarchical_median_ci, hierarchical_ratio_ci),
    "after": (stats.median_ci, stats.ratio_of_medians_ci),
}


def gate_verdicts(
    scenario: Scenario, slowdown: float, trials: int, seed: int, policy: GatePolicy | None = None
) -> list[str]:
    """The gate's verdicts on ``trials`` simulated A/B experiments, both sides drawn from
    ``scenario`` and the candidate's median ``slowdown`` times the baseline's (1.0: A/A)."""
    rng = np.random.default_rng(seed)
    bases = scenario.simulate(rng, trials, 0.040)
    cands = scenario.simulate(rng, trials, 0.040 * slowdown)
    policy = policy or GatePolicy()
    return [judge(list(b), list(c), policy).verdict for b, c in zip(bases, cands, strict=True)]
