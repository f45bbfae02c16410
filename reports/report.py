"""A report: the summary of every cell joined with its comparisons, plus the warnings.

The pipeline is load -> summarise -> compare -> render; this module is the middle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports import comparisons
from reports.checks import Finding, stability_findings
from reports.frames import Results
from reports.schema import COMPARABLE_FIELDS, VARIANT_FIELDS, variant_label
from reports.summary import summarize
from reports.trace_summary import MISMATCH, ProfileSummary, summarize_profiles


@dataclass(frozen=True)
class ReportOptions:
    """Choices a reader makes.

    Attributes:
      baseline: the variant every cell is compared against, on its own workload, as cell
        fields: ``mode`` and ``precision``, and any of the other variant fields (those left
        out take their plain values: one step per call, tf.data input, no strategy);
        without ``device``, on each cell's own device. A ``(mode, precision)`` pair is
        taken as those two fields.
      target_accuracy: test accuracy for time-to-accuracy (e.g. 0.85); None skips it.
      parity_tolerance: how far (absolute) a mixed-precision cell's final accuracy may fall
        below its float32 counterpart before it is flagged.
    """

    baseline: Mapping[str, Any] = field(default_factory=lambda: dict(comparisons.DEFAULT_BASELINE))
    target_accuracy: float | None = None
    parity_tolerance: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.baseline, tuple):  # (mode, precision)
            mode, precision = self.baseline
            object.__setattr__(self, "baseline", {"mode": mode, "precision": precision})
        unknown = set(self.baseline) - set(VARIANT_FIELDS)
        if unknown or not {"mode", "precision"} <= set(self.baseline):
            raise ValueError(
                f"baseline={dict(self.baseline)!r} must name mode and precision, and only "
                f"variant fields ({', '.join(VARIANT_FIELDS)})"
            )
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy={self.target_accuracy!r} must be in (0, 1]")
        if not 0 <= self.parity_tolerance < 1:
            raise ValueError(f"parity_tolerance={self.parity_tolerance!r} must be in [0, 1)")

    @property
    def baseline_label(self) -> str:
        """The baseline in the variant grammar, e.g. ``eager/float32`` (``@DEVICE`` only
        when it names one)."""
        return variant_label(self.baseline)


@dataclass(frozen=True)
class Report:
    """Everything the renderers show."""

    results: Results
    options: ReportOptions
    table: pd.DataFrame  # one row per cell: summary, speedup, break-even, time-to-accuracy
    geomeans: pd.DataFrame
    findings: list[Finding] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    scaling: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def environments(self) -> list[dict[str, Any]]:
        """The distinct fingerprints (comparable fields, plus host and commit) of the runs."""
        keys = (
            *COMPARABLE_FIELDS,
            "hostname",
            "platform",
            "numpy",
            "git_commit",
            "git_dirty",
            "tapebench",
        )
        seen: dict[str, dict[str, Any]] = {}
        for r in self.results.records:
            if r.status == "skipped":
                continue
            fp = {k: r.fingerprint.get(k) for k in keys}
            seen.setdefault(json.dumps(fp, sort_keys=True, default=str), fp)
        return list(seen.values())


def build_report(results: Results, options: ReportOptions | None = None) -> Report:
    """Summarises and compares ``results``."""
    options = options or ReportOptions()
    profiles, problems = summarize_profiles(results.with_purpose("profile"))
    results = results.with_purpose("timing")
    summary = summarize(results)
    table = summary.join(comparisons.speedups(results, summary, options.baseline))
    table["break_even_steps"] = comparisons.break_even(summary, options.baseline)
    if options.target_accuracy is not None:
        table = table.join(comparisons.time_to_accuracy(results, summary, options.target_accuracy))
    findings = stability_findings(summary, results.records)
    findings += [
        Finding("accuracy-parity", str(issue).split(": ", 1)[1], issue.variant)
        for issue in comparisons.accuracy_parity(summary, options.parity_tolerance)
    ]
    findings += [Finding("profile", p) for p in problems]
    findings += [
        Finding(
            "profile-mismatch",
            f"the profiler's median step time ({p.profiler_step_ms:.2f} "
            f"ms) differs from the harness's ({p.harness_step_ms:.2f} ms) for the same "
            f"steps by {p.mismatch:.0%} (more than {MISMATCH:.0%})",
            p.variant,
        )
        for p in profiles
        if p.mismatch > MISMATCH
    ]
    return Report(
        results,
        options,
        table,
        comparisons.geometric_means(table),
        findings,
        profiles,
        comparisons.scaling(summary),
    )
