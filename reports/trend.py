"""The trend page: per series, the median step time over commits with its interval band,
change points marked, commits named on the axis, and a table of every commit below.

One self-contained HTML file (figures embedded as PNG data: URIs, like ``reports.html``).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt
import numpy as np

from reports.changepoints import ChangePoint, CommitPoint, SeriesAnalysis, describe, short
from reports.html import STYLE, html_table

MAX_TICKS = 60  # beyond this many commits the axis names every k-th one


@dataclass(frozen=True)
class TrendSeries:
    """What the page shows of one series."""

    label: str
    environment: dict[str, Any]
    analysis: SeriesAnalysis
    verdict: str


def _band(points: Sequence[CommitPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    median = np.array([p.median for p in points]) * 1e3
    bounds = np.array([p.interval for p in points], dtype=float).reshape(-1, 2) * 1e3
    low = np.where(np.isnan(bounds[:, 0]), median, bounds[:, 0])
    high = np.where(np.isnan(bounds[:, 1]), median, bounds[:, 1])
    return median, low, high


def trend_png(series: TrendSeries) -> bytes:
    """The series' figure as PNG bytes."""
    points = series.analysis.points
    x = np.arange(len(points))
    median, low, high = _band(points)
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.25 * len(points) + 4)), 3.8))
    ax.fill_between(x, low, high, color="tab:blue", alpha=0.2, label="95% interval (runs)")
    ax.plot(x, median, "o-", color="tab:blue", markersize=3, label="median over runs")
    for change in series.analysis.change_points:
        color = "tab:red" if change.direction == "slower" else "tab:green"
        ax.axvline(change.index - 0.5, color=color, linestyle="--", linewidth=1)
        ax.annotate(
            f"{change.ratio - 1:+.1%}",
            (change.index - 0.5, float(np.nanmax(high))),
            color=color,
            fontsize=8,
            ha="left",
            va="top",
        )
    every = max(1, math.ceil(len(points) / MAX_TICKS))
    ax.set_xticks(x[::every], [short(p.commit) for p in points][::every], rotation=90, fontsize=7)
    ax.set_ylabel("median step time (ms)")
    ax.set_title(series.label, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _median_text(values: Sequence[float], digits: str) -> str:
    return format(float(np.median(values)), digits) if len(values) else "n/a"


def _commit_rows(analysis: SeriesAnalysis) -> list[list[str]]:
    changes: dict[int, ChangePoint] = {c.index: c for c in analysis.change_points}
    rows = []
    for i, p in enumerate(analysis.points):
        low, high = p.interval
        interval = "" if math.isnan(low) else f" [{low * 1e3:.3g}–{high * 1e3:.3g}]"
        rows.append(
            [
                str(i + 1),
                short(p.commit),
                p.commit_time or "n/a",
                p.branch or "n/a",
                str(len(p.run_medians)),
                f"{p.median * 1e3:.3g}{interval}",
                _median_text(p.throughputs, ",.0f"),
                _median_text(p.accuracies, ".3f"),
                describe(changes[i]) if i in changes else "",
            ]
        )
    return rows


def _section(i: int, series: TrendSeries) -> str:
    png = base64.b64encode(trend_png(series)).decode()
    env = ", ".join(f"{k}={v}" for k, v in series.environment.items() if v is not None)
    header = ["#", "Commit", "Commit time", "Branch", "Runs", "Median ms [95% CI]", "Images/s"]
    header += ["Test acc.", "Change point"]
    table = html_table(header, _commit_rows(series.analysis), "rllrrrrrl", table_id=f"commits-{i}")
    return (
        f'<section id="series-{i}"><h2>{html.escape(series.label)}</h2>'
        f'<p class="note">Verdict: <b class="verdict">{html.escape(series.verdict)}</b>. '
        f"Environment: {html.escape(env)}</p>"
        f'<figure><img alt="trend: {html.escape(series.label)}" src="data:image/png;base64,'
        f'{png}"><figcaption>Median step time per commit with its 95% t interval over runs; '
        f"dashed lines: change points (red slower, green faster).</figcaption></figure>"
        f"{table}</section>"
    )


def trend_html(series: Sequence[TrendSeries], note: str, title: str = "tapebench history") -> str:
    """The page: one section per series, ``note`` (how change points were judged) on top."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; '
        f"{len(series)} series. {html.escape(note)}</p>",
    ]
    body += [_section(i, s) for i, s in enumerate(series)]
    if not series:
        body.append('<p class="note">No series: the history holds no usable runs.</p>')
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
