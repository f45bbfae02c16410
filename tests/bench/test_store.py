import os

import pytest

from bench.matrix.store import ResultsDir, new_invocation_id, write_atomic
from reports.schema import read_run
from tests.reports.factories import make_record


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "f.json"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["f.json"]


def test_written_files_get_the_permissions_of_a_plain_write(tmp_path):
    # mkstemp makes its file 0600: renamed into place as it is, a report or a GitHub step
    # summary would become unreadable to anyone but its writer.
    old = os.umask(0o022)
    try:
        fresh, kept = tmp_path / "fresh.html", tmp_path / "kept.md"
        kept.write_text("# summary\n")
        kept.chmod(0o664)
        write_atomic(fresh, b"<html>")
        write_atomic(kept, b"# summary\nmore\n")
    finally:
        os.umask(old)
    assert oct(fresh.stat().st_mode & 0o777) == oct(0o644)
    assert oct(kept.stat().st_mode & 0o777) == oct(0o664)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    write_atomic(path, b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.json"]


def test_results_dir_writes_readable_runs(tmp_path):
    results = ResultsDir(tmp_path / "out").create()
    record = make_record("inv-000")
    assert read_run(results.write_run(record)) == record
    assert results.log_path("inv-000").parent == tmp_path / "out" / "logs"


def test_invocation_ids_are_unique_and_sortable():
    ids = {new_invocation_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i.split("-")[0]) == 16 for i in ids)
