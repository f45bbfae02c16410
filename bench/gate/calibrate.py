"""Calibrating the gate on this runner: its false-alarm rate and the slowdowns it catches.

A team should know what its gate does on its own runner before trusting it. Trials are
real A/Bs of this source against a revision of the same code (A/A: nothing changed), and
against itself with a known slowdown: real work added to every candidate step
(:func:`trainloop.step.create_burner`: matmuls on the step's threads, which a busy
machine stretches as it stretches the step -- unlike waiting for a fixed time). The
slowdown is sized once, from a quiet calibration run: units of work = fraction x the
step's median time / the time of one unit. Trials alternate A/A and each slowdown, so
drift hits them alike; with ``neighbour`` they run beside a bursty one-core load
(:mod:`bench.gate.neighbour`), what a shared CI runner looks like.

From the A/A trials' pairs comes the noise of a pair (the standard deviation of the log
ratio); the sequential design's simulation (:func:`reports.sequential.simulate`) turns it
into the smallest slowdown the gate catches with 90% power within its budget of pairs.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from bench.gate.ab import ab_pairs, ab_verdicts, run_ab
from bench.gate.neighbour import bursty_neighbour
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import execute_plans
from bench.matrix.jobs import Side
from bench.matrix.plan import create_plan, read_plan, write_plan
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from reports.load import load_records
from reports.regression import GatePolicy, Verdict
from reports.sequential import LookSchedule, run_statistic, simulate
from trainloop.datasets import DataSource

POWER = 0.9


@dataclass(frozen=True)
class Sizing:
    """How a slowdown is made: the step's median and one unit of work, measured quietly."""

    step_s: float
    unit_s: float

    def units(self, fraction: float) -> int:
        """Units of work per step that add ``fraction`` of the step (at least one)."""
        return max(1, round(fraction * self.step_s / self.unit_s))

    def actual(self, fraction: float) -> float:
        """The fraction those units really add (units come whole)."""
        return self.units(fraction) * self.unit_s / self.step_s


@dataclass(frozen=True)
class Trial:
    """One A/B: what was injected, the verdict, the pairs it took and how long."""

    kind: str  # "A/A" or "+10%" ...
    index: int
    slowdown: float
    verdict: Verdict
    pairs: int
    seconds: float
    log_ratios: tuple[float, ...]  # each pair's log(candidate / baseline)


def size_slowdowns(
    cell: Cell, options: RunOptions, sources: Mapping[str, DataSource], root: Path
) -> Sizing:
    """Measures the cell's median step and one unit of injected work, in three quiet runs.

    Raises:
      RuntimeError: the calibration runs did not finish.
    """
    options = replace(options, output_dir=root, sampling=None, measure_peak=False)
    plan = create_plan([cell], 3, options, sources)
    write_plan(ResultsDir(root).create(), plan)
    side = Side(plan, measure_work_unit=True)
    (result,) = execute_plans([side], [(0, s) for s in plan.slots])
    ok = [r for r in result.records if r.status == "ok" and r.info.get("work_unit_s")]
    if not ok:
        reasons = "; ".join(f"{r.status}: {r.reason}" for r in result.records)
        raise RuntimeError(f"the calibration runs did not finish ({reasons})")
    step = statistics.median(run_statistic(r) for r in ok)
    unit = statistics.median(float(r.info["work_unit_s"]) for r in ok)
    return Sizing(step, unit)


def run_trial(
    kind: str,
    index: int,
    slowdown: float,
    units: int,
    setting: TrialSetting,
) -> Trial:
    """One A/B trial into its own directory; its verdict and pairs."""
    s = setting
    name = "aa" if not slowdown else f"slower{round(slowdown * 100)}pct"
    out = s.root / f"trial-{index:02d}-{name}"
    options = replace(s.options, output_dir=out)
    start = time.monotonic()
    result = run_ab(
        [s.cell],
        options,
        s.sources,
        s.baseline,
        s.schedule,
        s.policy,
        inject_work=units,
        stop=s.stop,
        stream=s.stream,
    )
    seconds = time.monotonic() - start
    plans = [read_plan(result.baseline, None), read_plan(result.candidate, None)]
    records = [load_records([result.baseline.root]), load_records([result.candidate.root])]
    (verdict,) = (v for v in ab_verdicts(plans, records, s.schedule, s.policy).values() if v)
    pairs = ab_pairs(plans, records).get(0, [])
    ratios = tuple(
        math.log(run_statistic(p.candidate) / run_statistic(p.baseline))
        for p in pairs
        if p.candidate.status == p.baseline.status == "ok"
    )
    return Trial(kind, index, slowdown, verdict, len(pairs), seconds, ratios)


