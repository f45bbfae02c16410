"""The JSON types of an invocation manifest (``invocations/<id>.json``), checked before
either of its readers -- ``run --resume`` (``bench.matrix.plan``) and the shard merging
of ``report`` and ``history add`` (:mod:`reports.shards`) -- uses a field, so a damaged
manifest is one line naming the field, not a traceback. Standard library only.
"""

from __future__ import annotations

from typing import Any

from reports.schema import CELL_TYPES
from reports.typecheck import check_fields, expect_list, expect_object, required

MANIFEST_TYPES: dict[str, Any] = {
    "invocation_id": str,
    "created_at": str,
    "argv": tuple[str, ...],
    "repeats": int,
    "data_sources": dict,
    "state": str,
    "updated_at": str | None,
    "peaks": dict | None,
    "ab": dict | None,
}
OPTION_TYPES: dict[str, Any] = {
    "timeout_s": float | None,
    "intra_op_threads": int,
    "inter_op_threads": int,
    "measure_peak": bool,
    "cluster": tuple[str, ...] | None,
    "task_index": int,
    "fork_workers": bool,
}
SLOT_TYPES: dict[str, Any] = {"slot_id": str, "cell_index": int, "repeat": int, "purpose": str}
PROFILE_TYPES: dict[str, Any] = {"first": int, "last": int}
SHARD_TYPES: dict[str, Any] = {"index": int, "count": int, "plan": str}


def _objects(doc: dict[str, Any], name: str, types: dict[str, Any]) -> None:
    for i, item in enumerate(expect_list(required(doc, name, ""), name)):
        check_fields(expect_object(item, f"{name}[{i}]"), types, f"{name}[{i}]")


def _optional_object(doc: dict[str, Any], name: str, types: dict[str, Any]) -> None:
    """``doc[name]`` is absent, null, or an object holding every field of ``types``."""
    if doc.get(name) is not None:
        value = expect_object(doc[name], name)
        for field in types:
            required(value, field, name)
        check_fields(value, types, name)


def check_manifest(doc: dict[str, Any]) -> None:
    """Checks the type of every field of a manifest its readers use.

    Raises:
      reports.typecheck.FieldError: naming the field, e.g. ``cells[0].batch_size``.
    """
    check_fields(doc, MANIFEST_TYPES, "")
    for name in ("invocation_id", "repeats", "options"):
        required(doc, name, "")
    _objects(doc, "cells", CELL_TYPES)
    _objects(doc, "slots", SLOT_TYPES)
    check_fields(expect_object(doc["options"], "options"), OPTION_TYPES, "options")
    for name, source in expect_object(doc.get("data_sources", {}), "data_sources").items():
        expect_object(source, f"data_sources.{name}")
    _optional_object(doc, "profile", PROFILE_TYPES)
    _optional_object(doc, "shard", SHARD_TYPES)
