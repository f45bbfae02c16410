"""What ``history check`` prints and writes: a Markdown table and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.history.series import SeriesCheck
from reports.changepoints import ChangePointPolicy, describe
from reports.markdown_table import markdown_table


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1e3:.3g}"


def _newest(check: SeriesCheck) -> str:
    point = check.series.points[-1]
    low, high = point.interval
    interval = "" if math.isnan(low) else f" [{_ms(low)}–{_ms(high)}]"
    return f"{_ms(point.median)}{interval} ({len(point.run_medians)})"


def checks_markdown(checks: Sequence[SeriesCheck], policy: ChangePointPolicy) -> str:
    """One row per series: points, the newest commit's median, change points, verdict."""
    header = [
        "Series",
        "Env",
        "Commits (runs)",
        "Newest ms [95% CI] (runs)",
        "Change points",
        "Verdict",
    ]
    rows = []
    for c in checks:
        runs = sum(len(p.run_medians) for p in c.series.points)
        changes = "; ".join(describe(cp) for cp in c.analysis.change_points) or "none"
        rows.append(
            [
                c.series.label,
                c.series.env_hash[:8],
                f"{len(c.series.points)} ({runs})",
                _newest(c),
                changes,
                f"**{c.verdict}**" if c.fails else c.verdict,
            ]
        )
    return markdown_table(header, rows, "llrrll") + "\n\n" + policy_note(policy)


def policy_note(policy: ChangePointPolicy) -> str:
    """How change points were found and judged, in a sentence or three."""
    return (
        f"Change points: Apache Otava E-Divisive means on log commit medians, p < "
        f"{policy.max_pvalue:g}; magnitude = ratio of the segments' geometric-mean run "
        f"medians with a Welch t interval. A regression is the newest change point at least "
        f"{policy.threshold:.0%} slower, unless the control cell moved alike (runner shift)."
    )


def _change(check: SeriesCheck, index: int) -> dict[str, Any]:
    cp = check.analysis.change_points[index]
    return {
        **{
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(cp).items()
        },
        "direction": cp.direction,
    }


def checks_json(checks: Sequence[SeriesCheck], policy: ChangePointPolicy) -> str:
    """The check as JSON: the policy, every series and its change points, and whether any
    series failed."""
    series = [
        {
            "series_key": c.series.key,
            "label": c.series.label,
            "environment": c.series.environment,
            "control": c.control,
            "commits": [p.commit for p in c.series.points],
            "runs": sum(len(p.run_medians) for p in c.series.points),
            "left_out_runs": c.series.left_out,
            "change_points": [_change(c, i) for i in range(len(c.analysis.change_points))],
            "verdict": c.verdict,
        }
        for c in checks
    ]
    doc = {"policy": asdict(policy), "series": series, "regression": any(c.fails for c in checks)}
    return json.dumps(doc, indent=1, allow_nan=False)
