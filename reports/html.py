"""One self-contained HTML page: environment, tables, comparisons, warnings, figures
(embedded as data: URIs, so the file can be mailed or attached to a CI run)."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

from reports.display import display_tables, geomean_rows, profile_displays, scaling_rows
from reports.figures import all_figures
from reports.report import Report

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.r { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
.note { color: #555; font-size: 13px; } .warn li { color: #8a4b00; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 12px; }
img { max-width: 100%; }
"""


def html_table(
    header: list[str], rows: list[list[str]], align: str, caption: str = "", table_id: str = ""
) -> str:
    """An HTML table of escaped text; ``align`` holds ``l`` or ``r`` per column."""
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"r" if a == "r" else "l"}">{html.escape(c)}</td>'
            for c, a in zip(row, align.ljust(len(row), "l"), strict=False)
        )
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table{ident}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _environment(report: Report) -> str:
    envs = report.environments
    if not envs:
        return '<p class="note">No run reported its environment.</p>'
    keys = list(envs[0])
    header = ["Field", *(f"Environment {i + 1}" for i in range(len(envs)))]
    rows = [[k, *(str(e.get(k)) for e in envs)] for k in keys]
    return html_table(header, rows, "l" * len(header), table_id="environment")


def _figures(report: Report) -> str:
    parts = []
    for section, figures in all_figures(report).items():
        if not figures:
            continue
        parts.append(f"<h3>{html.escape(section)}</h3>")
        for caption, png in figures:
            data = base64.b64encode(png).decode()
            parts.append(
                f'<figure><img alt="{html.escape(section)}: {html.escape(caption)}" '
                f'src="data:image/png;base64,{data}"><figcaption>'
                f"{html.escape(caption)}</figcaption></figure>"
            )
    return "\n".join(parts)


def html_report(report: Report, title: str = "tapebench report") -> str:
    """The report as one HTML document."""
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} from '
        f"{len(report.results.records)} runs.</p>",
        "<h2>Timings</h2>",
    ]
    for i, table in enumerate(display_tables(report)):
        sections.append(
            html_table(table.header, table.rows, table.align, table.title, f"summary-{i}")
        )
        sections += [f'<p class="note">{html.escape(n)}</p>' for n in table.notes]
    if len(report.geomeans) and (report.geomeans["cells"] > 1).any():
        header, rows = geomean_rows(report)
        sections += [
            "<h2>Geometric-mean speedups</h2>",
            '<p class="note">Over every workload each variant ran on; not clipped, '
            "so slowdowns count.</p>",
            html_table(header, rows, "lrrr", table_id="geomeans"),
        ]
    if len(report.scaling):
        header, rows = scaling_rows(report)
        sections += [
            "<h2>Scaling</h2>",
            '<p class="note">The global batch split across '
            "replicas; efficiency = speedup / replicas.</p>",
            html_table(header, rows, "lrrrrr", table_id="scaling"),
        ]
    displays = profile_displays(report)
    if displays:
        sections += [
            "<h2>Profiles</h2>",
            '<p class="note">From a separate profiling run per '
            "cell, so the timings above are not distorted. View the traces with "
            "<code>tapebench traces RESULTS_DIR</code> (on this machine only).</p>",
        ]
    for i, d in enumerate(displays):
        sections += [
            f"<h3>{html.escape(d.title)}</h3>",
            f'<p class="note">{html.escape(d.summary)}</p>',
            html_table(d.ops.header, d.ops.rows, d.ops.align, d.ops.title, f"profile-ops-{i}"),
            html_table(
                d.categories.header,
                d.categories.rows,
                d.categories.align,
                d.categories.title,
                f"profile-categories-{i}",
            ),
        ]
        sections += [f'<p class="note">{html.escape(n)}</p>' for n in d.ops.notes]
    sections.append("<h2>Warnings</h2>")
    if report.findings:
        items = "".join(f"<li>{html.escape(str(f))}</li>" for f in report.findings)
        sections.append(f'<ul class="warn" id="warnings">{items}</ul>')
    else:
        sections.append('<p class="note" id="warnings">None.</p>')
    sections += ["<h2>Figures</h2>", _figures(report), "<h2>Environment</h2>", _environment(report)]
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
