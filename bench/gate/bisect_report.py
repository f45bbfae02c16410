"""A bisection told: one log line per step, ``bisect.json`` and ``bisect.md``.

Both files are rewritten (atomically) after every step, so a bisection stopped at any
point leaves what it measured and how far it got; the Markdown names the first bad commit
with its A/B table and lists every step.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.gate.bisect import BisectConfig, CommitRange
from bench.gate.search import (
    AMBIGUOUS,
    FOUND,
    INTERRUPTED,
    NOT_REPRODUCED,
    Look,
    Outcome,
    Step,
)
from bench.matrix.store import write_atomic
from reports.markdown_table import markdown_table
from reports.verdicts import ratio_text, verdicts_json


def cells_text(look: Look) -> str:
    """Each cell's ratio with its 95% interval and verdict, or the look's reason."""
    if not look.verdicts:
        return look.reason
    return "; ".join(
        f"{v.cell}: ratio {ratio_text(v)} ({max(v.baseline_runs, v.candidate_runs)} pairs), "
        f"{v.verdict}"
        for v in look.verdicts
    )


@dataclass(frozen=True)
class BisectReport:
    """A bisection (``bisection``: its id) as far as it got (``outcome``)."""

    bisection: str
    commits: CommitRange
    config: BisectConfig
    outcome: Outcome

    def step_line(self, number: int) -> str:
        """One line for step ``number`` (from 1): commit, decision, each cell's ratio."""
        step = self.outcome.steps[number - 1]
        commit = self.commits.at(step.index)
        left = len(self._untested())
        tail = f" ({left} commit(s) left to test)" if left else ""
        return (
            f'step {number}: {commit.short} "{commit.subject}": {step.decision}: '
            f"{cells_text(step.look)}{tail}"
        )

    def _untested(self) -> list[int]:
        """The commits where the first bad one may be that no step has judged."""
        o = self.outcome
        if o.state == NOT_REPRODUCED:
            return []
        tested = {s.index for s in o.steps if s.decision != INTERRUPTED}
        return [i for i in range(o.good + 1, o.bad) if i not in tested]

    def _where(self, look: Look) -> str:
        return os.path.relpath(look.results, self.config.options.output_dir) if look.results else ""

    def _commit(self, index: int) -> dict[str, str]:
        c = self.commits.at(index)
        return {"commit": c.hash, "subject": c.subject}

    def _step(self, step: Step) -> dict[str, Any]:
        verdicts = json.loads(verdicts_json(step.look.verdicts, self.config.policy))["verdicts"]
        return {
            **self._commit(step.index),
            "decision": step.decision,
            "reason": step.reason,
            "results": self._where(step.look),
            "verdicts": verdicts,
        }

    def to_json(self) -> str:
        """The bisection as JSON: its range, policy, state, suspects and every step."""
        o = self.outcome
        doc = {
            "bisection": self.bisection,
            "state": o.state,
            "repo": str(self.commits.repo),
            "good": self._commit(-1),
            "bad": self._commit(len(self.commits.commits) - 1),
            "commits": len(self.commits.commits),
            "looks_after_pairs": list(self.config.schedule.looks),
            "policy": asdict(self.config.policy),
            "first_bad": self._commit(o.suspects[0]) if o.state == FOUND else None,
            "suspects": [self._commit(i) for i in o.suspects],
            "last_good": self._commit(o.good),
            "untested": [self._commit(i) for i in self._untested()],
            "steps": [self._step(s) for s in o.steps],
        }
        return json.dumps(doc, indent=1, allow_nan=False)

    def _named(self, index: int) -> str:
        c = self.commits.at(index)
        return f"`{c.short}` {c.subject}"

    def headline(self) -> str:
        """What the bisection found, in one paragraph."""
        o, n = self.outcome, len(self.outcome.steps)
        if o.state == FOUND:
            return f"**First bad commit: {self._named(o.suspects[0])}** ({n} step(s))"
        if o.state == AMBIGUOUS:
            named = ", ".join(self._named(i) for i in o.suspects)
            return f"**Undecided**: skipped commits leave {len(o.suspects)} suspects: {named}"
        if o.state == NOT_REPRODUCED:
            step = o.steps[-1]
            return (
                f"**Not reproduced**: {self._named(o.bad)} is not judged slower than the "
                f"good commit {self._named(-1)}: {step.decision} ({step.reason})"
            )
        where = (
            f"after {self._named(o.good)} and at or before {self._named(o.bad)} "
            f"({len(self._untested())} commit(s) untested)"
        )
        if o.state == INTERRUPTED and n == 1:
            return "**Stopped** before the regression was reproduced"
        verb = "Stopped" if o.state == INTERRUPTED else "Running"
        return f"**{verb}** after {n} step(s): the first bad commit is {where}"

    def _deciding(self) -> Step | None:
        """The step whose A/B table the report shows: the first bad commit's, else the
        reproduction's."""
        o = self.outcome
        target = o.suspects[-1] if o.state in (FOUND, AMBIGUOUS) else len(self.commits.commits) - 1
        return next((s for s in reversed(o.steps) if s.index == target), None)

    def to_markdown(self) -> str:
        """The headline, the deciding A/B's table and the log of every step."""
        c = self.commits
        parts = [f"## Bisection {c.good.short}..{c.bad.short} ({len(c.commits)} commits)"]
        parts.append(self.headline())
        step = self._deciding()
        if step is not None and step.look.table:
            commit = c.at(step.index)
            parts.append(f"### {commit.short} against the good commit {c.good.short}")
            parts.append(step.look.table)
        rows = [
            [
                str(i),
                f"`{c.at(s.index).short}`",
                c.at(s.index).subject,
                f"**{s.decision}**",
                cells_text(s.look),
                self._where(s.look),
            ]
            for i, s in enumerate(self.outcome.steps, 1)
        ]
        header = ["Step", "Commit", "Subject", "Decision", "Cells", "Results"]
        parts += ["### Steps", markdown_table(header, rows, "rlllll"), self._method()]
        return "\n\n".join(parts)

    def _method(self) -> str:
        schedule = self.config.schedule
        return (
            f"Each commit is judged against the good commit {self._named(-1)} by the "
            f"sequential A/B of `tapebench ab` (looks after {schedule.looks[0]} pairs, at "
            f"most {schedule.max_pairs}): bad on a regression of any cell, good when every "
            "cell is unchanged or faster. A commit whose A/B stays inconclusive, whose "
            "candidate failed, or whose sides ran in different environments is skipped: it "
            "stays a suspect and is not judged again."
        )


def write_report(report: BisectReport, out: Path) -> None:
    """Writes ``OUT/bisect.json`` and ``OUT/bisect.md``, each atomically."""
    write_atomic(out / "bisect.json", (report.to_json() + "\n").encode())
    write_atomic(out / "bisect.md", (report.to_markdown() + "\n").encode())
