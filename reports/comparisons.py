"""Comparisons between cells: speedups with intervals, geometric means, compile
break-even, time-to-accuracy and accuracy parity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports import stats
from reports.frames import Results
from reports.schema import CELL_DEFAULTS, CELL_KEY_FIELDS, SETTINGS_FIELD, WORKLOAD_FIELDS
from reports.summary import BASELINE, measured_runs, timed_groups

CELL_KEY = ["device", *WORKLOAD_FIELDS]  # what must match for two variants to be compared
# A baseline given as (mode, precision) means that mode's plain form: one step per call,
# fed by tf.data, without run settings.
PLAIN_FEED = {"steps_per_call": 1, "input_mode": "tfdata", SETTINGS_FIELD: ""}


def _cell_runs(results: Results, row: pd.Series) -> pd.DataFrame:
    runs = results.runs
    mask = np.ones(len(runs), dtype=bool)
    for key in CELL_KEY_FIELDS:
        value = row[key]
        mask &= runs[key].isna().to_numpy() if pd.isna(value) else (runs[key] == value)
    return runs[mask]


def _counterpart(
    summary: pd.DataFrame,
    row: pd.Series,
    mode: str,
    precision: str,
    feed: dict[str, object] | None = None,
) -> pd.Series | None:
    """The cell of ``mode``/``precision`` on ``row``'s device and workload, fed as ``feed``
    says (default: the plain feed)."""
    same = summary[(summary["mode"] == mode) & (summary["precision"] == precision)]
    feed = PLAIN_FEED if feed is None else feed
    for key, value in feed.items():
        same = same[same[key] == value]
    for key in (k for k in CELL_KEY if k not in feed):  # a feed may name the device
        value = row[key]
        same = same[same[key].isna()] if pd.isna(value) else same[same[key] == value]
    return same.iloc[0] if len(same) else None


def _baseline_of(
    summary: pd.DataFrame, row: pd.Series, baseline: Mapping[str, Any]
) -> pd.Series | None:
    """The cell of the ``baseline`` variant fields (the others at their plain values) on
    ``row``'s workload, and on its device unless ``baseline`` names one."""
    fields = {**CELL_DEFAULTS, SETTINGS_FIELD: "", **baseline}
    mode, precision = fields.pop("mode"), fields.pop("precision")
    return _counterpart(summary, row, mode, precision, fields)


DEFAULT_BASELINE = {"mode": BASELINE[0], "precision": BASELINE[1]}


def speedups(
    results: Results, summary: pd.DataFrame, baseline: Mapping[str, Any] = DEFAULT_BASELINE
) -> pd.DataFrame:
    """Per cell: baseline median step time / this cell's, with a 95% interval.

    The baseline is the cell with the ``baseline`` variant fields on the same workload
    (and device, unless ``baseline`` names one). The interval is run-level
    (:func:`stats.ratio_of_medians_ci`) when both cells have two or more runs; otherwise
    it covers step-to-step noise only (``speedup_ci_within_run``). Columns: ``speedup``,
    ``speedup_ci_low``, ``speedup_ci_high``, ``speedup_ci_within_run``,
    ``baseline_variant``; NaN where the baseline or the cell has no timed steps.
    """
    out = []
    for _, row in summary.iterrows():
        base = _baseline_of(summary, row, baseline)
        value = low = high = math.nan
        within = False
        if base is not None and row["steps"] and base["steps"]:
            mine = timed_groups(results.steps, measured_runs(_cell_runs(results, row))[0])
            theirs = timed_groups(results.steps, measured_runs(_cell_runs(results, base))[0])
            value = base["step_median_s"] / row["step_median_s"]
            low, high = stats.ratio_of_medians_ci(theirs, mine)
            within = not (stats.covers_runs(mine) and stats.covers_runs(theirs))
        out.append(
            {
                "speedup": value,
                "speedup_ci_low": low,
                "speedup_ci_high": high,
                "speedup_ci_within_run": within,
                "baseline_variant": None if base is None else base["variant"],
            }
        )
    return pd.DataFrame(out, index=summary.index)


