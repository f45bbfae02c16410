"""The history store on SQLite: idempotent, transactional, one series per environment,
commit times and branches from git."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from bench.history import tables
from bench.history.rows import CommitInfo, commit_info, to_row
from bench.history.series import build_series
from bench.history.store import HistoryError, HistoryStore, database_url
from reports.load import load_records
from tests.bench.history_factories import ENV, git_repo, write_runs
from tests.reports.factories import make_record


def rows_of(path, repo=None):
    return [
        to_row(
            r,
            str(path),
            commit_info(repo, r.fingerprint["git_commit"]) if repo else CommitInfo(),
            "2026-01-01T00:00:00+00:00",
        )
        for r in load_records([path])
    ]


def test_adding_the_same_runs_twice_is_a_no_op(tmp_path):
    results = write_runs(tmp_path / "a", "a" * 40, [0.02, 0.021, 0.019])
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        assert store.add(rows_of(results)) == 3
        assert store.add(rows_of(results)) == 0
        copy = write_runs(tmp_path / "copy", "a" * 40, [0.02, 0.021, 0.019])
        assert store.add(rows_of(copy)) == 0  # the same runs read from elsewhere
        runs = store.runs()
    assert len(runs) == 3
    assert sorted(runs["median_step_s"]) == pytest.approx([0.019, 0.02, 0.021])
    assert runs["images_per_s"].iloc[0] == pytest.approx(10 / 0.02)
    assert set(runs["status"]) == {"ok"} and set(runs["git_commit"]) == {"a" * 40}


def test_a_changed_fingerprint_starts_a_new_series(tmp_path):
    write_runs(tmp_path / "r", "a" * 40, [0.02])
    write_runs(tmp_path / "r", "b" * 40, [0.02], prefix="x", env={**ENV, "cpu_count": 4})
    write_runs(tmp_path / "r", "c" * 40, [0.02], prefix="y", env={**ENV, "hostname": "other"})
    write_runs(tmp_path / "r", "d" * 40, [0.02], prefix="z", batch_size=20)
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        store.add(rows_of(tmp_path / "r"))
        series = build_series(store.runs())
    # cpu_count is comparable, the hostname is not; the batch size makes another cell.
    assert sorted((s.label, len(s.points)) for s in series) == [
        ("function/float32@cpu tiny/synthetic b10 1xall", 1),
        ("function/float32@cpu tiny/synthetic b10 1xall", 2),
        ("function/float32@cpu tiny/synthetic b20 1xall", 1),
    ]
    assert {s.environment["cpu_count"] for s in series} == {2, 4}


def test_a_failing_batch_leaves_the_history_as_it_was(tmp_path):
    rows = rows_of(write_runs(tmp_path / "a", "a" * 40, [0.02, 0.021, 0.019]))
    broken = dataclasses.replace(rows[-1], run={**rows[-1].run, "status": None})
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        with pytest.raises(HistoryError, match="nothing added"):
            store.add([*rows[:-1], broken])
        assert len(store.runs()) == 0
        assert store.add(rows) == 3


def test_commit_time_and_branch_come_from_git(tmp_path):
    commits = git_repo(tmp_path / "repo", 2, branch="trunk")
    results = write_runs(tmp_path / "a", commits[1], [0.02])
    write_runs(tmp_path / "a", "f" * 40, [0.02], prefix="u")
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        store.add(rows_of(results, tmp_path / "repo"))
        runs = store.runs().set_index("git_commit")
    assert runs.loc[commits[1], "commit_time"] == "2023-11-14T23:13:20+00:00"
    assert runs.loc[commits[1], "branch"] == "trunk"
    assert runs.loc["f" * 40, ["commit_time", "branch"]].isna().all()  # unknown to git


def test_only_clean_ok_runs_with_a_commit_become_points(tmp_path):
    write_runs(tmp_path / "r", "a" * 40, [0.02, 0.03])
    write_runs(tmp_path / "r", "b" * 40, [0.05], prefix="d", dirty=True)
    store_dir = tmp_path / "r"
    from bench.matrix.store import ResultsDir

    ResultsDir(store_dir).write_run(make_record("failed", status="failed", fingerprint=ENV))
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        store.add(rows_of(store_dir))
        (series,) = build_series(store.runs())
    (point,) = series.points
    assert point.commit == "a" * 40 and point.median == pytest.approx(0.025)
    assert series.left_out == 2


def test_a_bisection_can_record_its_verdicts(tmp_path):
    with HistoryStore.open(str(tmp_path / "h.sqlite"), create=True) as store:
        store.add(rows_of(write_runs(tmp_path / "a", "a" * 40, [0.02])))
        key = store.runs()["series_key"].iloc[0]
        store.record_verdict(key, "a" * 40, "bad", "bisect-1", "+12%")
        with pytest.raises(ValueError, match="verdict='maybe'"):
            store.record_verdict(key, "a" * 40, "maybe", "bisect-1")
        (row,) = store.verdicts().to_dict("records")
    assert (row["series_key"], row["verdict"], row["source"]) == (key, "bad", "bisect-1")


def test_opening_errors_name_the_database(tmp_path):
    with pytest.raises(HistoryError, match="no history there"):
        HistoryStore.open(str(tmp_path / "missing.sqlite"))
    assert not (tmp_path / "missing.sqlite").exists()
    (tmp_path / "junk.sqlite").write_text("not a database at all, just text" * 10)
    with pytest.raises(HistoryError, match=r"junk\.sqlite: file is not a database"):
        HistoryStore.open(str(tmp_path / "junk.sqlite"))
    path = tmp_path / "old.sqlite"
    HistoryStore.open(str(path), create=True).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99'")
    with pytest.raises(HistoryError, match="schema version '99'"):
        HistoryStore.open(str(path))
    with pytest.raises(HistoryError, match="only SQLite files and postgresql"):
        database_url("mysql://u@h/db")


def test_database_urls():
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").database == "x.db"
    url = database_url("rel/h.sqlite")
    assert url.drivername == "sqlite" and url.database.endswith("/rel/h.sqlite")
    assert set(tables.metadata.tables) == {"meta", "environments", "series", "runs", "verdicts"}


def test_a_missing_driver_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(HistoryError, match=r"driver is not installed \(psycopg\)"):
        HistoryStore.open("postgresql://u@/db?host=/nowhere")
