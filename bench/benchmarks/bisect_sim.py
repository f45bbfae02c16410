"""Does ``tapebench bisect`` name the commit that slowed training? A seeded simulation.

    python -m bench.benchmarks.bisect_sim [--trials 1000] [--commits 16]

Each trial is a line of commits after a good one whose step time rises by ``slowdown`` at
a random commit and stays up. Every A/B is the sequential gate of ``tapebench ab``
(:func:`reports.sequential.look` and :func:`reports.sequential.decide` at the default
looks, after 4, 6, ... 20 pairs) on fresh pairs of runs, each run's median drawn with the
coverage benchmark's two levels of log-normal noise (:class:`reports.coverage.Scenario`);
the bisection is the command's own search (:func:`bench.gate.search.bisect`). Printed per
run-to-run spread: how often the first bad commit was named, a wrong commit named, several
suspects left (with the right one among them), the regression not reproduced, and the
mean number of pairs of runs a bisection took; then, for a commit that changed nothing,
how often one step calls it bad. Seeded: the same figures on any machine (it measures the
statistics, not the machine).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bench.gate.search import AMBIGUOUS, BAD, FOUND, Look, Outcome, Step, bisect, decide
from reports.coverage import Scenario
from reports.regression import GatePolicy, Verdict
from reports.sequential import LookSchedule
from reports.sequential import decide as decide_look
from reports.sequential import look as look_at

RUN_SDS = (0.025, 0.05, 0.10)
OUTCOMES = ("named", "wrong", "suspects", "not reproduced")
BASELINE_S = 0.040


@dataclass(frozen=True)
class Line:
    """A simulated line of ``commits`` commits after the good one.

    Attributes:
      commits: commits after the good one (the last is the bad end).
      slowdown: how much slower every commit from the first bad one on is.
      run_sd: run-to-run spread (sd of the log of each run's offset).
      schedule: the sequential gate's looks (``tapebench ab``'s defaults).
      policy: the gate's rules.
    """

    commits: int = 16
    slowdown: float = 1.2
    run_sd: float = 0.05
    schedule: LookSchedule = field(default_factory=lambda: LookSchedule.every(2, 4, 20))
    policy: GatePolicy = field(default_factory=GatePolicy)

    def __post_init__(self) -> None:
        if self.commits < 1 or self.slowdown <= 0:
            raise ValueError(f"commits={self.commits} must be >= 1, slowdown > 0")

    def verdict(self, rng: np.random.Generator, ratio: float) -> Verdict:
        """The sequential gate's verdict on a cell ``ratio`` times slower than the good
        one, from simulated pairs, stopping at the first look that decides."""
        scenario = Scenario(self.schedule.max_pairs, self.run_sd)
        a = np.median(scenario.simulate(rng, 1, BASELINE_S)[0], axis=1)
        b = np.median(scenario.simulate(rng, 1, BASELINE_S * ratio)[0], axis=1)
        d = np.log(b) - np.log(a)
        for k in self.schedule.looks:
            current = look_at(d[:k], self.schedule)
            p = self.policy
            decision = decide_look(current, self.schedule, p.threshold, BASELINE_S, p.min_effect_s)
            if decision.verdict is not None:
                break
        verdict = decision.verdict or "inconclusive"
        nan = math.nan
        return Verdict(
            "cell", verdict, decision.reason, BASELINE_S, BASELINE_S * current.ratio, k, k,
            current.ratio, current.low, current.high, nan, nan,
        )  # fmt: skip

    def look(self, rng: np.random.Generator, first_bad: int) -> Callable[[int], Look]:
        """A simulated A/B of commit ``index`` against the good one."""

        def look(index: int) -> Look:
            verdict = self.verdict(rng, self.slowdown if index >= first_bad else 1.0)
            return Look(*decide([verdict]), (verdict,))

        return look


def classify(outcome: Outcome, first_bad: int) -> str:
    """One of :data:`OUTCOMES`: what the bisection said about ``first_bad``."""
    if outcome.state == FOUND:
        return "named" if outcome.suspects == (first_bad,) else "wrong"
    if outcome.state == AMBIGUOUS:
        return "suspects" if first_bad in outcome.suspects else "wrong"
    return "not reproduced"


def simulate(line: Line, trials: int, seed: int) -> tuple[Counter[str], float]:
    """How ``trials`` bisections of ``line`` ended (by :data:`OUTCOMES`), and the mean
    number of pairs of runs each took."""
    rng = np.random.default_rng(seed)
    ends: Counter[str] = Counter()
    pairs = 0
    for _ in range(trials):
        first_bad = int(rng.integers(0, line.commits))
        outcome = bisect(line.commits, line.look(rng, first_bad))
        ends[classify(outcome, first_bad)] += 1
        pairs += sum(v.candidate_runs for step in outcome.steps for v in step.look.verdicts)
    return ends, pairs / trials


def false_bad_rate(line: Line, trials: int, seed: int) -> float:
    """How often one step calls a commit that changed nothing bad."""
    look = line.look(np.random.default_rng(seed), first_bad=line.commits)  # nothing slower
    bad = sum(Step.from_look(0, look(0)).decision == BAD for _ in range(trials))
    return bad / trials


def main(argv: list[str] | None = None) -> int:
    """Prints the simulated outcomes of bisections, by run-to-run spread."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmarks.bisect_sim", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=1000, help="bisections per row")
    parser.add_argument("--commits", type=int, default=16, help="commits after the good one")
    parser.add_argument("--slowdown", type=float, default=1.2, help="the first bad commit's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.commits < 1 or args.slowdown <= 1:
        parser.error("--trials and --commits must be >= 1, --slowdown > 1")
    print(
        f"{args.trials} bisections a row over {args.commits} commits, the first bad one "
        f"{args.slowdown - 1:.0%} slower; the sequential gate's default looks\n"
        f"{'run sd':>6}" + "".join(f"{name:>16}" for name in OUTCOMES) + f"{'pairs':>7}"
        f"{'false bad/step':>16}"
    )
    for sd in RUN_SDS:
        line = Line(args.commits, args.slowdown, sd)
        ends, mean_pairs = simulate(line, args.trials, args.seed)
        rates = "".join(f"{ends[name] / args.trials:>16.1%}" for name in OUTCOMES)
        false_bad = false_bad_rate(line, args.trials, args.seed)
        print(f"{sd:>6.1%}{rates}{mean_pairs:>7.1f}{false_bad:>16.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
