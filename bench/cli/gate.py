"""``tapebench compare`` and ``tapebench ab``: regression verdicts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.options import (
    add_command,
    add_execution_options,
    add_gate_options,
    add_variant_options,
    add_workload_options,
)
from bench.cli.parsing import (
    parse_nonnegative_float,
    parse_positive_int,
)
from bench.cli.paths import check_output_file
from bench.cli.run import plan_cells
from bench.gate.ab import ABResult, RevisionError, ab_verdicts, run_ab
from bench.matrix.plan import read_plan
from bench.matrix.signals import StopRequest, stop_on_signals
from bench.matrix.store import write_atomic
from reports.load import load_records
from reports.regression import FAILING, GatePolicy, Verdict, compare_sides, comparison_notes
from reports.schema import ResultFileError
from reports.sequential import LookSchedule, sequential_method
from reports.sides import Side, environment_differences, load_side
from reports.verdicts import verdicts_json, verdicts_markdown


def compare_command(args: argparse.Namespace) -> int:
    """Regression verdicts: baseline vs candidate (exit 1: regression or failed candidate).

    Compares two tapebench results directories, or pytest-benchmark JSON (files, or
    directories of them), cell by cell, with the run (process) as the independent unit.
    Exit 0: no regression; 1: a regression or a failed candidate (a cell the baseline
    measured that the candidate did not finish); 2: bad input or incompatible
    environments.
    """
    policy = _gate_policy(args)
    check_gate_outputs(args)
    try:
        base, cand = load_side(args.baseline), load_side(args.candidate)
    except ResultFileError as exc:
        raise UsageError(str(exc)) from None
    return _gate(base, cand, policy, args)


def check_gate_outputs(args: argparse.Namespace) -> None:
    """--json and --summary can be written: checked before any verdict is printed, so a
    bad path is not reported after a table that looks like success."""
    for option, path in (("--json", args.json), ("--summary", args.summary)):
        if path is not None:
            check_output_file(path, option)


def write_output(path: Path, text: str, append: bool = False) -> None:
    """Writes (or appends) ``text`` to ``path`` in one rename: a reader sees the old
    content or all of the new, never part of it. Appending is what GitHub's
    ``$GITHUB_STEP_SUMMARY`` expects: every step may add to the same summary file.

    Raises:
      UsageError: the file cannot be written.
    """
    try:
        old = path.read_bytes() if append and path.exists() else b""
        write_atomic(path, old + text.encode())
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _gate(base: Side, cand: Side, policy: GatePolicy, args: argparse.Namespace) -> int:
    verdicts = compare_sides(base, cand, policy)
    if not verdicts:
        raise UsageError(f"no cell has a finished run in the baseline {base.source}")
    return _report(verdicts, base, cand, policy, args)


def _report(
    verdicts: list[Verdict],
    base: Side,
    cand: Side,
    policy: GatePolicy,
    args: argparse.Namespace,
    method: str | None = None,
) -> int:
    """Prints (and writes) the verdicts; the exit code: 1 if the gate fails."""
    differences = environment_differences(base, cand)
    if differences and not args.allow_mixed_environments:
        raise UsageError(
            f"baseline and candidate come from different environments (they "
            f"differ in {', '.join(differences)}); compare like with like, or "
            "pass --allow-mixed-environments"
        )
    markdown = verdicts_markdown(verdicts, base, cand, policy, method)
    print(markdown)
    if args.summary is not None:
        write_output(args.summary, markdown + "\n\n", append=True)
    if args.json is not None:
        doc = verdicts_json(verdicts, policy, comparison_notes(base, cand))
        write_output(args.json, doc + "\n")
    failing = {v: sum(x.verdict == v for x in verdicts) for v in FAILING}
    print(
        f"{PROG}: {failing['regression']} regression(s) and {failing['candidate failed']} "
        f"failed candidate(s) in {len(verdicts)} cell(s)",
        file=sys.stderr,
    )
    return 1 if any(failing.values()) else 0


def _gate_policy(args: argparse.Namespace) -> GatePolicy:
    try:
        return GatePolicy(
            threshold=args.threshold,
            alpha=args.alpha,
            min_effect_s=args.min_effect_ms / 1e3,
            min_runs=args.min_runs,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def ab_schedule(args: argparse.Namespace) -> LookSchedule:
    """The looks of an A/B: ``--runs N`` pairs and one look, or the sequential design."""
    try:
        if args.runs is not None:
            return LookSchedule((args.runs,))
        return LookSchedule.every(args.look_every, args.min_pairs, args.max_pairs)
    except ValueError as exc:
        raise UsageError(
            f"--runs/--min-pairs/--max-pairs/--look-every: {exc} (a paired interval needs "
            "3 pairs or more)"
        ) from None


def duet_cpus(args: argparse.Namespace) -> bool:
    """Whether pairs run as duets; refused where fewer than two CPUs are usable."""
    if args.duet and len(os.sched_getaffinity(0)) < 2:
        raise UsageError("--duet needs two CPUs to pin a pair's runs to; this process has one")
    return bool(args.duet)


def ab_command(args: argparse.Namespace) -> int:
    """Same-job A/B: a baseline revision vs this source (the CI gate).

    Exports --baseline REV from git and runs each cell in pairs -- one run from the
    baseline's source, one from this one, in fresh processes, in alternating order --
    until its verdict is decided (looking after --min-pairs pairs, then every
    --look-every, at most --max-pairs: a group-sequential design whose error rates hold
    under the repeated looks). --runs N runs exactly N pairs and looks once. Exit 0: no
    regression; 1: a regression or a failed candidate; 2: bad input.
    """
    cells, options, sources = plan_cells(args)
    policy = _gate_policy(args)
    schedule = ab_schedule(args)
    check_gate_outputs(args)
    out = Path(args.output_dir)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--output-dir {out} is not empty; an A/B needs a fresh directory")
    stop = StopRequest()
    try:
        with stop_on_signals(stop):
            result = run_ab(
                cells,
                options,
                sources,
                args.baseline,
                schedule,
                policy,
                [PROG, *args.argv],
                args.inject_delay_ms / 1e3,
                stop,
                duet=duet_cpus(args),
            )
    except RevisionError as exc:
        raise UsageError(str(exc)) from None
    if result.interrupted:
        print(
            f"{PROG}: stopped by {stop.signal_name}; the runs so far are in "
            f"{result.baseline.root} and {result.candidate.root}",
            file=sys.stderr,
        )
        return 130
    print(f"{PROG}: baseline {args.baseline} = {result.baseline_commit[:12]}", file=sys.stderr)
    return _ab_gate(result, schedule, policy, args)


def _ab_gate(
    result: ABResult, schedule: LookSchedule, policy: GatePolicy, args: argparse.Namespace
) -> int:
    plans = [read_plan(result.baseline, None), read_plan(result.candidate, None)]
    records = [load_records([result.baseline.root]), load_records([result.candidate.root])]
    verdicts = [v for v in ab_verdicts(plans, records, schedule, policy).values() if v]
    try:
        base, cand = load_side(result.baseline.root), load_side(result.candidate.root)
    except ResultFileError as exc:  # e.g. every run failed: nothing to compare
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return _report(verdicts, base, cand, policy, args, sequential_method(schedule, policy))


def add_pair_options(p: argparse.ArgumentParser) -> None:
    """How many pairs of runs an A/B takes, and when it looks."""
    g = p.add_argument_group("pairs")
    g.add_argument(
        "--min-pairs",
        type=parse_positive_int,
        default=4,
        metavar="N",
        help="pairs of runs before the first look (default: 4, at least 3)",
    )
    g.add_argument(
        "--max-pairs",
        type=parse_positive_int,
        default=20,
        metavar="N",
        help="the most pairs a cell gets: the budget (default: 20)",
    )
    g.add_argument(
        "--look-every",
        type=parse_positive_int,
        default=2,
        metavar="N",
        help="pairs between looks (default: 2)",
    )
    g.add_argument(
        "--runs",
        type=parse_positive_int,
        default=None,
        metavar="N",
        help="a fixed design instead: exactly N pairs (3 or more), one look",
    )
    g.add_argument(
        "--duet",
        action="store_true",
        help="run a pair's two runs side by side, each pinned to a CPU of its own, so the "
        "same moments of noise hit both (default: one after the other, on every CPU)",
    )


def register_ab(sub: Any) -> None:
    p = add_command(sub, "ab", ab_command, variants="function", datasets=["synthetic"])
    p.add_argument(
        "--baseline",
        required=True,
        metavar="REV",
        help="git revision to compare against (e.g. origin/main, HEAD~1)",
    )
    add_pair_options(p)
    p.add_argument(
        "--inject-delay-ms",
        type=parse_nonnegative_float,
        default=0.0,
        metavar="MS",
        help="slow every candidate step by this much (to check "
        "that the gate catches a known slowdown)",
    )
    add_variant_options(p, ["cpu"])
    add_workload_options(p, "gate")
    add_execution_options(p, "tapebench-ab")
    add_gate_options(p)


def register_compare(sub: Any) -> None:
    p = add_command(sub, "compare", compare_command)
    p.add_argument("baseline", type=Path, metavar="BASELINE")
    p.add_argument("candidate", type=Path, metavar="CANDIDATE")
    add_gate_options(p)
