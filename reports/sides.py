"""The two sides of a regression comparison, read from disk: per cell, each run's timed
step times, and the runs that produced none (with their status, reason and log).

A side is a tapebench results directory or pytest-benchmark JSON (a file, or a directory
of them such as ``.benchmarks/``; each file is one process, so one run per benchmark).
Only timing runs count: a profiling run's steps ran under the profiler.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reports.layout import ResultsLayout
from reports.load import load_records
from reports.schema import (
    COMPARABLE_FIELDS,
    SETTABLE_FIELDS,
    ResultFileError,
    cell_label,
    controlled_fields,
)
from reports.typecheck import (
    FieldError,
    check_fields,
    check_value,
    expect_list,
    expect_object,
    fail,
    required,
)

# Statuses of runs that broke: the code under test crashed, ran out of memory or diverged.
BROKEN = ("failed", "oom", "diverged")


@dataclass(frozen=True)
class RunOutcome:
    """A run without usable timings: its status (timeout, failed, ...), why, and its log."""

    run_id: str
    status: str
    reason: str | None = None
    log_file: str | None = None


@dataclass(frozen=True)
class CellRuns:
    """One side's runs of one cell: the timed step times of each finished run, and the
    runs that did not finish."""

    finished: tuple[np.ndarray, ...] = ()
    unfinished: tuple[RunOutcome, ...] = ()

    def __post_init__(self) -> None:
        finished = tuple(np.asarray(r, float) for r in self.finished)
        if any(r.ndim != 1 or not r.size for r in finished):
            raise ValueError("each finished run needs a non-empty 1-D array of step times")
        object.__setattr__(self, "finished", finished)
        object.__setattr__(self, "unfinished", tuple(self.unfinished))

    @property
    def timed_out(self) -> int:
        """Runs stopped at the time limit: slower than any finished run."""
        return sum(1 for r in self.unfinished if r.status == "timeout")

    @property
    def broken(self) -> tuple[RunOutcome, ...]:
        """Runs that failed, ran out of memory or diverged."""
        return tuple(r for r in self.unfinished if r.status in BROKEN)

    def status_text(self) -> str:
        """E.g. ``ok 3/5, timeout 2/5``; ``no run`` for none."""
        counts = Counter({"ok": len(self.finished)} if self.finished else {})
        counts.update(r.status for r in self.unfinished)
        total = sum(counts.values())
        return ", ".join(f"{s} {n}/{total}" for s, n in counts.items()) or "no run"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its cells (by label), environments and where it was read."""

    cells: dict[str, CellRuns]
    environments: list[dict[str, Any]]
    source: str
    root: Path = field(default_factory=Path)


def _tapebench_side(path: Path) -> Side:
    finished: dict[str, list[np.ndarray]] = {}
    unfinished: dict[str, list[RunOutcome]] = {}
    envs: dict[str, dict[str, Any]] = {}
    for record in load_records([path]):
        if record.purpose != "timing":
            continue
        key = cell_label(record.cell, every_field=True)
        timed = np.array(record.steps.timed_seconds if record.status == "ok" else (), float)
        finished.setdefault(key, [])
        if timed.size:
            finished[key].append(timed)
        else:
            status = record.status if record.status != "ok" else "no timed steps"
            outcome = RunOutcome(record.run_id, status, record.reason, record.log_file)
            unfinished.setdefault(key, []).append(outcome)
        # fields the cell's run settings chose are compared with the cell, not here
        chosen = controlled_fields(record.cell)
        env = {k: record.fingerprint.get(k) for k in COMPARABLE_FIELDS if k not in chosen}
        if record.status != "skipped":
            envs[json.dumps(env, sort_keys=True, default=str)] = env
    cells = {k: CellRuns(tuple(v), tuple(unfinished.get(k, ()))) for k, v in finished.items()}
    return Side(cells, list(envs.values()), str(path), path)


def _benchmark_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.json"))


