"""An invocation's plan (its manifest): cells, options and slots in interleaved order.

The plan is written first (``invocations/<id>.json``): its cells, repeats, data sources
and options, and its slots -- one per (cell, repeat), in the interleaved order A B C, A B C,
... so machine drift hits every cell alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.matrix.cells import Cell, RunOptions
from bench.matrix.store import ResultsDir, new_invocation_id
from trainloop.datasets import DataSource

MANIFEST_KIND = "tapebench.invocation"
MANIFEST_VERSION = 1


class MatrixError(Exception):
    """The matrix cannot start or resume (busy, unknown or broken invocation)."""


def now() -> str:
    """Now, in UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_plan(
    cells: Sequence[Cell],
    repeats: int,
    options: RunOptions,
    sources: dict[str, DataSource],
    argv: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest of a new invocation: cells, options and interleaved slots.

    With ``options.profile=(first, last)``, every cell also gets one profiling run, after
    all timing runs, that traces steps ``[first, last)``.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1")
    profile = options.profile
    invocation = new_invocation_id()
    slots = [
        {"slot_id": f"{invocation}-c{i:02d}-r{r}", "cell_index": i, "repeat": r}
        for r in range(repeats)
        for i in range(len(cells))
    ]
    if profile is not None:
        slots += [
            {
                "slot_id": f"{invocation}-c{i:02d}-p",
                "cell_index": i,
                "repeat": 0,
                "purpose": "profile",
            }
            for i in range(len(cells))
        ]
    return {
        "kind": MANIFEST_KIND,
        "schema_version": MANIFEST_VERSION,
        "invocation_id": invocation,
        "created_at": now(),
        "argv": list(argv),
        "cells": [c.to_dict() for c in cells],
        "repeats": repeats,
        "data_sources": {name: s.to_dict() for name, s in sources.items()},
        "options": {
            "timeout_s": options.timeout_s,
            "intra_op_threads": options.intra_op_threads,
            "inter_op_threads": options.inter_op_threads,
            "measure_peak": options.measure_peak,
            "cluster": list(options.cluster) if options.cluster else None,
            "task_index": options.task_index,
        },
        "slots": slots,
        "profile": None if profile is None else {"first": profile[0], "last": profile[1]},
        "state": "planned",
    }


def read_manifest(results: ResultsDir, invocation_id: str | None) -> dict[str, Any]:
    """The manifest of ``invocation_id``, or of the newest invocation in ``results``."""
    if invocation_id is None:
        paths = sorted(results.invocations.glob("*.json"))
        if not paths:
            raise MatrixError(f"{results.root}: no invocation to resume")
        path = paths[-1]
    else:
        path = results.invocations / f"{invocation_id}.json"
        if not path.is_file():
            raise MatrixError(f"{results.root}: no invocation {invocation_id}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MatrixError(f"{path}: unreadable invocation manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise MatrixError(f"{path}: not a tapebench invocation manifest")
    if manifest.get("schema_version") != MANIFEST_VERSION:
        raise MatrixError(
            f"{path}: manifest version {manifest.get('schema_version')!r} "
            f"is not supported (expected {MANIFEST_VERSION})"
        )
    return manifest


def trace_run_name(cell: dict[str, Any], invocation_id: str) -> str:
    """The directory name of a cell's trace: readable, unique per invocation, no slashes."""
    label = (
        f"{cell['mode']}-{cell['precision']}-{cell['device']}_{cell['model']}_"
        f"{cell['dataset']}_b{cell['batch_size']}"
    )
    return f"{label}_{invocation_id.rsplit('-', 1)[-1]}"
