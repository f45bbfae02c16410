"""Markdown timing tables (they paste into a GitHub PR or issue)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from reports.summary import describe_workload


def _fmt(value: object, spec: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    return f"{value:{spec}}{suffix}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds one of ``lrc`` per column."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    align = align.ljust(len(header), "l")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _step_cell(row: pd.Series) -> str:
    if pd.isna(row["step_median_s"]):
        return "n/a"
    ms = 1e3
    return (
        f"{row['step_median_s'] * ms:.1f} ({row['step_p25_s'] * ms:.1f}–"
        f"{row['step_p75_s'] * ms:.1f}), n={row['steps']}"
    )


def _status_cell(row: pd.Series) -> str:
    if row["status"] == "ok":
        return "ok" + (" ⚠ retraced" if row["retraced"] else "")
    text = f"{row['status']}: {row['reason']}" if row["reason"] else str(row["status"])
    return text + (" (figures from the steps it finished)" if row["partial"] else "")


# BatchNorm's moving statistics (momentum 0.99) lag the weights for the first ~1000 steps,
# so inference accuracy before that is far below training accuracy.
SETTLED_STEPS = 1000


def _footnotes(group: pd.DataFrame) -> list[str]:
    notes = []
    row = group.iloc[0]
    trained = group["steps_trained"].max()
    if pd.notna(trained) and trained < SETTLED_STEPS and group["test_accuracy"].notna().any():
        notes.append(
            f"Test accuracy after {int(trained)} training steps: BatchNorm's moving statistics "
            f"take about {SETTLED_STEPS} steps to settle, so it is low for every variant; train "
            "an epoch or more (e.g. `--preset reference`) to compare accuracy."
        )
    if row["dataset"] == "synthetic":
        notes.append("Synthetic data: random labels, so accuracy is not reported.")
    return notes


def timing_table(summary: pd.DataFrame) -> str:
    """The timing table of a summary: one row per cell, a heading per workload."""
    header = [
        "Variant",
        "Status",
        "Step ms: median (IQR), n",
        "Images/s",
        "First step s",
        "Epoch s",
        "Eval s",
        "Test acc.",
        "Speedup vs eager",
    ]
    parts = []
    for _, group in summary.groupby(
        ["model", "dataset", "batch_size", "epochs", "steps_per_epoch", "eval_examples", "seed"],
        sort=False,
        dropna=False,
    ):
        rows = [
            [
                r["variant"],
                _status_cell(r),
                _step_cell(r),
                _fmt(r["throughput"], ",.0f"),
                _fmt(r["first_step_s"], ".2f"),
                _fmt(r["epoch_s"], ".2f"),
                _fmt(r["eval_s"], ".2f"),
                _fmt(r["test_accuracy"] * 100, ".1f", "%"),
                _fmt(r["speedup"], ".2f", "×"),
            ]
            for _, r in group.iterrows()
        ]
        notes = "".join(f"\n\n{n}" for n in _footnotes(group))
        parts.append(
            f"**{describe_workload(group.iloc[0])}**\n\n"
            + markdown_table(header, rows, "llrrrrrrr")
            + notes
        )
    return "\n\n".join(parts)
