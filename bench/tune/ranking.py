"""The search's outcome as rows: every configuration with its median step time, interval,
speedup over the default and fraction of the matmul peak, best first.

Figures are run-level, as in the reports (:mod:`reports.stats`): a configuration's step
time is the geometric mean of its runs' medians with the t interval of their logs (with
one run, the bootstrap of its steps, marked as covering step-to-step noise only), and a
speedup the ratio of two such medians with Welch's t interval.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from bench.matrix.cells import Cell
from bench.tune.halving import Evidence, Search
from reports import stats
from reports.schema import RunRecord, settings_label
from trainloop.config import Workload

Groups = list[tuple[float, ...]]  # each ok run's timed step seconds


def timed_groups(records: Sequence[RunRecord]) -> Groups:
    """The timed steps of each ok run."""
    return [r.steps.timed_seconds for r in records if r.status == "ok" and r.steps.timed_seconds]


def config_label(cell: Cell) -> str:
    """A configuration in a few words: variant (without the device), model, settings."""
    name = cell.variant.name.replace(f"@{cell.variant.device}", "")
    settings = settings_label(cell.to_dict())
    return f"{name} {cell.workload.model}" + (f" [{settings}]" if settings else "")


def run_command(cell: Cell, *options: str) -> str:
    """The ``tapebench run`` command line that runs ``cell``'s configuration (its
    environment variables before it), with ``options`` added."""
    env = [f"{name}={shlex.quote(value)}" for name, value in cell.settings.env]
    w = cell.workload
    args = ["tapebench", "run", "--variants", cell.variant.name, "--model", w.model]
    args += ["--dataset", w.dataset, "--batch-size", str(w.batch_size)]
    given = Workload()  # what `run` assumes when these are not given
    if w.seed != given.seed:
        args += ["--seed", str(w.seed)]
    if w.learning_rate != given.learning_rate:
        args += ["--learning-rate", repr(w.learning_rate)]
    s = cell.settings
    if s.intra_op_threads or s.inter_op_threads:
        args += ["--intra-op-threads", str(s.intra_op_threads)]
        args += ["--inter-op-threads", str(s.inter_op_threads)]
    return " ".join([*env, *args, *options])


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval; ``within_run``: from one run's steps only."""

    value: float
    low: float
    high: float
    within_run: bool = False


def step_time(groups: Groups) -> Interval | None:
    """The run-level median step time (s) with its interval; None without runs."""
    if not groups:
        return None
    low, high = stats.median_ci(groups)
    centre = float(np.exp(stats.log_run_medians(groups).mean()))
    return Interval(centre, low, high, not stats.covers_runs(groups))


def speedup(baseline: Groups, groups: Groups) -> Interval | None:
    """How many times faster than ``baseline`` (>1: faster), with its interval: the ratio
    of the geometric means of run medians with Welch's interval when both sides have two
    or more runs; else the ratio of the pooled steps' medians, the centre of the
    bootstrap interval :func:`reports.stats.ratio_of_medians_ci` gives then."""
    if not baseline or not groups:
        return None
    low, high = stats.ratio_of_medians_ci(baseline, groups)
    within = not (stats.covers_runs(baseline) and stats.covers_runs(groups))
    if within:
        value = stats.median(np.concatenate(baseline)) / stats.median(np.concatenate(groups))
    else:
        logs = stats.log_run_medians(baseline).mean() - stats.log_run_medians(groups).mean()
        value = math.exp(logs)
    return Interval(value, low, high, within)


@dataclass(frozen=True)
class Row:
    """One configuration in the ranking."""

    cell: Cell
    state: str  # live, cut, failed, unmeasured
    note: str
    runs: int
    step: Interval | None
    vs_default: Interval | None
    vs_fit: Interval | None
    fraction_of_peak: float | None

    @property
    def shown_faster(self) -> bool:
        """Whether it is demonstrably faster than the default: the run-level interval of
        its speedup lies above 1 (one run's interval covers too little to say so)."""
        v = self.vs_default
        return v is not None and not v.within_run and v.low > 1


def _fraction(
    records: Sequence[RunRecord], step: Interval | None, peak: float | None
) -> float | None:
    flops = next((r.info["flops_per_step"] for r in records if r.info.get("flops_per_step")), None)
    if step is None or not peak or not flops:
        return None
    return float(flops) / step.value / peak


def ranking(
    search: Search,
    evidence: Mapping[Cell, Evidence],
    runs: Mapping[Cell, list[RunRecord]],
    baselines: tuple[Cell, Cell],
    peaks: Mapping[str, float],
) -> list[Row]:
    """Every configuration the search considered, in its ranking order."""
    groups = {cell: timed_groups(records) for cell, records in runs.items()}
    default, fit = (groups.get(b, []) for b in baselines)
    rows = []
    for key in search.ranking(evidence):  # type: ignore[arg-type]
        cell, status = cast(Cell, key), search.status[key]
        mine = groups.get(cell, [])
        step = step_time(mine)
        peak = peaks.get(f"{cell.variant.device}/{cell.variant.precision}")
        fraction = _fraction(runs.get(cell, []), step, peak)
        vs = (speedup(default, mine), speedup(fit, mine))
        rows.append(Row(cell, status.state, status.note, len(mine), step, *vs, fraction))
    return rows
