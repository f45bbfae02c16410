"""Human-readable cells of a report: units scaled per column, every figure with its spread
and n. Shared by the Markdown, console, LaTeX and HTML renderers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.comparisons import SETTLED_STEPS
from reports.report import Report
from reports.schema import WORKLOAD_FIELDS
from reports.summary import describe_workload

GROUP_KEYS = list(WORKLOAD_FIELDS)  # one table per workload
TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6))


@dataclass(frozen=True)
class DisplayTable:
    """One table: a title (the workload), a header, rows of text, column alignment, notes."""

    title: str
    header: list[str]
    rows: list[list[str]]
    align: str
    notes: list[str]


def number(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, with thousands separators; n/a for NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None or math.isnan(x) else ("∞" if x > 0 else "-∞")
    if x == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    return f"{x:,.{decimals}f}"


def time_unit(values: pd.Series) -> tuple[str, float]:
    """The largest unit in which the column's median is at least 1."""
    finite = values.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    typical = float(finite.median()) if len(finite) else 1.0
    for name, factor in TIME_UNITS:
        if typical >= factor:
            return name, factor
    return TIME_UNITS[-1]


def bytes_text(n: float) -> str:
    """Bytes in binary units (MiB, GiB)."""
    if not math.isfinite(n):
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{number(n / size)} {unit}"
    return f"{int(n)} B"


WITHIN_RUN = "†"  # marks an interval from one run: step-to-step noise only


def _interval(low: float, high: float, scale: float = 1.0, within_run: bool = False) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    mark = f" {WITHIN_RUN}" if within_run else ""
    return f" [{number(low / scale)}–{number(high / scale)}]{mark}"


def _status(row: pd.Series) -> str:
    if row["status"] == "ok":
        return "ok" + (" ⚠ retraced" if row["retraced"] else "")
    text = f"{row['status']}: {row['reason']}" if row["reason"] else str(row["status"])
    return text + (" (figures from the steps it finished)" if row["partial"] else "")


def _accuracy(row: pd.Series) -> str:
    final, best = row["test_accuracy"], row["best_test_accuracy"]
    if pd.isna(final):
        return "n/a"
    text = f"{final:.1%}"
    return text + (f" (best {best:.1%})" if pd.notna(best) and best > final + 5e-4 else "")


def _break_even(value: float) -> str:
    if pd.isna(value):
        return "n/a"
    return "never" if math.isinf(value) else f"{int(value):,}"


def _notes(group: pd.DataFrame) -> list[str]:
    notes = []
    trained = group["steps_trained"].max()
    if 0 < trained < SETTLED_STEPS and group["test_accuracy"].notna().any():
        notes.append(
            f"Test accuracy after {int(trained)} training steps: BatchNorm's moving statistics "
            f"take about {SETTLED_STEPS} steps to settle, so it is low for every variant; train "
            "an epoch or more (e.g. `--preset reference`) to compare accuracy."
        )
    if (group["dataset"] == "synthetic").all():
        notes.append("Synthetic data: random labels, so accuracy is not reported.")
    if group["ci_within_run"].any() or group["speedup_ci_within_run"].fillna(False).any():
        notes.append(
            f"{WITHIN_RUN} From a single run: the interval covers the step-to-step noise "
            "within that run only, not run-to-run variation; with `--repeats 3` or more, "
            "intervals are built over runs."
        )
    return notes


def _rows(report: Report, group: pd.DataFrame) -> tuple[list[str], list[list[str]], str]:
    unit, scale = time_unit(group["step_median_s"])
    base = report.options.baseline_label
    header = [
        "Variant",
        "Status",
        f"Step {unit}: median [95% CI]",
        f"IQR {unit}",
        "n steps (runs)",
        "Images/s [95% CI]",
        "First step s",
        "Epoch s",
        "Eval s",
        "Test acc.",
        f"Speedup vs {base} [95% CI]",
        "Break-even steps",
    ]
    align = "llrrrrrrrrrr"
    target = report.options.target_accuracy
    if target is not None:
        header.append(f"Time to {target:.0%} s")
        align += "r"
    rows = []
    for _, r in group.iterrows():
        measured = r["steps"] > 0
        cells = [
            r["variant"],
            _status(r),
            (
                number(r["step_median_s"] / scale)
                + _interval(r["step_ci_low_s"], r["step_ci_high_s"], scale, r["ci_within_run"])
            )
            if measured
            else "n/a",
            f"{number(r['step_p25_s'] / scale)}–{number(r['step_p75_s'] / scale)}"
            if measured
            else "n/a",
            f"{r['steps']:,} ({r['runs_ok'] or r['runs']})" if measured else "0",
            (
                number(r["throughput"])
                + _interval(r["throughput_ci_low"], r["throughput_ci_high"], 1, r["ci_within_run"])
            )
            if measured
            else "n/a",
            number(r["first_step_s"]),
            number(r["epoch_s"]),
            number(r["eval_s"]),
            _accuracy(r),
            (
                number(r["speedup"])
                + "×"
                + _interval(
                    r["speedup_ci_low"], r["speedup_ci_high"], 1, r["speedup_ci_within_run"]
                )
            )
            if pd.notna(r["speedup"])
            else "n/a",
            _break_even(r["break_even_steps"]),
        ]
        if target is not None:
            reached = r.get("tta_runs_reached", 0)
            cells.append(
                f"{number(r['tta_s'])} ({reached}/{r['tta_runs']} runs)"
                if reached
                else f"not reached (0/{r.get('tta_runs', 0)} runs)"
            )
        rows.append(cells)
    return header, rows, align


