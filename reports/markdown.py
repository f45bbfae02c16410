"""Markdown: the timing tables, geometric means and warnings (they paste into a PR)."""

from __future__ import annotations

from reports.display import display_tables, geomean_rows, profile_displays, scaling_rows
from reports.markdown_table import markdown_table
from reports.report import Report

__all__ = ["markdown_table", "timing_markdown"]  # markdown_table lives in a leaf module


def timing_markdown(report: Report) -> str:
    """The whole report as Markdown: a table per workload, geometric means when there are
    several workloads, and every warning."""
    parts = []
    for table in display_tables(report):
        parts.append(
            f"**{table.title}**\n\n" + markdown_table(table.header, table.rows, table.align)
        )
        parts.extend(table.notes)
    if len(report.geomeans) and (report.geomeans["cells"] > 1).any():
        header, rows = geomean_rows(report)
        parts.append(
            "**Geometric-mean speedup over workloads** (not clipped: slowdowns "
            "count)\n\n" + markdown_table(header, rows, "lrrr")
        )
    if len(report.scaling):
        header, rows = scaling_rows(report)
        parts.append(
            "**Scaling** (the global batch split across replicas; efficiency = "
            "speedup / replicas)\n\n" + markdown_table(header, rows, "lrrrrr")
        )
    displays = profile_displays(report)
    if displays:
        parts.append(
            "**Profiles** (a separate profiling run per cell; `tapebench traces "
            "RESULTS_DIR` shows the traces on this machine)"
        )
    for d in displays:
        parts.append(
            f"*{d.title}*: {d.summary}\n\n"
            + markdown_table(d.ops.header, d.ops.rows, d.ops.align)
            + "\n\n"
            + markdown_table(d.categories.header, d.categories.rows, d.categories.align)
        )
        parts.extend(d.ops.notes)
    if report.findings:
        parts.append("**Warnings**\n\n" + "\n".join(f"- {f}" for f in report.findings))
    return "\n\n".join(parts)
