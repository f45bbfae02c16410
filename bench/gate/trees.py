"""A same-job sequential A/B of any two source trees: the baseline's and the candidate's.

:func:`bench.gate.ab.run_ab` measures an exported revision against this checkout; a
bisection measures an exported revision against another one. :func:`run_trees` takes both
trees and runs what ``run_ab`` runs: pairs of runs of every cell, one from each tree in
fresh worker processes, the order alternating A B, B A, ..., through the matrix's job loop
(:func:`execute_plans`: its skips, GPU probe and locks), a pair at a time until the cell's
verdict is decided at one of the schedule's looks or the budget is spent. The sides land
in ``OUT/baseline`` and ``OUT/candidate``, ordinary results directories that ``tapebench
report`` and ``tapebench compare`` read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bench.gate.ab import ABResult, ab_pairs, ab_verdicts, pair_order
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import More, execute_plans
from bench.matrix.job import SourceTree
from bench.matrix.jobs import Side
from bench.matrix.plan import ABSide, Plan, Slot, create_plan, write_plan
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from reports.regression import GatePolicy
from reports.schema import RunRecord
from reports.sequential import LookSchedule
from trainloop.datasets import DataSource

BASELINE, CANDIDATE = "baseline", "candidate"


def next_pairs(schedule: LookSchedule, policy: GatePolicy) -> More:
    """What runs next in a sequential A/B: one more pair of every undecided cell that has
    budget left. (The same rule as ``bench.gate.ab``'s, which keeps a private copy.)"""

    def more(plans: list[Plan], records: list[list[RunRecord]]) -> list[tuple[int, Slot]]:
        pairs = ab_pairs(plans, records)
        verdicts = ab_verdicts(plans, records, schedule, policy, final=False)
        order: list[tuple[int, Slot]] = []
        for index in (i for i, v in verdicts.items() if v is None):
            done = len(pairs.get(index, []))
            if done < schedule.max_pairs:
                slots = [
                    Slot(f"{p.invocation_id}-c{index:02d}-r{done}", index, done) for p in plans
                ]
                order += pair_order(index, done, (slots[0], slots[1]))
        return order

    return more


def run_trees(
    cells: Sequence[Cell],
    options: RunOptions,
    sources: Mapping[str, DataSource],
    trees: tuple[SourceTree, SourceTree],
    schedule: LookSchedule,
    policy: GatePolicy,
    baseline_rev: str,
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
    duet: bool = False,
) -> ABResult:
    """Runs A/B pairs of every cell from the baseline tree and the candidate tree
    (``trees``, in that order) into ``options.output_dir``'s ``baseline`` and
    ``candidate`` directories, until each cell is decided or its budget spent.
    ``baseline_rev`` is what the baseline was asked as (its plans record it with the
    baseline tree's commit). With ``duet`` a pair's two runs go side by side, each pinned
    to a CPU of its own.
    """
    root = Path(options.output_dir)
    commit = trees[0].commit or ""
    sides = []
    for name, tree in zip((BASELINE, CANDIDATE), trees, strict=True):
        # The gate compares step times; the efficiency columns' peaks are not needed.
        side_options = replace(options, output_dir=root / name, measure_peak=False)
        plan = create_plan(
            cells, 1, side_options, sources, argv, ABSide(name, baseline_rev, commit)
        )
        write_plan(ResultsDir(side_options.output_dir).create(), plan)
        sides.append(Side(plan, tree, name=name))
    first = zip(sides[0].plan.slots, sides[1].plan.slots, strict=True)
    order = [step for a, b in first for step in pair_order(a.cell_index, a.repeat, (a, b))]
    more = next_pairs(schedule, policy)
    base, cand = execute_plans(sides, order, stop, stream, more, duet=duet)
    return ABResult(base.results, cand.results, commit, base.interrupted or cand.interrupted)
