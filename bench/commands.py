"""What each ``tapebench`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench.config import (
    PRESET_TIMEOUTS,
    PRESETS,
    Cell,
    RunOptions,
    create_cells,
    create_variants,
    create_workloads,
)
from bench.matrix import MatrixError, MatrixResult, resume_matrix, run_matrix
from bench.runner import Job, execute_run
from bench.signals import StopRequest, stop_on_signals
from reports.frames import Results
from reports.markdown import timing_table
from reports.schema import ResultFileError
from reports.summary import summarize
from trainloop.config import DATASETS, MODELS, MODES, PRECISIONS, Variant, Workload
from trainloop.datasets import DatasetNotFoundError, DataSource, locate_dataset

PROG = "tapebench"
# With --resume the plan comes from the results directory; only these may be given.
RESUME_OPTIONS = ("--resume", "-o", "--output-dir")


class UsageError(Exception):
    """Bad input from the command line; reported as one line with exit code 2."""


def build_workloads(args: argparse.Namespace) -> list[Workload]:
    """Workloads from dataclass defaults, then the preset, then flags given explicitly."""
    given = vars(args)
    values: dict[str, Any] = dict(PRESETS[args.preset])
    values.update({f.name: given[f.name] for f in fields(Workload) if f.name in given})
    if args.keep_partial_batch:
        values["drop_remainder"] = False
    base = Workload(**values)
    return create_workloads(
        base, given.get("models", ()), given.get("datasets", ()), given.get("batch_sizes", ())
    )


def build_cells(args: argparse.Namespace) -> list[Cell]:
    """The cells requested on the command line."""
    workloads = build_workloads(args)
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
    return create_cells(variants, workloads)


def _check_resume_alone(argv: list[str]) -> None:
    extra = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    extra = [a for a in extra if a not in RESUME_OPTIONS]
    if extra:
        raise UsageError(
            f"--resume takes the plan from the results directory; drop {', '.join(extra)}"
        )


def _start(args: argparse.Namespace, stop: StopRequest) -> MatrixResult:
    try:
        cells = build_cells(args)
        options = RunOptions(
            output_dir=args.output_dir,
            data_dir=args.data_dir,
            intra_op_threads=args.intra_op_threads,
            inter_op_threads=args.inter_op_threads,
            timeout_s=getattr(args, "timeout", PRESET_TIMEOUTS[args.preset]),
        )
        sources: dict[str, DataSource] = {
            name: locate_dataset(name, args.data_dir)
            for name in dict.fromkeys(c.workload.dataset for c in cells)
        }
    except (ValueError, DatasetNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    with stop_on_signals(stop):
        return run_matrix(cells, options, sources, args.repeats, [PROG, *args.argv], stop)


def run_command(args: argparse.Namespace) -> int:
    """``tapebench run``: run (or resume) a matrix and print its timing table."""
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
        table = timing_table(summarize(Results.from_records(result.records)))
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
    return 1 if any(r.status == "failed" for r in result.records) else 0


def _dataset_line(name: str, data_dir: Path | None) -> str:
    try:
        source = locate_dataset(name, data_dir, download=False)
    except DatasetNotFoundError:
        return f"{name}: not found locally (downloaded on first use where online)"
    where = source.paths[0].rsplit("/", 1)[0] if source.paths else "generated"
    return f"{name}: {where} ({source.origin})"


def list_command(args: argparse.Namespace) -> int:
    """``tapebench list``: what can run here."""
    probe = Job(
        run_id="list-probe",
        invocation_id="list",
        cell={**Cell(Variant(device="gpu"), Workload()).to_dict()},
        repeat=0,
        data_source={},
        probe=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        record = execute_run(probe, Path(tmp) / "probe.log")
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
