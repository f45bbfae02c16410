"""``tapebench bisect``: which commit slowed training.

    tapebench bisect --good REV [--bad REV] [--repo DIR] [--db PATH|URL] [--max-pairs N] ...

Exit codes: 0 the first bad commit was found; 1 the regression did not reproduce, or
skipped commits leave several suspects; 2 bad input (one line on stderr, nothing
written); 130 stopped by Ctrl-C or SIGTERM (what was measured is kept, and ``bisect.md``
says how far it got).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.gate import ab_schedule, add_pair_options, duet_cpus, write_output
from bench.cli.options import add_ab_options, add_command
from bench.cli.run import plan_cells
from bench.gate.bisect import BisectConfig, BisectError, Bisection, CommitRange, resolve_range
from bench.gate.bisect_history import record_step
from bench.gate.bisect_report import BisectReport, write_report
from bench.gate.search import FOUND, INTERRUPTED, RUNNING, Outcome, Search, Step
from bench.history.store import HistoryError, HistoryStore
from bench.matrix.signals import StopRequest, stop_on_signals
from bench.matrix.store import new_invocation_id
from reports.regression import GatePolicy
from reports.schema import ResultFileError

EXIT_CODES = {FOUND: 0, INTERRUPTED: 130}  # any other end: 1


def _config(args: argparse.Namespace) -> BisectConfig:
    cells, options, sources = plan_cells(args)
    schedule, duet = ab_schedule(args), duet_cpus(args)
    try:
        policy = GatePolicy(args.threshold, args.alpha, args.min_effect_ms / 1e3, args.min_runs)
        return BisectConfig(
            tuple(cells),
            options,
            sources,
            schedule,
            policy,
            duet,
            args.allow_mixed_environments,
            (PROG, *args.argv),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class _Log:
    """What happens after each step: a line on stderr, the files rewritten, the history
    told."""

    def __init__(
        self,
        bisection: str,
        commits: CommitRange,
        config: BisectConfig,
        store: HistoryStore | None,
    ) -> None:
        self.bisection, self.commits, self.config = bisection, commits, config
        self.store = store
        self.steps: list[Step] = []

    def report(self, outcome: Outcome) -> BisectReport:
        return BisectReport(self.bisection, self.commits, self.config, outcome)

    def step(self, step: Step, search: Search) -> None:
        self.steps.append(step)
        report = self.report(search.outcome(RUNNING, self.steps))
        print(f"{PROG}: {report.step_line(len(self.steps))}", file=sys.stderr)
        write_report(report, Path(self.config.options.output_dir))
        if self.store is None or step.decision == INTERRUPTED:
            return
        commit = self.commits.at(step.index).hash
        try:
            record_step(self.store, step, commit, self.commits.repo, f"bisect {self.bisection}")
        except (HistoryError, ResultFileError) as exc:  # the bisection itself goes on
            print(f"{PROG}: warning: history not updated: {exc}", file=sys.stderr)


def _history(
    args: argparse.Namespace,
) -> contextlib.AbstractContextManager[HistoryStore | None]:
    if args.db is None:
        return contextlib.nullcontext()
    try:
        return HistoryStore.open(args.db, create=True)
    except HistoryError as exc:
        raise UsageError(str(exc)) from None


def bisect_command(args: argparse.Namespace) -> int:
    """Names the commit that slowed training: reproduces the regression, then bisects.

    Judges --bad against --good with the same-job A/B of `tapebench ab`; if that is a
    regression, bisects the first-parent line between them, judging each commit against
    --good, and names the first bad commit with its A/B table and the log of every step
    (OUT/bisect.md; OUT/bisect.json; each A/B in OUT/steps/COMMIT). Exit 0: found; 1: not
    reproduced, or skipped commits leave several suspects; 2: bad input; 130: stopped.
    """
    config = _config(args)
    out = Path(args.output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--output-dir {out} is not an empty directory; a bisection needs one")
    try:
        commits = resolve_range(args.repo or Path.cwd(), args.good, args.bad)
    except BisectError as exc:
        raise UsageError(str(exc)) from None
    stop = StopRequest()
    with _history(args) as store, stop_on_signals(stop):
        log = _Log(new_invocation_id(), commits, config, store)
        outcome = Bisection(config, commits, stop, on_step=log.step).run()
    report = log.report(outcome)
    write_report(report, out)
    markdown = report.to_markdown()
    print(markdown)
    if args.summary is not None:
        write_output(args.summary, markdown + "\n\n", append=True)
    if args.json is not None:
        write_output(args.json, report.to_json() + "\n")
    print(f"{PROG}: {report.headline().replace('**', '')}", file=sys.stderr)
    if outcome.state == INTERRUPTED:
        print(
            f"{PROG}: stopped by {stop.signal_name}; the runs so far are in {out}", file=sys.stderr
        )
    return EXIT_CODES.get(outcome.state, 1)


def register(sub: Any) -> None:
    """Adds ``bisect``."""
    p = add_command(sub, "bisect", bisect_command, variants="function", datasets=["synthetic"])
    g = p.add_argument_group("bisection")
    g.add_argument("--good", required=True, metavar="REV", help="a commit without the slowdown")
    g.add_argument("--bad", default="HEAD", metavar="REV", help="a commit with it (default: HEAD)")
    g.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        help="the git repository of tapebench trees to bisect (default: the current directory's)",
    )
    g.add_argument(
        "--db",
        metavar="PATH|URL",
        help="also add each step's runs to this history (a SQLite file or a postgresql:// "
        "URL) and record a verdict on each judged commit for each cell's series",
    )
    add_pair_options(p)
    add_ab_options(p, "tapebench-bisect")
