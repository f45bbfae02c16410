"""Exports of a report: numeric tables (CSV, Parquet, JSON) in SI units, and text tables
(console, LaTeX)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.display import display_tables
from reports.markdown import timing_markdown
from reports.report import Report

FORMATS = ("markdown", "console", "csv", "json", "parquet", "latex")


def numeric_table(report: Report) -> pd.DataFrame:
    """One row per cell with every figure in SI units (seconds, bytes, ratios)."""
    return report.table.reset_index(drop=True)


def console_text(report: Report) -> str:
    """Plain aligned columns for a terminal."""
    parts = []
    for table in display_tables(report):
        widths = [max(len(h), *(len(r[i]) for r in table.rows)) for i, h in enumerate(table.header)]

        def line(cells: list[str], w: list[int] = widths, a: str = table.align) -> str:
            return "  ".join(
                c.rjust(n) if k == "r" else c.ljust(n) for c, n, k in zip(cells, w, a, strict=False)
            ).rstrip()

        parts.append(
            "\n".join(
                [
                    table.title,
                    line(table.header),
                    "  ".join("-" * n for n in widths),
                    *(line(r) for r in table.rows),
                    *table.notes,
                ]
            )
        )
    parts.extend(f"warning: {f}" for f in report.findings)
    return "\n\n".join(parts)


def _latex_escape(text: str) -> str:
    out = text
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\^{}"),
    ):
        out = out.replace(char, escaped)
    return out.replace("×", r"$\times$").replace("µ", r"$\mu$").replace("–", "--")


def latex_text(report: Report) -> str:
    """booktabs tables, one per workload."""
    parts = []
    for table in display_tables(report):
        body = "\n".join(" & ".join(_latex_escape(c) for c in row) + r" \\" for row in table.rows)
        parts.append(
            "\n".join(
                [
                    r"\begin{table}",
                    r"\centering",
                    r"\small",
                    rf"\caption{{{_latex_escape(table.title)}}}",
                    rf"\begin{{tabular}}{{{table.align}}}",
                    r"\toprule",
                    " & ".join(_latex_escape(h) for h in table.header) + r" \\",
                    r"\midrule",
                    body,
                    r"\bottomrule",
                    r"\end{tabular}",
                    r"\end{table}",
                ]
            )
        )
    return "\n\n".join(parts)


def write_table(report: Report, fmt: str, path: Path) -> Path:
    """Writes the report's table in ``fmt`` (one of :data:`FORMATS`) to ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = numeric_table(report)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "json":
        path.write_text(
            json.dumps(
                {
                    "cells": json.loads(frame.to_json(orient="records")),
                    "geomeans": json.loads(report.geomeans.to_json(orient="records")),
                    "warnings": [vars(f) for f in report.findings],
                },
                indent=1,
            )
        )
    else:
        text = {"markdown": timing_markdown, "console": console_text, "latex": latex_text}[fmt](
            report
        )
        path.write_text(text + "\n")
    return path
