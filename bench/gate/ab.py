"""Same-job A/B: a baseline revision and the candidate, measured in one job.

The baseline's source is exported from git (``git archive REV``) into the output
directory; every run is a fresh worker process started from one source tree or the other,
in pairs ordered A B, B A, A B, ... (so drift and warm-up of the machine hit both alike).
Pairs are added until each cell's verdict is decided (a group-sequential design whose
error rates hold under the repeated looks, :mod:`reports.sequential`) or the budget of
pairs is spent. The
two sides land in ``OUT/baseline`` and ``OUT/candidate``, ordinary results directories that
``tapebench report`` and ``tapebench compare`` read. This is the recommended CI setup: both
sides share the runner, the hour and the noise; a baseline stored from another machine
shares none of them. :func:`run_trees` does the same for any two trees (a bisection
measures one exported revision against another).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from bench.machine.fingerprint import COMMIT_MARKER, SOURCE_ROOT
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import More, execute_plans
from bench.matrix.job import SourceTree
from bench.matrix.jobs import Side
from bench.matrix.plan import ABSide, Plan, Slot, create_plan, write_plan
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from reports.regression import GatePolicy, Verdict
from reports.schema import RunRecord
from reports.sequential import LookSchedule, Pair, paired_verdict
from trainloop.datasets import DataSource


class RevisionError(ValueError):
    """The baseline revision cannot be resolved or exported."""


@dataclass(frozen=True)
class ABResult:
    """Where the two sides were stored, and whether the job was stopped early."""

    baseline: ResultsDir
    candidate: ResultsDir
    baseline_commit: str
    interrupted: bool


def export_revision(rev: str, target: Path, repo: Path = SOURCE_ROOT) -> str:
    """Writes the tree of ``rev`` into ``target``; returns its full commit hash."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        raise RevisionError(
            f"cannot export revision {rev!r} from {repo}: {text.strip() or exc}"
        ) from None
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    if not (target / "bench" / "worker.py").is_file():
        raise RevisionError(f"revision {rev!r} has no bench/worker.py: not a tapebench tree")
    (target / COMMIT_MARKER).write_text(commit + "\n")
    return commit


def pair_order(index: int, repeat: int, slots: tuple[Slot, Slot]) -> list[tuple[int, Slot]]:
    """Pair ``repeat`` of a cell in the order it runs: A B for even repeats, B A for odd,
    so that neither side always goes first."""
    pair = [(0, slots[0]), (1, slots[1])]
    return pair if repeat % 2 == 0 else pair[::-1]


def ab_pairs(
    plans: Sequence[Plan], records: Sequence[Sequence[RunRecord]]
) -> dict[int, list[Pair]]:
    """Each cell's pairs so far (by cell index), in repeat order: a baseline and a
    candidate run of the same repeat, both recorded."""
    by_slot = [{r.slot_id: r for r in side} for side in records]
    out: dict[int, list[Pair]] = {}
    for base_slot in plans[0].slots:
        if base_slot.purpose != "timing":
            continue
        cand_id = base_slot.slot_id.replace(plans[0].invocation_id, plans[1].invocation_id, 1)
        a, b = by_slot[0].get(base_slot.slot_id), by_slot[1].get(cand_id)
        if a is not None and b is not None:
            out.setdefault(base_slot.cell_index, []).append(Pair(a, b))
    for pairs in out.values():
        pairs.sort(key=lambda p: p.baseline.repeat)
    return out


def ab_verdicts(
    plans: Sequence[Plan],
    records: Sequence[Sequence[RunRecord]],
    schedule: LookSchedule,
    policy: GatePolicy,
    final: bool = True,
) -> dict[int, Verdict | None]:
    """The verdict on every cell of the A/B (None: undecided, more pairs due)."""
    pairs = ab_pairs(plans, records)
    return {
        i: paired_verdict(cell.label, pairs.get(i, []), schedule, policy, final)
        for i, cell in enumerate(plans[0].cells)
    }


