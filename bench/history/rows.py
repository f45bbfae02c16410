"""Run records to history rows: the run's summary figures and the keys of its series.

A run's *cell key* hashes every cell field; its *environment* is the comparable half of its
fingerprint (``reports.schema.COMPARABLE_FIELDS``: hardware and software stack, not the
hostname or commit); its *series* is the pair. The commit comes from the fingerprint
(``git_commit``); its time and branch from git, in the repository the commit belongs to,
where it is known there (NULL otherwise).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from reports.schema import COMPARABLE_FIELDS, RunRecord, cell_label


def digest(value: Any, length: int = 32) -> str:
    """A hex digest of ``value``'s canonical JSON."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def environment(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint fields that must agree for runs to be compared."""
    return {k: fingerprint.get(k) for k in COMPARABLE_FIELDS}


@dataclass(frozen=True)
class CommitInfo:
    """What git knows about a commit: its committer time (ISO, UTC) and branch."""

    time: str | None = None
    branch: str | None = None


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def resolve_commit(repo: Path, rev: str) -> str:
    """The full hash of ``rev`` in ``repo``.

    Raises:
      ValueError: naming ``rev`` and ``repo``, when git does not know it there.
    """
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not commit:
        raise ValueError(f"--commit {rev!r} is not a commit of the repository {repo}")
    return commit


@lru_cache(maxsize=4096)
def commit_info(repo: Path, commit: str) -> CommitInfo:
    """The commit's time and branch in ``repo``: the checked-out branch if it contains the
    commit, else the only local branch that does; unknown commits give NULLs."""
    seconds = _git(repo, "show", "-s", "--format=%ct", f"{commit}^{{commit}}")
    if not seconds or not seconds.isdigit():
        return CommitInfo()
    time = datetime.fromtimestamp(int(seconds), UTC).isoformat(timespec="seconds")
    listed = _git(repo, "branch", "--contains", commit, "--format=%(refname:short)")
    branches = listed.splitlines() if listed else []
    current = _git(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    if current in branches:
        return CommitInfo(time, current)
    return CommitInfo(time, branches[0] if len(branches) == 1 else None)


@dataclass(frozen=True)
class RunRow:
    """One run as the history stores it, with the keys of its series and environment."""

    run: dict[str, Any]
    series: dict[str, Any]
    environment: dict[str, Any]


def _timed_median(record: RunRecord) -> tuple[float | None, int]:
    timed = record.steps.timed_seconds
    return (float(np.median(timed)) if timed else None), len(timed)


def to_row(record: RunRecord, source: str, commit: CommitInfo, added_at: str) -> RunRow:
    """The history row of ``record`` (read from ``source``)."""
    env = environment(record.fingerprint)
    env_hash, cell_key = digest(env), digest(record.cell)
    series_key = digest([cell_key, env_hash])
    median, steps = _timed_median(record)
    accuracy = next(
        (e.test_accuracy for e in reversed(record.epochs) if e.test_accuracy is not None), None
    )
    fp = record.fingerprint
    run = {
        "run_id": record.run_id,
        "record_hash": digest(record.to_dict(), 64),
        "invocation_id": record.invocation_id,
        "slot_id": record.slot_id,
        "repeat": record.repeat,
        "series_key": series_key,
        "status": record.status,
        "reason": record.reason,
        "median_step_s": median,
        "images_per_s": record.cell["batch_size"] / median if median else None,
        "timed_steps": steps,
        "test_accuracy": accuracy,
        "git_commit": fp.get("git_commit"),
        "git_dirty": fp.get("git_dirty"),
        "commit_time": commit.time,
        "branch": commit.branch,
        "hostname": fp.get("hostname"),
        "started_at": record.started_at,
        "source": source,
        "added_at": added_at,
    }
    series = {
        "series_key": series_key,
        "cell_key": cell_key,
        "env_hash": env_hash,
        "label": cell_label(record.cell),
        "cell_json": json.dumps(record.cell, sort_keys=True),
    }
    return RunRow(
        run, series, {"env_hash": env_hash, "fields_json": json.dumps(env, sort_keys=True)}
    )