@dataclass(frozen=True)
class TrialSetting:
    """What every trial of a calibration shares."""

    cell: Cell
    options: RunOptions
    sources: Mapping[str, DataSource]
    baseline: str
    schedule: LookSchedule
    policy: GatePolicy
    root: Path
    stop: StopRequest
    stream: TextIO | None = None
    duet: bool = False


def run_trials(
    setting: TrialSetting,
    sizing: Sizing,
    aa: int,
    ab: int,
    slowdowns: Sequence[float],
    neighbour: bool,
    on_trial: Callable[[Trial], None],
) -> list[Trial]:
    """A/A and slowed trials, interleaved (A/A, +x%, +y%, A/A, ...), optionally beside the
    bursty neighbour; ``on_trial`` sees each as it ends."""
    plan = []
    for i in range(max(aa, ab)):
        if i < aa:
            plan.append(("A/A", 0.0))
        if i < ab:
            plan += [(f"+{f:.0%}", f) for f in slowdowns]
    trials: list[Trial] = []
    with bursty_neighbour(seed=0) if neighbour else _nothing():
        for index, (kind, fraction) in enumerate(plan):
            if setting.stop.requested:
                break
            units = sizing.units(fraction) if fraction else 0
            trial = run_trial(kind, index, fraction, units, setting)
            if setting.stop.requested:
                break  # cut short by Ctrl-C: its verdict is the interruption's, not the gate's
            trials.append(trial)
            on_trial(trial)
    return trials


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def pair_noise(trials: Sequence[Trial]) -> float:
    """The standard deviation of a pair's log ratio, pooled over the A/A trials (each
    around its own mean); NaN without two pairs in some A/A trial."""
    groups = [np.asarray(t.log_ratios) for t in trials if t.kind == "A/A" and len(t.log_ratios) > 1]
    dof = sum(g.size - 1 for g in groups)
    if dof < 1:
        return math.nan
    return float(math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / dof))


def smallest_caught(
    noise: float, schedule: LookSchedule, threshold: float, power: float = POWER
) -> float | None:
    """The smallest slowdown (from 1% up, in steps of 1%) the sequential gate reports as a
    regression with ``power`` within ``schedule``'s pairs, for pairs of that ``noise``
    (simulated); None if none up to 100%."""
    if not math.isfinite(noise):
        return None
    for percent in range(1, 101):
        shares = simulate(1 + percent / 100, noise, schedule, threshold, trials=400, seed=percent)
        if shares["regression"] >= power:
            return percent / 100
    return None


def summary_lines(trials: Sequence[Trial], schedule: LookSchedule, policy: GatePolicy) -> list[str]:
    """The calibration's figures, line by line."""
    lines = []
    aa = [t for t in trials if t.kind == "A/A"]
    if aa:
        counts = {v: sum(t.verdict.verdict == v for t in aa) for v in _VERDICTS}
        lines.append(
            f"A/A: {counts['regression']} false alarm(s) in {len(aa)}; no change "
            f"{counts['no change']}, inconclusive {counts['inconclusive']}, improvement "
            f"{counts['improvement']}"
        )
    for kind in dict.fromkeys(t.kind for t in trials if t.kind != "A/A"):
        slowed = [t for t in trials if t.kind == kind]
        caught = sum(t.verdict.verdict == "regression" for t in slowed)
        lines.append(f"{kind}: caught {caught} of {len(slowed)}")
    if trials:
        median = statistics.median(t.seconds for t in trials)
        lines.append(
            f"median trial: {median:.0f} s; longest: {max(t.seconds for t in trials):.0f} s"
        )
    noise = pair_noise(trials)
    if math.isfinite(noise):
        found = smallest_caught(noise, schedule, policy.threshold)
        smallest = "none up to 100%" if found is None else f"+{found:.0%}"
        lines.append(
            f"pair noise (sd of the log ratio, A/A): {noise:.3f}; smallest slowdown caught "
            f"with {POWER:.0%} power within {schedule.max_pairs} pairs (simulated): {smallest}"
        )
    return lines


_VERDICTS = ("regression", "improvement", "no change", "inconclusive", "candidate failed")


def trial_row(t: Trial) -> str:
    """One trial as a line of the table."""
    v = t.verdict
    ratio = (
        f"{v.ratio:.3f} [{v.ratio_ci_low:.3f}–{v.ratio_ci_high:.3f}]"
        if math.isfinite(v.ratio_ci_low)
        else "n/a"
    )
    return (
        f"{t.kind + ' #' + str(t.index):<12}{v.verdict:<18}{ratio:<26}{t.pairs:>6}{t.seconds:>9.0f}"
    )


def trial_dict(t: Trial) -> dict[str, object]:
    """One trial for the JSON file."""
    return {
        "kind": t.kind,
        "index": t.index,
        "slowdown": t.slowdown,
        "verdict": dataclasses.asdict(t.verdict),
        "pairs": t.pairs,
        "seconds": t.seconds,
        "log_ratios": list(t.log_ratios),
    }
