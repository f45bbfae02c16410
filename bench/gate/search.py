"""Bisection as a search over a line of commits, apart from how a commit is judged.

The line is ``size`` commits after the known-good one, oldest first; the last is the
known-bad end. :func:`bisect` first judges that end against the good commit (does the
regression reproduce?), then halves the range between the last good and the first bad
commit until one commit is left. Each commit is judged once, by one A/B against the good
commit (the sequential gate has already added pairs of runs until it could decide, or
spent its budget): a regression makes it bad, no change (or an improvement) good. An
inconclusive A/B, a failed candidate (a broken build) or sides from different
environments make it a skip, as ``git bisect skip`` does: a skipped commit is never
judged again but stays a suspect, so when only skipped commits are left between the last
good and the first bad one, the first bad commit is one of them or that bad one, and the
search says so.

Nothing here runs anything: the caller passes a ``look`` function (an A/B of two source
trees in :mod:`bench.gate.bisect`, simulated pairs in :mod:`bench.benchmarks.bisect_sim`),
so the real command and the simulation that checks its error rates share this code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reports.regression import Verdict

BAD, GOOD, SKIP, INCONCLUSIVE, INTERRUPTED = "bad", "good", "skip", "inconclusive", "interrupted"
DECISIONS = (BAD, GOOD, SKIP, INCONCLUSIVE, INTERRUPTED)
# How a bisection ends (and RUNNING, before it has).
FOUND, AMBIGUOUS, NOT_REPRODUCED, RUNNING = "found", "ambiguous", "not reproduced", "running"
STATES = (FOUND, AMBIGUOUS, NOT_REPRODUCED, INTERRUPTED, RUNNING)


@dataclass(frozen=True)
class Look:
    """One A/B of a commit against the good one: the decision, why, and the evidence.

    Attributes:
      decision: one of :data:`DECISIONS`.
      reason: one line.
      verdicts: the gate's verdict for each cell.
      results: where the A/B's two results directories are ('' when nothing ran).
      table: the gate's Markdown table ('' when nothing was compared).
    """

    decision: str
    reason: str
    verdicts: tuple[Verdict, ...] = ()
    results: str = ""
    table: str = ""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision={self.decision!r} is not one of {', '.join(DECISIONS)}")
        object.__setattr__(self, "verdicts", tuple(self.verdicts))


def _cell_text(v: Verdict) -> str:
    return f"{v.cell}: {v.verdict} ({v.reason})"


def decide(verdicts: Sequence[Verdict]) -> tuple[str, str]:
    """A commit's decision from its cells' verdicts, and why: bad if any cell regressed;
    else skip if any candidate failed; else inconclusive if any cell is; else good (every
    cell unchanged or faster)."""
    if not verdicts:
        return SKIP, "no cell has a finished run of the good commit"
    for verdict, decision in (
        ("regression", BAD),
        ("candidate failed", SKIP),
        ("inconclusive", INCONCLUSIVE),
    ):
        found = [_cell_text(v) for v in verdicts if v.verdict == verdict]
        if found:
            return decision, "; ".join(found)
    return GOOD, "; ".join(_cell_text(v) for v in verdicts)


@dataclass(frozen=True)
class Step:
    """What the bisection decided about one commit (``index`` into the line), from its
    A/B (``look``): the look's decision, an inconclusive one being a skip."""

    index: int
    look: Look
    decision: str
    reason: str

    @classmethod
    def from_look(cls, index: int, look: Look) -> Step:
        """The step of commit ``index`` judged by ``look``."""
        if look.decision == INCONCLUSIVE:
            return cls(index, look, SKIP, f"inconclusive: {look.reason}")
        return cls(index, look, look.decision, look.reason)


@dataclass(frozen=True)
class Outcome:
    """How a bisection ended (one of :data:`STATES`), every step, and the final range:
    ``good`` the last good commit (-1: the good end), ``bad`` the first known bad one,
    ``suspects`` where the first bad commit can be (one commit when found; none when the
    regression did not reproduce)."""

    state: str
    steps: tuple[Step, ...]
    good: int
    bad: int
    suspects: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state={self.state!r} is not one of {', '.join(STATES)}")


class Search:
    """The state of a bisection of commits ``0 .. size-1`` after the good one (index -1),
    the last of them bad."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size={size!r}: a bisection needs at least one commit")
        self.good, self.bad = -1, size - 1
        self.skipped: set[int] = set()

    def untested(self) -> list[int]:
        """The commits between the last good and the first bad one not yet judged."""
        return [i for i in range(self.good + 1, self.bad) if i not in self.skipped]

    def next(self) -> int | None:
        """The commit to judge next (the middle of the untested ones), or None when done."""
        left = self.untested()
        return left[(len(left) - 1) // 2] if left else None

    def record(self, index: int, decision: str) -> None:
        """Narrows the range by what was decided about commit ``index``."""
        if not self.good < index < self.bad:
            raise ValueError(f"commit {index} is outside the range {self.good}..{self.bad}")
        if decision == BAD:
            self.bad = index
        elif decision == GOOD:
            self.good = index
        elif decision == SKIP:
            self.skipped.add(index)
        else:
            raise ValueError(f"decision={decision!r} does not narrow a bisection")

    def suspects(self) -> list[int]:
        """Where the first bad commit can be: the first bad one, after the skipped commits
        between it and the last good one."""
        return [*sorted(i for i in self.skipped if self.good < i < self.bad), self.bad]

    def outcome(self, state: str, steps: Sequence[Step]) -> Outcome:
        """The bisection's outcome in ``state`` after ``steps``."""
        return Outcome(state, tuple(steps), self.good, self.bad, tuple(self.suspects()))


def bisect(
    size: int,
    look: Callable[[int], Look],
    on_step: Callable[[Step, Search], None] | None = None,
) -> Outcome:
    """Reproduces the regression at the bad end (commit ``size - 1``), then bisects.

    ``look(index)`` judges commit ``index`` against the good one; ``on_step`` sees every
    step as it is decided.
    """
    search, steps = Search(size), []
    index: int | None = size - 1
    while index is not None:
        step = Step.from_look(index, look(index))
        steps.append(step)
        reproducing = index == size - 1
        if not reproducing and step.decision != INTERRUPTED:
            search.record(index, step.decision)
        if on_step is not None:
            on_step(step, search)
        if step.decision == INTERRUPTED:
            return search.outcome(INTERRUPTED, steps)
        if reproducing and step.decision != BAD:
            return Outcome(NOT_REPRODUCED, tuple(steps), -1, size - 1, ())
        index = search.next()
    return search.outcome(FOUND if len(search.suspects()) == 1 else AMBIGUOUS, steps)