def geometric_means(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: the geometric mean of its speedups over the workloads it ran on
    (unclipped: slowdowns count), with the number of cells and the range."""
    rows = []
    for variant, group in table.dropna(subset=["speedup"]).groupby("variant", sort=False):
        values = group["speedup"].to_numpy(float)
        rows.append(
            {
                "variant": variant,
                "cells": len(values),
                "geomean_speedup": stats.geometric_mean(values),
                "min_speedup": values.min(),
                "max_speedup": values.max(),
            }
        )
    return pd.DataFrame(
        rows, columns=["variant", "cells", "geomean_speedup", "min_speedup", "max_speedup"]
    )


def break_even_steps(first_v: float, step_v: float, first_b: float, step_b: float) -> float:
    """Steps after which a variant's total time (first step + steady steps) is no longer
    above the baseline's: the smallest n with f_v + (n-1) t_v <= f_b + (n-1) t_b.

    1 when the variant's first step is no slower; inf when it never catches up.
    """
    values = (first_v, step_v, first_b, step_b)
    if any(not math.isfinite(x) for x in values):
        return math.nan
    if first_v <= first_b:
        return 1.0
    if step_v >= step_b:
        return math.inf
    return 1.0 + math.ceil((first_v - first_b) / (step_b - step_v))


def first_step_cost(row: pd.Series) -> float:
    """The first step's time, tracing and compilation included, of a summary row.

    The first call of ``MODE:N`` runs N steps (fewer if an epoch is shorter), so the
    first step is that call's time less N - 1 ordinary steps.
    """
    calls = int(row["steps_per_call"])
    if pd.notna(row["steps_per_epoch"]):
        calls = min(calls, int(row["steps_per_epoch"]))
    return float(row["first_step_s"]) - (calls - 1) * float(row["step_median_s"])


def break_even(summary: pd.DataFrame, baseline: Mapping[str, Any] = DEFAULT_BASELINE) -> pd.Series:
    """Per cell: :func:`break_even_steps` against the baseline (NaN without one), from
    each side's :func:`first_step_cost`."""
    values = []
    for _, row in summary.iterrows():
        base = _baseline_of(summary, row, baseline)
        values.append(
            math.nan
            if base is None
            else break_even_steps(
                first_step_cost(row),
                row["step_median_s"],
                first_step_cost(base),
                base["step_median_s"],
            )
        )
    return pd.Series(values, index=summary.index, name="break_even_steps")


def accuracy_clock(epochs: pd.DataFrame, eval_first_s: float | None) -> pd.Series:
    """Per epoch of one run (in epoch order): the time-to-accuracy clock at its end.

    The clock runs through training (first step and compilation included) and every
    evaluation, plus the evaluation's own tracing before training; model construction and
    process start-up are not on it.
    """
    ordered = epochs.sort_values("epoch")
    clock = (
        ordered["train_seconds"].astype(float) + ordered["eval_seconds"].fillna(0.0).astype(float)
    ).cumsum()
    return clock + (0.0 if eval_first_s is None or pd.isna(eval_first_s) else float(eval_first_s))


def run_time_to_accuracy(epochs: pd.DataFrame, eval_first_s: float, target: float) -> float:
    """Seconds on :func:`accuracy_clock` until a run's test accuracy first reaches
    ``target`` (MLPerf style); NaN if it never does."""
    clock = accuracy_clock(epochs, eval_first_s)
    reached = epochs.loc[clock.index, "test_accuracy"].astype(float) >= target
    return float(clock[reached].iloc[0]) if reached.any() else math.nan


def time_to_accuracy(results: Results, summary: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per cell: median time-to-accuracy over its ok runs, and how many runs reached it."""
    rows = []
    for _, row in summary.iterrows():
        runs = _cell_runs(results, row)
        runs = runs[runs["status"] == "ok"]
        times = []
        for _, run in runs.iterrows():
            ep = results.epochs[results.epochs["run_id"] == run["run_id"]]
            if ep["test_accuracy"].notna().any():
                times.append(run_time_to_accuracy(ep, run["eval_first_call_s"], target))
        reached = [t for t in times if math.isfinite(t)]
        rows.append(
            {
                "tta_s": stats.median(reached) if reached else math.nan,
                "tta_runs_reached": len(reached),
                "tta_runs": len(times),
            }
        )
    return pd.DataFrame(rows, index=summary.index)


@dataclass(frozen=True)
class ParityIssue:
    """A mixed-precision cell whose accuracy fell below its float32 counterpart."""

    variant: str
    accuracy: float
    float32_accuracy: float
    tolerance: float

    def __str__(self) -> str:
        return (
            f"{self.variant}: test accuracy {self.accuracy:.2%} is more than "
            f"{self.tolerance:.1%} below float32's {self.float32_accuracy:.2%}"
        )


# BatchNorm's moving statistics (momentum 0.99) lag the weights for the first ~1000 steps,
# so inference accuracy before that is far below training accuracy and too noisy to compare.
SETTLED_STEPS = 1000


def accuracy_parity(summary: pd.DataFrame, tolerance: float = 0.01) -> list[ParityIssue]:
    """Cells whose final accuracy is more than ``tolerance`` below the float32 cell of the
    same mode, feed, distribution strategy, device and workload. Cells trained for fewer
    than :data:`SETTLED_STEPS` steps are not compared: their accuracy has not settled."""
    issues = []
    for _, row in summary[summary["precision"] != "float32"].iterrows():
        same = ("steps_per_call", "input_mode", "strategy", "replicas", SETTINGS_FIELD)
        ref = _counterpart(summary, row, row["mode"], "float32", {k: row[k] for k in same})
        if ref is None or pd.isna(row["test_accuracy"]) or pd.isna(ref["test_accuracy"]):
            continue
        if min(row["steps_trained"], ref["steps_trained"]) < SETTLED_STEPS:
            continue
        if row["test_accuracy"] < ref["test_accuracy"] - tolerance:
            issues.append(
                ParityIssue(row["variant"], row["test_accuracy"], ref["test_accuracy"], tolerance)
            )
    return issues


def scaling(summary: pd.DataFrame) -> pd.DataFrame:
    """Per distributed cell: replicas, per-replica batch, and throughput against the same
    variant on one device without a strategy (speedup, and efficiency = speedup / replicas).
    """
    rows = []
    for idx, row in summary[summary["strategy"] != "none"].iterrows():
        feed = {
            "steps_per_call": row["steps_per_call"],
            "input_mode": row["input_mode"],
            "strategy": "none",
            SETTINGS_FIELD: row[SETTINGS_FIELD],
        }
        single = _counterpart(summary, row, row["mode"], row["precision"], feed)
        speedup = (row["throughput"] / single["throughput"]) if single is not None else math.nan
        rows.append(
            {
                "index": idx,
                "variant": row["variant"],
                "replicas": row["replicas"],
                "per_replica_batch": row["batch_size"] // row["replicas"],
                "throughput": row["throughput"],
                "speedup": speedup,
                "efficiency": speedup / row["replicas"],
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "index",
            "variant",
            "replicas",
            "per_replica_batch",
            "throughput",
            "speedup",
            "efficiency",
        ],
    )
