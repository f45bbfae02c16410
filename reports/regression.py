"""Regression verdicts: is the candidate really slower than the baseline, cell by cell?

The independent unit is the run (one process): steps of one process share its fate, so
treating them as independent would make every wobble significant. Per cell:

* ``ratio`` -- candidate median step time / baseline median (pooled timed steps), with a
  95% hierarchical-bootstrap interval (runs resampled, then steps);
* ``p_slower`` / ``p_faster`` -- one-sided Mann-Whitney U tests on the per-run medians;
* the verdict:
  - **regression**: ratio >= 1 + threshold, p_slower < alpha, and the absolute slowdown is
    at least ``min_effect_s`` -- all three;
  - **improvement**: the mirror image;
  - **no change**: the whole interval lies within the threshold band (or within
    ``min_effect_s`` of the baseline), with enough runs to say so;
  - **inconclusive**: anything else -- too few runs, or an interval that straddles the
    band's edge. Never a false "pass" or "fail".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from reports import stats
from reports.layout import ResultsLayout
from reports.load import load_records
from reports.markdown_table import markdown_table
from reports.schema import COMPARABLE_FIELDS, ResultFileError, cell_label

VERDICTS = ("regression", "improvement", "no change", "inconclusive")


@dataclass(frozen=True)
class GatePolicy:
    """When a difference counts.

    Attributes:
      threshold: relative change that matters (0.10: 10% slower is a regression).
      alpha: significance level of the one-sided Mann-Whitney test.
      min_effect_s: smallest absolute change of the median step time that matters.
      min_runs: runs per side below which no verdict but "inconclusive" is given.
    """

    threshold: float = 0.10
    alpha: float = 0.05
    min_effect_s: float = 1e-4
    min_runs: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 10:
            raise ValueError(f"threshold={self.threshold!r} must be a positive fraction")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha={self.alpha!r} must be in (0, 1)")
        if self.min_effect_s < 0 or self.min_runs < 2:
            raise ValueError("min_effect_s must be >= 0 and min_runs >= 2")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: per cell, the timed step times of each run."""

    cells: dict[str, list[np.ndarray]]
    environments: list[dict[str, Any]]
    source: str


@dataclass(frozen=True)
class Verdict:
    """The outcome for one cell."""

    cell: str
    verdict: str
    reason: str
    baseline_median_s: float
    candidate_median_s: float
    baseline_runs: int
    candidate_runs: int
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    p_slower: float
    p_faster: float


def _tapebench_side(path: Path) -> Side:
    cells: dict[str, list[np.ndarray]] = {}
    envs: dict[str, dict[str, Any]] = {}
    for record in load_records([path]):
        if record.status != "ok":
            continue
        timed = np.array(record.steps.timed_seconds, dtype=float)
        if timed.size:
            cells.setdefault(cell_label(record.cell, every_field=True), []).append(timed)
        env = {k: record.fingerprint.get(k) for k in COMPARABLE_FIELDS}
        envs[json.dumps(env, sort_keys=True, default=str)] = env
    return Side(cells, list(envs.values()), str(path))


def _benchmark_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.json"))


