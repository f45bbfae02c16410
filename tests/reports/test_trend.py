"""The trend page on its own: points with one run (no interval), long histories."""

from __future__ import annotations

import base64
import re

from reports.changepoints import ChangePoint, CommitPoint, SeriesAnalysis
from reports.trend import TrendSeries, trend_html, trend_png


def _series(n: int, runs: int) -> TrendSeries:
    points = tuple(
        CommitPoint(f"{i:040x}", tuple(0.02 * (1.2 if i >= n // 2 else 1) for _ in range(runs)))
        for i in range(n)
    )
    change = ChangePoint(
        n // 2,
        points[n // 2].commit,
        points[n // 2 - 1].commit,
        1.2,
        float("nan"),
        float("nan"),
        1e-5,
        n // 2,
        n - n // 2,
    )
    return TrendSeries(
        "function/float32@cpu tiny/synthetic b10 1x20",
        {"cpu_count": 2},
        SeriesAnalysis(points, (change,)),
        "regression",
    )


def test_a_single_run_per_commit_has_no_interval_but_a_page():
    text = trend_html([_series(10, 1)], "note")
    png = re.search(r"base64,([^\"]+)", text).group(1)
    assert base64.b64decode(png)[:4] == b"\x89PNG"
    # runs, then the median with no interval
    assert '<td class="r">1</td><td class="r">20</td>' in text
    assert '<td class="r">1</td><td class="r">24</td>' in text
    assert "+20.0% slower" in text  # the change point, without an interval
    assert "cpu_count=2" in text


def test_hundreds_of_commits_still_draw():
    assert trend_png(_series(300, 2))[:4] == b"\x89PNG"


def test_an_empty_history_says_so():
    assert "No series: the history holds no usable runs." in trend_html([], "note")
