"""``tapebench history``: record runs of many commits, find change points, draw trends.

    tapebench history add RESULTS... [--db PATH|URL]
    tapebench history list [--db ...]
    tapebench history check [--db ...] [--threshold F] [--control LABEL] [--json FILE]
    tapebench history report --html FILE [--db ...]

Exit codes: 0 done (``check``: no series' newest change point is a regression); 1 a
regression; 2 bad input (one line, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.parsing import parse_fraction, parse_positive_int
from bench.cli.paths import check_input_dir, check_output_file
from bench.history.rows import CommitInfo, RunRow, commit_info, resolve_commit, to_row
from bench.history.series import SeriesCheck, build_series, check_series
from bench.history.store import DEFAULT_DB, HistoryError, HistoryStore, now
from bench.history.summary import checks_json, checks_markdown, policy_note
from bench.machine.fingerprint import SOURCE_ROOT
from bench.matrix.store import write_atomic
from reports.changepoints import ChangePointPolicy, DetectorMissingError
from reports.load import load_records, load_shards
from reports.schema import ResultFileError, RunRecord
from reports.shards import MISSING, check_shards
from reports.trend import TrendSeries, trend_html

# Each results path given, with the runs read from it.
Loaded = list[tuple[Path, list[RunRecord]]]
_ERRORS = (HistoryError, ResultFileError, DetectorMissingError, ValueError)


SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database


def _check_db(target: str, create: bool = False) -> None:
    """A ``--db`` path names a SQLite database, or (to create one) a new file; checked
    before SQLite sees it, which would take a small file of anything else for an empty
    database and overwrite it."""
    if "://" in target:
        return
    path = Path(target).expanduser()
    if path.is_dir():
        raise UsageError(f"--db {target}: is a directory, not a SQLite file")
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise UsageError(
                f"--db {target}: not a SQLite database (a history is a SQLite file "
                "or a postgresql:// URL)"
            )
    elif create:
        check_output_file(path, "--db")


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except _ERRORS as exc:
        raise UsageError(str(exc)) from None


def _rows(args: argparse.Namespace, loaded: Loaded) -> list[RunRow]:
    """The history rows of every timing run in ``loaded``."""
    rows, added_at, repo = [], now(), args.repo.resolve()
    for path, records in loaded:
        source = str(path.resolve())
        for record in records:
            if record.purpose != "timing":
                continue
            commit = record.fingerprint.get("git_commit") or args.commit
            if commit and commit != record.fingerprint.get("git_commit"):
                record = replace(record, fingerprint={**record.fingerprint, "git_commit": commit})
            info = commit_info(repo, commit) if commit else CommitInfo()
            if args.branch:
                info = CommitInfo(info.time, args.branch)
            rows.append(to_row(record, source, info, added_at))
    return rows


def _check_shards(args: argparse.Namespace, loaded: Loaded) -> None:
    """Refuses the runs of a sharded matrix with a shard missing, unless allowed."""
    invocations = {r.invocation_id for _, records in loaded for r in records}
    problems = check_shards(load_shards(args.results), invocations)
    missing = [p.message for p in problems if p.kind == MISSING]
    if missing and not args.allow_partial:
        raise ValueError(
            "; ".join(missing) + " -- add the missing shards' results too, or pass "
            "--allow-partial to add an incomplete matrix"
        )
    for problem in problems:
        print(f"{PROG}: warning: {problem.message}", file=sys.stderr)


def add_command(args: argparse.Namespace) -> int:
    """``history add``: every timing run of the results directories, once."""
    _check_db(args.db, create=True)
    check_input_dir(args.repo, "--repo")
    with _one_line_errors():
        if args.commit:
            args.commit = resolve_commit(args.repo.resolve(), args.commit)
        loaded = [(path, load_records([path])) for path in args.results]
        _check_shards(args, loaded)
        rows = _rows(args, loaded)
        with HistoryStore.open(args.db, create=True) as store:
            added = store.add(rows)
            where = store.where
    print(f"{PROG}: {added} new run(s) of {len(rows)} added to {where}", file=sys.stderr)
    return 0


def list_command(args: argparse.Namespace) -> int:
    """``history list``: the series and their commits."""
    _check_db(args.db)
    with _one_line_errors(), HistoryStore.open(args.db) as store:
        series = build_series(store.runs())
    for s in series:
        first, last = s.points[0].commit[:8], s.points[-1].commit[:8]
        runs = sum(len(p.run_medians) for p in s.points)
        print(
            f"{s.label}  env {s.env_hash[:8]}  "
            f"{len(s.points)} commit(s) {first}..{last}, {runs} run(s)"
        )
    if not series:
        print(f"{PROG}: no usable runs in the history", file=sys.stderr)
    return 0


def _policy(args: argparse.Namespace) -> ChangePointPolicy:
    return ChangePointPolicy(
        max_pvalue=args.max_pvalue, window=args.window, threshold=args.threshold
    )


def _checks(args: argparse.Namespace) -> tuple[ChangePointPolicy, list[SeriesCheck]]:
    _check_db(args.db)
    policy = _policy(args)
    with HistoryStore.open(args.db) as store:
        series = build_series(store.runs())
    return policy, check_series(series, policy, args.control)


def check_command(args: argparse.Namespace) -> int:
    """``history check``: change points per series; exit 1 on a regression."""
    if args.json is not None:
        check_output_file(args.json, "--json")
    with _one_line_errors():
        policy, checks = _checks(args)
        if not checks:
            raise ValueError(f"{args.db}: no usable runs in the history")
    print(checks_markdown(checks, policy))
    if args.json is not None:
        write_atomic(args.json, (checks_json(checks, policy) + "\n").encode())
    failed = [c for c in checks if c.fails]
    print(f"{PROG}: {len(failed)} regression(s) in {len(checks)} series", file=sys.stderr)
    return 1 if failed else 0


def report_command(args: argparse.Namespace) -> int:
    """``history report``: the trend page."""
    check_output_file(args.html, "--html")
    with _one_line_errors():
        policy, checks = _checks(args)
    trends = [
        TrendSeries(c.series.label, c.series.environment, c.analysis, c.verdict) for c in checks
    ]
    write_atomic(args.html, trend_html(trends, policy_note(policy)).encode())
    print(f"{PROG}: wrote {args.html}", file=sys.stderr)
    return 0


# (flag, parser, ChangePointPolicy field, metavar, help)
_POLICY_OPTIONS = (
    ("--threshold", parse_fraction, "threshold", "FRACTION", "a change this much slower fails"),
    ("--max-pvalue", parse_fraction, "max_pvalue", "P", "significance of a change point"),
    ("--window", parse_positive_int, "window", "COMMITS", "E-Divisive's sliding window"),
)


def _analysis_options(p: argparse.ArgumentParser) -> None:
    defaults = ChangePointPolicy()
    for flag, parse, name, metavar, text in _POLICY_OPTIONS:
        default = getattr(defaults, name)
        p.add_argument(
            flag, type=parse, default=default, metavar=metavar, help=f"{text} (default {default})"
        )
    p.add_argument(
        "--control",
        metavar="LABEL",
        help="the control cell: a series label or its variant part (see `history list`); "
        "a change it shares is a runner shift",
    )


def register(sub: Any) -> None:
    """Adds ``history`` and its subcommands."""
    p = sub.add_parser(
        "history",
        help="a history of runs over commits: change points and trends",
        description="Records run summaries of many commits (and machines) in a database -- "
        "a SQLite file, or PostgreSQL given a URL -- and finds change points in them.",
    )
    commands = p.add_subparsers(dest="history_command", required=True, parser_class=type(p))
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH|URL",
        help=f"a SQLite file or a postgresql:// URL (default ./{DEFAULT_DB})",
    )
    add = commands.add_parser("add", parents=[db], help="add the runs of results directories")
    add.add_argument(
        "results", nargs="+", type=Path, metavar="RESULTS", help="results directories or run files"
    )
    add.add_argument(
        "--repo",
        type=Path,
        default=SOURCE_ROOT,
        metavar="DIR",
        help="the git repository the runs' commits are in, for commit times and branches "
        "(default: this tapebench checkout)",
    )
    add.add_argument("--branch", help="record this branch instead of asking git")
    add.add_argument(
        "--allow-partial",
        action="store_true",
        help="add the shards of a matrix run with `run --shard K/N` even when some are "
        "missing (refused by default: a missing shard leaves some cells short of runs)",
    )
    add.add_argument(
        "--commit",
        metavar="REV",
        help="the commit of runs whose records name none (e.g. run from an exported tree "
        "without a .tapebench-commit file); resolved in --repo",
    )
    add.set_defaults(handler=add_command)
    commands.add_parser("list", parents=[db], help="the series in the history").set_defaults(
        handler=list_command
    )
    check = commands.add_parser("check", parents=[db], help="change points; exit 1 on a regression")
    _analysis_options(check)
    check.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    check.set_defaults(handler=check_command)
    report = commands.add_parser("report", parents=[db], help="the trend page")
    _analysis_options(report)
    report.add_argument("--html", type=Path, required=True, metavar="FILE", help="write it here")
    report.set_defaults(handler=report_command)
