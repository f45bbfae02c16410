"""Stability warnings: say when a figure should not be trusted, instead of staying silent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from reports.schema import COMPARABLE_FIELDS, RunRecord, controlled_fields

MIN_STEPS = 50  # fewer timed steps than this: the median is noisy
# A robust coefficient of variation (normalised IQR / median) above this: the machine was
# busy or throttling. Robust, because a handful of slow steps (an epoch's first batch, a
# garbage collection) inflate the ordinary CV without making the median less trustworthy.
MAX_CV = 0.25


@dataclass(frozen=True)
class Finding:
    """One warning: what it is about (a variant, or None for the whole report) and why."""

    kind: str
    message: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.variant}: {self.message}" if self.variant else self.message


def _cell_findings(row: pd.Series, min_steps: int, max_cv: float) -> list[Finding]:
    v = row["variant"]
    found = []
    if row["status"] != "ok" and row["status"] != "skipped":
        where = f" (log: {row['log_file']})" if isinstance(row["log_file"], str) else ""
        found.append(Finding("not-ok", f"{row['status']}: {row['reason']}{where}", v))
    if row["partial"]:
        found.append(
            Finding(
                "partial",
                "no run finished; figures come from the steps the stopped runs completed",
                v,
            )
        )
    if 0 < row["steps"] < min_steps:
        found.append(
            Finding(
                "few-steps",
                f"only {row['steps']} timed steps; the median is noisy below {min_steps}",
                v,
            )
        )
    if pd.notna(row["step_rcv"]) and row["step_rcv"] > max_cv:
        found.append(
            Finding(
                "unstable",
                f"step times vary a lot (robust CV {row['step_rcv']:.0%}); "
                "the machine may have been busy -- this result may be unstable",
                v,
            )
        )
    target, reached = row.get("target_precision"), row.get("precision_reached")
    if pd.notna(target) and pd.notna(reached) and reached > target:
        found.append(
            Finding(
                "imprecise",
                f"its interval is ±{reached:.1%}, not the ±{target:.1%} asked: the time "
                f"budget ran out first ({row['runs_ok']} runs; "
                f"{row['runs_out_of_time']} stopped by their own budget)",
                v,
            )
        )
    if row["retraced"]:
        found.append(
            Finding(
                "retraced",
                "the step function was traced again after its "
                "first call (a retrace inside the timed phase)",
                v,
            )
        )
    return found


def stability_findings(
    summary: pd.DataFrame,
    records: Sequence[RunRecord],
    min_steps: int = MIN_STEPS,
    max_cv: float = MAX_CV,
) -> list[Finding]:
    """Warnings about each cell, then about the report as a whole."""
    found = [f for _, row in summary.iterrows() for f in _cell_findings(row, min_steps, max_cv)]
    measured = summary[summary["steps"] > 0]
    if len(measured) and (measured["runs_ok"] <= 1).all():
        found.append(
            Finding(
                "single-run",
                "each cell ran in one process, so intervals "
                "cover step-to-step noise only, not run-to-run variation; "
                "use --repeats 3 or more",
            )
        )
    # Fields some cell's run settings set on purpose differ by design, not by accident.
    chosen = set().union(*(controlled_fields(r.cell) for r in records))
    compared = [k for k in COMPARABLE_FIELDS if k not in chosen]
    prints = {
        json.dumps({k: r.fingerprint.get(k) for k in compared}, sort_keys=True, default=str)
        for r in records
        if r.status != "skipped"
    }
    if len(prints) > 1:
        found.append(
            Finding(
                "mixed-environments",
                f"the runs come from {len(prints)} "
                "different environments (hardware or software stack); "
                "differences between cells may be environmental",
            )
        )
    return found
