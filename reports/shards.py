"""Shards: one plan's slots spread over several machines, and checking that they add up.

``tapebench run --shard K/N`` runs the K-th of N slices of a plan's slots. Each shard is its
own invocation (its own id, so run ids never collide when results of several machines are
copied into one folder); its manifest says which slice it is and names the plan by an id
computed from what every shard of the plan shares -- cells, repeats, the options that
change what the runs measure, and N -- never from time, host or chance. The same command
line on N machines therefore gives N manifests of one plan.

Readers (``report``, ``history add``) group shard manifests by plan id, refuse manifests
that claim one plan but disagree about it, and name the shards that are missing or present
more than once. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.layout import ResultsLayout
from reports.manifest import check_manifest
from reports.schema import ResultFileError

MANIFEST_KIND = "tapebench.invocation"
# The options that change what a plan's runs measure. The others (where results and data
# are, which task of a cluster this machine is) may differ from machine to machine.
SHARED_OPTIONS = ("timeout_s", "intra_op_threads", "inter_op_threads", "measure_peak", "cluster")
MISSING, DUPLICATE = "missing-shard", "duplicate-shard"  # the kinds of ShardProblem
_SHARD = re.compile(r"(\d+)/(\d+)")
_PLAN_ID = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 1) of ``count`` slices of the plan ``plan_id`` (empty until
    the plan is made)."""

    index: int
    count: int
    plan_id: str = ""

    def __post_init__(self) -> None:
        numbers = (self.index, self.count)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in numbers):
            raise TypeError(f"shard {self.index!r}/{self.count!r} must be two integers")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self}: expected K/N with 1 <= K <= N, e.g. 2/3")
        if self.plan_id and not _PLAN_ID.fullmatch(self.plan_id):
            raise ValueError(f"plan id {self.plan_id!r} is not 12 hexadecimal digits")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N``, e.g. ``2/3``.

        Raises:
          ValueError: naming ``text``, when it is not two integers with 1 <= K <= N.
        """
        match = _SHARD.fullmatch(text.strip())
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            raise ValueError(f"{text!r}: expected K/N with 1 <= K <= N, e.g. 2/3")
        return cls(int(match[1]), int(match[2]))

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``shard`` field."""
        return {"index": self.index, "count": self.count, "plan": self.plan_id}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Shard:
        """The inverse of :meth:`to_dict`."""
        return cls(doc["index"], doc["count"], doc["plan"])


def shared_part(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What every shard of one plan has in common: cells, repeats, profile window and the
    :data:`SHARED_OPTIONS` (not ids, times, paths, command lines or slots)."""
    options = manifest["options"]
    return {
        "cells": manifest["cells"],
        "repeats": manifest["repeats"],
        "profile": manifest.get("profile"),
        "options": {k: options.get(k) for k in SHARED_OPTIONS},
    }


def plan_id(manifest: Mapping[str, Any], count: int) -> str:
    """The id of the plan ``manifest`` describes, cut into ``count`` shards: a digest of
    its :func:`shared_part` and ``count``."""
    text = json.dumps([shared_part(manifest), count], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ShardManifest:
    """A shard's manifest as readers see it."""

    path: Path
    invocation_id: str
    shard: Shard
    shared: Mapping[str, Any]  # :func:`shared_part` of the manifest


def _read_manifest(path: Path) -> ShardManifest | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: unreadable invocation manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != MANIFEST_KIND:
        raise ResultFileError(f"{path}: not a tapebench invocation manifest")
    if not doc.get("shard"):
        return None
    try:
        check_manifest(doc)
        return ShardManifest(
            path, doc["invocation_id"], Shard.from_dict(doc["shard"]), shared_part(doc)
        )
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ResultFileError(f"{path}: {detail}") from None


def read_shard_manifests(roots: Iterable[Path]) -> list[ShardManifest]:
    """The manifests of sharded invocations in the results directories ``roots``.

    Raises:
      ResultFileError: naming a manifest that is unreadable or malformed.
    """
    found = []
    for root in roots:
        folder = ResultsLayout(root).invocations
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            manifest = None if path.name.startswith(".") else _read_manifest(path)
            if manifest is not None:
                found.append(manifest)
    return found


@dataclass(frozen=True)
class ShardProblem:
    """A shard of a plan that is missing, or present in several invocations."""

    kind: str  # MISSING or DUPLICATE
    shard: Shard
    invocations: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One line for people."""
        name = f"shard {self.shard} of plan {self.shard.plan_id}"
        if self.kind == MISSING:
            return f"{name} is missing: none of its results was read"
        return (
            f"{name} was run by {len(self.invocations)} invocations "
            f"({', '.join(self.invocations)}); the runs of all of them are pooled"
        )


def _check_agreement(manifests: Sequence[ShardManifest]) -> None:
    first = manifests[0]
    for other in manifests[1:]:
        if other.shared != first.shared or other.shard.count != first.shard.count:
            raise ResultFileError(
                f"{other.path} and {first.path} both claim plan {first.shard.plan_id} but "
                "describe different matrices (cells, repeats, options or shard count)"
            )


def check_shards(
    manifests: Iterable[ShardManifest], invocations: Collection[str] | None = None
) -> list[ShardProblem]:
    """The missing and repeated shards of every plan among ``manifests`` (those of
    ``invocations`` only, when given).

    Raises:
      ResultFileError: two manifests claim one plan id but describe different plans.
    """
    plans: dict[str, list[ShardManifest]] = defaultdict(list)
    for m in manifests:
        if invocations is None or m.invocation_id in invocations:
            plans[m.shard.plan_id].append(m)
    problems = []
    for pid, group in sorted(plans.items()):
        _check_agreement(group)
        count = group[0].shard.count
        by_index: dict[int, list[str]] = defaultdict(list)
        for m in group:
            by_index[m.shard.index].append(m.invocation_id)
        for index in range(1, count + 1):
            shard, ids = Shard(index, count, pid), tuple(sorted(by_index.get(index, ())))
            if not ids:
                problems.append(ShardProblem(MISSING, shard))
            elif len(ids) > 1:
                problems.append(ShardProblem(DUPLICATE, shard, ids))
    return problems
