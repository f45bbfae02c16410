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
from bench.config import PRESET_HELP, PRESETS
from bench.matrixfile import MatrixFileError, load_matrix_file
from bench.parsing import (
    parse_addresses,
    parse_choices,
    parse_count,
    parse_count_or_all,
    parse_fraction,
    parse_nonnegative_float,
    parse_positive_float,
    parse_positive_int,
    parse_positive_ints,
    parse_seconds_or_none,
    parse_variants,
    parse_variants_one,
    parse_window,
)
from reports.export import FORMATS
from trainloop.config import DATASETS, DEVICES, MODELS, MODES, PRECISIONS

PROG = commands.PROG


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_variant_options(p: argparse.ArgumentParser, devices: Sequence[str]) -> None:
    g = p.add_argument_group("variants")
    g.add_argument(
        "--variants",
        type=parse_variants,
        metavar="LIST",
        help="MODE[/PRECISION] items, e.g. eager,function,xla/mixed_bfloat16 "
        "(run's default: eager, function, xla in float32; function in each "
        "mixed policy)",
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
        default=list(devices),
        metavar="LIST",
        help=f"cpu and/or gpu (default: {','.join(devices)}; gpu "
        "cells are skipped where no GPU is visible)",
    )


def _add_workload_options(p: argparse.ArgumentParser, preset: str) -> None:
    g = p.add_argument_group("workload (defaults from --preset)")
    g.argument_default = argparse.SUPPRESS  # absent unless given: presets fill the rest
    described = "; ".join(f"{name}: {text}" for name, text in PRESET_HELP.items())
    g.add_argument(
        "--preset", choices=sorted(PRESETS), default=preset, help=f"{described} (default: {preset})"
    )
    g.add_argument(
        "--model",
        "--models",
        dest="models",
        type=parse_choices(MODELS),
        metavar="LIST",
        help="reference (default), reference_fused (the same CNN, fused BatchNorm kernels) "
        "and/or tiny",
    )
    g.add_argument(
        "--dataset",
        "--datasets",
        dest="datasets",
        type=parse_choices(DATASETS),
        metavar="LIST",
        help="mnist, fashion_mnist and/or synthetic",
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


def _add_execution_options(p: argparse.ArgumentParser, output: str) -> None:
    g = p.add_argument_group("execution")
    g.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path(output),
        help=f"results directory (default: ./{output})",
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
    g.add_argument(
        "--cluster",
        type=parse_addresses,
        metavar="HOST:PORT,...",
        help="multi-worker cells spread over machines: "
        "every worker's address (run the same command on each machine)",
    )
    g.add_argument(
        "--task-index",
        type=parse_count,
        default=0,
        metavar="N",
        help="with --cluster: this machine's worker (0 is the chief)",
    )


def _add_run_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="compare execution variants of the training loop",
        description="Runs every cell (variant x workload) and repeat in a fresh process, "
        "interleaved, and prints a Markdown timing table. Records go to --output-dir.",
    )
    _add_variant_options(p, DEVICES)
    _add_workload_options(p, "quick")
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
        "--profile",
        type=parse_window,
        metavar="FIRST:LAST",
        help="also run each cell once more, tracing steps FIRST..LAST-1 with the TensorFlow "
        "profiler (traces go to OUTPUT/traces; their timings stay out of the statistics)",
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="INVOCATION",
        help="run what an interrupted invocation in --output-dir has not finished "
        "(default: the newest one)",
    )
    _add_execution_options(p, "tapebench-results")
    p.set_defaults(handler=commands.run_command)
    return p


def _add_ab_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ab",
        help="same-job A/B: a baseline revision vs this source (the CI gate)",
        description="Exports --baseline REV from git, runs each cell --runs times from the "
        "baseline's source and from this one, interleaved in fresh processes, then "
        "compares them like `tapebench compare`. Exit 0: no regression; 1: a regression; "
        "2: bad input.",
    )
    p.add_argument(
        "--baseline",
        required=True,
        metavar="REV",
        help="git revision to compare against (e.g. origin/main, HEAD~1)",
    )
    p.add_argument(
        "--runs",
        type=parse_positive_int,
        default=5,
        metavar="N",
        help="runs per cell and side (default: 5; the verdict needs 3 or more, "
        "and significance at 0.05 needs 4)",
    )
    p.add_argument(
        "--inject-delay-ms",
        type=parse_nonnegative_float,
        default=0.0,
        metavar="MS",
        help="slow every candidate step by this much (to check "
        "that the gate catches a known slowdown)",
    )
    _add_variant_options(p, ["cpu"])
    _add_workload_options(p, "gate")
    _add_execution_options(p, "tapebench-ab")
    _add_gate_options(p)
    p.set_defaults(handler=commands.ab_command, variants=["function"], datasets=["synthetic"])


def create_parser() -> argparse.ArgumentParser:
    """The ``tapebench`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Benchmark TensorFlow 2 GradientTape training "
        "loops across execution modes, precisions and devices.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parser.set_defaults(run_parser=_add_run_parser(sub))
    _add_ab_parser(sub)
    p = sub.add_parser(
        "list",
        help="show modes, precisions, models, datasets, devices",
        description="Shows what tapebench can run, and what this machine has: "
        "where each dataset would be read from and the visible devices.",
    )
    p.add_argument("--data-dir", type=Path, default=None)
    p.set_defaults(handler=commands.list_command)
    _add_report_parser(sub)
    _add_compare_parser(sub)
    return parser


def _add_gate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("verdict")
    g.add_argument(
        "--threshold",
        type=parse_positive_float,
        default=0.10,
        metavar="FRACTION",
        help="relative slowdown that counts as a regression (default: 0.10)",
    )
    g.add_argument(
        "--alpha",
        type=parse_fraction,
        default=0.05,
        help="significance level of the one-sided Mann-Whitney test over runs (default: 0.05)",
    )
    g.add_argument(
        "--min-effect-ms",
        type=parse_nonnegative_float,
        default=0.1,
        metavar="MS",
        help="smallest change of the median step time that counts (default: 0.1)",
    )
    g.add_argument(
        "--min-runs",
        type=parse_positive_int,
        default=3,
        metavar="N",
        help="runs per side below which the verdict is inconclusive (default: 3)",
    )
    g.add_argument(
        "--allow-mixed-environments",
        action="store_true",
        help="compare even if the environment fingerprints differ",
    )
    g.add_argument("--json", type=Path, metavar="FILE", help="also write the verdicts as JSON")


def _add_compare_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="regression verdicts: baseline vs candidate (exit 1 on a regression)",
        description="Compares two tapebench results directories, or pytest-benchmark JSON "
        "(files, or directories of them), cell by cell, with the run (process) as the "
        "independent unit. Exit 0: no regression; 1: a regression; 2: bad input or "
        "incompatible environments.",
    )
    p.add_argument("baseline", type=Path, metavar="BASELINE")
    p.add_argument("candidate", type=Path, metavar="CANDIDATE")
    _add_gate_options(p)
    p.set_defaults(handler=commands.compare_command)


def _add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="tables, figures and an HTML report from stored results",
        description="Reads results directories (no TensorFlow needed) and prints the timing "
        "tables; writes other formats with --out and one self-contained page with --html.",
    )
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
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write summary.<format> files here instead of printing",
    )
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    p.add_argument(
        "--baseline",
        type=parse_variants_one,
        default="eager/float32",
        metavar="MODE/PRECISION",
        help="speedup baseline (default: eager/float32)",
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
        type=lambda t: t.split(","),
        metavar="ID[,ID]",
        help="only runs of these invocations",
    )
    p.set_defaults(handler=commands.report_command)


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
