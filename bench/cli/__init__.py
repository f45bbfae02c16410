"""The ``tapebench`` command line. It builds the same dataclasses the Python API takes.

Exit codes: 0 success (for ``run``: every cell has its result -- ok, skipped, diverged, oom
and timeout are all results); 1 some run failed (the worker crashed or raised); 2 bad input
(one line on stderr, nothing written); 130 stopped by Ctrl-C or SIGTERM (finished runs kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from bench.cli import bisect, calibrate, gate, history, report, run, traces, tune
from bench.cli.errors import PROG, UsageError
from bench.cli.matrixfile import MatrixFileError, load_matrix_file

__all__ = ["create_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def create_parser() -> argparse.ArgumentParser:
    """The ``tapebench`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Benchmark TensorFlow 2 GradientTape training "
        "loops across execution modes, precisions and devices.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.set_defaults(run_parser=run.register_run(sub))
    gate.register_ab(sub)
    run.register_list(sub)
    report.register(sub)
    gate.register_compare(sub)
    bisect.register(sub)
    history.register(sub)
    calibrate.register(sub)
    traces.register(sub)
    tune.register(sub)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = create_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.matrix is not None:
        try:
            defaults = load_matrix_file(args.matrix, args.run_parser)
        except MatrixFileError as exc:
            raise UsageError(str(exc)) from None
        args.run_parser.set_defaults(**defaults)
        args = parser.parse_args(argv)  # the command line wins over the file
    args.argv = argv
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``tapebench`` command; returns the exit code (also for ``--help`` and
    argument errors, which argparse reports by exiting)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = _parse(argv)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 2  # argparse passes ints
        return int(args.handler(args))
    except UsageError as exc:
        # One line, whatever the message quotes (a TOML or JSON parser's report may not be).
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
