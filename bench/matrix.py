"""Runs a list of cells, one fresh worker process each, storing every record as it lands."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from bench.config import Cell, RunOptions
from bench.progress import Progress
from bench.runner import Job, RunAssembler, RunInterrupted, execute_run
from bench.store import ResultsDir, new_invocation_id
from reports.schema import RunRecord
from trainloop.datasets import DataSource


@dataclass(frozen=True)
class MatrixResult:
    """What an invocation produced."""

    invocation_id: str
    results: ResultsDir
    records: tuple[RunRecord, ...]
    interrupted: bool


def _probe_gpus(job: Job, results: ResultsDir) -> tuple[list[object] | None, RunRecord]:
    """Starts one worker that only describes its runtime; returns (GPUs or None, record)."""
    probe = Job(**{**job.__dict__, "run_id": job.invocation_id + "-probe", "probe": True})
    record = execute_run(probe, results.log_path(probe.run_id))
    gpus = record.fingerprint.get("gpus") if record.status == "ok" else None
    return (list(gpus) if isinstance(gpus, list) else None), record


def run_matrix(
    cells: Sequence[Cell],
    options: RunOptions,
    source: DataSource,
    argv: Sequence[str] = (),
    stream: TextIO | None = None,
) -> MatrixResult:
    """Runs each cell in its own worker, in order, writing each record before the next run.

    A GPU cell on a machine where a probe worker sees no GPU is recorded as ``skipped``
    without starting a worker. KeyboardInterrupt stops the matrix after recording the
    in-flight run as ``interrupted``; every finished run stays on disk.
    """
    results = ResultsDir(options.output_dir).create()
    invocation = new_invocation_id()
    results.write_invocation(
        invocation,
        {
            "invocation_id": invocation,
            "argv": list(argv),
            "cells": [c.to_dict() for c in cells],
            "data_source": source.to_dict(),
        },
    )
    jobs = [
        Job(
            run_id=f"{invocation}-{i:03d}",
            invocation_id=invocation,
            cell=c.to_dict(),
            repeat=0,
            data_source=source.to_dict(),
            intra_op_threads=options.intra_op_threads,
            inter_op_threads=options.inter_op_threads,
        )
        for i, c in enumerate(cells)
    ]
    records: dict[str, RunRecord] = {}
    gpu_jobs = [j for j in jobs if j.cell["device"] == "gpu"]
    gpus, probe = _probe_gpus(gpu_jobs[0], results) if gpu_jobs else (None, None)
    if gpus == [] and probe is not None:  # no worker needed to know these are skipped
        for job in gpu_jobs:
            assembler = RunAssembler(job, runtime=probe.fingerprint)
            records[job.run_id] = assembler.record(
                "skipped", "no GPU visible", log_file=probe.log_file
            )
            results.write_run(records[job.run_id])
    todo = [(c, j) for c, j in zip(cells, jobs, strict=True) if j.run_id not in records]
    progress = Progress(len(todo), stream or sys.stderr)
    if records:
        progress.note(f"skipping {len(records)} GPU cell(s): no GPU visible")
    interrupted = False
    for cell, job in todo:
        progress.run_begin(cell.label, cell.workload.epochs)
        try:
            record = execute_run(
                job, results.log_path(job.run_id), options.timeout_s, progress.on_event
            )
        except RunInterrupted as exc:
            record, interrupted = exc.record, True
        results.write_run(record)
        records[job.run_id] = record
        progress.run_end(record)
        if interrupted:
            break
    ordered = tuple(records[j.run_id] for j in jobs if j.run_id in records)
    return MatrixResult(invocation, results, ordered, interrupted)
