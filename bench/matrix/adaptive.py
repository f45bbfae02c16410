"""Adaptive sampling across runs: more runs for a cell until its interval is narrow enough.

With :class:`~bench.matrix.cells.Sampling` in a plan's options, each run stops once its
own median is known to the precision (or its time is up; see
:mod:`trainloop.sampling`), and after the plan's slots have run, every cell whose
run-level interval (the t interval over its runs' medians, :func:`reports.stats.median_ci`)
is still wider than the precision gets another run, round after round, interleaved, until
it is narrow enough, the cell's time budget would be exceeded, or it has ``max_runs``.
Reaching the budget is a result, not a failure: the report shows the interval reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.matrix.plan import Plan, Slot
from reports import stats
from reports.schema import RunRecord


@dataclass(frozen=True)
class CellState:
    """Where a cell stands after its runs so far."""

    runs: int  # timing runs recorded
    ok: int  # of them, finished ok
    spent_s: float  # their wall time
    precision: float  # the run-level interval's half-width relative to its centre (inf: none)

    def wants_more(self, target: float, budget_s: float | None, max_runs: int) -> bool:
        """Whether another run is due: all runs so far ok, the interval wider than
        ``target``, the budget has room for a run as long as the average so far, and
        fewer than ``max_runs`` runs."""
        if self.ok < self.runs or self.runs >= max_runs or self.precision <= target:
            return False
        if budget_s is None:
            return True
        return self.spent_s + self.spent_s / max(self.runs, 1) <= budget_s


def relative_half_width(groups: Sequence[Sequence[float]]) -> float:
    """Half the width of the run-level 95% interval of the median over its centre; inf
    below two runs (one run has no run-level interval)."""
    if len(groups) < 2:
        return math.inf
    low, high = stats.median_ci(groups)
    centre = math.sqrt(low * high)
    return (high - low) / (2 * centre) if centre > 0 else math.inf


def cell_state(records: Sequence[RunRecord]) -> CellState:
    """The state of one cell from its timing runs' records."""
    timing = [r for r in records if r.purpose == "timing"]
    ok = [r for r in timing if r.status == "ok"]
    groups = [r.steps.timed_seconds for r in ok if r.steps.timed_seconds]
    return CellState(
        runs=len(timing),
        ok=len(ok),
        spent_s=sum(r.wall_seconds or 0.0 for r in timing),
        precision=relative_half_width(groups),
    )


def next_round(plan: Plan, records: Sequence[RunRecord]) -> list[Slot]:
    """One more timing slot for every cell of ``plan`` that wants another run (none
    without sampling or a precision), in cell order; ids continue the cell's repeats."""
    sampling = plan.options.sampling
    if sampling is None or sampling.precision is None:
        return []
    mine = [s for s in plan.slots if s.purpose == "timing"]
    slot_of = {s.slot_id: s for s in mine}
    by_cell: dict[int, list[RunRecord]] = {}
    for record in records:
        slot = slot_of.get(record.slot_id or "")
        if slot is not None:
            by_cell.setdefault(slot.cell_index, []).append(record)
    out = []
    for index in sorted({s.cell_index for s in mine}):
        state = cell_state(by_cell.get(index, []))
        if state.wants_more(sampling.precision, sampling.cell_budget_s, sampling.max_runs):
            repeat = 1 + max(s.repeat for s in mine if s.cell_index == index)
            out.append(Slot(f"{plan.invocation_id}-c{index:02d}-r{repeat}", index, repeat))
    return out
