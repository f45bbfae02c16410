"""Histories for the tests: a real git repository of N dated commits, and results
directories whose runs name those commits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from bench.matrix.store import ResultsDir
from tests.reports.factories import make_record

ENV = {"cpu_model": "Test CPU", "cpu_count": 2, "tensorflow": "2.21.0", "python": "3.11.9"}


def git_repo(path: Path, commits: int, branch: str = "main") -> list[str]:
    """A repository with ``commits`` commits an hour apart; returns their hashes, oldest
    first."""
    path.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }

    def git(*args: str, **extra: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(path), *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    git("init", "-q", "-b", branch)
    hashes = []
    for i in range(commits):
        (path / "file.txt").write_text(f"{i}\n")
        git("add", "file.txt")
        date = f"{1_700_000_000 + 3600 * i} +0000"
        git("commit", "-q", "-m", f"commit {i}", GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        hashes.append(git("rev-parse", "HEAD"))
    return hashes


def write_runs(
    root: Path,
    commit: str,
    medians: list[float],
    env: dict | None = None,
    dirty: bool = False,
    prefix: str = "",
    **cell: object,
) -> Path:
    """A results directory holding one ok run per median, all of ``commit``."""
    store = ResultsDir(root).create()
    fingerprint = {**(env or ENV), "git_commit": commit, "git_dirty": dirty, "hostname": "h"}
    for i, m in enumerate(medians):
        record = make_record(
            f"{prefix}{commit[:8]}-r{i}",
            timed=(m * 0.99, m, m * 1.01),
            repeat=i,
            fingerprint=fingerprint,
            **cell,
        )
        store.write_run(record)
    return root


def step_history(
    root: Path,
    commits: list[str],
    step_at: int | None,
    step: float = 0.2,
    seed: int = 0,
    runs: int = 3,
    noise: float = 0.02,
    **cell: object,
) -> list[Path]:
    """One results directory per commit, as a run of each commit would leave them: run
    medians of 20 ms with log-normal ``noise``, ``step`` slower from ``step_at`` on."""
    rng = np.random.default_rng(seed)
    dirs = []
    for i, commit in enumerate(commits):
        level = 0.02 * (1 + step if step_at is not None and i >= step_at else 1)
        medians = list(level * np.exp(rng.normal(0, noise, runs)))
        prefix = "-".join(f"{k}{v}" for k, v in cell.items())
        dirs.append(write_runs(root / f"{prefix}{i:02d}", commit, medians, prefix=prefix, **cell))
    return dirs