def _pytest_benchmark_side(path: Path) -> Side:
    """Each pytest-benchmark JSON file is one process: one run per benchmark."""
    cells: dict[str, list[np.ndarray]] = {}
    envs: dict[str, dict[str, Any]] = {}
    for file in _benchmark_files(path):
        try:
            doc = json.loads(file.read_text())
            benchmarks = doc["benchmarks"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResultFileError(f"{file}: not a pytest-benchmark JSON file ({exc})") from None
        for bench in benchmarks:
            per_round = int(bench.get("extra_info", {}).get("steps_per_round", 1))
            data = bench["stats"].get("data") or [bench["stats"]["median"]]
            cells.setdefault(bench["fullname"], []).append(np.asarray(data, float) / per_round)
            fp = bench.get("extra_info", {}).get("fingerprint") or doc.get("machine_info", {})
            env = (
                {k: fp.get(k) for k in COMPARABLE_FIELDS}
                if "tensorflow" in fp
                else {"cpu": json.dumps(doc.get("machine_info", {}).get("cpu"), default=str)}
            )
            envs[json.dumps(env, sort_keys=True, default=str)] = env
    return Side(cells, list(envs.values()), str(path))


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
    """Comparable fingerprint fields whose values differ between the sides."""
    fields = set()
    for a in base.environments:
        for b in cand.environments:
            fields |= {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    return sorted(fields)


def _mann_whitney(x: np.ndarray, y: np.ndarray, alternative: str) -> float:
    if len(x) < 2 or len(y) < 2:
        return math.nan
    return float(sps.mannwhitneyu(x, y, alternative=alternative).pvalue)


def judge(
    base: list[np.ndarray], cand: list[np.ndarray], policy: GatePolicy, cell: str = ""
) -> Verdict:
    """The verdict for one cell from the per-run step times of each side."""
    m_b, m_c = stats.median(np.concatenate(base)), stats.median(np.concatenate(cand))
    run_b = np.array([np.median(r) for r in base])
    run_c = np.array([np.median(r) for r in cand])
    ratio = m_c / m_b
    low, high = stats.ratio_of_medians_ci(cand, base)
    p_slower = _mann_whitney(run_c, run_b, "greater")
    p_faster = _mann_whitney(run_c, run_b, "less")
    up, down = 1 + policy.threshold, 1 / (1 + policy.threshold)
    effect = m_c - m_b
    few = min(len(base), len(cand)) < policy.min_runs
    if not few and ratio >= up and p_slower < policy.alpha and effect >= policy.min_effect_s:
        verdict, why = (
            "regression",
            (f"{ratio - 1:+.1%}, p={p_slower:.3f}, {effect * 1e3:+.2f} ms per step"),
        )
    elif not few and ratio <= down and p_faster < policy.alpha and -effect >= policy.min_effect_s:
        verdict, why = (
            "improvement",
            (f"{ratio - 1:+.1%}, p={p_faster:.3f}, {effect * 1e3:+.2f} ms per step"),
        )
    elif few:
        verdict, why = (
            "inconclusive",
            (f"{min(len(base), len(cand))} run(s) on one side; need {policy.min_runs} or more"),
        )
    elif (down <= low and high <= up) or max(
        abs(low - 1), abs(high - 1)
    ) * m_b < policy.min_effect_s:
        verdict, why = (
            "no change",
            f"95% interval {low:.3f}–{high:.3f} within ±{policy.threshold:.0%}",
        )
    else:
        verdict, why = (
            "inconclusive",
            (
                f"95% interval {low:.3f}–{high:.3f} crosses the "
                f"±{policy.threshold:.0%} band or the change is not "
                "significant"
            ),
        )
    return Verdict(
        cell, verdict, why, m_b, m_c, len(base), len(cand), ratio, low, high, p_slower, p_faster
    )


def compare_sides(base: Side, cand: Side, policy: GatePolicy) -> list[Verdict]:
    """Verdicts for every cell present on both sides, in the baseline's order."""
    common = [c for c in base.cells if c in cand.cells]
    return [judge(base.cells[c], cand.cells[c], policy, c) for c in common]


def verdicts_markdown(
    verdicts: Sequence[Verdict], base: Side, cand: Side, policy: GatePolicy
) -> str:
    """The comparison as a Markdown table (for CI logs and PR comments)."""
    header = [
        "Cell",
        "Baseline ms (runs)",
        "Candidate ms (runs)",
        "Ratio [95% CI]",
        "p slower",
        "Verdict",
    ]
    rows = [
        [
            v.cell,
            f"{v.baseline_median_s * 1e3:.3f} ({v.baseline_runs})",
            f"{v.candidate_median_s * 1e3:.3f} ({v.candidate_runs})",
            f"{v.ratio:.3f} [{v.ratio_ci_low:.3f}–{v.ratio_ci_high:.3f}]",
            "n/a" if math.isnan(v.p_slower) else f"{v.p_slower:.3f}",
            f"**{v.verdict}**: {v.reason}",
        ]
        for v in verdicts
    ]
    only_b = [c for c in base.cells if c not in cand.cells]
    only_c = [c for c in cand.cells if c not in base.cells]
    notes = [
        f"Baseline: `{base.source}`; candidate: `{cand.source}`. A regression needs a "
        f"slowdown of at least {policy.threshold:.0%}, significance at "
        f"p < {policy.alpha} (one-sided Mann–Whitney over runs) and at least "
        f"{policy.min_effect_s * 1e3:g} ms per step."
    ]
    notes += [f"Only in the baseline (not compared): {c}" for c in only_b]
    notes += [f"Only in the candidate (not compared): {c}" for c in only_c]
    return markdown_table(header, rows, "lrrrrl") + "\n\n" + "\n\n".join(notes)


def verdicts_json(verdicts: Sequence[Verdict], policy: GatePolicy) -> str:
    """The comparison as JSON."""

    def finite(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    cells = [{k: finite(v) for k, v in asdict(verdict).items()} for verdict in verdicts]
    return json.dumps(
        {
            "policy": asdict(policy),
            "verdicts": cells,
            "regression": any(v.verdict == "regression" for v in verdicts),
        },
        indent=1,
        allow_nan=False,
    )
