"""What each ``tapebench`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench.ab import RevisionError, run_ab
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
from reports.export import console_text, write_table
from reports.frames import Results
from reports.html import html_report
from reports.load import load_results
from reports.markdown import timing_markdown
from reports.regression import (
    GatePolicy,
    Side,
    compare_sides,
    environment_differences,
    load_side,
    verdicts_json,
    verdicts_markdown,
)
from reports.report import ReportOptions, build_report
from reports.schema import ResultFileError
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
            dataclasses.replace(v, device=d)
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


def _plan(args: argparse.Namespace) -> tuple[list[Cell], RunOptions, dict[str, DataSource]]:
    """Cells, run options and located datasets; every input error as a UsageError."""
    try:
        cells = build_cells(args)
        options = RunOptions(
            output_dir=args.output_dir,
            data_dir=args.data_dir,
            intra_op_threads=args.intra_op_threads,
            inter_op_threads=args.inter_op_threads,
            timeout_s=getattr(args, "timeout", PRESET_TIMEOUTS[args.preset]),
            profile=getattr(args, "profile", None),
            cluster=tuple(args.cluster) if getattr(args, "cluster", None) else None,
            task_index=getattr(args, "task_index", 0),
        )
        if options.cluster is not None:
            _check_cluster(cells, options.cluster)
        sources: dict[str, DataSource] = {
            name: locate_dataset(name, args.data_dir)
            for name in dict.fromkeys(c.workload.dataset for c in cells)
        }
    except (ValueError, DatasetNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    return cells, options, sources


def _check_cluster(cells: list[Cell], cluster: tuple[str, ...]) -> None:
    """With ``--cluster`` every cell must be a multi-worker cell of that many workers."""
    for cell in cells:
        v = cell.variant
        if v.strategy != "multiworker" or v.replicas != len(cluster):
            raise ValueError(
                f"--cluster lists {len(cluster)} workers, so every variant must end in "
                f"*multiworker:{len(cluster)} (got {v.name})"
            )


def _start(args: argparse.Namespace, stop: StopRequest) -> MatrixResult:
    cells, options, sources = _plan(args)
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


def report_command(args: argparse.Namespace) -> int:
    """``tapebench report``: tables, figures and an HTML page from stored records."""
    try:
        loaded = load_results(args.results)
        records = list(loaded.records)
        if args.invocation:
            records = [r for r in records if r.invocation_id in args.invocation]
            if not records:
                raise ValueError(f"no runs of invocation(s) {', '.join(args.invocation)}")
        mode, _, precision = args.baseline.partition("/")
        options = ReportOptions(
            baseline=(mode, precision or "float32"),
            target_accuracy=args.target_accuracy,
            parity_tolerance=args.parity_tolerance,
        )
        if "parquet" in args.format and args.out is None:
            raise ValueError("--format parquet writes files: add --out DIR")
    except (ResultFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    report = build_report(Results.from_records(records, loaded.roots), options)
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
        args.html.write_text(html_report(report), encoding="utf-8")
        print(f"{PROG}: wrote {args.html}", file=sys.stderr)
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """``tapebench compare``: regression verdicts, cell by cell; exit 1 on a regression."""
    policy = _gate_policy(args)
    try:
        base, cand = load_side(args.baseline), load_side(args.candidate)
    except ResultFileError as exc:
        raise UsageError(str(exc)) from None
    return _gate(base, cand, policy, args.allow_mixed_environments, args.json)


def _gate(
    base: Side, cand: Side, policy: GatePolicy, allow_mixed: bool, json_path: Path | None
) -> int:
    differences = environment_differences(base, cand)
    if differences and not allow_mixed:
        raise UsageError(
            f"baseline and candidate come from different environments (they "
            f"differ in {', '.join(differences)}); compare like with like, or "
            "pass --allow-mixed-environments"
        )
    verdicts = compare_sides(base, cand, policy)
    if not verdicts:
        raise UsageError(f"no cell appears in both {base.source} and {cand.source}")
    print(verdicts_markdown(verdicts, base, cand, policy))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(verdicts_json(verdicts, policy) + "\n")
    regressions = [v for v in verdicts if v.verdict == "regression"]
    print(f"{PROG}: {len(regressions)} regression(s) in {len(verdicts)} cell(s)", file=sys.stderr)
    return 1 if regressions else 0


def _gate_policy(args: argparse.Namespace) -> GatePolicy:
    try:
        return GatePolicy(
            threshold=args.threshold,
            alpha=args.alpha,
            min_effect_s=args.min_effect_ms / 1e3,
            min_runs=args.min_runs,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def ab_command(args: argparse.Namespace) -> int:
    """``tapebench ab``: baseline revision vs this source, interleaved, then the verdicts."""
    cells, options, sources = _plan(args)
    policy = _gate_policy(args)
    out = Path(args.output_dir)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--output-dir {out} is not empty; an A/B needs a fresh directory")
    stop = StopRequest()
    try:
        with stop_on_signals(stop):
            result = run_ab(
                cells,
                options,
                sources,
                args.baseline,
                args.runs,
                [PROG, *args.argv],
                args.inject_delay_ms / 1e3,
                stop,
            )
    except RevisionError as exc:
        raise UsageError(str(exc)) from None
    if result.interrupted:
        print(
            f"{PROG}: stopped by {stop.signal_name}; the runs so far are in "
            f"{result.baseline.root} and {result.candidate.root}",
            file=sys.stderr,
        )
        return 130
    print(f"{PROG}: baseline {args.baseline} = {result.baseline_commit[:12]}", file=sys.stderr)
    try:
        base, cand = load_side(result.baseline.root), load_side(result.candidate.root)
    except ResultFileError as exc:  # e.g. every run failed: nothing to compare
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return _gate(base, cand, policy, args.allow_mixed_environments, args.json)
