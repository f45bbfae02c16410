"""The matrix runner: cells x repeats, interleaved, one fresh worker process per run.

An invocation's plan is written first (``invocations/<id>.json``): its cells, repeats,
data sources and options, and its slots -- one per (cell, repeat), in the interleaved order
A B C, A B C, ... so machine drift hits every cell alike. Each finished run is written
before the next starts. A stop request (Ctrl-C, SIGTERM) ends the in-flight run as
``interrupted`` and the matrix with it; ``resume`` later runs exactly the slots that have
no record, or only interrupted ones (as a new attempt, ``<slot>-a2``, ...).

Concurrency: run ids start with the invocation id, so invocations sharing a results
directory never write the same file; an invocation is locked (``flock``) while it runs,
so it cannot be resumed twice at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench.machine.peak_cache import ensure_peaks
from bench.matrix.cells import Cell, RunOptions, cell_label
from bench.matrix.multiworker import execute_job
from bench.matrix.plan import MatrixError, create_plan, now, read_manifest, trace_run_name
from bench.matrix.process import Job, RunAssembler, execute_run
from bench.matrix.progress import Progress
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from reports.schema import VARIANT_FIELDS, RunRecord, read_run
from trainloop.config import Variant
from trainloop.datasets import DataSource


@dataclass(frozen=True)
class MatrixResult:
    """What an invocation holds after running (or resuming)."""

    invocation_id: str
    results: ResultsDir
    records: tuple[RunRecord, ...]  # the current record of each slot, in plan order
    executed: int  # runs executed by this call
    interrupted: bool
    pending: int  # slots still without a result


@contextlib.contextmanager
def _locked(results: ResultsDir, invocation_id: str) -> Iterator[None]:
    path = results.invocations / f"{invocation_id}.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MatrixError(
                f"invocation {invocation_id} is running in another tapebench process"
            ) from None
        yield


def _existing(results: ResultsDir, invocation_id: str) -> dict[str, list[RunRecord]]:
    """This invocation's stored runs, by slot, oldest attempt first."""
    by_slot: dict[str, list[RunRecord]] = {}
    for path in sorted(results.runs.glob(f"{invocation_id}-*.json")):
        record = read_run(path)
        by_slot.setdefault(record.slot_id or record.run_id, []).append(record)
    for attempts in by_slot.values():
        attempts.sort(key=lambda r: r.started_at or "")
    return by_slot


def current_record(attempts: Sequence[RunRecord]) -> RunRecord | None:
    """The record that stands for a slot: its latest finished attempt, else its latest."""
    finished = [r for r in attempts if r.status != "interrupted"]
    candidates = finished or list(attempts)
    return candidates[-1] if candidates else None


def _profile_job(
    manifest: dict[str, Any], slot: dict[str, Any], cell: dict[str, Any], results: ResultsDir
) -> dict[str, Any] | None:
    if slot.get("purpose") != "profile":
        return None
    window = manifest["profile"]
    return {
        "first": window["first"],
        "last": window["last"],
        "trace_root": str((results.root / "traces").resolve()),
        "run_name": trace_run_name(cell, manifest["invocation_id"]),
    }


def _jobs(
    manifest: dict[str, Any], done: dict[str, list[RunRecord]], results: ResultsDir
) -> list[Job]:
    """Jobs for the slots that have no record other than interrupted ones."""
    jobs = []
    options = manifest["options"]
    for slot in manifest["slots"]:
        attempts = done.get(slot["slot_id"], [])
        if any(r.status != "interrupted" for r in attempts):
            continue
        cell = manifest["cells"][slot["cell_index"]]
        suffix = f"-a{len(attempts) + 1}" if attempts else ""
        jobs.append(
            Job(
                run_id=slot["slot_id"] + suffix,
                slot_id=slot["slot_id"],
                invocation_id=manifest["invocation_id"],
                cell=cell,
                repeat=slot["repeat"],
                data_source=manifest["data_sources"][cell["dataset"]],
                intra_op_threads=options["intra_op_threads"],
                inter_op_threads=options["inter_op_threads"],
                purpose=slot.get("purpose", "timing"),
                cluster=tuple(options["cluster"]) if options.get("cluster") else None,
                task_index=options.get("task_index", 0),
                profile=_profile_job(manifest, slot, cell, results),
            )
        )
    return jobs


def _skip_unsupported(jobs: list[Job], results: ResultsDir) -> dict[str, RunRecord]:
    """Records ``skipped`` for combinations that are not run (no worker needed)."""
    skipped = {}
    for job in jobs:
        variant = Variant(**{k: job.cell[k] for k in VARIANT_FIELDS})
        reason = variant.unsupported_reason()
        if reason:
            skipped[job.run_id] = RunAssembler(job).record("skipped", reason)
            results.write_run(skipped[job.run_id])
    return skipped


