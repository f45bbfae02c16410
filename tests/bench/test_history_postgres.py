"""The same history on a real PostgreSQL server: a throwaway cluster started from
Debian's ``postgresql`` package in a temporary directory, reached over a Unix socket only,
stopped at the end. Skipped, with the reason, where it cannot start -- except in CI
(``CI`` set), which installs the package, so there it is a failure."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from bench.cli import main
from bench.history.store import HistoryError, HistoryStore
from tests.bench.history_factories import git_repo, step_history
from tests.bench.test_history_store import rows_of

pytest.importorskip("psycopg", reason="needs psycopg 3 (pip install 'psycopg[binary]')")
sa = pytest.importorskip("sqlalchemy")


def _cannot_start(reason: str) -> None:
    (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)


def _as_server_user(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: as root, run them as `postgres`.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _server_binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        _cannot_start("no PostgreSQL server binaries (apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _cannot_start("running as root and there is no `postgres` user to run the server")
    return Path(found[-1]).parent


def _run(args: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        if log is not None and log.is_file():
            detail += log.read_text().strip().splitlines()
        _cannot_start(f"PostgreSQL {what} failed: {detail[-1] if detail else done.returncode}")


@pytest.fixture(scope="module")
def server():
    """A running cluster; yields the directory of its socket."""
    binaries = _server_binaries()
    root = Path(tempfile.mkdtemp(prefix="tapebench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, log = root / "data", root / "server.log"
    initdb = [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    options = f"-k {root} -c listen_addresses='' -p 5432 -F"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)]
    try:
        _run([*initdb, "--no-sync", "-E", "UTF8", "--locale=C"], "initdb")
        _run([*pg_ctl, "-w", "-t", "60", "start"], "start", log)
        yield root
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def url(server, request):
    """A fresh, empty database on the server."""
    name = "h_" + request.node.name.lower().replace("[", "_").strip("]")[:50]
    admin = sa.create_engine(
        f"postgresql+psycopg://postgres@/postgres?host={server}&port=5432",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql://postgres@/{name}?host={server}&port=5432"


def test_the_cli_on_postgresql(tmp_path, url, capsys):
    commits = git_repo(tmp_path / "repo", 12)
    dirs = [str(d) for d in step_history(tmp_path / "r", commits, step_at=8)]
    add = ["history", "add", *dirs, "--db", url, "--repo", str(tmp_path / "repo")]
    assert main(add) == 0
    assert main(add) == 0  # again: nothing new
    assert "0 new run(s) of 36" in capsys.readouterr().err
    pytest.importorskip("otava.analysis", reason="needs apache-otava (pip install --no-deps)")
    out = tmp_path / "check.json"
    assert main(["history", "check", "--db", url, "--json", str(out)]) == 1
    (series,) = json.loads(out.read_text())["series"]
    assert [c["commit"] for c in series["change_points"]] == [commits[8]]
    assert series["runs"] == 36


def test_concurrent_adds_of_the_same_runs_store_them_once(tmp_path, url):
    commits = git_repo(tmp_path / "repo", 4)
    rows = [r for d in step_history(tmp_path / "r", commits, step_at=None) for r in rows_of(d)]
    HistoryStore.open(url, create=True).close()
    added: list[int] = []

    def add() -> None:
        with HistoryStore.open(url) as store:
            added.append(store.add(rows))

    threads = [threading.Thread(target=add) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with HistoryStore.open(url) as store:
        assert len(store.runs()) == len(rows) == 12
    assert sum(added) == 12


def test_a_failing_batch_adds_nothing_on_postgresql(tmp_path, url):
    commits = git_repo(tmp_path / "repo", 2)
    rows = [r for d in step_history(tmp_path / "r", commits, step_at=None) for r in rows_of(d)]
    bad = type(rows[0])({**rows[-1].run, "status": None}, rows[-1].series, rows[-1].environment)
    with HistoryStore.open(url, create=True) as store:
        with pytest.raises(HistoryError, match="nothing added"):
            store.add([*rows, bad])
        assert len(store.runs()) == 0


def test_an_unreachable_server_is_one_line(tmp_path, capsys):
    db = f"postgresql://postgres@/none?host={tmp_path}&port=1"
    assert main(["history", "list", "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "connection" in err and "Traceback" not in err
