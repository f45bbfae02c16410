"""Same-job A/B: a baseline revision and the candidate, measured in one job.

The baseline's source is exported from git (``git archive REV``) into the output
directory; every run is a fresh worker process started from one source tree or the other,
in the order A B, B A, A B, ... (so drift and warm-up of the machine hit both alike). The
two sides land in ``OUT/baseline`` and ``OUT/candidate``, ordinary results directories that
``tapebench report`` and ``tapebench compare`` read. This is the recommended CI setup: both
sides share the runner, the hour and the noise; a baseline stored from another machine
shares none of them.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from bench.machine.fingerprint import COMMIT_MARKER, SOURCE_ROOT
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import execute_plans
from bench.matrix.job import SourceTree
from bench.matrix.jobs import Side
from bench.matrix.plan import ABSide, Slot, create_plan, write_plan
from bench.matrix.signals import StopRequest
from bench.matrix.store import ResultsDir
from trainloop.datasets import DataSource


class RevisionError(ValueError):
    """The baseline revision cannot be resolved or exported."""


@dataclass(frozen=True)
class ABResult:
    """Where the two sides were stored, and whether the job was stopped early."""

    baseline: ResultsDir
    candidate: ResultsDir
    baseline_commit: str
    interrupted: bool


def export_revision(rev: str, target: Path, repo: Path = SOURCE_ROOT) -> str:
    """Writes the tree of ``rev`` into ``target``; returns its full commit hash."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
        raise RevisionError(
            f"cannot export revision {rev!r} from {repo}: {text.strip() or exc}"
        ) from None
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    if not (target / "bench" / "worker.py").is_file():
        raise RevisionError(f"revision {rev!r} has no bench/worker.py: not a tapebench tree")
    (target / COMMIT_MARKER).write_text(commit + "\n")
    return commit


def run_ab(
    cells: Sequence[Cell],
    options: RunOptions,
    sources: Mapping[str, DataSource],
    baseline_rev: str,
    runs: int,
    argv: Sequence[str] = (),
    inject_delay_s: float = 0.0,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> ABResult:
    """Runs every cell ``runs`` times from each side, interleaved, in fresh processes.

    Both sides go through the matrix's job loop (:func:`execute_plans`), so they get its
    skips, GPU probe, locks and cluster settings. ``inject_delay_s`` slows every candidate
    step by a known amount (for checking that the gate catches slowdowns); it is recorded
    in the candidate's runs.
    """
    root = Path(options.output_dir)
    exported = (root / "baseline-source").resolve()  # workers start with it as their cwd
    commit = export_revision(baseline_rev, exported)
    trees = {"baseline": SourceTree(exported, commit), "candidate": SourceTree()}
    sides = []
    for name, tree in trees.items():
        # The gate compares step times; the efficiency columns' peaks are not needed.
        side_options = replace(options, output_dir=root / name, measure_peak=False)
        ab = ABSide(name, baseline_rev, commit)
        plan = create_plan(cells, runs, side_options, sources, argv, ab)
        write_plan(ResultsDir(side_options.output_dir).create(), plan)
        delay = inject_delay_s if name == "candidate" else 0.0
        sides.append(Side(plan, tree, delay, name))
    order: list[tuple[int, Slot]] = []
    for slot_b, slot_c in zip(sides[0].plan.slots, sides[1].plan.slots, strict=True):
        pair = [(0, slot_b), (1, slot_c)]
        order += pair if slot_b.repeat % 2 == 0 else pair[::-1]  # A B, B A, ...
    base, cand = execute_plans(sides, order, stop, stream)
    return ABResult(base.results, cand.results, commit, base.interrupted)