def _skip_without_gpu(jobs: list[Job], results: ResultsDir) -> dict[str, RunRecord]:
    """Records ``skipped`` for GPU jobs when a probe worker sees no GPU."""
    gpu_jobs = [j for j in jobs if j.cell["device"] == "gpu"]
    if not gpu_jobs:
        return {}
    first = gpu_jobs[0]
    probe = Job(**{**first.__dict__, "run_id": first.invocation_id + "-probe", "probe": True})
    seen = execute_run(probe, results.log_path(probe.run_id))
    if seen.status != "ok" or seen.fingerprint.get("gpus") != []:
        return {}  # GPUs visible, or the probe failed: let each run find out itself
    skipped = {}
    for job in gpu_jobs:
        record = RunAssembler(job, runtime=seen.fingerprint).record(
            "skipped", "no GPU visible", log_file=seen.log_file
        )
        results.write_run(record)
        skipped[job.run_id] = record
    return skipped


def _execute(
    results: ResultsDir, manifest: dict[str, Any], stop: StopRequest, stream: TextIO | None
) -> MatrixResult:
    invocation = manifest["invocation_id"]
    with _locked(results, invocation):
        done = _existing(results, invocation)
        jobs = _jobs(manifest, done, results)
        unsupported = _skip_unsupported(jobs, results)
        jobs = [j for j in jobs if j.run_id not in unsupported]
        finished = _skip_without_gpu(jobs, results)
        todo = [j for j in jobs if j.run_id not in finished]
        timeout = manifest["options"]["timeout_s"]
        progress = Progress(len(todo), stream or sys.stderr, timeout)
        if finished:
            progress.note(f"skipping {len(finished)} GPU run(s): no GPU visible")
        for record in unsupported.values():
            progress.note(f"skipping {record.variant_name}: {record.reason}")
        finished.update(unsupported)
        peaks: dict[str, float] = {}
        if todo and manifest["options"].get("measure_peak", True):
            peaks = ensure_peaks([j for j in todo if not j.profile], results)
            manifest["peaks"] = peaks
        manifest.update(state="running", updated_at=now())
        results.write_invocation(invocation, manifest)
        for job in todo:
            if stop.requested:
                break
            label = cell_label(job.cell, None if job.profile else job.repeat)
            progress.run_begin(
                label + (" (profiling)" if job.profile else ""),
                1 if job.profile else job.cell["epochs"],
            )
            record = execute_job(
                job, results.log_path(job.run_id), timeout, progress.on_event, stop
            )
            peak = peaks.get(f"{job.cell['device']}/{job.cell['precision']}")
            if peak:
                record = dataclasses.replace(record, info={**record.info, "peak_flops": peak})
            results.write_run(record)
            finished[job.run_id] = record
            progress.run_end(record)
        for record in finished.values():
            done.setdefault(record.slot_id or record.run_id, []).append(record)
        current = [current_record(done.get(s["slot_id"], [])) for s in manifest["slots"]]
        pending = sum(r is None or r.status == "interrupted" for r in current)
        manifest.update(state="complete" if not pending else "interrupted", updated_at=now())
        results.write_invocation(invocation, manifest)
    return MatrixResult(
        invocation,
        results,
        tuple(r for r in current if r is not None),
        executed=len(finished),
        interrupted=stop.requested,
        pending=pending,
    )


def run_matrix(
    cells: Sequence[Cell],
    options: RunOptions,
    sources: dict[str, DataSource],
    repeats: int = 1,
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> MatrixResult:
    """Plans and runs ``cells`` x ``repeats`` into ``options.output_dir``.

    ``sources`` maps each dataset name used by the cells to where its files are.
    """
    missing = {c.workload.dataset for c in cells} - set(sources)
    if missing:
        raise ValueError(f"no data source for dataset(s) {', '.join(sorted(missing))}")
    results = ResultsDir(options.output_dir).create()
    manifest = create_plan(cells, repeats, options, sources, argv)
    results.write_invocation(manifest["invocation_id"], manifest)
    return _execute(results, manifest, stop or StopRequest(), stream)


def resume_matrix(
    output_dir: str | Path,
    invocation_id: str | None = None,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> MatrixResult:
    """Runs the slots of a stored invocation that have no result yet.

    Raises:
      MatrixError: no such invocation, or it is running elsewhere.
      ResultFileError: one of its run files is unreadable.
    """
    results = ResultsDir(output_dir)
    if not results.invocations.is_dir():
        raise MatrixError(f"{output_dir}: not a tapebench results directory")
    manifest = read_manifest(results, invocation_id)
    return _execute(results, manifest, stop or StopRequest(), stream)
