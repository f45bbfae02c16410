"""Figures (matplotlib, headless): distributions, step time over the run, learning curves,
speedups with intervals, accuracy against wall time. Each returns PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import cast

import matplotlib

matplotlib.use("Agg")  # headless: no display needed, ever
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.comparisons import accuracy_clock
from reports.display import GROUP_KEYS
from reports.report import Report
from reports.schema import CELL_KEY_FIELDS
from reports.summary import describe_workload, measured_runs


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _label(row: pd.Series, several_workloads: bool) -> str:
    return f"{row['variant']} b{row['batch_size']}" if several_workloads else row["variant"]


def _groups(report: Report) -> list[pd.DataFrame]:
    table = report.table[report.table["steps"] > 0]
    return [g for _, g in table.groupby(GROUP_KEYS, sort=False, dropna=False)]


def _run_ids(report: Report, row: pd.Series) -> list[str]:
    runs = report.results.runs
    mask = np.ones(len(runs), dtype=bool)
    for key in CELL_KEY_FIELDS:
        value = row[key]
        mask &= runs[key].isna().to_numpy() if pd.isna(value) else (runs[key] == value)
    return list(measured_runs(runs[mask])[0])


def _per_workload(
    report: Report,
    draw: Callable[[Axes, pd.DataFrame], None],
    height: Callable[[pd.DataFrame], float] = lambda g: 3.6,
) -> list[tuple[str, bytes]]:
    out = []
    for group in _groups(report):
        fig, ax = plt.subplots(figsize=(8.0, height(group)))
        draw(ax, group)
        ax.set_title(describe_workload(group.iloc[0]), fontsize=8)
        out.append((describe_workload(group.iloc[0]), _png(fig)))
    return out


def step_time_distributions(report: Report) -> list[tuple[str, bytes]]:
    """Box plots of the timed step times of each cell (log scale), per workload."""

    def draw(ax: Axes, group: pd.DataFrame) -> None:
        steps = report.results.steps
        data, labels = [], []
        for _, row in group.iterrows():
            ids = _run_ids(report, row)
            timed = steps[steps["run_id"].isin(ids) & (steps["phase"] == "timed")]
            data.append(timed["seconds"].to_numpy(float) * 1e3)
            labels.append(row["variant"])
        ax.boxplot(
            data,
            orientation="horizontal",
            tick_labels=labels,
            showfliers=True,
            flierprops={"markersize": 2, "alpha": 0.4},
        )
        ax.set_xscale("log")
        ax.set_xlabel("step time, ms (timed steps, all runs)")

    return _per_workload(report, draw, height=lambda group: 0.9 + 0.45 * len(group))


def step_time_over_run(report: Report) -> list[tuple[str, bytes]]:
    """Every step of each cell's first measured run, coloured by phase: the first call
    (tracing, compilation) and the warm-up steps are visible."""

    def draw(ax: Axes, group: pd.DataFrame) -> None:
        steps = report.results.steps
        for _, row in group.iterrows():
            ids = _run_ids(report, row)
            run = steps[steps["run_id"] == ids[0]] if ids else steps.iloc[:0]
            line = ax.plot(run["step"], run["seconds"] * 1e3, lw=0.8, label=row["variant"])[0]
            first = run[run["phase"] == "first"]
            ax.scatter(
                first["step"], first["seconds"] * 1e3, marker="X", s=40, zorder=3, color="black"
            )
            for phase, marker in (("warmup", "o"), ("partial", "s")):
                marked = run[run["phase"] == phase]
                ax.scatter(
                    marked["step"],
                    marked["seconds"] * 1e3,
                    s=16,
                    zorder=3,
                    facecolor="none",
                    edgecolor=line.get_color(),
                    marker=marker,
                )
        ax.set_yscale("log")
        ax.set_xlabel("step (×: first call with tracing/compilation, ○: warm-up, □: partial)")
        ax.set_ylabel("ms")
        ax.legend(fontsize=7)

    return _per_workload(report, draw)


def _epoch_curves(report: Report, group: pd.DataFrame, column: str) -> list[tuple[str, pd.Series]]:
    epochs = report.results.epochs
    curves = []
    for _, row in group.iterrows():
        ep = epochs[epochs["run_id"].isin(_run_ids(report, row))]
        curve = ep.groupby("epoch")[column].mean()
        if curve.notna().any():
            curves.append((row["variant"], curve))
    return curves


def learning_curves(report: Report) -> list[tuple[str, bytes]]:
    """Train and test loss, and test accuracy, per epoch (mean over runs)."""
    out = []
    for group in _groups(report):
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
        for (label, train), (_, test) in zip(
            _epoch_curves(report, group, "train_loss"),
            _epoch_curves(report, group, "test_loss"),
            strict=False,
        ):
            line = loss_ax.plot(train.index + 1, train, marker="o", ms=3, label=label)[0]
            loss_ax.plot(test.index + 1, test, ls="--", color=line.get_color())
        for label, acc in _epoch_curves(report, group, "test_accuracy"):
            acc_ax.plot(acc.index + 1, acc * 100, marker="o", ms=3, label=label)
        loss_ax.set(xlabel="epoch", ylabel="loss (solid: train, dashed: test)")
        acc_ax.set(xlabel="epoch", ylabel="test accuracy, %")
        loss_ax.legend(fontsize=7)
        fig.suptitle(describe_workload(group.iloc[0]), fontsize=8)
        out.append((describe_workload(group.iloc[0]), _png(fig)))
    return out


def speedup_bars(report: Report) -> list[tuple[str, bytes]]:
    """Speedup of every cell against the baseline, with 95% interval whiskers."""
    table = report.table.dropna(subset=["speedup"])
    if table.empty:
        return []
    several = table[GROUP_KEYS].astype(str).drop_duplicates().shape[0] > 1
    labels = [_label(r, several) for _, r in table.iterrows()]
    values = table["speedup"].to_numpy(float)
    low = values - table["speedup_ci_low"].to_numpy(float)
    high = table["speedup_ci_high"].to_numpy(float) - values
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * len(table)))
    ax.barh(
        range(len(table)),
        values,
        xerr=[np.nan_to_num(low), np.nan_to_num(high)],
        color=["tab:green" if v >= 1 else "tab:red" for v in values],
        capsize=3,
    )
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(table)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"speedup vs {report.options.baseline_label} (log scale; >1 is faster)")
    return [("speedups", _png(fig))]


def accuracy_time_curves(report: Report, group: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per cell of ``group``: its first measured run's epochs as ``seconds`` (the
    time-to-accuracy clock at each epoch's end) and ``accuracy``."""
    epochs, runs = report.results.epochs, report.results.runs.set_index("run_id")
    curves = []
    for _, row in group.iterrows():
        ids = _run_ids(report, row)
        if not ids:
            continue
        ep = epochs[epochs["run_id"] == ids[0]].sort_values("epoch")
        first_eval = cast(float, runs.loc[ids[0], "eval_first_call_s"])
        curve = pd.DataFrame(
            {"seconds": accuracy_clock(ep, first_eval), "accuracy": ep["test_accuracy"]}
        )
        curves.append((str(row["variant"]), curve.reset_index(drop=True)))
    return curves


