"""Why the recommendation is faster: the default's and the winner's profiles side by side.

One profiling run of each (an invocation of its own, the ``--profile`` pass of ``tapebench
run``: separate from timing runs, its steps never enter the statistics) traces the same
window of steps; :func:`reports.trace_summary.summarize_profiles` breaks each down by
category (convolution, matmul, elementwise, ..., idle cores) per training step, and
:func:`side_by_side` sets the two against each other: what got cheaper, and by how much.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TextIO

import pandas as pd

from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import MatrixResult, run_plan
from bench.matrix.plan import create_plan
from bench.matrix.signals import StopRequest
from reports.frames import Results
from reports.trace_summary import ProfileSummary, summarize_profiles
from trainloop.datasets import DataSource

COLUMNS = ["category", "default_ms", "winner_ms", "difference_ms"]


def run_profiles(
    cells: Sequence[Cell],
    window: tuple[int, int],
    options: RunOptions,
    sources: Mapping[str, DataSource],
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> tuple[dict[Cell, ProfileSummary], list[str], MatrixResult]:
    """Traces steps ``window`` of each of ``cells`` in one profiling run each; the
    summary of each readable trace, by cell, and the problems."""
    traced = dataclasses.replace(options, profile=window, sampling=None)
    plan = create_plan(list(dict.fromkeys(cells)), 1, traced, sources, argv)
    plan = dataclasses.replace(plan, slots=tuple(s for s in plan.slots if s.purpose == "profile"))
    result = run_plan(plan, stop, stream)
    cell_of = {s.slot_id: plan.cells[s.cell_index] for s in plan.slots}
    by_run = {r.run_id: cell_of[r.slot_id or ""] for r in result.records}
    roots = {r.run_id: result.results.root for r in result.records}
    summaries, problems = summarize_profiles(Results.from_records(result.records, roots))
    problems += [
        f"{r.variant_name}: the profiling run ended {r.status}"
        + (f": {r.reason}" if r.reason else "")
        for r in result.records
        if r.status != "ok"
    ]
    return {by_run[s.run_id]: s for s in summaries}, problems, result


def side_by_side(default: ProfileSummary, winner: ProfileSummary) -> pd.DataFrame:
    """Milliseconds per training step by category, the default's and the winner's, and
    the difference (winner - default: negative is what got cheaper), largest change
    first; a last row holds the profiler's step time."""
    a = default.categories.set_index("category")["per_step_ms"].rename("default_ms")
    b = winner.categories.set_index("category")["per_step_ms"].rename("winner_ms")
    table = pd.concat([a, b], axis=1).fillna(0.0)
    table["difference_ms"] = table["winner_ms"] - table["default_ms"]
    table = table.reindex(table["difference_ms"].abs().sort_values(ascending=False).index)
    step = pd.DataFrame(
        {
            "default_ms": [default.profiler_step_ms],
            "winner_ms": [winner.profiler_step_ms],
            "difference_ms": [winner.profiler_step_ms - default.profiler_step_ms],
        },
        index=["step (profiler)"],
    )
    return pd.concat([table, step]).rename_axis("category").reset_index()[COLUMNS]
