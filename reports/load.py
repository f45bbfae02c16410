"""Reading stored runs, and the manifests of sharded invocations, from results directories."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from reports.frames import Results
from reports.layout import RUNS, ResultsLayout, root_of, run_files
from reports.schema import ResultFileError, RunRecord, read_run
from reports.shards import ShardManifest, read_shard_manifests


def _run_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ResultFileError(f"{path}: no such file or directory")
    runs = ResultsLayout(path).runs
    folder = runs if runs.is_dir() else path  # a results directory, or a folder of runs
    files = run_files(folder)
    if not files:
        raise ResultFileError(f"{path}: no run files (expected {folder}/*.json)")
    return files


def _load(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[RunRecord], dict[str, Path]]:
    records: list[RunRecord] = []
    roots: dict[str, Path] = {}
    for path in paths:
        for file in _run_files(Path(path)):
            record = read_run(file)
            records.append(record)
            roots[record.run_id] = root_of(file)
    return records, roots


def load_records(paths: Iterable[str | os.PathLike[str]]) -> list[RunRecord]:
    """Reads every run in the given results directories, run directories or run files.

    Raises:
      ResultFileError: naming the first file that is corrupt, truncated or of an unknown
        schema version, or a path holding no runs.
    """
    return _load(paths)[0]


def load_results(paths: Iterable[str | os.PathLike[str]]) -> Results:
    """:func:`load_records`, as tidy DataFrames (remembering where each run was read)."""
    records, roots = _load(paths)
    return Results.from_records(records, roots)


def load_shards(paths: Iterable[str | os.PathLike[str]]) -> list[ShardManifest]:
    """The manifests of sharded invocations in the results directories that ``paths`` name
    (a results directory, its ``runs`` folder, or a run file in it).

    Raises:
      ResultFileError: naming a manifest that is unreadable or malformed.
    """
    roots = []
    for path in map(Path, paths):
        root = root_of(path) if path.is_file() else path
        root = root.parent if root.name == RUNS else root
        roots.append(root)
    return read_shard_manifests(dict.fromkeys(roots))
