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
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bench.machine.fingerprint import COMMIT_MARKER, SOURCE_ROOT
from bench.matrix.cells import Cell, RunOptions, cell_label
from bench.matrix.multiworker import execute_job
from bench.matrix.plan import create_plan
from bench.matrix.process import Job
from bench.matrix.progress import Progress
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
    sources: dict[str, DataSource],
    baseline_rev: str,
    runs: int,
    argv: Sequence[str] = (),
    inject_delay_s: float = 0.0,
    stop: StopRequest | None = None,
    stream: TextIO | None = None,
) -> ABResult:
    """Runs every cell ``runs`` times from each side, interleaved, in fresh processes.

    ``inject_delay_s`` slows every candidate step by a known amount (for checking that the
    gate catches slowdowns); it is recorded in the candidate's runs.
    """
    stop = stop or StopRequest()
    root = Path(options.output_dir)
    tree = root / "baseline-source"
    commit = export_revision(baseline_rev, tree)
    sides = {
        "baseline": ResultsDir(root / "baseline").create(),
        "candidate": ResultsDir(root / "candidate").create(),
    }
    plans = {name: create_plan(cells, runs, options, sources, argv) for name in sides}
    for name, plan in plans.items():
        plan["ab"] = {"side": name, "baseline_rev": baseline_rev, "baseline_commit": commit}
        sides[name].write_invocation(plan["invocation_id"], plan)
    jobs = []
    for slot_b, slot_c in zip(plans["baseline"]["slots"], plans["candidate"]["slots"], strict=True):
        pair = []
        for name, slot, source, source_commit, delay in (
            ("baseline", slot_b, str(tree), commit, 0.0),
            ("candidate", slot_c, str(SOURCE_ROOT), None, inject_delay_s),
        ):
            plan, cell = plans[name], plans[name]["cells"][slot["cell_index"]]
            pair.append(
                (
                    name,
                    Job(
                        run_id=slot["slot_id"],
                        slot_id=slot["slot_id"],
                        invocation_id=plan["invocation_id"],
                        cell=cell,
                        repeat=slot["repeat"],
                        data_source=plan["data_sources"][cell["dataset"]],
                        intra_op_threads=options.intra_op_threads,
                        inter_op_threads=options.inter_op_threads,
                        source_root=source,
                        source_commit=source_commit,
                        inject_delay_s=delay,
                    ),
                )
            )
        jobs += pair if slot_b["repeat"] % 2 == 0 else pair[::-1]  # A B, B A, ...
    progress = Progress(len(jobs), stream or sys.stderr, options.timeout_s)
    for name, job in jobs:
        if stop.requested:
            break
        progress.run_begin(f"{name}: {cell_label(job.cell, job.repeat)}", job.cell["epochs"])
        record = execute_job(
            job, sides[name].log_path(job.run_id), options.timeout_s, progress.on_event, stop
        )
        sides[name].write_run(record)
        progress.run_end(record)
    for name, plan in plans.items():
        plan["state"] = "interrupted" if stop.requested else "complete"
        sides[name].write_invocation(plan["invocation_id"], plan)
    return ABResult(sides["baseline"], sides["candidate"], commit, stop.requested)
