"""The history's schema, one definition for SQLite and PostgreSQL (SQLAlchemy Core).

* ``environments``: the comparable half of a fingerprint (``reports.schema.
  COMPARABLE_FIELDS``), keyed by its hash; a change of any of them is a new environment.
* ``series``: a cell on an environment. Runs of one series are comparable; a new
  environment starts a new series instead of mixing machines.
* ``runs``: one row per run: the summary figures, status, commit, commit time, branch and
  where it was read from. Unique by (run id, content hash), so adding the same runs again
  changes nothing, and shards of one matrix run on several machines (one invocation id,
  different run ids) merge by simply adding each.
* ``verdicts``: what a bisection (or a person) decided about a commit of a series.
* ``meta``: the schema version.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 1
KEY = 32  # length of the hex digests used as keys

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("env_hash", sa.String(KEY), primary_key=True),
    sa.Column("fields_json", sa.Text, nullable=False),
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("series_key", sa.String(KEY), primary_key=True),
    sa.Column("cell_key", sa.String(KEY), nullable=False),
    sa.Column("env_hash", sa.ForeignKey("environments.env_hash"), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("cell_json", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(200), nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("invocation_id", sa.String(200), nullable=False, index=True),
    sa.Column("slot_id", sa.String(200)),
    sa.Column("repeat", sa.Integer, nullable=False),
    sa.Column("series_key", sa.ForeignKey("series.series_key"), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("median_step_s", sa.Float),
    sa.Column("images_per_s", sa.Float),
    sa.Column("timed_steps", sa.Integer, nullable=False),
    sa.Column("test_accuracy", sa.Float),
    sa.Column("git_commit", sa.String(64), index=True),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("commit_time", sa.String(32)),  # ISO 8601 in UTC: sorts as text
    sa.Column("branch", sa.String(200)),
    sa.Column("hostname", sa.String(200)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("added_at", sa.String(32), nullable=False),
    sa.UniqueConstraint("run_id", "record_hash", name="runs_unique_content"),
)

verdicts = sa.Table(
    "verdicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_key", sa.ForeignKey("series.series_key"), nullable=False, index=True),
    sa.Column("git_commit", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),  # e.g. the bisection's id
    sa.Column("detail", sa.Text),
    sa.Column("recorded_at", sa.String(32), nullable=False),
)

VERDICTS = ("good", "bad", "skip")
