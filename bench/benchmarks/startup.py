"""Where a run's time goes from process start to its first timed step.

    python -m bench.benchmarks.startup --runs 6 [--before REV]

Runs the reference CNN, ``function/float32`` on synthetic data, ``--runs`` times in fresh
workers, and prints the median seconds from starting the worker to each stage of its
start-up (records hold them as ``info.startup``): ``worker`` (its main() began),
``imported`` (TensorFlow imported), ``data`` (arrays loaded), ``ready`` (model, optimizer,
input pipeline built), ``first_call`` (tracing and the first step), ``first_timed``
(warm-up done). Two sides alternate run by run, A B, B A, ...: by default this tree with
its workers forked from a zygote against this tree started as ``python -m bench.worker``;
with ``--before REV``, REV's tree (started as ``python -m bench.worker``, as it was)
against this one. Not a unit test: it measures the machine it runs on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.gate.ab import export_revision
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import execute_plans
from bench.matrix.job import SourceTree
from bench.matrix.jobs import Side
from bench.matrix.plan import Slot, create_plan, write_plan
from bench.matrix.store import ResultsDir
from reports.load import load_records
from trainloop.config import Variant, Workload
from trainloop.datasets import DataSource

STAGES = ("worker", "imported", "data", "ready", "first_call", "first_timed")


def _sides(root: Path, runs: int, before: str | None) -> list[Side]:
    cell = Cell(
        Variant("function"),
        Workload(dataset="synthetic", epochs=1, steps_per_epoch=30, eval_examples=0),
    )
    sources = {"synthetic": DataSource("synthetic", "synthetic", "generated")}
    trees = {"after": (SourceTree(), True)}
    if before is None:
        trees["exec"] = (SourceTree(), False)
    else:
        exported = (root / "before-source").resolve()
        trees["before"] = (SourceTree(exported, export_revision(before, exported)), False)
    sides = []
    for name, (tree, fork) in trees.items():
        options = RunOptions(
            output_dir=root / name, measure_peak=False, fork_workers=fork, timeout_s=600
        )
        plan = create_plan([cell], runs, options, sources)
        write_plan(ResultsDir(options.output_dir).create(), plan)
        sides.append(Side(plan, tree, 0.0, name))
    return sides


def _breakdown(results: Path) -> tuple[dict[str, float], dict[str, float]]:
    """The first run's start-up (it also starts the zygote, when there is one), and the
    median of the others'."""
    records = sorted(load_records([results]), key=lambda r: r.started_at or "")
    rows = [r.info.get("startup") or {} for r in records if r.status == "ok"]
    later = {
        stage: statistics.median(values)
        for stage in STAGES
        if (values := [row[stage] for row in rows[1:] if stage in row])
    }
    return (rows[0] if rows else {}), later


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Runs both sides interleaved and prints the breakdowns side by side."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmarks.startup", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=6, help="runs per side (default 6)")
    parser.add_argument("--before", metavar="REV", help="compare with REV's tree")
    parser.add_argument("--out", type=Path, help="keep the results here")
    args = parser.parse_args(argv)
    root = args.out or Path(tempfile.mkdtemp(prefix="tapebench-startup-"))
    sides = _sides(root, args.runs, args.before)
    order: list[tuple[int, Slot]] = []
    for a, b in zip(sides[0].plan.slots, sides[1].plan.slots, strict=True):
        pair = [(0, a), (1, b)]
        order += pair if a.repeat % 2 == 0 else pair[::-1]
    execute_plans(sides, order)
    table = {side.name: _breakdown(side.plan.options.output_dir) for side in sides}
    names = list(table)
    print(f"\nseconds from starting the worker ({args.runs} runs a side)")
    print(f"{'stage':<14}" + "".join(f"{n + ' 1st':>14}{n + ' rest':>14}" for n in names))
    for stage in STAGES:
        cells = [table[n][k].get(stage) for n in names for k in (0, 1)]
        print(f"{stage:<14}" + "".join(f"{_seconds(c):>14}" for c in cells))
    first = [table[n][1].get("first_timed") for n in names]
    if first[0] and first[1]:
        print(
            f"\nfirst timed step, runs after the first: {names[0]} {first[0]:.2f} s vs "
            f"{names[1]} {first[1]:.2f} s ({first[1] / first[0]:.2f}x)"
        )
    print(f"results in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
