"""The results directory's layout: where each kind of file lives. Standard library only.

Layout::

    RESULTS/
      runs/<run_id>.json          one record per finished run (any status; reports.schema)
      logs/<run_id>.log           the run's full output, TensorFlow's C++ log included
      invocations/<id>.json       what an invocation planned, and how it was called
      invocations/<id>.md         the timing table it printed
      invocations/<id>.lock       held while the invocation runs
      traces/plugins/profile/<run_name>/   a profiling run's trace (the xprof layout)

``bench`` writes this layout (``bench.matrix.store.ResultsDir`` adds the writers) and
``reports`` reads it, so the two cannot disagree about where a file is.
"""

from __future__ import annotations

import os
from pathlib import Path

RUNS = "runs"
LOGS = "logs"
INVOCATIONS = "invocations"
TRACES = "traces"
# Under the trace root, the directories xprof and TensorBoard look for sessions in.
PROFILE_SESSIONS = ("plugins", "profile")


def trace_relative_path(run_name: str) -> str:
    """A trace's path relative to the results root, as stored in a record's ``info``."""
    return "/".join((TRACES, *PROFILE_SESSIONS, run_name))


class ResultsLayout:
    """The paths inside one results directory (nothing is created or written here)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.runs = self.root / RUNS
        self.logs = self.root / LOGS
        self.invocations = self.root / INVOCATIONS
        self.traces = self.root / TRACES

    def run_path(self, run_id: str) -> Path:
        """Where the record of ``run_id`` is stored."""
        return self.runs / f"{run_id}.json"

    def log_path(self, run_id: str) -> Path:
        """Where the output of ``run_id`` is logged."""
        return self.logs / f"{run_id}.log"

    def manifest_path(self, invocation_id: str) -> Path:
        """Where an invocation's plan is stored."""
        return self.invocations / f"{invocation_id}.json"

    def table_path(self, invocation_id: str) -> Path:
        """Where the table an invocation printed is stored."""
        return self.invocations / f"{invocation_id}.md"

    def lock_path(self, invocation_id: str) -> Path:
        """The file an invocation holds locked while it runs."""
        return self.invocations / f"{invocation_id}.lock"


def run_files(folder: Path, prefix: str = "") -> list[Path]:
    """The run files in ``folder`` whose names start with ``prefix``, sorted (temporary
    files of atomic writes, which start with a dot, left out)."""
    return sorted(p for p in folder.glob(f"{prefix}*.json") if not p.name.startswith("."))


def root_of(run_file: Path) -> Path:
    """The results directory a run file belongs to (its folder, for a loose file)."""
    folder = run_file.parent
    return folder.parent if folder.name == RUNS else folder
