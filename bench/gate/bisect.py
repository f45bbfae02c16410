"""``tapebench bisect``: which commit slowed training?

A bisection walks the first-parent line of a git repository from a good commit to a bad
one (``git log --first-parent GOOD..BAD``: merges are judged as one change, so the line is
ordered and a slowdown, once in, stays in). It judges commits with the same-job A/B of
the regression gate, always against the good commit: the bad end first (does the
regression reproduce?), then the middle of what is left (:mod:`bench.gate.search`).
After the reproduction only the cells that regressed are measured.

Each commit's tree is exported from git into ``OUT/sources/<commit>`` and its A/B (the
sequential gate of ``tapebench ab``: pairs of runs until decided) is stored in
``OUT/steps/<commit>/`` (``baseline`` and ``candidate``, ordinary results directories).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from bench.gate.ab import ABResult, RevisionError, ab_verdicts, export_revision, run_trees
from bench.gate.search import INTERRUPTED, SKIP, Look, Outcome, Search, Step, bisect, decide
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.job import SourceTree
from bench.matrix.plan import MatrixError, read_plan
from bench.matrix.signals import StopRequest
from reports.load import load_records
from reports.regression import GatePolicy
from reports.schema import ResultFileError
from reports.sequential import LookSchedule, sequential_method
from reports.sides import environment_differences, load_side
from reports.verdicts import verdicts_markdown
from trainloop.datasets import DataSource


class BisectError(ValueError):
    """The repository or revisions cannot be bisected; the message is one line."""


@dataclass(frozen=True)
class Commit:
    """A commit of the bisected line: its full hash and subject."""

    hash: str
    subject: str

    @property
    def short(self) -> str:
        """The first 12 hex digits."""
        return self.hash[:12]


@dataclass(frozen=True)
class CommitRange:
    """The good commit and the line after it, oldest first; the last is the bad one."""

    repo: Path
    good: Commit
    commits: tuple[Commit, ...]

    def __post_init__(self) -> None:
        if not self.commits:
            raise ValueError("a commit range needs at least one commit after the good one")

    @property
    def bad(self) -> Commit:
        """The bad end."""
        return self.commits[-1]

    def at(self, index: int) -> Commit:
        """Commit ``index`` of the line; -1 is the good commit."""
        return self.good if index < 0 else self.commits[index]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except OSError as exc:
        raise BisectError(f"cannot run git: {exc.strerror or exc}") from None


def _commit(repo: Path, flag: str, rev: str) -> Commit:
    """The commit ``rev`` names in ``repo``; it must hold a tapebench tree."""
    done = _git(repo, "log", "-1", "--format=%H%x00%s", f"{rev}^{{commit}}", "--")
    if done.returncode != 0 or "\0" not in done.stdout:
        raise BisectError(f"{flag} {rev!r} is not a commit of the repository {repo}")
    commit = Commit(*done.stdout.rstrip("\n").split("\0", 1))
    if _git(repo, "cat-file", "-e", f"{commit.hash}:bench/worker.py").returncode != 0:
        raise BisectError(
            f"{flag} {rev!r} ({commit.short}) has no bench/worker.py: not a tapebench tree"
        )
    return commit


def resolve_range(repo: Path, good_rev: str, bad_rev: str) -> CommitRange:
    """The first-parent line from ``good_rev`` (exclusive) to ``bad_rev`` in ``repo``.

    Raises:
      BisectError: ``repo`` is not a git repository; a revision is unknown or not a
        tapebench tree; good is not an ancestor of bad on bad's first-parent line.
    """
    if _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise BisectError(f"--repo {repo}: not a git repository")
    good, bad = _commit(repo, "--good", good_rev), _commit(repo, "--bad", bad_rev)
    if good.hash == bad.hash:
        raise BisectError(f"--good {good_rev!r} and --bad {bad_rev!r} are the same commit")
    if _git(repo, "merge-base", "--is-ancestor", good.hash, bad.hash).returncode != 0:
        raise BisectError(f"--good {good_rev!r} is not an ancestor of --bad {bad_rev!r}")
    listed = _git(
        repo, "log", "--first-parent", "--reverse", "--format=%H%x00%s", f"{good.hash}..{bad.hash}"
    )
    commits = tuple(Commit(*line.split("\0", 1)) for line in listed.stdout.splitlines())
    parent = _git(repo, "rev-parse", f"{commits[0].hash}^1").stdout.strip() if commits else ""
    if parent != good.hash:
        raise BisectError(
            f"--good {good_rev!r} is not on the first-parent line of --bad {bad_rev!r}, "
            f"which a bisection walks; pass a commit of that line (git log --first-parent)"
        )
    return CommitRange(repo.resolve(), good, commits)


@dataclass(frozen=True)
class BisectConfig:
    """What every commit is measured on, and how it is judged.

    Attributes:
      cells: the cells of the reproduction (later steps measure those that regressed).
      options: how runs execute; ``output_dir`` is the bisection's directory.
      sources: where each dataset's files are.
      schedule: when the sequential gate looks, and its budget of pairs.
      policy: the gate's verdict rules.
      duet: run a pair's two runs side by side, each pinned to a CPU of its own.
      allow_mixed_environments: judge sides whose environments differ (else a skip).
      argv: the command line, stored in every plan.
    """

    cells: tuple[Cell, ...]
    options: RunOptions
    sources: Mapping[str, DataSource]
    schedule: LookSchedule = field(default_factory=lambda: LookSchedule.every(2, 4, 20))
    policy: GatePolicy = field(default_factory=GatePolicy)
    duet: bool = False
    allow_mixed_environments: bool = False
    argv: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.cells:
            raise ValueError("a bisection needs at least one cell")


def judge_trees(
    good: SourceTree,
    candidate: SourceTree,
    cells: Sequence[Cell],
    config: BisectConfig,
    out: Path,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> Look:
    """The gate on ``candidate`` against ``good``: a sequential A/B of each cell into
    ``out``, and the verdict of every cell and the commit's decision."""
    ab = run_trees(
        cells,
        replace(config.options, output_dir=out),
        config.sources,
        (good, candidate),
        config.schedule,
        config.policy,
        baseline_rev=good.commit or "",
        argv=config.argv,
        stop=stop,
        stream=stream,
        duet=config.duet,
    )
    if ab.interrupted:
        return Look(INTERRUPTED, "stopped before the A/B finished", results=str(out))
    return _judge(ab, config, str(out))


