"""``tapebench run`` and ``tapebench list``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.options import (
    add_command,
    add_execution_options,
    add_sampling_options,
    add_variant_options,
    add_workload_options,
)
from bench.cli.parsing import parse_positive_int, parse_shard, parse_window
from bench.cli.paths import check_input_dir
from bench.cli.planning import plan_cells
from bench.matrix.cells import PRESET_REPEATS, PRESETS, Cell
from bench.matrix.execute import MatrixError, MatrixResult, resume_matrix, run_plan
from bench.matrix.job import Job, WorkerTask
from bench.matrix.plan import create_plan, read_plan
from bench.matrix.signals import StopRequest, stop_on_signals
from bench.matrix.workers import execute_job
from reports.frames import Results
from reports.markdown import timing_markdown
from reports.report import build_report
from reports.schema import ResultFileError
from trainloop.config import DATASETS, DEVICES, MODELS, MODES, PRECISIONS, Variant, Workload
from trainloop.datasets import OFFLINE_ENV, DatasetNotFoundError, dataset_size, locate_dataset
from trainloop.idx import DataFileError

# With --resume the plan comes from the results directory; only these may be given.
RESUME_OPTIONS = ("--resume", "-o", "--output-dir")


def _check_resume_alone(argv: list[str]) -> None:
    extra = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    extra = [a for a in extra if a not in RESUME_OPTIONS]
    if extra:
        raise UsageError(
            f"--resume takes the plan from the results directory; drop {', '.join(extra)}"
        )


def _start(args: argparse.Namespace, stop: StopRequest) -> MatrixResult:
    cells, options, sources = plan_cells(args)
    argv = [PROG, *args.argv]
    try:
        repeats = getattr(args, "repeats", PRESET_REPEATS[args.preset])
        plan = create_plan(cells, repeats, options, sources, argv, shard=args.shard)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with stop_on_signals(stop):
        return run_plan(plan, stop)


def run_command(args: argparse.Namespace) -> int:
    """Compare execution variants of the training loop.

    Runs every cell (variant x workload) and repeat in a fresh process, interleaved, and
    prints a Markdown timing table. Records go to --output-dir; --resume runs what an
    interrupted invocation has not finished.
    """
    stop = StopRequest()
    if args.resume:
        _check_resume_alone(args.argv)
        invocation = None if args.resume == "latest" else args.resume
        try:
            with stop_on_signals(stop):
                result = resume_matrix(args.output_dir, invocation, stop)
        except (MatrixError, ResultFileError) as exc:
            raise UsageError(str(exc)) from None
    else:
        result = _start(args, stop)
    return _finish(result, stop)


def _finish(result: MatrixResult, stop: StopRequest) -> int:
    where = result.results.root
    if result.records:
        roots = {r.run_id: where for r in result.records}
        table = timing_markdown(build_report(Results.from_records(result.records, roots)))
        result.results.write_table(result.invocation_id, table + "\n")
        print(table)
    if result.pending:
        done = len(result.records) - sum(r.status == "interrupted" for r in result.records)
        cause = f"stopped by {stop.signal_name}" if stop.requested else "stopped"
        print(
            f"{PROG}: {cause}; {done} finished run(s) are in {where}/runs; "
            f"{result.pending} to go: resume with `{PROG} run --resume "
            f"{result.invocation_id} -o {where}`",
            file=sys.stderr,
        )
        return 130
    print(
        f"{PROG}: {result.executed} run(s) recorded in {where} (invocation {result.invocation_id})",
        file=sys.stderr,
    )
    shard = read_plan(result.results, result.invocation_id).shard
    if shard is not None:
        print(
            f"{PROG}: this is shard {shard} of plan {shard.plan_id}; the table above shows "
            f"this shard only: `{PROG} report` the {shard.count} shards' results together",
            file=sys.stderr,
        )
    return 1 if any(r.status == "failed" for r in result.records) else 0


def _dataset_line(name: str, data_dir: Path | None) -> str:
    """Where ``name`` would be read from here, and how big it is -- or why it would not."""
    try:
        source = locate_dataset(name, data_dir, download=False)
    except DatasetNotFoundError:
        if data_dir is not None:
            return f"{name}: not in {data_dir} (run refuses it with this --data-dir)"
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            return f"{name}: not found locally, and downloads are off (${OFFLINE_ENV})"
        return f"{name}: not found locally (run downloads it into the Keras cache)"
    where = source.paths[0].rsplit("/", 1)[0] if source.paths else "generated"
    try:
        size = dataset_size(source)
    except DataFileError as exc:
        return f"{name}: {where} ({source.origin}), unreadable: {exc}"
    examples = f"{size.train_examples} train / {size.test_examples} test examples"
    return f"{name}: {where} ({source.origin}, {examples})"


def list_command(args: argparse.Namespace) -> int:
    """Show modes, precisions, models, datasets, devices.

    Shows what tapebench can run, and what this machine has: where each dataset would be
    read from and the visible devices.
    """
    if args.data_dir is not None:
        check_input_dir(args.data_dir, "--data-dir")
    task = WorkerTask("list-probe", Cell(Variant(device="gpu"), Workload()), probe=True)
    with tempfile.TemporaryDirectory() as tmp:
        record = execute_job(Job(task, "list", repeat=0), Path(tmp) / "probe.log")
    fp = record.fingerprint
    gpus = fp.get("gpus") or []
    lines = [
        f"modes:       {', '.join(MODES)}",
        f"precisions:  {', '.join(PRECISIONS)}",
        f"models:      {', '.join(MODELS)}",
        "datasets:    " + "\n             ".join(_dataset_line(d, args.data_dir) for d in DATASETS),
        "presets:     " + "\n             ".join(f"{k}: {v}" for k, v in PRESETS.items()),
        f"devices:     cpu: {fp.get('cpu_model')} ({fp.get('cpu_count')} logical cores)",
        "             gpu: "
        + (
            ", ".join(str(g.get("name")) for g in gpus)
            if gpus
            else "none visible"
            if record.status == "ok"
            else f"unknown ({record.reason})"
        ),
        f"runtime:     TensorFlow {fp.get('tensorflow')}, Keras {fp.get('keras')}, "
        f"Python {fp.get('python')}",
    ]
    print("\n".join(lines))
    return 0 if record.status == "ok" else 1


def register_run(sub: Any) -> argparse.ArgumentParser:
    p = add_command(sub, "run", run_command)
    add_variant_options(p, DEVICES)
    add_workload_options(p, "quick")
    g = p.add_argument_group("matrix")
    g.add_argument(
        "--matrix",
        type=Path,
        metavar="FILE.toml",
        help="read options from a TOML file (keys: the long option names)",
    )
    g.add_argument(
        "--repeats",
        type=parse_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="runs per cell, each in its own process, interleaved A B C, A B C (with "
        "--precision: the fewest runs; default from --preset: quick 3, otherwise 1)",
    )
    g.add_argument(
        "--profile",
        type=parse_window,
        metavar="FIRST:LAST",
        help="also run each cell once more, tracing steps FIRST..LAST-1 with the TensorFlow "
        "profiler (traces go to OUTPUT/traces; their timings stay out of the statistics)",
    )
    g.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="run only the K-th of N slices of the matrix's runs (the same command with "
        "1/N ... N/N on N machines covers the matrix; `report` merges their results)",
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="INVOCATION",
        help="run what an interrupted invocation in --output-dir has not finished "
        "(default: the newest one)",
    )
    add_sampling_options(p)
    add_execution_options(p, "tapebench-results")
    return p


def register_list(sub: Any) -> None:
    p = add_command(sub, "list", list_command)
    p.add_argument("--data-dir", type=Path, default=None)
