"""A bisection's evidence and verdicts in the regression history.

After each step, the runs of its A/Bs (both sides: real runs of the good commit and of the
judged one) are added to the history as ``tapebench history add`` would add them, and the
judged commit gets a verdict in the history's ``verdicts`` table for each cell's series:
``bad`` where the cell regressed against the good commit, ``good`` where it did not
change or got faster, ``skip`` where the gate could not say.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.gate.ab import BASELINE, CANDIDATE
from bench.gate.search import Step
from bench.history.rows import CommitInfo, RunRow, commit_info, to_row
from bench.history.store import HistoryStore, now
from reports.load import load_records
from reports.regression import Verdict
from reports.schema import cell_label

# The gate's verdict on a cell -> the history's verdict on the commit for its series.
HISTORY_VERDICTS = {"regression": "bad", "no change": "good", "improvement": "good"}


def _rows(repo: Path, results: Path) -> tuple[list[RunRow], dict[str, set[str]]]:
    """The history rows of both sides' timing runs, and the candidate's series keys by
    the gate's cell label."""
    rows: list[RunRow] = []
    series: dict[str, set[str]] = {}
    added_at = now()
    for side in (BASELINE, CANDIDATE):
        for record in load_records([results / side]):
            if record.purpose != "timing":
                continue
            commit = record.fingerprint.get("git_commit")
            info = commit_info(repo, commit) if commit else CommitInfo()
            row = to_row(record, str((results / side).resolve()), info, added_at)
            rows.append(row)
            if side == CANDIDATE:
                key = cell_label(record.cell)  # as the sequential gate names its cells
                series.setdefault(key, set()).add(row.series["series_key"])
    return rows, series


def _detail(verdict: Verdict) -> str:
    return f"{verdict.verdict}: {verdict.reason}"


def record_step(
    store: HistoryStore, step: Step, commit: str, repo: Path, bisection: str
) -> Sequence[str]:
    """Adds the step's runs to ``store`` and records a verdict on ``commit`` for each of
    its cells' series (``bisection``: the bisection's id); returns the verdicts recorded.

    Raises:
      HistoryError: the history cannot be written.
      ResultFileError: a run file of the step is unreadable.
    """
    if not step.look.results:
        return []  # nothing ran (e.g. the commit could not be exported)
    rows, series = _rows(repo, Path(step.look.results))
    store.add(rows)
    recorded = []
    for verdict in step.look.verdicts:
        decision = HISTORY_VERDICTS.get(verdict.verdict, "skip")
        for key in sorted(series.get(verdict.cell, ())):
            store.record_verdict(key, commit, decision, bisection, _detail(verdict))
            recorded.append(decision)
    return recorded
