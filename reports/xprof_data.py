"""Profiler traces read through the converters xprof ships, without a UI.

``xspace_to_tool_data`` turns a session's ``*.xplane.pb`` files into tool data:
``framework_op_stats`` (op tables), ``overview_page`` (step times), ``trace_viewer`` (the
timeline as Chrome trace events). xprof's converters do not import TensorFlow; they are
imported only when a report has traces.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

# The name of the marker around each traced call (trainloop.tracing.TraceWindow.step).
STEP_MARKER = "train"


class TraceReadError(RuntimeError):
    """A trace could not be converted; the message carries the converter's last words."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[IO[bytes]]:
    """Sends file descriptor 2 (the converters' C++ logging) to a temporary file."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tool_data(paths: list[str], tool: str) -> Any:
    """One xprof tool's output for a session's xplane files, parsed from JSON."""
    from xprof.convert import raw_to_tool_data  # imported only when there are traces

    with _quiet_stderr() as log:
        data, _ = raw_to_tool_data.xspace_to_tool_data(paths, tool, {})
        log.seek(0)
        last_words = log.read().decode(errors="replace").strip().splitlines()[-1:]
    if not data:
        said = f" ({last_words[0]})" if last_words else ""
        raise TraceReadError(f"{paths[0]}: xprof returned no {tool} data{said}")
    return json.loads(data)


def _table(table: dict[str, Any]) -> pd.DataFrame:
    columns = [c["id"] for c in table["cols"]]
    rows = [[(cell or {}).get("v") for cell in row["c"]] for row in table["rows"]]
    return pd.DataFrame(rows, columns=columns)


def xplane_files(trace_dir: Path) -> list[str]:
    """The ``*.xplane.pb`` files of one profile session directory; an error if none."""
    paths = sorted(str(p) for p in trace_dir.glob("*.xplane.pb"))
    if not paths:
        raise TraceReadError(f"{trace_dir}: no .xplane.pb file")
    return paths


def read_op_stats(trace_dir: Path) -> tuple[pd.DataFrame, list[float]]:
    """(op table with idle time, per-step durations in ms) of one session directory."""
    paths = xplane_files(trace_dir)
    ops = _table(tool_data(paths, "framework_op_stats")[0])
    steps: list[float] = []
    for table in tool_data(paths, "overview_page"):
        if not isinstance(table, dict) or "cols" not in table:
            continue
        frame = _table(table)
        if "stepTimeMs" in frame.columns:
            steps = [float(x) for x in frame["stepTimeMs"].dropna()]
    return ops, steps


def read_timeline(trace_dir: Path) -> list[dict[str, Any]]:
    """The trace's complete events (``ph == "X"``: name, pid, tid, ``ts`` and ``dur`` in
    µs, args), as the trace viewer shows them."""
    events = tool_data(xplane_files(trace_dir), "trace_viewer")["traceEvents"]
    return [e for e in events if e.get("ph") == "X"]


def read_marked_calls(trace_dir: Path) -> list[float]:
    """The duration (ms) of every marked call in the timeline: the step times, where the
    overview page finds none (it finds none for calls that loop over several steps
    in-graph)."""
    events = read_timeline(trace_dir)
    return [e["dur"] / 1e3 for e in events if e.get("name") == STEP_MARKER and "dur" in e]
