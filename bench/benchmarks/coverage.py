"""Do the report's 95% intervals cover 95%? The coverage table, before and after.

    python -m bench.benchmarks.coverage

Simulates step times with two levels of log-normal noise (each run its own offset, each
step its own; :mod:`reports.coverage`), and prints, by run count and run-to-run sd, how
often a nominal 95% interval holds the true median, and the true ratio of two medians:
"before" for the hierarchical bootstrap the report used to use, "after" for the run-level
t intervals it uses now. Then the regression gate's simulated false-alarm rate (A/A) and
its detection rate for a 20% slowdown, 5 runs a side. Seeded: the same figures every time,
on any machine (it measures statistics, not the machine). The "before" column is slow (a
bootstrap of 2000 resamples per experiment); ``--before-trials 0`` leaves it out.
"""

from __future__ import annotations

import argparse
import sys
import time

from reports.coverage import (
    METHODS,
    RATIO_SDS,
    RUN_COUNTS,
    RUN_SDS,
    STEP_SD,
    STEPS,
    TRUE_RATIO,
    Scenario,
    gate_verdicts,
    median_coverage,
    ratio_coverage,
)


def _cell(value: float | None) -> str:
    return f"{value:>8.1%}" if value is not None else f"{'-':>8}"


def _median_table(trials: dict[str, int], seed: int) -> float:
    print(f"\nMedian step time\n{'runs':>4}  {'run sd':>13}{'before':>8}{'after':>8}")
    lowest = 1.0
    for runs in RUN_COUNTS:
        for sd in RUN_SDS:
            cov = {
                name: median_coverage(METHODS[name][0], Scenario(runs, sd), n, seed) if n else None
                for name, n in trials.items()
            }
            lowest = min(lowest, cov["after"] or 1.0)
            print(f"{runs:>4}  {sd:>13.1%}{_cell(cov['before'])}{_cell(cov['after'])}", flush=True)
    return lowest


def _ratio_table(trials: dict[str, int], seed: int) -> float:
    print(
        f"\nRatio of medians (candidate {TRUE_RATIO}x the baseline)\n"
        f"{'runs':>4}  {'run sd b / c':>13}{'before':>8}{'after':>8}"
    )
    lowest = 1.0
    for runs in RUN_COUNTS:
        for sd_b, sd_c in RATIO_SDS:
            base, cand = Scenario(runs, sd_b), Scenario(runs, sd_c)
            cov = {
                name: ratio_coverage(METHODS[name][1], base, cand, n, seed) if n else None
                for name, n in trials.items()
            }
            lowest = min(lowest, cov["after"] or 1.0)
            sds = f"{sd_b:.1%} / {sd_c:.1%}"
            print(f"{runs:>4}  {sds:>13}{_cell(cov['before'])}{_cell(cov['after'])}", flush=True)
    return lowest


def _gate_table(trials: int, seed: int) -> None:
    print(
        f"\nRegression gate, 5 runs a side, {trials} simulated experiments a row\n"
        f"{'run sd':>6}{'A/A: regression':>17}{'20% slower: regression':>24}"
    )
    for sd in RUN_SDS:
        rates = [
            gate_verdicts(Scenario(5, sd), slowdown, trials, seed).count("regression") / trials
            for slowdown in (1.0, 1.2)
        ]
        print(f"{sd:>6.1%}{rates[0]:>17.1%}{rates[1]:>24.1%}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Prints the coverage tables and the gate's simulated error rates."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmarks.coverage", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=2000, help="experiments per row, after")
    parser.add_argument(
        "--before-trials", type=int, default=300, help="experiments per row, before (0: skip)"
    )
    parser.add_argument("--gate-trials", type=int, default=1000, help="experiments per gate row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.before_trials < 0 or args.gate_trials < 1:
        parser.error("--trials and --gate-trials must be >= 1, --before-trials >= 0")
    start = time.monotonic()
    print(
        f"Coverage of nominal 95% intervals. Simulated: log-normal run-to-run noise (sd "
        f"below) and step-to-step noise (sd {STEP_SD:.0%}), {STEPS} timed steps a run.\n"
        f"before: hierarchical percentile bootstrap (runs, then steps), "
        f"{args.before_trials} experiments a row; after: t interval of the log run medians "
        f"(Welch for the ratio), {args.trials} experiments a row."
    )
    trials = {"before": args.before_trials, "after": args.trials}
    lowest = min(_median_table(trials, args.seed), _ratio_table(trials, args.seed))
    print(f"\nlowest coverage after: {lowest:.1%}")
    _gate_table(args.gate_trials, args.seed)
    print(f"\n{time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
