"""The ``tapebench`` command line. It builds the same dataclasses the Python API takes.

Exit codes: 0 success (for ``run``: every cell has its result -- ok, skipped, diverged, oom
and timeout are all results); 1 some run failed (the worker crashed or raised); 2 bad input
(one line on stderr, nothing written); 130 stopped by Ctrl-C or SIGTERM (finished runs kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from bench import commands
from bench.config import PRESETS
from bench.matrixfile import MatrixFileError, load_matrix_file
from bench.parsing import (
    parse_choices,
    parse_count,
    parse_count_or_all,
    parse_positive_float,
    parse_positive_int,
    parse_positive_ints,
    parse_seconds_or_none,
    parse_variants,
)
from trainloop.config import DATASETS, DEVICES, MODELS, MODES, PRECISIONS

PROG = commands.PROG


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_run_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="compare execution variants of the training loop",
        description="Runs every cell (variant x workload) and repeat in a fresh process, "
        "interleaved, and prints a Markdown timing table. Records go to --output-dir.",
    )
    g = p.add_argument_group("variants")
    g.add_argument(
        "--variants",
        type=parse_variants,
        metavar="LIST",
        help="MODE[/PRECISION] items, e.g. eager,function,xla/mixed_bfloat16 "
        "(default: eager, function, xla in float32; function in each mixed policy)",
    )
    g.add_argument(
        "--modes",
        type=parse_choices(MODES),
        metavar="LIST",
        help=f"cross product of modes ({', '.join(MODES)}) ...",
    )
    g.add_argument(
        "--precisions",
        type=parse_choices(PRECISIONS),
        metavar="LIST",
        help=f"... and precisions ({', '.join(PRECISIONS)})",
    )
    g.add_argument(
        "--devices",
        type=parse_choices(DEVICES),
        default=list(DEVICES),
        metavar="LIST",
        help="cpu, gpu or both (default: cpu,gpu; gpu cells are skipped where no GPU is visible)",
    )
    g = p.add_argument_group("workload (defaults from --preset)")
    g.argument_default = argparse.SUPPRESS  # absent unless given: presets fill the rest
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick: 2 epochs x 100 steps, 2048 eval examples, 150 s per run "
        "(default); reference: 25 full epochs, full test set, no time limit",
    )
    g.add_argument(
        "--model",
        "--models",
        dest="models",
        type=parse_choices(MODELS),
        metavar="LIST",
        help="reference (default) and/or tiny",
    )
    g.add_argument(
        "--dataset",
        "--datasets",
        dest="datasets",
        type=parse_choices(DATASETS),
        metavar="LIST",
        help="mnist (default), fashion_mnist and/or synthetic",
    )
    g.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory holding the dataset's .npz or its four IDX files",
    )
    g.add_argument(
        "--batch-size",
        "--batch-sizes",
        dest="batch_sizes",
        type=parse_positive_ints,
        metavar="LIST",
        help="default: 64",
    )
    g.add_argument("--epochs", type=parse_positive_int)
    g.add_argument("--steps-per-epoch", type=parse_count_or_all, metavar="N|all")
    g.add_argument("--warmup-steps", type=parse_count, metavar="N")
    g.add_argument(
        "--eval-examples",
        type=parse_count_or_all,
        metavar="N|all",
        help="test examples evaluated after each epoch (0: none)",
    )
    g.add_argument("--seed", type=parse_count, metavar="N", help="default: 0")
    g.add_argument("--learning-rate", type=parse_positive_float, help="default: 1e-3")
    g.add_argument(
        "--keep-partial-batch",
        action="store_true",
        default=False,
        help="keep each epoch's smaller last batch (its step is flagged "
        "'partial' and left out of the statistics)",
    )
    g = p.add_argument_group("matrix")
    g.add_argument(
        "--repeats",
        type=parse_positive_int,
        default=1,
        metavar="N",
        help="runs per cell, each in its own process, interleaved A B C, A B C",
    )
    g.add_argument(
        "--matrix",
        type=Path,
        metavar="FILE.toml",
        help="read options from a TOML file (keys: the long option names)",
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="INVOCATION",
        help="run what an interrupted invocation in --output-dir has not finished "
        "(default: the newest one)",
    )
    g = p.add_argument_group("execution")
    g.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("tapebench-results"),
        help="results directory (default: ./tapebench-results)",
    )
    g.add_argument(
        "--intra-op-threads",
        type=parse_count,
        default=0,
        metavar="N",
        help="TensorFlow intra-op threads (default 0: TensorFlow decides)",
    )
    g.add_argument("--inter-op-threads", type=parse_count, default=0, metavar="N")
    g.add_argument(
        "--timeout",
        type=parse_seconds_or_none,
        default=argparse.SUPPRESS,
        metavar="SECONDS|none",
        help="wall-clock limit per run (default: from --preset)",
    )
    p.set_defaults(handler=commands.run_command)
    return p


def create_parser() -> argparse.ArgumentParser:
    """The ``tapebench`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Benchmark TensorFlow 2 GradientTape training "
        "loops across execution modes, precisions and devices.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.set_defaults(run_parser=_add_run_parser(sub))
    p = sub.add_parser(
        "list",
        help="show modes, precisions, models, datasets, devices",
        description="Shows what tapebench can run, and what this machine has: "
        "where each dataset would be read from and the visible devices.",
    )
    p.add_argument("--data-dir", type=Path, default=None)
    p.set_defaults(handler=commands.list_command)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = create_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.matrix is not None:
        try:
            defaults = load_matrix_file(args.matrix, args.run_parser)
        except MatrixFileError as exc:
            raise commands.UsageError(str(exc)) from None
        args.run_parser.set_defaults(**defaults)
        args = parser.parse_args(argv)  # the command line wins over the file
    args.argv = argv
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``tapebench`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
        return int(args.handler(args))
    except commands.UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
