"""The ``tapebench`` command line. It builds the same dataclasses the Python API takes.

Exit codes: 0 every cell has its result (ok, skipped, diverged, oom or timeout are all
results); 1 some run failed (the worker crashed or raised); 2 bad input (one line on stderr,
nothing written); 130 interrupted (finished runs kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from bench.config import PRESET_TIMEOUTS, PRESETS, Cell, RunOptions, create_cells, create_variants
from bench.matrix import run_matrix
from reports.frames import Results
from reports.markdown import timing_table
from reports.summary import summarize
from trainloop.config import DATASETS, DEVICES, MODELS, MODES, PRECISIONS, Variant, Workload
from trainloop.datasets import DatasetNotFoundError, DataSource, locate_dataset

PROG = "tapebench"


class UsageError(Exception):
    """Bad input from the command line; reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_choices(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A converter for comma-separated values drawn from ``choices``."""

    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a comma-separated list of {', '.join(choices)}"
            )
        return items

    return parse


def parse_variants(text: str) -> list[str]:
    """Comma-separated ``MODE[/PRECISION]`` items, checked by parsing them."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        for item in items:
            Variant.parse(item.split("@")[0])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not items or any("@" in t for t in items):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected MODE[/PRECISION] items, e.g. eager,xla/mixed_bfloat16 "
            "(choose devices with --devices)"
        )
    return items


def parse_positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def parse_count_or_all(text: str) -> int | None:
    """An integer >= 0, or ``all`` (None)."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0 or 'all'")
    return value


def parse_positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def parse_seconds_or_none(text: str) -> float | None:
    """A positive number of seconds, or ``none``."""
    return None if text == "none" else parse_positive_float(text)


def _add_run_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="compare execution variants of the training loop",
        description="Runs each variant in a fresh process and prints a "
        "Markdown timing table. Records go to --output-dir.",
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
        help="quick: 2 epochs x 150 steps, 2048 eval examples (default); "
        "reference: 25 full epochs, full test set",
    )
    g.add_argument("--model", choices=MODELS, help="default: reference")
    g.add_argument("--dataset", choices=DATASETS, help="default: mnist")
    g.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory holding the dataset's .npz or its four IDX files",
    )
    g.add_argument("--batch-size", type=parse_positive_int, help="default: 64")
    g.add_argument("--epochs", type=parse_positive_int)
    g.add_argument("--steps-per-epoch", type=parse_count_or_all, metavar="N|all")
    g.add_argument("--warmup-steps", type=parse_count_or_all, metavar="N")
    g.add_argument(
        "--eval-examples",
        type=parse_count_or_all,
        metavar="N|all",
        help="test examples evaluated after each epoch (0: none)",
    )
    g.add_argument("--seed", type=parse_count_or_all, metavar="N", help="default: 0")
    g.add_argument("--learning-rate", type=parse_positive_float, help="default: 1e-3")
    g.add_argument(
        "--keep-partial-batch",
        action="store_true",
        default=False,
        help="keep each epoch's smaller last batch (its step is flagged "
        "'partial' and left out of the statistics)",
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
        type=parse_count_or_all,
        default=0,
        metavar="N",
        help="TensorFlow intra-op threads (default 0: TensorFlow decides)",
    )
    g.add_argument("--inter-op-threads", type=parse_count_or_all, default=0, metavar="N")
    g.add_argument(
        "--timeout",
        type=parse_seconds_or_none,
        default=argparse.SUPPRESS,
        metavar="SECONDS|none",
        help="wall-clock limit per run (default: 150 with --preset quick, none with reference)",
    )
    p.set_defaults(handler=_run_command)


def create_parser() -> argparse.ArgumentParser:
    """The ``tapebench`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Benchmark TensorFlow 2 GradientTape training "
        "loops across execution modes, precisions and devices.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_parser(sub)
    return parser


def build_workload(args: argparse.Namespace) -> Workload:
    """The workload: dataclass defaults, then the preset, then flags given explicitly."""
    given = vars(args)
    values: dict[str, Any] = dict(PRESETS[args.preset])
    values.update({f.name: given[f.name] for f in fields(Workload) if f.name in given})
    if args.keep_partial_batch:
        values["drop_remainder"] = False
    return Workload(**values)


def build_cells(args: argparse.Namespace) -> list[Cell]:
    """The cells requested on the command line."""
    workload = build_workload(args)
    if args.variants and (args.modes or args.precisions):
        raise UsageError("--variants cannot be combined with --modes/--precisions")
    if args.variants:
        variants = [
            Variant(mode=v.mode, precision=v.precision, device=d)
            for d in dict.fromkeys(args.devices)
            for v in map(Variant.parse, args.variants)
        ]
    else:
        variants = create_variants(args.modes, args.precisions, args.devices)
    return create_cells(variants, workload)


def _run_command(args: argparse.Namespace) -> int:
    try:
        cells = build_cells(args)
        options = RunOptions(
            output_dir=args.output_dir,
            data_dir=args.data_dir,
            intra_op_threads=args.intra_op_threads,
            inter_op_threads=args.inter_op_threads,
            timeout_s=getattr(args, "timeout", PRESET_TIMEOUTS[args.preset]),
        )
        source: DataSource = locate_dataset(cells[0].workload.dataset, args.data_dir)
    except (ValueError, DatasetNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    result = run_matrix(cells, options, source, argv=[PROG, *args.argv])
    summary = summarize(Results.from_records(result.records))
    table = timing_table(summary)
    result.results.write_table(result.invocation_id, table + "\n")
    print(table)
    where = result.results.root
    if result.interrupted:
        print(
            f"{PROG}: interrupted; {len(result.records) - 1} finished run(s) and the "
            f"interrupted one are in {where}/runs",
            file=sys.stderr,
        )
        return 130
    print(f"{PROG}: {len(result.records)} run(s) recorded in {where}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in result.records) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``tapebench`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = create_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