def _gflops(value: float) -> str:
    return number(value / 1e9) if pd.notna(value) else "n/a"


def _efficiency(group: pd.DataFrame) -> DisplayTable | None:
    """Roofline and memory per cell; None when nothing was measured."""
    measured = group[group["steps"] > 0]
    if measured.empty:
        return None
    header = [
        "Variant",
        "GFLOP/step (profiler)",
        "Achieved GFLOP/s",
        "Peak GFLOP/s",
        "% of peak",
        "Input share",
        "Peak RSS",
        "RSS growth",
        "Accelerator peak",
    ]
    rows = []
    for _, r in measured.iterrows():
        growth = r["rss_growth_bytes"]
        rows.append(
            [
                r["variant"],
                f"{_gflops(r['flops_per_step'])} ({_gflops(r['flops_per_step_profiler'])})",
                _gflops(r["achieved_flops"]),
                _gflops(r["peak_flops"]),
                f"{r['fraction_of_peak']:.1%}" if pd.notna(r["fraction_of_peak"]) else "n/a",
                f"{r['input_share']:.1%}" if pd.notna(r["input_share"]) else "n/a",
                bytes_text(r["peak_rss_bytes"]),
                ("+" if growth >= 0 else "-") + bytes_text(abs(growth))
                if pd.notna(growth)
                else "n/a",
                bytes_text(r["device_peak_bytes"]),
            ]
        )
    notes = [
        "GFLOP/step counts the conv and dense layers (forward and backward); the "
        "profiler's count of the traced step is in brackets. Peak: the best rate of "
        "large matmuls in the variant's compute dtype on this machine. Input share: "
        "time spent obtaining batches (n/a where the batch is read inside a compiled "
        "call). RSS growth: resident memory at the last epoch's end minus the first's."
    ]
    return DisplayTable("Efficiency and memory", header, rows, "lrrrrrrrr", notes)


def display_tables(report: Report) -> list[DisplayTable]:
    """Per workload, in first-seen order: the timing table, then efficiency and memory."""
    tables = []
    for _, group in report.table.groupby(GROUP_KEYS, sort=False, dropna=False):
        header, rows, align = _rows(report, group)
        tables.append(
            DisplayTable(describe_workload(group.iloc[0]), header, rows, align, _notes(group))
        )
        efficiency = _efficiency(group)
        if efficiency is not None:
            tables.append(efficiency)
    return tables


def geomean_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The geometric-mean table: per variant, over the workloads it ran on."""
    header = ["Variant", "Cells", "Geomean speedup", "Range"]
    rows = [
        [
            g["variant"],
            str(g["cells"]),
            number(g["geomean_speedup"]) + "×",
            f"{number(g['min_speedup'])}–{number(g['max_speedup'])}×",
        ]
        for _, g in report.geomeans.iterrows()
    ]
    return header, rows


@dataclass(frozen=True)
class ProfileDisplay:
    """One cell's profile: a heading line, the top-ops table and the category table."""

    title: str
    summary: str
    ops: DisplayTable
    categories: DisplayTable


def profile_displays(report: Report) -> list[ProfileDisplay]:
    """The profile summaries, ready to render."""
    out = []
    for p in report.profiles:
        diff = p.profiler_step_ms / p.harness_step_ms - 1
        flag = " ⚠ more than 10% apart" if abs(diff) > 0.10 else ""
        summary = (
            f"profiler step time {number(p.profiler_step_ms)} ms vs the harness's "
            f"{number(p.harness_step_ms)} ms for the same {p.steps} steps "
            f"({diff:+.1%}){flag}"
        )
        op_rows = [
            [
                str(r["rank"]),
                str(r["operation"]),
                str(r["type"]),
                r["category"],
                f"{int(r['occurrences']):,}",
                number(r["total_ms"]),
                number(r["per_step_ms"]),
                f"{r['share']:.1%}",
            ]
            for _, r in p.top_ops.iterrows()
        ]
        ops = DisplayTable(
            f"Top {len(op_rows)} operations by {'self ' if p.eager is None else ''}time",
            [
                "#",
                "Operation",
                "Type",
                "Category",
                "Occurrences",
                "Total ms",
                "Per step ms",
                f"Share of {p.share_of}",
            ],
            op_rows,
            "rlllrrrr",
            list(p.notes),
        )
        cat_rows = [
            [r["category"], number(r["per_step_ms"]), f"{r['share']:.1%}"]
            for _, r in p.categories.iterrows()
        ]
        categories = DisplayTable(
            "By category", ["Category", "Per step ms", "Share"], cat_rows, "lrr", []
        )
        out.append(ProfileDisplay(f"{p.variant} ({p.workload})", summary, ops, categories))
    return out


def scaling_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The scaling table: distributed cells against the same variant on one device."""
    header = [
        "Variant",
        "Replicas",
        "Per-replica batch",
        "Images/s",
        "Speedup vs 1 device",
        "Scaling efficiency",
    ]
    rows = [
        [
            str(r["variant"]),
            str(r["replicas"]),
            str(r["per_replica_batch"]),
            number(r["throughput"]),
            f"{number(r['speedup'])}×" if pd.notna(r["speedup"]) else "n/a",
            f"{r['efficiency']:.0%}" if pd.notna(r["efficiency"]) else "n/a",
        ]
        for _, r in report.scaling.iterrows()
    ]
    return header, rows
