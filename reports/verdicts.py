"""Regression verdicts rendered: a Markdown table (for CI logs, PR comments and GitHub's
step summary) and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from reports.markdown_table import markdown_table
from reports.regression import FAILING, GatePolicy, Verdict, comparison_notes, gate_fails
from reports.sides import Side


def _ms(value: float, runs: int) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1e3:.3f} ({runs})"


def ratio_text(v: Verdict) -> str:
    """The verdict's ratio with its 95% interval, e.g. ``1.250 [1.100–1.400]``."""
    if math.isnan(v.ratio):
        return "n/a"
    if math.isnan(v.ratio_ci_low):
        return f"{v.ratio:.3f}"
    return f"{v.ratio:.3f} [{v.ratio_ci_low:.3f}–{v.ratio_ci_high:.3f}]"


def fixed_sample_method(policy: GatePolicy) -> str:
    """How ``compare`` decides, in a sentence for the report."""
    return (
        "Ratios: candidate / baseline median step time, with a 95% interval over runs "
        "(Welch t on the log run medians). A regression needs a slowdown of at least "
        f"{policy.threshold / 2:.0%} (half the ±{policy.threshold:.0%} band of no change), "
        f"significance at p < {policy.alpha} (one-sided "
        "Mann–Whitney over runs, a timed-out run ranking as the slowest) and at least "
        f"{policy.min_effect_s * 1e3:g} ms per step"
    )


def verdicts_markdown(
    verdicts: Sequence[Verdict],
    base: Side,
    cand: Side,
    policy: GatePolicy,
    method: str | None = None,
) -> str:
    """The comparison as a Markdown table, with the gate's outcome, how it decided
    (``method``; default: :func:`fixed_sample_method`) and what was not compared."""
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
            _ms(v.baseline_median_s, v.baseline_runs),
            _ms(v.candidate_median_s, v.candidate_runs),
            ratio_text(v),
            "n/a" if math.isnan(v.p_slower) else f"{v.p_slower:.3f}",
            f"**{v.verdict}**: {v.reason}",
        ]
        for v in verdicts
    ]
    failing = [v for v in verdicts if v.verdict in FAILING]
    outcome = (
        f"**Gate: fail** ({len(failing)} of {len(verdicts)} cell(s))"
        if failing
        else f"**Gate: pass** ({len(verdicts)} cell(s))"
    )
    notes = [
        outcome,
        f"Baseline: `{base.source}`; candidate: `{cand.source}`. "
        f"{method or fixed_sample_method(policy)}; a cell the candidate did not finish, or "
        "where a candidate run failed, fails the gate.",
        *comparison_notes(base, cand),
    ]
    return markdown_table(header, rows, "lrrrrl") + "\n\n" + "\n\n".join(notes)


def verdicts_json(
    verdicts: Sequence[Verdict], policy: GatePolicy, notes: Sequence[str] = ()
) -> str:
    """The comparison as JSON: the policy, each cell's verdict, the notes, and whether
    the gate fails (``regression``: any regression; ``candidate_failed``: any failed
    candidate; ``fail``: either)."""

    def finite(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    cells = [{k: finite(v) for k, v in asdict(verdict).items()} for verdict in verdicts]
    return json.dumps(
        {
            "policy": asdict(policy),
            "verdicts": cells,
            "notes": list(notes),
            "regression": any(v.verdict == "regression" for v in verdicts),
            "candidate_failed": any(v.verdict == "candidate failed" for v in verdicts),
            "fail": gate_fails(verdicts),
        },
        indent=1,
        allow_nan=False,
    )
