"""What a worker process is asked to do, and the JSON protocol that carries it.

A :class:`Job` is one run as the parent sees it: the :class:`WorkerTask` the worker
executes, plus where the run belongs (invocation, slot, repeat) and how its workers are
started (which source tree, which cluster). The task travels to ``python -m bench.worker``
as one JSON argument. That protocol is read by older source trees too (``tapebench ab``
starts a baseline revision's worker with a task written by this tree), so fields still at
the value they had before they existed are left out of it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine.fingerprint import SOURCE_ROOT
from bench.matrix.cells import Cell
from reports.schema import CELL_DEFAULTS, PURPOSES
from trainloop.datasets import DataSource


@dataclass(frozen=True)
class SourceTree:
    """The tapebench source a worker runs: this one, or a tree exported from git."""

    root: Path = SOURCE_ROOT
    commit: str | None = None  # the commit an exported tree came from (it has no .git)


@dataclass(frozen=True)
class TraceRequest:
    """A profiling pass: trace steps ``[first, last)``, then publish the trace as
    ``<trace_root>/plugins/profile/<run_name>``."""

    first: int
    last: int
    trace_root: str
    run_name: str

    def __post_init__(self) -> None:
        if not 0 <= self.first < self.last:
            raise ValueError(f"trace window {self.first}:{self.last} needs 0 <= first < last")


@dataclass(frozen=True)
class WorkerTask:
    """What one worker process does: train ``cell`` (or only report its runtime, with
    ``probe``; or measure matmul peaks for the ``peak`` (device, precision) pairs)."""

    run_id: str
    cell: Cell
    data_source: DataSource | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    probe: bool = False
    inject_delay_s: float = 0.0  # a known per-step slowdown, for validating the gate
    inject_work: int = 0  # units of real work added to every step (trainloop.step)
    measure_work_unit: bool = False  # report what one unit of that work takes
    profile: TraceRequest | None = None
    peak: tuple[tuple[str, str], ...] = ()
    count_flops: bool = True  # count the step's FLOPs with TensorFlow's profiler, after training
    # adaptive sampling of this run: precision, budget_s (from the worker's start) and
    # min_timed_steps, as trainloop.sampling.StopRule takes them
    sampling: dict[str, float | int | None] | None = None

    def to_json(self, events_fd: int) -> str:
        """The worker's argument; ``events_fd`` is the pipe it writes events to."""
        variant = asdict(self.cell.variant)
        return json.dumps(
            {
                "run_id": self.run_id,
                "events_fd": events_fd,
                "variant": {k: v for k, v in variant.items() if CELL_DEFAULTS.get(k, ...) != v},
                "workload": asdict(self.cell.workload),
                "data_source": self.data_source.to_dict() if self.data_source else {},
                "probe": self.probe,
                "intra_op_threads": self.intra_op_threads,
                "inter_op_threads": self.inter_op_threads,
                "inject_delay_s": self.inject_delay_s,
                "inject_work": self.inject_work,
                "measure_work_unit": self.measure_work_unit,
                "profile": asdict(self.profile) if self.profile else None,
                "peak": [list(p) for p in self.peak] or None,
                "count_flops": self.count_flops,
                "sampling": self.sampling,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> tuple[WorkerTask, int]:
        """The inverse of :meth:`to_json`: the task and the events pipe's descriptor.
        Keys this tree does not know (written by a newer one) are ignored."""
        doc: dict[str, Any] = json.loads(text)
        source, profile = doc.get("data_source"), doc.get("profile")
        task = cls(
            run_id=str(doc["run_id"]),
            cell=Cell.from_dict({**doc["variant"], **doc["workload"]}),
            data_source=DataSource.from_dict(source) if source else None,
            intra_op_threads=int(doc.get("intra_op_threads") or 0),
            inter_op_threads=int(doc.get("inter_op_threads") or 0),
            probe=bool(doc.get("probe")),
            inject_delay_s=float(doc.get("inject_delay_s") or 0.0),
            inject_work=int(doc.get("inject_work") or 0),
            measure_work_unit=bool(doc.get("measure_work_unit")),
            profile=TraceRequest(**profile) if profile else None,
            peak=tuple((str(d), str(p)) for d, p in doc.get("peak") or ()),
            count_flops=bool(doc.get("count_flops", True)),
            sampling=doc.get("sampling"),
        )
        return task, int(doc["events_fd"])


@dataclass(frozen=True)
class Job:
    """One run as the parent sees it: the worker's task and where the run belongs.

    Attributes:
      task: what the worker does.
      invocation_id, repeat, slot_id, purpose: the run's place in its invocation's plan.
      source: the tapebench source its workers run.
      cluster, task_index: for a multi-worker cell spread over machines: every worker's
        ``HOST:PORT``, and the one started here.
      cpus: the CPUs its workers are pinned to (None: any).
      env: ``(NAME, VALUE)`` pairs added to its workers' environment before they start
        (the cell's run settings); workers of different environments come from
        different zygotes.
    """

    task: WorkerTask
    invocation_id: str
    repeat: int
    slot_id: str | None = None
    purpose: str = "timing"
    source: SourceTree = field(default_factory=SourceTree)
    cluster: tuple[str, ...] | None = None
    task_index: int = 0
    cpus: tuple[int, ...] | None = None  # pin its workers to these CPUs (a duet's half)
    env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose={self.purpose!r} is not one of {', '.join(PURPOSES)}")

    @property
    def run_id(self) -> str:
        """The id of the run (and of its record, log and worker task)."""
        return self.task.run_id

    @property
    def cell(self) -> Cell:
        """The cell the run measures."""
        return self.task.cell

    @property
    def multiworker(self) -> bool:
        """Whether the run is one worker process per replica."""
        plain = self.task.probe or self.task.peak
        return self.cell.variant.strategy == "multiworker" and not plain

    def derive(self, run_id: str, **task_changes: Any) -> Job:
        """A job of the same cell, started the same way, under another run id, with
        ``task_changes`` applied to the task (e.g. ``probe=True``)."""
        return dataclasses.replace(
            self, task=dataclasses.replace(self.task, run_id=run_id, **task_changes)
        )
