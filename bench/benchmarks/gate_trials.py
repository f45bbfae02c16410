"""End-to-end trials of the regression gate: its false-alarm and detection rates.

    python -m bench.benchmarks.gate_trials --trials 10 --runs 5

Alternates A/A trials (``tapebench ab --baseline HEAD`` on an unmodified checkout: the same
code twice) with A/B trials (the same, with every candidate step slowed by ``--slowdown``
times the baseline's median step time, calibrated on the first A/A trial). Each trial is
the real command in a fresh process. Prints each verdict, then the false-alarm rate, the
detection rate and the longest trial. Not a unit test: it takes a while and measures the
machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine.fingerprint import SOURCE_ROOT, source_revision


def _trial(out: Path, runs: int, delay_ms: float, extra: list[str]) -> tuple[dict, float]:
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "ab",
        "--baseline",
        "HEAD",
        "--runs",
        str(runs),
        "-o",
        str(out),
        "--json",
        str(out / "verdicts.json"),
        "--inject-delay-ms",
        f"{delay_ms:.3f}",
        *extra,
    ]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=SOURCE_ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"trial failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    (verdict,) = json.loads((out / "verdicts.json").read_text())["verdicts"]
    return verdict, seconds


def main(argv: list[str] | None = None) -> int:
    """Runs the trials and prints the rates."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmarks.gate_trials", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=10, help="A/A and A/B trials each")
    parser.add_argument("--runs", type=int, default=5, help="runs per side in each trial")
    parser.add_argument(
        "--slowdown",
        type=float,
        default=0.20,
        help="injected slowdown of the A/B candidate (default 0.20)",
    )
    parser.add_argument("--out", type=Path, help="keep the trial results here")
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run even if the checkout differs from HEAD (A/A is then not identical code)",
    )
    args, extra = parser.parse_known_args(argv)
    if source_revision()["git_dirty"] and not args.allow_dirty:
        raise SystemExit(
            "the checkout has uncommitted changes: A/A would not compare "
            "identical code (commit them, or pass --allow-dirty)"
        )
    out = args.out or Path(tempfile.mkdtemp(prefix="tapebench-gate-"))
    outcomes: dict[str, list[str]] = {"A/A": [], "A/B": []}
    delay_ms, longest = 0.0, 0.0
    print(f"{'trial':<8}{'verdict':<14}{'ratio [95% CI]':<24}{'p slower':>9}{'seconds':>9}")
    for k in range(args.trials):
        for kind in ("A/A", "A/B"):
            injected = delay_ms if kind == "A/B" else 0.0
            verdict, seconds = _trial(
                out / f"{kind.replace('/', '')}-{k}", args.runs, injected, extra
            )
            if not delay_ms:
                delay_ms = verdict["baseline_median_s"] * 1e3 * args.slowdown
                print(
                    f"# calibrated: baseline median {verdict['baseline_median_s'] * 1e3:.2f}"
                    f" ms per step; A/B candidates get +{delay_ms:.2f} ms per step"
                )
            outcomes[kind].append(verdict["verdict"])
            longest = max(longest, seconds)
            p = verdict["p_slower"]
            print(
                f"{kind + str(k):<8}{verdict['verdict']:<14}"
                f"{verdict['ratio']:.3f} [{verdict['ratio_ci_low']:.3f}–"
                f"{verdict['ratio_ci_high']:.3f}]{'':<4}"
                f"{'n/a' if p is None else f'{p:.3f}':>9}{seconds:>9.0f}",
                flush=True,
            )
    false_alarms = outcomes["A/A"].count("regression")
    detections = outcomes["A/B"].count("regression")
    print(
        f"\nfalse alarms (A/A): {false_alarms}/{args.trials} = "
        f"{false_alarms / args.trials:.0%}   verdicts: "
        f"{ {v: outcomes['A/A'].count(v) for v in set(outcomes['A/A'])} }"
    )
    print(
        f"detections ({args.slowdown:.0%} slower, A/B): {detections}/{args.trials} = "
        f"{detections / args.trials:.0%}   verdicts: "
        f"{ {v: outcomes['A/B'].count(v) for v in set(outcomes['A/B'])} }"
    )
    print(f"longest trial: {longest:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
