"""``tapebench report``: tables, figures and HTML from stored records."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.options import add_command
from bench.cli.parsing import (
    VARIANT_GRAMMAR,
    parse_choices,
    parse_fraction,
    parse_ids,
    parse_variant,
)
from bench.cli.paths import check_output_dir, check_output_file
from bench.matrix.store import write_atomic
from reports.checks import Finding
from reports.export import FORMATS, console_text, write_table
from reports.frames import Results
from reports.html import html_report
from reports.load import load_results, load_shards
from reports.markdown import timing_markdown
from reports.report import Report, ReportOptions, build_report
from reports.schema import ResultFileError
from reports.shards import ShardProblem, check_shards


def _load(args: argparse.Namespace) -> tuple[Results, list[ShardProblem]]:
    """The selected runs, and the problems of the shards among them."""
    loaded = load_results(args.results)
    records = list(loaded.records)
    if args.invocation:
        records = [r for r in records if r.invocation_id in args.invocation]
        if not records:
            raise ValueError(f"no runs of invocation(s) {', '.join(args.invocation)}")
    problems = check_shards(load_shards(args.results), {r.invocation_id for r in records})
    return Results.from_records(records, loaded.roots), problems


def report_command(args: argparse.Namespace) -> int:
    """Tables, figures and an HTML report from stored results.

    Reads results directories (no TensorFlow needed) and prints the timing tables; writes
    other formats with --out and one self-contained page with --html. The shards of a
    matrix run with `run --shard K/N` are merged; a missing shard is named in a warning.
    """
    if args.out is not None:
        check_output_dir(args.out, "--out")
    if args.html is not None:
        check_output_file(args.html, "--html")
    try:
        results, problems = _load(args)
        options = ReportOptions(
            baseline=args.baseline.to_dict(),
            target_accuracy=args.target_accuracy,
            parity_tolerance=args.parity_tolerance,
        )
        if "parquet" in args.format and args.out is None:
            raise ValueError("--format parquet writes files: add --out DIR")
    except (ResultFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    for problem in problems:
        print(f"{PROG}: warning: {problem.message}", file=sys.stderr)
    report = build_report(results, options)
    shard_findings = [Finding(p.kind, p.message) for p in problems]
    report = dataclasses.replace(report, findings=[*shard_findings, *report.findings])
    try:
        _write(report, args)
    except OSError as exc:  # e.g. the disk filled up after the checks
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    return 0


def _write(report: Report, args: argparse.Namespace) -> None:
    """Prints the tables, and writes --out files and the --html page."""
    if args.out is None:
        text = {"markdown": timing_markdown, "console": console_text}
        for fmt in args.format:
            if fmt in text:
                print(text[fmt](report))
            else:
                path = Path(tempfile.mkstemp(suffix="." + fmt)[1])
                print(write_table(report, fmt, path).read_text(), end="")
                path.unlink()
    else:
        suffix = {"markdown": "md", "console": "txt", "latex": "tex"}
        for fmt in args.format:
            path = write_table(report, fmt, args.out / f"summary.{suffix.get(fmt, fmt)}")
            print(f"{PROG}: wrote {path}", file=sys.stderr)
    if args.html is not None:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.html, html_report(report).encode())
        print(f"{PROG}: wrote {args.html}", file=sys.stderr)


def register(sub: Any) -> None:
    p = add_command(sub, "report", report_command)
    p.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="results directories (or run files)",
    )
    p.add_argument(
        "--format",
        type=parse_choices(FORMATS),
        default=["markdown"],
        metavar="LIST",
        help=f"any of {', '.join(FORMATS)} (default: markdown)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="write summary.<format> files here")
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    p.add_argument(
        "--baseline",
        type=parse_variant,
        default="eager/float32",
        metavar="VARIANT",
        help=f"speedup baseline, {VARIANT_GRAMMAR} (default: eager/float32; without "
        "@DEVICE, on each cell's own device)",
    )
    p.add_argument(
        "--target-accuracy",
        type=parse_fraction,
        metavar="FRACTION",
        help="time-to-accuracy target, e.g. 0.85",
    )
    p.add_argument(
        "--parity-tolerance",
        type=parse_fraction,
        default=0.01,
        metavar="FRACTION",
        help="flag mixed-precision cells this far below float32 accuracy (default: 0.01)",
    )
    p.add_argument(
        "--invocation",
        type=parse_ids,
        metavar="ID[,ID]",
        help="only runs of these invocations",
    )
