"""``tapebench tune`` from start to finish: peaks, space, search, guard, profiles.

Everything runs through the matrix job loop into one results directory, as three
invocations -- the search, the accuracy guard, the profiles -- so ``tapebench report``
and ``compare`` read it like any other. The ``budget`` is the search's: from the start
of the command (the matmul peaks, measured once per machine, included) until the
search's last run ends. The guard and the profiles come after it; tune prints what they
will take before starting them.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bench.machine.peak_cache import ensure_peaks
from bench.matrix.cells import Cell, RunOptions, Sampling
from bench.matrix.jobs import Side, create_job
from bench.matrix.plan import create_plan
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from bench.tune.driver import SearchRun, run_search, runs_by_cell
from bench.tune.guard import GuardSpec, Verdict, run_guard
from bench.tune.halving import Rules, Search
from bench.tune.ranking import Row, ranking
from bench.tune.space import Machine, Refusal, Space, flag_refusal, read_machine
from bench.tune.why import run_profiles
from reports.trace_summary import ProfileSummary
from trainloop.config import PRECISIONS, Variant, Workload
from trainloop.datasets import DataSource


@dataclass(frozen=True)
class TuneOptions:
    """What ``tapebench tune`` does.

    Attributes:
      workload: the workload as given (model, dataset, batch size, seed, learning rate);
        the search measures it in short runs of one epoch, without evaluation.
      output_dir: the results directory.
      budget_s: the search's wall time (see the module docstring).
      run_budget_s: each search run's time from its worker's start (then it stops with
        the precision it reached).
      guard: the accuracy guard, or None to skip it (then only float32 configurations,
        whose arithmetic is the default's, can be recommended).
      guard_top: how many of the best configurations the guard trains.
      profile: the steps the default's and the recommendation's profiles trace, or None
        (enough for a few calls of ``function:10``: the profiler's step analysis leaves
        out the first and last marked call).
      rules: how the search spends its runs.
    """

    workload: Workload
    output_dir: Path
    budget_s: float = 600.0
    run_budget_s: float = 8.0
    data_dir: Path | None = None
    guard: GuardSpec | None = field(default_factory=GuardSpec)
    guard_top: int = 3
    profile: tuple[int, int] | None = (20, 80)
    rules: Rules = field(default_factory=Rules)
    measure_peak: bool = True
    fork_workers: bool = True

    def __post_init__(self) -> None:
        if not self.budget_s > 0 or not self.run_budget_s > 0:
            raise ValueError(
                f"budget {self.budget_s!r} s and run budget {self.run_budget_s!r} s must be > 0"
            )
        if self.guard_top < 1:
            raise ValueError(f"guard_top={self.guard_top!r} must be an integer >= 1")

    @property
    def default(self) -> Cell:
        """The workload as given, as a search cell: ``function/float32`` on the CPU."""
        search = self.workload.replace(epochs=1, steps_per_epoch=None, eval_examples=0)
        return Cell(Variant("function"), search.replace(warmup_steps=2))

    def run_options(self) -> RunOptions:
        """How the search's runs execute: adaptive sampling within each run, a timeout
        of four run budgets (at least a minute) against pathological configurations."""
        sampling = Sampling(
            precision=0.01, run_budget_s=self.run_budget_s, min_timed_steps=60, max_runs=1
        )
        return RunOptions(
            output_dir=self.output_dir,
            data_dir=self.data_dir,
            timeout_s=max(60.0, 4 * self.run_budget_s),
            measure_peak=self.measure_peak,
            fork_workers=self.fork_workers,
            sampling=sampling,
            count_flops=False,
        )


@dataclass(frozen=True)
class TuneReport:
    """What tune found: the ranking, the search's verdict, the guard's, the profiles;
    ``default`` is the configuration every speedup is measured against."""

    options: TuneOptions
    default: Cell
    machine: Machine
    refusals: tuple[Refusal, ...]
    rows: tuple[Row, ...]
    ended: str
    spent_s: float
    invocations: Mapping[str, str]
    verdicts: tuple[Verdict, ...] = ()
    recommended: Cell | None = None
    why: tuple[ProfileSummary, ...] = ()
    problems: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def leaders(self) -> list[Row]:
        """The live configurations, best first."""
        return [r for r in self.rows if r.state == "live" and r.step is not None]


def measure_peaks(
    options: TuneOptions, sources: Mapping[str, DataSource], argv: Sequence[str]
) -> dict[str, float]:
    """The CPU's matmul peak in float32 and each mixed precision the CPU's flags allow
    (measured once per machine and environment, then cached)."""
    if not options.measure_peak:
        return {}
    bare = read_machine({})
    precisions = [p for p in PRECISIONS if flag_refusal(p, bare) is None]
    default = options.default
    cells = [dataclasses.replace(default, variant=Variant(precision=p)) for p in precisions]
    plan = create_plan(cells, 1, options.run_options(), sources, argv)
    side = Side(plan)
    ResultsDir(options.output_dir).create()
    return ensure_peaks([create_job(side, s) for s in plan.slots], side.results)


def _finalists(rows: Sequence[Row], default: Cell, top: int) -> list[Cell]:
    """The best ``top`` measured configurations other than the default."""
    measured = [r for r in rows if r.state in ("live", "cut") and r.step is not None]
    return [r.cell for r in measured if r.cell != default][:top]


def _recommend(rows: Sequence[Row], verdicts: Sequence[Verdict], default: Cell) -> Cell:
    """The fastest configuration demonstrably faster than the default that passed the
    guard -- without a guard, that is float32 (its arithmetic is the default's); else
    the default."""
    passed = {v.cell for v in verdicts if v.recommendable}
    for row in rows:
        if row.cell == default or row.state not in ("live", "cut") or not row.shown_faster:
            continue
        if row.cell in passed or (not verdicts and row.cell.variant.precision == "float32"):
            return row.cell
    return default


def _say(stream: TextIO, text: str) -> None:
    stream.write(f"tune: {text}\n")
    stream.flush()


def _search(
    options: TuneOptions,
    space: Space,
    sources: Mapping[str, DataSource],
    argv: Sequence[str],
    stop: StopRequest,
    stream: TextIO,
    started: float,
) -> tuple[SearchRun, list[Row], bool, str]:
    """Runs the search; its run, ranking, whether it was interrupted, its invocation."""
    rules = dataclasses.replace(options.rules, first_run_s=options.run_budget_s + 5)
    run = SearchRun(Search(space, rules, options.budget_s), started, stream)
    result = run_search(run, options.run_options(), sources, argv, stop)
    runs = runs_by_cell(run.plan, result.records) if run.plan else {}
    baselines = (space.default, space.fit)
    rows = ranking(run.search, run.evidence, runs, baselines, space.machine.peaks)
    return run, rows, result.interrupted, result.invocation_id


def _guard_estimate(rows: Sequence[Row], cells: Sequence[Cell], spec: GuardSpec) -> str:
    """What the guard is about to do, and how long 60,000 training images (MNIST's and
    Fashion-MNIST's) take at the step times the search measured."""
    steps = {r.cell: r.step.value for r in rows if r.step is not None}
    per_epoch = 60_000 // cells[0].workload.batch_size
    seconds = sum(steps.get(c, max(steps.values(), default=0.05)) for c in cells)
    minutes = (seconds * per_epoch * spec.epochs + 15 * len(cells)) / 60
    return (
        f"accuracy guard: {len(cells)} configuration(s) x {spec.epochs} epoch(s) of "
        f"{spec.dataset} (about {minutes:.0f} min for 60,000 images at the step times measured)"
    )


def _guard(
    options: TuneOptions,
    default: Cell,
    rows: Sequence[Row],
    sources: Mapping[str, DataSource],
    argv: Sequence[str],
    stop: StopRequest,
    stream: TextIO,
) -> tuple[list[Verdict], str | None]:
    """The guard's verdicts (default first) and its invocation; none without a guard."""
    if options.guard is None:
        return [], None
    cells = [default, *_finalists(rows, default, options.guard_top)]
    if len(cells) == 1:
        _say(stream, "accuracy guard: no configuration but the default was measured")
        return [], None
    _say(stream, _guard_estimate(rows, cells, options.guard))
    plain = dataclasses.replace(options.run_options(), measure_peak=False)
    verdicts, result = run_guard(
        default, cells[1:], options.guard, plain, sources, argv, stop, stream
    )
    return verdicts, result.invocation_id


def _why(
    options: TuneOptions,
    default: Cell,
    recommended: Cell,
    sources: Mapping[str, DataSource],
    argv: Sequence[str],
    stop: StopRequest,
    stream: TextIO,
) -> tuple[list[ProfileSummary], list[str], str | None]:
    """Profiles of the default and the recommendation, when they differ."""
    if options.profile is None or recommended == default or stop.requested:
        return [], [], None
    _say(stream, f"profiling the default and the recommendation, steps {options.profile}")
    run_opts = dataclasses.replace(options.run_options(), measure_peak=False)
    found, problems, result = run_profiles(
        [default, recommended], options.profile, run_opts, sources, argv, stop, stream
    )
    summaries = [found[c] for c in (default, recommended) if c in found]
    return summaries, problems, result.invocation_id


def run_tune(
    options: TuneOptions,
    sources: Mapping[str, DataSource],
    argv: Sequence[str] = (),
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
    space: Space | None = None,
) -> TuneReport:
    """Searches, guards and explains (see the module docstring); ``sources`` maps the
    search's and the guard's datasets to their files. ``space`` replaces this machine's
    (:func:`bench.tune.space.read_machine`, with its measured peaks) where given."""
    stop, stream = stop or StopRequest(), stream or sys.stderr
    started = time.monotonic()
    if space is None:
        space = Space(options.default, read_machine(measure_peaks(options, sources, argv)))
    for refusal in space.refusals():
        _say(stream, f"not searched: {refusal}")
    run, rows, interrupted, search_id = _search(
        options, space, sources, argv, stop, stream, started
    )
    report = TuneReport(
        options,
        space.default,
        space.machine,
        tuple(space.refusals()),
        tuple(rows),
        run.search.ended or "interrupted",
        run.elapsed(),
        {"search": search_id},
        interrupted=interrupted,
    )
    if interrupted:
        return report
    default = space.default
    verdicts, guard_id = _guard(options, default, rows, sources, argv, stop, stream)
    if stop.requested:
        return dataclasses.replace(report, interrupted=True)
    recommended = _recommend(rows, verdicts, default)
    why, problems, profile_id = _why(options, default, recommended, sources, argv, stop, stream)
    ids = {"guard": guard_id, "profiles": profile_id}
    return dataclasses.replace(
        report,
        invocations={**report.invocations, **{k: v for k, v in ids.items() if v}},
        verdicts=tuple(verdicts),
        recommended=recommended,
        why=tuple(why),
        problems=tuple(problems),
        interrupted=stop.requested,
    )
