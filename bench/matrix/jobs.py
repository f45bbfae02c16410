"""Jobs derived from a plan's slots: the one place a run's job is built.

A :class:`Side` is one plan's part in a job loop: the plan (whose ``options.output_dir`` is
where its results go), the source tree its workers run and a per-step delay to inject.
``tapebench run`` has one side; ``tapebench ab`` two, the baseline's tree and this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.matrix.cells import Sampling
from bench.matrix.job import Job, SourceTree, TraceRequest, WorkerTask
from bench.matrix.plan import Plan, Slot, trace_run_name
from bench.matrix.store import ResultsDir
from reports.layout import run_files
from reports.schema import RunRecord, read_run


@dataclass(frozen=True)
class Side:
    """One plan's part in a job loop.

    Attributes:
      plan: the invocation's plan; its results go to ``plan.options.output_dir``.
      source: the tapebench source every worker of this side runs.
      inject_delay_s: a known per-step slowdown (for checking that the gate catches one).
      inject_work: units of real work added to every step (the same, as work).
      measure_work_unit: its runs measure what one unit of that work takes.
      name: shown before each progress label when a loop runs several sides.
    """

    plan: Plan
    source: SourceTree = field(default_factory=SourceTree)
    inject_delay_s: float = 0.0
    name: str = ""
    inject_work: int = 0
    measure_work_unit: bool = False

    @property
    def results(self) -> ResultsDir:
        """Where this side's records, logs and manifest go."""
        return ResultsDir(self.plan.options.output_dir)


def _run_sampling(sampling: Sampling | None) -> dict[str, float | int | None] | None:
    """What one run's worker needs of the plan's adaptive sampling."""
    if sampling is None:
        return None
    return {
        "precision": sampling.precision,
        "budget_s": sampling.run_budget_s,
        "min_timed_steps": sampling.min_timed_steps,
    }


def _trace_request(side: Side, slot: Slot) -> TraceRequest | None:
    window = side.plan.options.profile
    if slot.purpose != "profile" or window is None:
        return None
    cell, invocation = side.plan.cell_of(slot), side.plan.invocation_id
    root = str(side.results.traces.resolve())
    return TraceRequest(window[0], window[1], root, trace_run_name(cell, invocation))


def create_job(side: Side, slot: Slot, attempt: int = 1) -> Job:
    """The job that fills ``slot`` (its ``attempt``-th run: ``<slot>-a<attempt>`` after
    the first)."""
    plan, options = side.plan, side.plan.options
    cell = plan.cell_of(slot)
    settings = cell.settings  # the cell's own thread counts win over the plan's
    task = WorkerTask(
        run_id=slot.slot_id + (f"-a{attempt}" if attempt > 1 else ""),
        cell=cell,
        data_source=plan.data_sources[cell.workload.dataset],
        intra_op_threads=settings.intra_op_threads or options.intra_op_threads,
        inter_op_threads=settings.inter_op_threads or options.inter_op_threads,
        inject_delay_s=side.inject_delay_s,
        inject_work=side.inject_work,
        measure_work_unit=side.measure_work_unit,
        profile=_trace_request(side, slot),
        # the same for every run of the cell: its first counts
        count_flops=options.count_flops and slot.repeat == 0,
        sampling=_run_sampling(options.sampling),
    )
    return Job(
        task,
        invocation_id=plan.invocation_id,
        repeat=slot.repeat,
        slot_id=slot.slot_id,
        purpose=slot.purpose,
        source=side.source,
        cluster=options.cluster,
        task_index=options.task_index,
        env=settings.env,
    )


def stored_attempts(side: Side) -> dict[str, list[RunRecord]]:
    """The side's stored runs, by slot, oldest attempt first.

    Raises:
      ResultFileError: a run file is unreadable.
    """
    by_slot: dict[str, list[RunRecord]] = {}
    for path in run_files(side.results.runs, f"{side.plan.invocation_id}-"):
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


def pending_job(side: Side, slot: Slot, attempts: Sequence[RunRecord]) -> Job | None:
    """The job ``slot`` still needs: None once it has a record other than interrupted
    ones; else its next attempt."""
    if any(r.status != "interrupted" for r in attempts):
        return None
    return create_job(side, slot, len(attempts) + 1)