def accuracy_vs_time(report: Report) -> list[tuple[str, bytes]]:
    """Test accuracy against wall time on the time-to-accuracy clock (compilation
    included), per cell's first measured run."""
    out = []
    for group in _groups(report):
        if group["test_accuracy"].isna().all():
            continue
        fig, ax = plt.subplots(figsize=(7, 3.4))
        for variant, curve in accuracy_time_curves(report, group):
            ax.plot(curve["seconds"], curve["accuracy"] * 100, marker="o", ms=3, label=variant)
        target = report.options.target_accuracy
        if target is not None:
            ax.axhline(target * 100, color="gray", ls=":", lw=1)
        ax.set(
            xlabel="wall time, s (training + evaluation, compilation included)",
            ylabel="test accuracy, %",
        )
        ax.legend(fontsize=7)
        ax.set_title(describe_workload(group.iloc[0]), fontsize=8)
        out.append((describe_workload(group.iloc[0]), _png(fig)))
    return out


FIGURES: dict[str, Callable[[Report], list[tuple[str, bytes]]]] = {
    "Step-time distributions": step_time_distributions,
    "Step time over the run": step_time_over_run,
    "Speedups": speedup_bars,
    "Loss and accuracy per epoch": learning_curves,
    "Accuracy against wall time": accuracy_vs_time,
}


def all_figures(report: Report) -> dict[str, list[tuple[str, bytes]]]:
    """Every figure, by section name."""
    return {name: make(report) for name, make in FIGURES.items()}
