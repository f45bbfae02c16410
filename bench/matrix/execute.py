"""The job loop: slots of one or more plans, in a given order, one fresh worker per run.

``tapebench run`` passes one plan and its slots in plan order (A B C, A B C, ... so
machine drift hits every cell alike); ``tapebench ab`` two plans, interleaved A B, B A, ...
Whatever the caller, the loop applies the same rules: variants that cannot run are
recorded as skipped without a worker; GPU runs are skipped when a probe worker sees no
GPU; each invocation is locked (``flock``) while it runs, so it cannot be resumed twice at
once; each finished run is written before the next starts. A stop request (Ctrl-C,
SIGTERM) ends the in-flight run as ``interrupted`` and the loop with it; ``resume`` later
runs exactly the slots that have no record, or only interrupted ones (as a new attempt,
``<slot>-a2``, ...). Run ids start with the invocation id, so invocations sharing a
results directory never write the same file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bench.machine.fingerprint import SOURCE_ROOT
from bench.machine.peak_cache import ensure_peaks
from bench.matrix.adaptive import next_round
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.job import Job, SourceTree
from bench.matrix.jobs import Side, create_job, current_record, pending_job, stored_attempts
from bench.matrix.launcher import Launcher
from bench.matrix.plan import MatrixError, Plan, Slot, create_plan, read_plan, write_plan
from bench.matrix.process import RunAssembler
from bench.matrix.progress import Progress
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from bench.matrix.workers import EventHook, execute_job
from reports.schema import RunRecord
from trainloop.datasets import DataSource

# What runs next, given the plans and every side's records so far: (side index, new slot).
# A hook may name new cells: it first puts in plans[k] that plan with them appended.
More = Callable[[list[Plan], list[list[RunRecord]]], list[tuple[int, Slot]]]
SideJob = tuple[int, Job]  # a job, and the index of the side it belongs to


@dataclass(frozen=True)
class MatrixResult:
    """What an invocation holds after running (or resuming)."""

    invocation_id: str
    results: ResultsDir
    records: tuple[RunRecord, ...]  # the current record of each slot, in plan order
    executed: int  # runs recorded by this call (skipped ones included)
    interrupted: bool
    pending: int  # slots still without a result


@contextlib.contextmanager
def _locked(results: ResultsDir, invocation_id: str) -> Iterator[None]:
    with open(results.lock_path(invocation_id), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MatrixError(
                f"invocation {invocation_id} is running in another tapebench process"
            ) from None
        yield


class _JobLoop:
    """One :func:`execute_plans` call: its sides, and the records it wrote for each."""

    def __init__(self, sides: Sequence[Side], stop: StopRequest, duet: bool = False) -> None:
        self.sides = list(sides)  # a side's plan gains the cells a hook adds
        self.stop = stop
        self.duet = duet
        self.written: list[list[RunRecord]] = [[] for _ in sides]
        self.notes: list[str] = []
        first = sides[0]
        self.launcher = Launcher(first.results.logs, first.plan.invocation_id)

    def write(self, k: int, record: RunRecord) -> None:
        """Stores ``record`` with side ``k``'s results."""
        self.sides[k].results.write_run(record)
        self.written[k].append(record)

    def skip_unsupported(self, jobs: list[SideJob]) -> list[SideJob]:
        """Records ``skipped`` for combinations that are not run (no worker needed);
        returns the other jobs."""
        left = []
        for k, job in jobs:
            reason = job.cell.variant.unsupported_reason()
            if reason is None:
                left.append((k, job))
                continue
            self.write(k, RunAssembler(job).record("skipped", reason))
            self.notes.append(f"skipping {job.cell.variant.name}: {reason}")
        return left

    def skip_without_gpu(self, jobs: list[SideJob]) -> list[SideJob]:
        """Records ``skipped`` for GPU jobs when a probe worker sees no GPU; returns the
        jobs left. The probe runs this tree: what a machine has does not depend on it."""
        gpu = [(k, j) for k, j in jobs if j.cell.variant.device == "gpu"]
        if not gpu:
            return jobs
        k, first = gpu[0]
        probe = first.derive(f"{first.invocation_id}-probe", probe=True)
        probe = dataclasses.replace(probe, source=SourceTree())
        seen = execute_job(probe, self.sides[k].results.log_path(probe.run_id))
        if seen.status != "ok" or seen.fingerprint.get("gpus") != []:
            return jobs  # GPUs visible, or the probe failed: let each run find out itself
        for k, job in gpu:
            assembler = RunAssembler(job, runtime=seen.fingerprint)
            self.write(k, assembler.record("skipped", "no GPU visible", log_file=seen.log_file))
        self.notes.insert(0, f"skipping {len(gpu)} GPU run(s): no GPU visible")
        return [(k, j) for k, j in jobs if j.cell.variant.device != "gpu"]

    def measure_peaks(self, jobs: list[SideJob]) -> list[dict[str, float]]:
        """Per side, the matmul peaks of its devices and precisions, where its plan asks
        for them and its workers run this tree (an older tree's may not know the task)."""
        peaks = []
        for k, side in enumerate(self.sides):
            timing = [j for i, j in jobs if i == k and j.task.profile is None]
            wanted = side.plan.options.measure_peak and side.source.root == SOURCE_ROOT
            peaks.append(ensure_peaks(timing, side.results) if wanted else {})
        return peaks

    def run(self, jobs: list[SideJob], peaks: list[dict[str, float]], progress: Progress) -> None:
        """Runs ``jobs`` in order, each record written before the next run starts; in a
        duet, two at a time (see :meth:`run_duet`)."""
        if self.duet:
            self.run_duet(jobs, peaks, progress)
            return
        for k, job in jobs:
            if self.stop.requested:
                break
            progress.run_begin(self._label(k, job), job.cell.workload.epochs)
            record = self._execute(k, job, peaks, progress.on_event)
            self.write(k, record)
            progress.run_end(record)

    def run_duet(
        self, jobs: list[SideJob], peaks: list[dict[str, float]], progress: Progress
    ) -> None:
        """Runs ``jobs`` two at a time -- a pair's two runs side by side, each pinned to a
        CPU of its own (the pinning swapped from pair to pair), so that the same moments
        of the machine's noise hit both."""
        for i in range(0, len(jobs), 2):
            if self.stop.requested:
                break
            pair = jobs[i : i + 2]
            cpus = [(0,), (1,)] if (i // 2) % 2 == 0 else [(1,), (0,)]
            pinned = [
                (k, dataclasses.replace(j, cpus=c)) for (k, j), c in zip(pair, cpus, strict=False)
            ]
            progress.run_begin(" | ".join(self._label(k, j) for k, j in pinned), 1)
            with ThreadPoolExecutor(len(pinned)) as pool:
                futures = [pool.submit(self._execute, k, j, peaks, None) for k, j in pinned]
                records = [f.result() for f in futures]
            for (k, _), record in zip(pinned, records, strict=True):
                self.write(k, record)
                progress.run_end(record)

    def _label(self, k: int, job: Job) -> str:
        label = job.cell.label + ("" if job.task.profile else f" #{job.repeat + 1}")
        name = self.sides[k].name
        return f"{name}: {label}" if name else label

    def _execute(
        self, k: int, job: Job, peaks: list[dict[str, float]], on_event: EventHook | None
    ) -> RunRecord:
        side, cell = self.sides[k], job.cell
        timeout = side.plan.options.timeout_s
        launcher = self.launcher if side.plan.options.fork_workers else None
        log = side.results.log_path(job.run_id)
        record = execute_job(job, log, timeout, on_event, self.stop, launcher)
        peak = peaks[k].get(f"{cell.variant.device}/{cell.variant.precision}")
        if peak:
            record = dataclasses.replace(record, info={**record.info, "peak_flops": peak})
        return record

    def current(self, k: int, plan: Plan, stored: dict[str, list[RunRecord]]) -> list[RunRecord]:
        """The record standing for each of ``plan``'s slots so far (stored or written)."""
        attempts = {slot: list(records) for slot, records in stored.items()}
        for record in self.written[k]:
            attempts.setdefault(record.slot_id or record.run_id, []).append(record)
        current = (current_record(attempts.get(s.slot_id, [])) for s in plan.slots)
        return [r for r in current if r is not None]

    def extend(
        self,
        plans: list[Plan],
        stored: list[dict[str, list[RunRecord]]],
        peaks: list[dict[str, float]],
        progress: Progress,
        more: More,
    ) -> list[Plan]:
        """Runs what ``more`` asks for next, given every side's records so far, until it
        asks for nothing or a stop is requested; each batch of new slots (and the cells a
        hook added, see :data:`More`) is written into its side's plan before it runs, so
        ``--resume`` sees them."""
        while not self.stop.requested:
            order = more(plans, [self.current(k, p, stored[k]) for k, p in enumerate(plans)])
            if not order:
                break
            for k in dict.fromkeys(k for k, _ in order):
                new = tuple(s for i, s in order if i == k)
                plans[k] = dataclasses.replace(plans[k], slots=plans[k].slots + new)
                self.sides[k] = dataclasses.replace(self.sides[k], plan=plans[k])
                write_plan(self.sides[k].results, plans[k])
            progress.total += len(order)
            self.run([(k, create_job(self.sides[k], s)) for k, s in order], peaks, progress)
        return plans

    def close(self, k: int, plan: Plan, stored: dict[str, list[RunRecord]]) -> MatrixResult:
        """Writes side ``k``'s plan in its final state; returns the invocation's result."""
        for record in self.written[k]:
            stored.setdefault(record.slot_id or record.run_id, []).append(record)
        current = [current_record(stored.get(s.slot_id, [])) for s in plan.slots]
        pending = sum(r is None or r.status == "interrupted" for r in current)
        results = self.sides[k].results
        write_plan(results, plan.with_state("interrupted" if pending else "complete"))
        return MatrixResult(
            plan.invocation_id,
            results,
            tuple(r for r in current if r is not None),
            executed=len(self.written[k]),
            interrupted=self.stop.requested,
            pending=pending,
        )


def adaptive_rounds(plans: list[Plan], records: list[list[RunRecord]]) -> list[tuple[int, Slot]]:
    """The default of what runs next: adaptive sampling's next round for every side
    (:func:`bench.matrix.adaptive.next_round`; nothing without a precision)."""
    return [(k, s) for k, plan in enumerate(plans) for s in next_round(plan, records[k])]


def execute_plans(
    sides: Sequence[Side],
    order: Sequence[tuple[int, Slot]],
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
    more: More | None = None,
    duet: bool = False,
) -> list[MatrixResult]:
    """Runs the slots of ``order`` -- (side index, slot) pairs -- that still need a run,
    in that order, under the rules above; then whatever ``more`` asks for next, given the
    records so far (default: :func:`adaptive_rounds`); returns each side's result. With
    ``duet``, runs go two at a time, side by side, each pinned to a CPU of its own.

    Raises:
      MatrixError: an invocation is running in another process.
      ResultFileError: a stored run of an invocation is unreadable.
    """
    loop = _JobLoop(sides, stop or StopRequest(), duet)
    with contextlib.ExitStack() as stack:
        for side in sides:
            stack.enter_context(_locked(side.results, side.plan.invocation_id))
        stored = [stored_attempts(side) for side in sides]
        jobs = [(k, pending_job(sides[k], s, stored[k].get(s.slot_id, []))) for k, s in order]
        todo = loop.skip_unsupported([(k, j) for k, j in jobs if j is not None])
        todo = loop.skip_without_gpu(todo)
        progress = Progress(len(todo), stream or sys.stderr, sides[0].plan.options.timeout_s)
        for note in loop.notes:
            progress.note(note)
        peaks = loop.measure_peaks(todo)
        plans = [s.plan.with_state("running", peaks=p) for s, p in zip(sides, peaks, strict=True)]
        for side, plan in zip(sides, plans, strict=True):
            write_plan(side.results, plan)
        stack.callback(loop.launcher.close)
        loop.run(todo, peaks, progress)
        plans = loop.extend(plans, stored, peaks, progress, more or adaptive_rounds)
        return [loop.close(k, plan, stored[k]) for k, plan in enumerate(plans)]


def run_matrix(
    cells: Sequence[Cell],
    options: RunOptions,
    sources: Mapping[str, DataSource],
    repeats: int = 1,
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> MatrixResult:
    """Plans and runs ``cells`` x ``repeats`` into ``options.output_dir``.

    ``sources`` maps each dataset name used by the cells to where its files are.
    """
    return run_plan(create_plan(cells, repeats, options, sources, argv), stop, stream)


def run_plan(
    plan: Plan,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
    more: More | None = None,
) -> MatrixResult:
    """Stores a new invocation's ``plan`` in ``plan.options.output_dir`` and runs it, then
    what ``more`` asks for (default: :func:`adaptive_rounds`)."""
    write_plan(ResultsDir(plan.options.output_dir).create(), plan)
    return _execute_one(plan, stop, stream, more)


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
    return _execute_one(read_plan(results, invocation_id), stop, stream)


def _execute_one(
    plan: Plan, stop: StopRequest | None, stream: TextIO | None, more: More | None = None
) -> MatrixResult:
    (result,) = execute_plans([Side(plan)], [(0, s) for s in plan.slots], stop, stream, more)
    return result
