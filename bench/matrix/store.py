"""The results directory: every file written atomically, nothing shared between invocations.

The layout (which file lives where) is :mod:`reports.layout`'s; this module writes it.
Run ids start with the invocation id, and each invocation writes only files named after
its own id, so two invocations pointed at one directory never touch each other's files.
A reader never sees a half-written file: each is written to a temporary name in the same
directory, flushed to disk and renamed over its final name.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from reports.layout import ResultsLayout
from reports.schema import RunRecord


def write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that ``path`` is either absent, old or complete, with
    the permissions a plain write would give it (an existing file's, else 0666 less the
    umask; the temporary file's own 0600 would hide reports from everyone else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # reading the umask means setting it; put it back at once
        os.umask(umask)
        return 0o666 & ~umask


def new_invocation_id(tag: str = "") -> str:
    """A sortable, collision-resistant id: UTC time, then ``tag`` (a shard's ``s2of3``:
    shards of one plan started in the same second can never share an id), then 24 random
    bits."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return "-".join(p for p in (stamp, tag, secrets.token_hex(3)) if p)


class ResultsDir(ResultsLayout):
    """One results directory, with atomic writers for its files."""

    def create(self) -> ResultsDir:
        """Makes the directories; returns self."""
        for d in (self.runs, self.logs, self.invocations):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def write_run(self, record: RunRecord) -> Path:
        """Stores ``record``; returns its path."""
        path = self.run_path(record.run_id)
        write_atomic(path, json.dumps(record.to_dict(), indent=1).encode())
        return path

    def write_invocation(self, invocation_id: str, manifest: dict[str, Any]) -> Path:
        """Stores the manifest of an invocation."""
        path = self.manifest_path(invocation_id)
        write_atomic(path, json.dumps(manifest, indent=1).encode())
        return path

    def write_table(self, invocation_id: str, text: str) -> Path:
        """Stores the table an invocation printed."""
        path = self.table_path(invocation_id)
        write_atomic(path, text.encode())
        return path