def _sequential(schedule: LookSchedule, policy: GatePolicy) -> More:
    """What runs next in a sequential A/B: one more pair for every undecided cell."""

    def more(plans: list[Plan], records: list[list[RunRecord]]) -> list[tuple[int, Slot]]:
        order: list[tuple[int, Slot]] = []
        pairs = ab_pairs(plans, records)
        for index, verdict in ab_verdicts(plans, records, schedule, policy, False).items():
            done = len(pairs.get(index, []))
            if verdict is not None or done >= schedule.max_pairs:
                continue
            new = tuple(Slot(f"{p.invocation_id}-c{index:02d}-r{done}", index, done) for p in plans)
            order += pair_order(index, done, (new[0], new[1]))
        return order

    return more


BASELINE, CANDIDATE = "baseline", "candidate"


def run_ab(
    cells: Sequence[Cell],
    options: RunOptions,
    sources: Mapping[str, DataSource],
    baseline_rev: str,
    schedule: LookSchedule,
    policy: GatePolicy,
    argv: Sequence[str] = (),
    inject_delay_s: float = 0.0,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
    inject_work: int = 0,
    duet: bool = False,
) -> ABResult:
    """Runs A/B pairs of every cell -- ``baseline_rev``'s tree, exported from git, against
    this checkout -- with :func:`run_trees`.

    ``inject_delay_s`` (a wait) or ``inject_work`` (units of real work,
    :func:`trainloop.step.create_burner`) slows every candidate step by a known amount,
    for checking that the gate catches slowdowns; it is recorded in the candidate's runs.
    """
    exported = (Path(options.output_dir) / "baseline-source").resolve()  # the workers' cwd
    commit = export_revision(baseline_rev, exported)
    trees = (SourceTree(exported, commit), SourceTree())
    return run_trees(
        cells, options, sources, trees, schedule, policy, baseline_rev, argv, stop, stream,
        duet, inject_delay_s, inject_work,
    )  # fmt: skip


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
    inject_delay_s: float = 0.0,
    inject_work: int = 0,
) -> ABResult:
    """Runs A/B pairs of every cell from the baseline tree and the candidate tree
    (``trees``, in that order) into ``options.output_dir``'s ``baseline`` and ``candidate``
    directories -- one run from each tree in fresh processes, the order alternating
    (A B, B A, ...) -- until its verdict is decided at one of ``schedule``'s looks or its
    last look is reached. ``baseline_rev`` is what the baseline was asked as (its plans
    record it with the baseline tree's commit).

    Both sides go through the matrix's job loop (:func:`execute_plans`), so they get its
    skips, GPU probe, locks and cluster settings. With ``duet`` a pair's two runs go side
    by side, each pinned to a CPU of its own (the machine needs two).
    """
    root = Path(options.output_dir)
    commit = trees[0].commit or ""
    sides = []
    for name, tree in zip((BASELINE, CANDIDATE), trees, strict=True):
        # The gate compares step times; the efficiency columns' peaks are not needed.
        side_options = replace(options, output_dir=root / name, measure_peak=False)
        # One pair to start with; more follow one at a time (a broken candidate ends a cell
        # after its first run), judged at the schedule's looks.
        plan = create_plan(
            cells, 1, side_options, sources, argv, ABSide(name, baseline_rev, commit)
        )
        write_plan(ResultsDir(side_options.output_dir).create(), plan)
        delay, work = (inject_delay_s, inject_work) if name == CANDIDATE else (0.0, 0)
        sides.append(Side(plan, tree, delay, name, work))
    order: list[tuple[int, Slot]] = []
    for a, b in zip(sides[0].plan.slots, sides[1].plan.slots, strict=True):
        order += pair_order(a.cell_index, a.repeat, (a, b))
    more = _sequential(schedule, policy)
    base, cand = execute_plans(sides, order, stop, stream, more, duet=duet)
    return ABResult(base.results, cand.results, commit, base.interrupted or cand.interrupted)
