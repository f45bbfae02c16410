"""Option groups shared by several ``tapebench`` subcommands."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.cli.parsing import (
    VARIANT_GRAMMAR,
    parse_addresses,
    parse_choices,
    parse_count,
    parse_count_or_all,
    parse_fraction,
    parse_fraction_or_none,
    parse_nonnegative_float,
    parse_positive_float,
    parse_positive_int,
    parse_positive_ints,
    parse_positive_or_all,
    parse_seconds_or_none,
    parse_variants,
)
from bench.matrix.cells import PRESET_HELP, PRESETS
from trainloop.config import DATASETS, DEVICES, MODELS, MODES, PRECISIONS


def add_command(
    sub: Any, name: str, handler: Callable[[argparse.Namespace], int], **defaults: Any
) -> argparse.ArgumentParser:
    """Adds the subcommand ``name``, run by ``handler``, whose docstring is its help: the
    first line in the list of commands, the paragraph after it as the description."""
    summary, _, details = (inspect.getdoc(handler) or "").partition("\n\n")
    p = sub.add_parser(
        name, help=summary.rstrip("."), description=" ".join(details.split()) or summary
    )
    p.set_defaults(handler=handler, **defaults)
    return p


def add_variant_options(p: argparse.ArgumentParser, devices: Sequence[str]) -> None:
    g = p.add_argument_group("variants")
    g.add_argument(
        "--variants",
        type=parse_variants,
        metavar="LIST",
        help=f"{VARIANT_GRAMMAR} items, e.g. eager,function:10,xla/mixed_bfloat16 (run's "
        "default: eager, function, xla in float32; function in each mixed policy; fit); "
        "an item with @DEVICE runs on that device only, the others on each of --devices",
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


def add_workload_options(p: argparse.ArgumentParser, preset: str) -> None:
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
    g.add_argument(
        "--steps-per-epoch",
        type=parse_positive_or_all,
        metavar="N|all",
        help="training steps per epoch; all: one pass over the training set",
    )
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


def add_execution_options(p: argparse.ArgumentParser, output: str) -> None:
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
        default=None,
        metavar="N",
        help="with --cluster: this machine's worker (0 is the chief)",
    )
    g.add_argument(
        "--exec-workers",
        action="store_true",
        help="start every worker with `python -m bench.worker` (default: fork it from a "
        "process that has imported TensorFlow but run nothing, seconds faster per run)",
    )


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """Adaptive sampling: measure until precise enough, within time budgets."""
    g = p.add_argument_group("adaptive sampling (defaults from --preset)")
    g.argument_default = argparse.SUPPRESS
    g.add_argument(
        "--precision",
        type=parse_fraction_or_none,
        metavar="FRACTION|none",
        help="stop a run once its median is known to this (relative half-width of a 95%% "
        "interval), and add runs to a cell until its run-level interval is this narrow "
        "(quick: 0.02; none: planned steps and runs)",
    )
    g.add_argument(
        "--run-budget",
        type=parse_positive_float,
        metavar="SECONDS",
        help="a run's time from its worker's start (quick: 8)",
    )
    g.add_argument(
        "--cell-budget",
        type=parse_positive_float,
        metavar="SECONDS",
        help="the time all runs of a cell may take (quick: 40)",
    )
    g.add_argument(
        "--min-timed-steps",
        type=parse_positive_int,
        metavar="N",
        help="the fewest timed steps a run measures, whatever the budget (quick: 3)",
    )
    g.add_argument(
        "--max-runs",
        type=parse_positive_int,
        metavar="N",
        help="the most runs a cell gets (quick: 5)",
    )


def add_gate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("verdict")
    g.add_argument(
        "--threshold",
        type=parse_positive_float,
        default=0.10,
        metavar="FRACTION",
        help="the band of no change, ±FRACTION; a significant slowdown of at least half "
        "of it is a regression (default: 0.10)",
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
    g.add_argument(
        "--summary",
        type=Path,
        metavar="FILE",
        help='also append the Markdown verdicts to FILE (e.g. "$GITHUB_STEP_SUMMARY"), '
        "so CI needs no pipe that could hide the exit code",
    )


def add_ab_options(p: argparse.ArgumentParser, output: str) -> None:
    """The options of a command that runs same-job A/Bs and judges them: variants (CPU by
    default), the workload (the gate preset), execution and the verdict's rules."""
    add_variant_options(p, ["cpu"])
    add_workload_options(p, "gate")
    add_execution_options(p, output)
    add_gate_options(p)
