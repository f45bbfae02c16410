"""``tapebench tune``: the fastest configuration of a workload that keeps its arithmetic."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.options import add_command
from bench.cli.parsing import (
    parse_count,
    parse_fraction,
    parse_positive_float,
    parse_positive_int,
    parse_window,
)
from bench.matrix.signals import StopRequest, stop_on_signals
from bench.matrix.store import ResultsDir, write_atomic
from bench.tune.guard import DEFAULT_TOLERANCE, GuardSpec
from bench.tune.output import render, to_json
from bench.tune.pipeline import TuneOptions, TuneReport, run_tune
from trainloop.config import DATASETS, MODELS, Workload
from trainloop.datasets import DatasetNotFoundError, DataSource, locate_dataset

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h)?")
_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """A positive duration: seconds, or with a unit -- ``90``, ``90s``, ``10m``, ``1.5h``."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not seconds > 0 or not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 600, 90s, 10m, 1h")
    return seconds


def _options(args: argparse.Namespace) -> TuneOptions:
    workload = Workload(
        model=args.model,
        dataset=args.dataset,
        batch_size=args.batch_size,
        seed=args.seed,
        learning_rate=args.learning_rate,
    )
    guard = None
    if not args.no_guard:
        guard = GuardSpec(args.guard_dataset, args.guard_epochs, args.parity_tolerance)
    return TuneOptions(
        workload=workload,
        output_dir=args.output_dir,
        budget_s=args.budget,
        run_budget_s=args.run_budget,
        data_dir=args.data_dir,
        guard=guard,
        guard_top=args.guard_top,
        profile=None if args.no_profile else args.profile,
        fork_workers=not args.exec_workers,
    )


def _sources(options: TuneOptions) -> dict[str, DataSource]:
    names = [options.workload.dataset] + ([options.guard.dataset] if options.guard else [])
    return {name: locate_dataset(name, options.data_dir) for name in dict.fromkeys(names)}


def _store(report: TuneReport, text: str) -> None:
    root = report.options.output_dir
    ResultsDir(root).write_table(report.invocations["search"], text)
    write_atomic(root / "tune.json", json.dumps(to_json(report), indent=1).encode())


def tune_command(args: argparse.Namespace) -> int:
    """Find the fastest honest configuration for this machine.

    Searches the configurations that keep the workload's arithmetic (mode, steps per
    call, input mode, the fused-BatchNorm model, threads, oneDNN, XLA auto-clustering,
    and mixed precision where the CPU has it) by successive halving over fresh-process
    runs within --budget; the best few then train on real data and must reach float32's
    accuracy (the accuracy guard); the default and the recommendation are profiled.
    Prints a ranked table with intervals, the recommendation's command line and its
    speedups; everything is stored as a results directory (`report` and `compare` read it).
    """
    try:
        options = _options(args)
        sources = _sources(options)
        if options.output_dir.exists() and not options.output_dir.is_dir():
            raise ValueError(f"output dir {options.output_dir} exists and is not a directory")
    except (ValueError, DatasetNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    stop = StopRequest()
    with stop_on_signals(stop):
        report = run_tune(options, sources, [PROG, *args.argv], stop)
    text = render(report)
    _store(report, text)
    print(text)
    if report.interrupted:
        print(
            f"{PROG}: tune was interrupted; its runs so far are in {options.output_dir}",
            file=sys.stderr,
        )
        return 130
    return 0


def register(sub: Any) -> None:
    """Adds ``tapebench tune``."""
    p = add_command(sub, "tune", tune_command)
    g = p.add_argument_group("search")
    g.add_argument(
        "--budget",
        type=parse_duration,
        default=600.0,
        metavar="DURATION",
        help="wall time of the search, from the command's start: 600, 90s, 10m, 1h "
        "(default 10m; the accuracy guard and the profiles come after it)",
    )
    g.add_argument(
        "--run-budget",
        type=parse_positive_float,
        default=8.0,
        metavar="SECONDS",
        help="each search run's time from its worker's start (default 8)",
    )
    w = p.add_argument_group("workload (its arithmetic is kept)")
    w.add_argument("--model", choices=MODELS, default="reference")
    w.add_argument(
        "--dataset",
        choices=DATASETS,
        default="synthetic",
        help="what the search's speed runs train on (default synthetic)",
    )
    w.add_argument("--data-dir", type=Path, default=None)
    w.add_argument("--batch-size", type=parse_positive_int, default=64)
    w.add_argument("--seed", type=parse_count, default=0)
    w.add_argument("--learning-rate", type=parse_positive_float, default=1e-3)
    a = p.add_argument_group("accuracy guard")
    a.add_argument(
        "--guard-dataset",
        choices=[d for d in DATASETS if d != "synthetic"],
        default="fashion_mnist",
        help="real data the finalists train on (default fashion_mnist)",
    )
    a.add_argument("--guard-epochs", type=parse_positive_int, default=2, metavar="N")
    a.add_argument(
        "--guard-top",
        type=parse_positive_int,
        default=3,
        metavar="K",
        help="how many of the best configurations train (default 3), beside the default",
    )
    a.add_argument(
        "--parity-tolerance",
        type=parse_fraction,
        default=DEFAULT_TOLERANCE,
        metavar="FRACTION",
        help="how far below float32's test accuracy a configuration may land (default 0.01)",
    )
    a.add_argument("--no-guard", action="store_true", help="recommend float32 configurations only")
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output-dir", type=Path, default=Path("tapebench-tune"))
    o.add_argument(
        "--profile",
        type=parse_window,
        default=(20, 80),
        metavar="FIRST:LAST",
        help="the steps the default's and the recommendation's profiles trace (default 20:80)",
    )
    o.add_argument("--no-profile", action="store_true")
    o.add_argument(
        "--exec-workers",
        action="store_true",
        help="start every worker with `python -m bench.worker` instead of forking it",
    )
