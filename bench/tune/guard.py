"""The accuracy guard: a faster configuration is recommended only if it learns as well.

Before recommending, the best few configurations of the search and the float32 default
train on real data for a few full epochs (one run each, an invocation of its own in the
same results directory) and each must reach the default's final test accuracy within the
parity tolerance -- the rule of the report's accuracy parity check
(:func:`reports.comparisons.accuracy_parity`: at most ``--parity-tolerance`` below
float32, compared once BatchNorm's moving statistics have settled,
:data:`~reports.comparisons.SETTLED_STEPS`). A configuration that falls short is shown
with its accuracy, and not recommended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import MatrixResult, run_plan
from bench.matrix.plan import create_plan
from bench.matrix.signals import StopRequest
from reports.comparisons import SETTLED_STEPS
from reports.schema import RunRecord
from trainloop.datasets import DataSource

DEFAULT_TOLERANCE = 0.01  # the report's --parity-tolerance default


@dataclass(frozen=True)
class GuardSpec:
    """What the guard trains on: ``dataset`` for ``epochs`` full epochs, evaluated on the
    whole test set, and how far below the default's accuracy a candidate may land."""

    dataset: str = "fashion_mnist"
    epochs: int = 2
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.dataset == "synthetic":
            raise ValueError(
                "the accuracy guard needs real data: synthetic images have no labels to learn"
            )
        if self.epochs < 1:
            raise ValueError(f"guard epochs={self.epochs!r} must be an integer >= 1")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"parity tolerance={self.tolerance!r} must be a fraction in [0, 1)")

    def cell(self, searched: Cell) -> Cell:
        """The guard's cell for a configuration found by the search."""
        workload = searched.workload.replace(
            dataset=self.dataset,
            epochs=self.epochs,
            steps_per_epoch=None,
            eval_examples=None,
            warmup_steps=10,
        )
        return dataclasses.replace(searched, workload=workload)


@dataclass(frozen=True)
class Verdict:
    """The guard's finding for one configuration (keyed by its search cell)."""

    cell: Cell
    status: str
    accuracy: float | None
    steps: int
    passed: bool | None  # None: no verdict (a run did not finish)
    note: str

    @property
    def recommendable(self) -> bool:
        """Whether the guard lets it be recommended."""
        return self.passed is True


def _accuracy(record: RunRecord) -> float | None:
    accuracies = [e.test_accuracy for e in record.epochs if e.test_accuracy is not None]
    return accuracies[-1] if record.status == "ok" and accuracies else None


def _steps(record: RunRecord) -> int:
    return int(record.cell.get("steps_per_call", 1)) * len(record.steps)


def judge(cells: Sequence[Cell], records: Sequence[RunRecord], tolerance: float) -> list[Verdict]:
    """Verdicts for ``cells`` (the default first) from their guard runs' ``records``, in
    the same order."""
    reference = _accuracy(records[0])
    out = []
    for cell, record in zip(cells, records, strict=True):
        accuracy, steps = _accuracy(record), _steps(record)
        if reference is None or accuracy is None:
            failed = record if accuracy is None else records[0]
            why = f"{failed.status}: {failed.reason}" if failed.reason else failed.status
            note = f"no verdict: the guard run of {failed.variant_name} ended {why}"
            out.append(Verdict(cell, record.status, accuracy, steps, None, note))
            continue
        passed = accuracy >= reference - tolerance
        note = (
            f"{accuracy:.2%} vs float32's {reference:.2%}: "
            + ("within" if passed else "more than")
            + f" {tolerance:.1%} "
            + ("of it" if passed else "below it")
        )
        if min(steps, _steps(records[0])) < SETTLED_STEPS:
            note += f" (after {steps} steps: BatchNorm's statistics are still settling)"
        out.append(Verdict(cell, record.status, accuracy, steps, passed, note))
    return out


def run_guard(
    default: Cell,
    finalists: Sequence[Cell],
    spec: GuardSpec,
    options: RunOptions,
    sources: Mapping[str, DataSource],
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> tuple[list[Verdict], MatrixResult]:
    """Trains the default and ``finalists`` as :meth:`GuardSpec.cell` says, one run
    each, as one invocation in ``options.output_dir``; their verdicts, default first."""
    searched = list(dict.fromkeys([default, *finalists]))
    cells = [spec.cell(c) for c in searched]
    plain = dataclasses.replace(options, sampling=None, timeout_s=None, profile=None)
    result = run_plan(create_plan(cells, 1, plain, sources, argv), stop, stream)
    if len(result.records) < len(cells):  # interrupted before every run finished
        return [], result
    return judge(searched, result.records, spec.tolerance), result