def _read_benchmarks(file: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A pytest-benchmark file's document and its benchmarks, each checked for what is
    read from it.

    Raises:
      ResultFileError: naming the file and the field.
    """
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{file}: not a pytest-benchmark JSON file ({exc})") from None
    try:
        doc = expect_object(doc, "the document")
        expect_object(doc.get("machine_info", {}), "machine_info")
        benchmarks = expect_list(required(doc, "benchmarks", ""), "benchmarks")
        for i, bench in enumerate(benchmarks):
            _check_benchmark(bench, f"benchmarks[{i}]")
    except FieldError as exc:
        raise ResultFileError(f"{file}: not a pytest-benchmark JSON file: {exc}") from None
    return doc, benchmarks


def _check_benchmark(bench: Any, where: str) -> None:
    bench = expect_object(bench, where)
    check_value(required(bench, "fullname", where), str, f"{where}.fullname")
    stats = expect_object(required(bench, "stats", where), f"{where}.stats")
    extra = expect_object(bench.get("extra_info", {}), f"{where}.extra_info")
    check_fields(stats, _STATS_TYPES, f"{where}.stats")
    check_fields(extra, _EXTRA_TYPES, f"{where}.extra_info")
    times = {f"data[{i}]": t for i, t in enumerate(stats.get("data") or ())}
    if not times:
        times = {"median": required(stats, "median", f"{where}.stats")}
    for name, value in times.items():
        if value <= 0:
            raise fail(f"{where}.stats.{name}", value, "a number > 0")
    for name, source in (("stats.iterations", stats), ("extra_info.steps_per_round", extra)):
        count = source.get(name.split(".")[1], 1)
        if count < 1:
            raise fail(f"{where}.{name}", count, "an integer >= 1")


# What is read from each benchmark, and its JSON type.
_STATS_TYPES = {"data": tuple[float, ...], "median": float, "iterations": int}
_EXTRA_TYPES = {"steps_per_round": int, "fingerprint": dict}


def _pytest_benchmark_side(path: Path) -> Side:
    """Each pytest-benchmark JSON file is one process: one run per benchmark.

    pytest-benchmark stores each round's time divided by its ``iterations``; a round ran
    ``extra_info["steps_per_round"]`` training steps (1 if absent), so a sample's time per
    step is ``sample * iterations / steps_per_round`` -- the same whether one iteration was
    one step (this suite) or the whole round (files saved before it counted steps).
    """
    cells: dict[str, list[np.ndarray]] = {}
    envs: dict[str, dict[str, Any]] = {}
    for file in _benchmark_files(path):
        doc, benchmarks = _read_benchmarks(file)
        for bench in benchmarks:
            extra, stats = bench.get("extra_info", {}), bench["stats"]
            per_round, iterations = extra.get("steps_per_round", 1), stats.get("iterations", 1)
            data = stats.get("data") or [stats["median"]]
            per_step = np.asarray(data, float) * iterations / per_round
            cells.setdefault(bench["fullname"], []).append(per_step)
            fp = extra.get("fingerprint") or doc.get("machine_info", {})
            env = (
                {k: fp.get(k) for k in COMPARABLE_FIELDS}
                if "tensorflow" in fp
                else {"cpu": json.dumps(doc.get("machine_info", {}).get("cpu"), default=str)}
            )
            envs[json.dumps(env, sort_keys=True, default=str)] = env
    runs = {k: CellRuns(tuple(v)) for k, v in cells.items()}
    return Side(runs, list(envs.values()), str(path), path if path.is_dir() else path.parent)


def load_side(path: str | Path) -> Side:
    """A tapebench results directory, or pytest-benchmark JSON (a file, or a directory of
    them such as ``.benchmarks/``).

    Raises:
      ResultFileError: the path holds neither, or a file in it is unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file or directory")
    if path.is_dir() and ResultsLayout(path).runs.is_dir():
        return _tapebench_side(path)
    side = _pytest_benchmark_side(path)
    if not side.cells:
        raise ResultFileError(
            f"{path}: neither a tapebench results directory nor pytest-benchmark JSON"
        )
    return side


def environment_differences(base: Side, cand: Side) -> list[str]:
    """Comparable fingerprint fields whose values differ between the sides (a field one
    environment leaves out -- chosen by its cell's run settings -- is not compared)."""
    fields = set()
    for a in base.environments:
        for b in cand.environments:
            fields |= {
                k
                for k in set(a) | set(b)
                if (a[k] != b[k] if k in a and k in b else k not in SETTABLE_FIELDS)
            }
    return sorted(fields)
