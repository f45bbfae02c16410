"""``tapebench calibrate``: what the gate does on this runner, before a team trusts it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.gate import _gate_policy, ab_schedule, add_pair_options, write_output
from bench.cli.options import (
    add_command,
    add_execution_options,
    add_gate_options,
    add_variant_options,
    add_workload_options,
)
from bench.cli.parsing import parse_count, parse_positive_floats
from bench.cli.run import plan_cells
from bench.gate.ab import RevisionError
from bench.gate.calibrate import (
    Trial,
    TrialSetting,
    run_trials,
    size_slowdowns,
    summary_lines,
    trial_dict,
    trial_row,
)
from bench.machine.fingerprint import source_revision
from bench.matrix.signals import StopRequest, stop_on_signals

HEADER = f"{'trial':<12}{'verdict':<18}{'ratio [95% CI]':<26}{'pairs':>6}{'seconds':>9}"


def calibrate_command(args: argparse.Namespace) -> int:
    """Calibrate the gate on this runner: false alarms, and the slowdowns it catches.

    Runs A/A trials (this source against --baseline, the same code: commit first) and
    trials whose candidate does a known amount of extra work per step (--slowdowns,
    fractions of the step, sized once from three quiet runs), interleaved, each a real
    sequential A/B like `tapebench ab`, optionally beside a bursty one-core load
    (--neighbour). Prints every trial, the false-alarm rate, the share of each slowdown
    caught, the trials' durations and the smallest slowdown caught with 90% power within
    --max-pairs (simulated from the A/A trials' noise). Exit 0 when done; 2 on bad input.
    """
    cells, options, sources = plan_cells(args)
    if len(cells) != 1:
        raise UsageError(f"calibrate takes one cell (got {len(cells)}): give one variant")
    if source_revision()["git_dirty"] and not args.allow_dirty:
        raise UsageError(
            "the checkout has uncommitted changes, so A/A would not compare the same "
            "code: commit them, or pass --allow-dirty"
        )
    root = Path(args.output_dir)
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"--output-dir {root} is not empty; calibrate needs a fresh directory")
    schedule, policy = ab_schedule(args), _gate_policy(args)
    stop = StopRequest()
    setting = TrialSetting(cells[0], options, sources, args.baseline, schedule, policy, root, stop)
    with stop_on_signals(stop):
        sizing = size_slowdowns(cells[0], options, sources, root / "sizing")
        print(
            f"# sized quietly: a step takes {sizing.step_s * 1e3:.2f} ms, one unit of work "
            f"{sizing.unit_s * 1e3:.3f} ms; "
            + ", ".join(
                f"+{f:.0%} = {sizing.units(f)} units ({sizing.actual(f):.1%})"
                for f in args.slowdowns
            )
            + (" -- trials run beside a bursty one-core neighbour" if args.neighbour else "")
            + (" -- pairs run as duets" if args.duet else ""),
            flush=True,
        )
        print(HEADER, flush=True)
        try:
            trials = run_trials(
                setting,
                sizing,
                args.aa,
                args.ab,
                args.slowdowns,
                args.neighbour,
                lambda t: print(trial_row(t), flush=True),
            )
        except RevisionError as exc:
            raise UsageError(str(exc)) from None
    lines = summary_lines(trials, schedule, policy)
    print("\n" + "\n".join(lines))
    _write(root, args, trials, lines)
    return 130 if stop.requested else 0


def _write(root: Path, args: argparse.Namespace, trials: list[Trial], lines: list[str]) -> None:
    doc: dict[str, Any] = {
        "neighbour": args.neighbour,
        "trials": [trial_dict(t) for t in trials],
        "summary": lines,
    }
    write_output(root / "calibration.json", json.dumps(doc, indent=1, default=str) + "\n")
    table = "\n".join([HEADER, *(trial_row(t) for t in trials), "", *lines])
    write_output(root / "calibration.txt", table + "\n")
    print(f"{PROG}: wrote {root / 'calibration.json'}", file=sys.stderr)


def register(sub: Any) -> None:
    p = add_command(
        sub, "calibrate", calibrate_command, variants="function", datasets=["synthetic"]
    )
    p.add_argument(
        "--baseline",
        default="HEAD",
        metavar="REV",
        help="the revision A/A trials compare against: the same code (default: HEAD)",
    )
    g = p.add_argument_group("trials")
    g.add_argument("--aa", type=parse_count, default=20, metavar="N", help="A/A trials (20)")
    g.add_argument(
        "--ab", type=parse_count, default=10, metavar="N", help="trials per slowdown (10)"
    )
    g.add_argument(
        "--slowdowns",
        type=parse_positive_floats,
        default=[0.10, 0.20],
        metavar="LIST",
        help="extra work per candidate step, as fractions of a step (0.10,0.20)",
    )
    g.add_argument(
        "--neighbour",
        action="store_true",
        help="run the trials beside a bursty one-core load (busy 1-5 s, idle 0-4 s)",
    )
    g.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run although the checkout differs from --baseline (A/A is then not A/A)",
    )
    add_pair_options(p)
    add_variant_options(p, ["cpu"])
    add_workload_options(p, "gate")
    add_execution_options(p, "tapebench-calibration")
    add_gate_options(p)