def _judge(ab: ABResult, config: BisectConfig, out: str) -> Look:
    """The verdicts of a finished A/B, as ``tapebench ab`` reaches them."""
    try:
        base, cand = load_side(ab.baseline.root), load_side(ab.candidate.root)
        plans = [read_plan(ab.baseline, None), read_plan(ab.candidate, None)]
        records = [load_records([ab.baseline.root]), load_records([ab.candidate.root])]
    except (ResultFileError, MatrixError) as exc:  # e.g. no run was recorded
        return Look(SKIP, str(exc), results=out)
    differences = environment_differences(base, cand)
    if differences and not config.allow_mixed_environments:
        reason = f"the sides' environments differ in {', '.join(differences)}"
        return Look(SKIP, reason, results=out)
    schedule, policy = config.schedule, config.policy
    verdicts = [v for v in ab_verdicts(plans, records, schedule, policy).values() if v]
    decision, reason = decide(verdicts)
    method = sequential_method(schedule, policy)
    table = verdicts_markdown(verdicts, base, cand, policy, method) if verdicts else ""
    return Look(decision, reason, tuple(verdicts), out, table)


class Bisection:
    """One bisection of ``commits`` under ``config``; :meth:`run` it once."""

    def __init__(
        self,
        config: BisectConfig,
        commits: CommitRange,
        stop: StopRequest | None = None,
        stream: TextIO | None = None,
        on_step: Callable[[Step, Search], None] | None = None,
    ) -> None:
        self.config, self.range = config, commits
        self.stop = stop or StopRequest()
        self.stream, self.on_step = stream, on_step
        self.out = Path(config.options.output_dir)
        self.cells = config.cells
        self.trees: dict[str, SourceTree] = {}

    def tree(self, commit: Commit) -> SourceTree:
        """The commit's source, exported on first use.

        Raises:
          RevisionError: it cannot be exported.
        """
        if commit.hash not in self.trees:
            root = (self.out / "sources" / commit.hash).resolve()  # the workers' cwd
            export_revision(commit.hash, root, self.range.repo)
            self.trees[commit.hash] = SourceTree(root, commit.hash)
        return self.trees[commit.hash]

    def look(self, index: int) -> Look:
        """The A/B of commit ``index`` against the good commit."""
        commit = self.range.at(index)
        if self.stop.requested:
            return Look(INTERRUPTED, "stopped before the A/B started")
        try:
            good, candidate = self.tree(self.range.good), self.tree(commit)
        except RevisionError as exc:
            return Look(SKIP, str(exc))
        out = self.out / "steps" / commit.hash
        return judge_trees(good, candidate, self.cells, self.config, out, self.stop, self.stream)

    def _step_done(self, step: Step, search: Search) -> None:
        if step.index == len(self.range.commits) - 1 and step.look.verdicts:
            regressed = {v.cell for v in step.look.verdicts if v.verdict == "regression"}
            kept = tuple(c for c in self.cells if c.label in regressed)  # ab_verdicts' key
            self.cells = kept or self.cells
        if self.on_step is not None:
            self.on_step(step, search)

    def run(self) -> Outcome:
        """Reproduces the regression, then bisects; returns how it ended."""
        return bisect(len(self.range.commits), self.look, self._step_done)
