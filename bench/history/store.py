"""Opening, filling and reading a history database: a SQLite file by default, or a
PostgreSQL server (``postgresql://...``) that a fleet of runners shares.

Why SQLAlchemy Core: one schema and one set of queries serve both back ends, and both
have an ``INSERT ... ON CONFLICT DO NOTHING`` it can spell, which makes adding runs
idempotent even when two runners add at once. Every batch is written in one transaction,
so a failure leaves the history as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bench.history import tables
from bench.history.rows import RunRow
from reports.schema import utc_timestamp

DEFAULT_DB = "tapebench-history.sqlite"
# Both dialects' insert() build an Insert with on_conflict_do_nothing().
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class HistoryError(ValueError):
    """The history cannot be opened, read or written; the message is one line."""


def database_url(target: str) -> sa.URL:
    """``target`` as a database URL: a URL as given (``postgresql://`` gets the psycopg 3
    driver), anything else a path to a SQLite file."""
    if "://" not in target:
        return sa.URL.create("sqlite", database=str(Path(target).expanduser().resolve()))
    try:
        url = sa.make_url(target)
    except ArgumentError:
        raise HistoryError(f"--db {target!r} is not a database URL or a file path") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in _INSERTS:
        raise HistoryError(
            f"--db {target!r}: only SQLite files and postgresql:// URLs are supported"
        )
    return url


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second (as the store has always kept it)."""
    return utc_timestamp("seconds")


class HistoryStore:
    """A history database. Use :meth:`open`."""

    def __init__(self, engine: sa.Engine, where: str) -> None:
        self.engine = engine
        self.where = where
        self._insert = _INSERTS[engine.dialect.name]

    @classmethod
    def open(cls, target: str, create: bool = False) -> HistoryStore:
        """Opens the history at ``target`` (a path or URL); ``create`` makes the file and
        the tables where missing, otherwise a missing history is an error.

        Raises:
          HistoryError: naming ``target``, when it cannot be reached, is not a tapebench
            history, or has another schema version.
        """
        url = database_url(target)
        sqlite_file = (url.database or "") if url.get_backend_name() == "sqlite" else None
        where = sqlite_file or url.render_as_string(hide_password=True)
        if sqlite_file is not None and not create and not Path(sqlite_file).is_file():
            raise HistoryError(f"{where}: no history there (add runs with `history add`)")
        try:
            engine = sa.create_engine(url)
        except ImportError as exc:
            raise HistoryError(
                f"{where}: the driver is not installed ({exc.name}); for PostgreSQL: "
                "pip install 'tapebench[postgres]'"
            ) from None
        store = cls(engine, where)
        try:
            with store.engine.begin() as conn:
                store._prepare(conn, create)
        except SQLAlchemyError as exc:
            store.engine.dispose()
            raise HistoryError(f"{where}: {_one_line(exc)}") from None
        return store

    def _prepare(self, conn: sa.Connection, create: bool) -> None:
        if not sa.inspect(conn).has_table("meta"):
            if not create:
                raise HistoryError(f"{self.where}: not a tapebench history (no tables)")
            tables.metadata.create_all(conn)
            conn.execute(
                sa.insert(tables.meta).values(
                    key="schema_version", value=str(tables.SCHEMA_VERSION)
                )
            )
        version = conn.execute(
            sa.select(tables.meta.c.value).where(tables.meta.c.key == "schema_version")
        ).scalar()
        if version != str(tables.SCHEMA_VERSION):
            raise HistoryError(
                f"{self.where}: history schema version {version!r}; this tapebench "
                f"reads version {tables.SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Releases the connections."""
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(
        self, conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: list[str]
    ) -> int:
        """Inserts a row unless one with the same ``key`` is there; 1 if it was new. (The
        row count of ON CONFLICT DO NOTHING is not reliable across drivers; RETURNING is.)"""
        statement = (
            self._insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=key)
            .returning(table.c[key[0]])
        )
        return len(conn.execute(statement).fetchall())

    def add(self, rows: Sequence[RunRow]) -> int:
        """Adds the runs in one transaction; runs already there are left alone. Returns how
        many were new."""
        added = 0
        try:
            with self.engine.begin() as conn:
                for row in rows:
                    self._put(conn, tables.environments, row.environment, ["env_hash"])
                    self._put(conn, tables.series, row.series, ["series_key"])
                    added += self._put(conn, tables.runs, row.run, ["run_id", "record_hash"])
        except SQLAlchemyError as exc:
            raise HistoryError(f"{self.where}: nothing added: {_one_line(exc)}") from None
        return added

    def runs(self) -> pd.DataFrame:
        """Every run, with its series' label, cell and environment."""
        r, s, e = tables.runs, tables.series, tables.environments
        query = (
            sa.select(r, s.c.label, s.c.cell_key, s.c.cell_json, s.c.env_hash, e.c.fields_json)
            .join(s, r.c.series_key == s.c.series_key)
            .join(e, s.c.env_hash == e.c.env_hash)
            .order_by(r.c.id)
        )
        return self._frame(query)

    def _frame(self, query: sa.Select[Any]) -> pd.DataFrame:
        try:
            with self.engine.connect() as conn:
                result = conn.execute(query)
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except SQLAlchemyError as exc:
            raise HistoryError(f"{self.where}: {_one_line(exc)}") from None

    def record_verdict(
        self, series_key: str, commit: str, verdict: str, source: str, detail: str | None = None
    ) -> None:
        """Records what a bisection (``source``: its id) decided about ``commit``."""
        if verdict not in tables.VERDICTS:
            raise ValueError(f"verdict={verdict!r} is not one of {', '.join(tables.VERDICTS)}")
        row = {
            "series_key": series_key,
            "git_commit": commit,
            "verdict": verdict,
            "source": source,
            "detail": detail,
            "recorded_at": now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(tables.verdicts).values(**row))
        except SQLAlchemyError as exc:
            raise HistoryError(f"{self.where}: {_one_line(exc)}") from None

    def verdicts(self) -> pd.DataFrame:
        """Every recorded verdict, oldest first."""
        return self._frame(sa.select(tables.verdicts).order_by(tables.verdicts.c.id))


def environment_fields(runs: pd.DataFrame, env_hash: str) -> dict[str, Any]:
    """The comparable fingerprint fields of one environment of ``runs``."""
    match = runs.loc[runs["env_hash"] == env_hash, "fields_json"]
    return dict(json.loads(match.iloc[0])) if len(match) else {}
