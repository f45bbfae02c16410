"""How well ``tapebench history check`` finds change points: seeded synthetic histories.

    python -m bench.benchmarks.changepoints [--histories 100] [--noise 0.04] [--compare]

Each history has ``--commits`` commits with ``--runs`` runs each; a run's median step time
is the true level times log-normal noise of ``--noise`` (0.04: 4% run to run, the middle of
what per-run medians of one cell vary by on a shared 2-core machine), and a commit's point
is the median of its runs, as the history store builds it. Noise-only histories count the
false alarms; step histories (the level ``--step`` higher from a commit drawn between the
fifth and the last fifth) count the change points found at that commit, plus or minus one,
and how many of them ``history check`` would fail on (a regression of at least its default
threshold). ``--compare`` runs MongoDB's ``signal-processing-algorithms`` E-Divisive
(permutation test, p < 0.01) on the same histories where it is installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reports.changepoints import ChangePointPolicy, CommitPoint, analyse

Detector = Callable[[Sequence[CommitPoint]], list[int]]


@dataclass(frozen=True)
class Scenario:
    """The shape of the synthetic histories."""

    commits: int = 40
    runs: int = 3
    noise: float = 0.04
    step: float = 0.10

    def __post_init__(self) -> None:
        if self.commits < 10 or self.runs < 1 or not 0 <= self.noise < 1:
            raise ValueError(f"unusable scenario {self!r}: commits >= 10, runs >= 1, noise < 1")


def simulate_history(
    rng: np.random.Generator, scenario: Scenario, step_at: int | None = None
) -> list[CommitPoint]:
    """One history: ``scenario.commits`` points of ``scenario.runs`` run medians each,
    ``scenario.step`` slower from commit ``step_at`` on (no step when None)."""
    level = np.full(scenario.commits, 0.02)
    if step_at is not None:
        level[step_at:] *= 1 + scenario.step
    shape = (scenario.commits, scenario.runs)
    runs = level[:, None] * np.exp(rng.normal(0.0, scenario.noise, shape))
    return [CommitPoint(f"c{i:03d}", tuple(r)) for i, r in enumerate(runs)]


@dataclass(frozen=True)
class Figures:
    """Outcome of one detector over noise-only and step histories."""

    quiet: int
    found: int
    failed_on: int
    histories: int
    seconds_per_history: float


def step_position(rng: np.random.Generator, scenario: Scenario) -> int:
    """Where a step lands: between the first and the last fifth of the history."""
    fifth = scenario.commits // 5
    return int(rng.integers(fifth, scenario.commits - fifth + 1))


def evaluate(
    scenario: Scenario,
    histories: int,
    seed: int = 0,
    policy: ChangePointPolicy | None = None,
    detector: Detector | None = None,
) -> Figures:
    """False alarms, detections (at the step's commit +/- 1) and regressions flagged."""
    policy = policy or ChangePointPolicy()
    rng = np.random.default_rng(seed)
    quiet = found = failed_on = 0
    start = time.perf_counter()
    for _ in range(histories):
        points = simulate_history(rng, scenario)
        found_any = detector(points) if detector else analyse(points, policy).change_points
        quiet += not found_any
    for _ in range(histories):
        at = step_position(rng, scenario)
        points = simulate_history(rng, scenario, at)
        if detector:
            found += any(abs(i - at) <= 1 for i in detector(points))
            continue
        near = [c for c in analyse(points, policy).change_points if abs(c.index - at) <= 1]
        found += bool(near)
        failed_on += any(c.is_regression(policy.threshold) for c in near)
    seconds = (time.perf_counter() - start) / (2 * histories)
    return Figures(quiet, found, failed_on, histories, seconds)


def _mongodb_detector() -> Detector | None:
    try:
        from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive
    except ImportError:
        return None

    def detect(points: Sequence[CommitPoint]) -> list[int]:
        np.random.seed(0)  # the library draws its permutations from NumPy's global state
        series = np.log([p.median for p in points])
        return [int(i) for i in e_divisive(series, pvalue=0.01, permutations=100)]

    return detect


def main(argv: list[str] | None = None) -> int:
    """Prints the detection figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmarks.changepoints", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--histories", type=int, default=100)
    parser.add_argument("--commits", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3, help="runs per commit")
    parser.add_argument("--noise", type=float, default=0.04, help="run-to-run noise (sd of log)")
    parser.add_argument("--step", type=float, default=0.10, help="the step's size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also MongoDB's E-Divisive")
    args = parser.parse_args(argv)
    scenario = Scenario(args.commits, args.runs, args.noise, args.step)
    print(
        f"{args.histories} histories of {scenario.commits} commits x {scenario.runs} runs, "
        f"{scenario.noise:.0%} run-to-run noise, {scenario.step:.0%} step, seed {args.seed}"
    )
    detectors: dict[str, Detector | None] = {"apache-otava (history check)": None}
    if args.compare:
        mongodb = _mongodb_detector()
        if mongodb is None:
            print("signal-processing-algorithms is not installed: no comparison")
        else:
            detectors["signal-processing-algorithms"] = mongodb
    for name, detector in detectors.items():
        f = evaluate(scenario, args.histories, args.seed, detector=detector)
        threshold = ChangePointPolicy().threshold
        flagged = (
            "" if detector else f", flagged a regression (>= {threshold:.0%}) in {f.failed_on}"
        )
        print(
            f"{name}: no change point in {f.quiet}/{f.histories} noise-only histories; "
            f"the step found at its commit +/- 1 in {f.found}/{f.histories}{flagged}; "
            f"{f.seconds_per_history * 1e3:.1f} ms per history"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
