"""The search through the matrix job loop: every candidate run is an ordinary run.

The search's plan is one invocation in the results directory. Its first round is planned
up front; each later round is added by :meth:`SearchRun.more`, the job loop's
:data:`~bench.matrix.execute.More` hook: it reads the records standing for the plan's
slots, asks the :class:`~bench.tune.halving.Search` what to run next, and hands the loop
the new cells and slots, which it writes into the plan before it runs them. So records, logs,
zygotes (one per environment), interruption and ``report``/``compare`` work as for
``tapebench run``. The plan's own sampling only stops each run once its median is known
(or its time is up); ``max_runs=1`` keeps it from adding runs of its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import MatrixResult, run_plan
from bench.matrix.plan import Plan, Slot, create_plan
from bench.matrix.signals import StopRequest
from bench.tune.halving import Evidence, Search
from reports.schema import RunRecord
from trainloop.datasets import DataSource


def grow_plan(plan: Plan, wanted: Mapping[Cell, int]) -> Plan:
    """``plan`` with ``wanted[cell]`` more timing slots for each cell (cells it lacks are
    appended), interleaved: every cell's next repeat, then the one after."""
    cells = list(plan.cells)
    index = {cell: i for i, cell in enumerate(cells)}
    for cell in wanted:
        if cell not in index:
            index[cell] = len(cells)
            cells.append(cell)
    repeats = {i: 0 for i in range(len(cells))}
    for slot in plan.slots:
        repeats[slot.cell_index] = max(repeats[slot.cell_index], slot.repeat + 1)
    slots = []
    for r in range(max(wanted.values(), default=0)):
        for cell, runs in wanted.items():
            if r < runs:
                i = index[cell]
                repeat = repeats[i] + r
                slots.append(Slot(f"{plan.invocation_id}-c{i:02d}-r{repeat}", i, repeat))
    return dataclasses.replace(plan, cells=tuple(cells), slots=plan.slots + tuple(slots))


def _problem(record: RunRecord) -> str | None:
    if record.status == "ok":
        return None if record.steps.timed_seconds else "ok, but no timed steps"
    return f"{record.status}: {record.reason}" if record.reason else record.status


def runs_by_cell(plan: Plan, records: Sequence[RunRecord]) -> dict[Cell, list[RunRecord]]:
    """The records standing for ``plan``'s timing slots, by cell (interrupted ones left
    out: they are run again)."""
    cell_of = {s.slot_id: plan.cells[s.cell_index] for s in plan.slots if s.purpose == "timing"}
    out: dict[Cell, list[RunRecord]] = {}
    for record in records:
        cell = cell_of.get(record.slot_id or "")
        if cell is not None and record.status != "interrupted":
            out.setdefault(cell, []).append(record)
    return out


def evidence_of(plan: Plan, records: Sequence[RunRecord]) -> dict[Cell, Evidence]:
    """Each cell's evidence from the records standing for ``plan``'s timing slots."""
    out = {}
    for cell, mine in runs_by_cell(plan, records).items():
        medians = [_median(r.steps.timed_seconds) for r in mine if _problem(r) is None]
        problem = next((p for p in map(_problem, mine) if p), None)
        walls = tuple(r.wall_seconds or 0.0 for r in mine)
        out[cell] = Evidence(tuple(medians), walls, problem)
    return out


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


@dataclass
class SearchRun:
    """One search: its :class:`Search`, the clock its budget runs on, where it prints.

    ``started`` is ``time.monotonic()`` when the budget began (the command's start)."""

    search: Search
    started: float
    stream: TextIO
    evidence: dict[Cell, Evidence] = field(default_factory=dict)
    plan: Plan | None = None  # the search's plan as it last grew
    _printed: int = 0

    def elapsed(self) -> float:
        """Seconds of the budget spent."""
        return time.monotonic() - self.started

    def _say(self) -> None:
        for line in self.search.log[self._printed :]:
            self.stream.write(f"tune: {line}\n")
        self.stream.flush()
        self._printed = len(self.search.log)

    def propose(self, plan: Plan, records: Sequence[RunRecord]) -> dict[Cell, int]:
        """The search's next round for ``plan``, given its records so far."""
        self.evidence = evidence_of(plan, records)
        wanted = self.search.propose(self.evidence, self.elapsed())  # type: ignore[arg-type]
        if wanted:
            spent, budget = self.elapsed(), self.search.budget_s
            self.search.log.append(
                f"round {self.search.round}: {sum(wanted.values())} run(s) of "
                f"{len(wanted)} configuration(s); {spent:.0f} s of {budget:.0f} s spent"
            )
        self._say()
        return wanted  # type: ignore[return-value]

    def more(self, plans: list[Plan], records: list[list[RunRecord]]) -> list[tuple[int, Slot]]:
        """The job loop's hook (:data:`~bench.matrix.execute.More`): the next round's
        slots, its new cells put in ``plans[0]`` first; nothing once the search ends."""
        plan = plans[0]
        wanted = self.propose(plan, records[0])
        if not wanted:
            return []
        self.plan = grow_plan(plan, wanted)
        plans[0] = dataclasses.replace(self.plan, slots=plan.slots)
        return [(0, slot) for slot in self.plan.slots[len(plan.slots) :]]


def search_plan(
    run: SearchRun, options: RunOptions, sources: Mapping[str, DataSource], argv: Sequence[str]
) -> Plan:
    """The search's plan with its first round in it."""
    empty = dataclasses.replace(create_plan((), 1, options, sources, argv), data_sources=sources)
    run.plan = grow_plan(empty, run.propose(empty, []))
    return run.plan


def run_search(
    run: SearchRun,
    options: RunOptions,
    sources: Mapping[str, DataSource],
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
) -> MatrixResult:
    """Runs the whole search as one invocation in ``options.output_dir``; afterwards
    ``run.evidence`` holds every candidate's and ``run.search`` the verdict."""
    result = run_plan(search_plan(run, options, sources, argv), stop, run.stream, run.more)
    if run.plan is not None:
        run.evidence = evidence_of(run.plan, result.records)
    run.search.close(run.evidence)  # type: ignore[arg-type]
    run._say()
    return result
