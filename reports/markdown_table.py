"""One GitHub-flavoured Markdown table: a leaf module, so any renderer can use it without
importing the report pipeline."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds one of ``lrc`` per column."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    align = align.ljust(len(header), "l")
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(marks[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)
