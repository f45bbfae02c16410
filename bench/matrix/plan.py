"""An invocation's plan (its manifest): cells, options and slots in interleaved order.

The plan is written first (``invocations/<id>.json``): its cells, repeats, data sources
and options, and its slots -- one per (cell, repeat), in the interleaved order A B C, A B C,
... so machine drift hits every cell alike. In memory it is a frozen :class:`Plan`; on disk
the manifest document of :data:`MANIFEST_VERSION`, which plans written by earlier versions
(without the fields added since) also satisfy. A shard's plan (``run --shard K/N``) holds
its slice of the slots only, and its ``shard`` names the slice and the whole matrix's plan
id (:mod:`reports.shards`), so resuming a shard resumes that shard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.matrix.cells import Cell, RunOptions, Sampling
from bench.matrix.store import ResultsDir, new_invocation_id
from reports.manifest import check_manifest
from reports.schema import PURPOSES, utc_timestamp
from reports.shards import MANIFEST_KIND, Shard, plan_id
from trainloop.datasets import DataSource

MANIFEST_VERSION = 1
STATES = ("planned", "running", "interrupted", "complete")


class MatrixError(Exception):
    """The matrix cannot start or resume (busy, unknown or broken invocation)."""


@dataclass(frozen=True)
class Slot:
    """One place in a plan: a cell's repeat (or its profiling run), named ``slot_id``."""

    slot_id: str
    cell_index: int
    repeat: int
    purpose: str = "timing"

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"slot purpose={self.purpose!r} is not one of {', '.join(PURPOSES)}")

    def to_dict(self) -> dict[str, Any]:
        """The manifest's form (``purpose`` only when not ``timing``, as first written)."""
        doc = dataclasses.asdict(self)
        return doc if self.purpose != "timing" else {k: v for k, v in doc.items() if k != "purpose"}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Slot:
        """The inverse of :meth:`to_dict`."""
        return cls(**doc)


@dataclass(frozen=True)
class ABSide:
    """Which side of a same-job A/B an invocation is, and the baseline it measured."""

    side: str
    baseline_rev: str
    baseline_commit: str


@dataclass(frozen=True)
class Plan:
    """An invocation's plan; ``options.output_dir`` is where its results go."""

    invocation_id: str
    cells: tuple[Cell, ...]
    repeats: int
    data_sources: Mapping[str, DataSource]
    options: RunOptions
    slots: tuple[Slot, ...]
    created_at: str
    argv: tuple[str, ...] = ()
    state: str = "planned"
    updated_at: str | None = None
    peaks: Mapping[str, float] = field(default_factory=dict)
    ab: ABSide | None = None
    shard: Shard | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state={self.state!r} is not one of {', '.join(STATES)}")
        if self.repeats < 1:
            raise ValueError(f"repeats={self.repeats!r} must be an integer >= 1")
        bad = [s.slot_id for s in self.slots if not 0 <= s.cell_index < len(self.cells)]
        if bad:
            raise ValueError(f"slot(s) {', '.join(bad)} name no cell of the plan")
        missing = {c.workload.dataset for c in self.cells} - set(self.data_sources)
        if missing:
            raise ValueError(f"no data source for dataset(s) {', '.join(sorted(missing))}")

    def cell_of(self, slot: Slot) -> Cell:
        """The cell ``slot`` runs."""
        return self.cells[slot.cell_index]

    def with_state(self, state: str, **changes: Any) -> Plan:
        """A copy in ``state``, stamped now, with ``changes`` applied."""
        return dataclasses.replace(self, state=state, updated_at=utc_timestamp(), **changes)

    def to_dict(self) -> dict[str, Any]:
        """The manifest document."""
        o, profile = self.options, self.options.profile
        doc: dict[str, Any] = {
            "kind": MANIFEST_KIND,
            "schema_version": MANIFEST_VERSION,
            "invocation_id": self.invocation_id,
            "created_at": self.created_at,
            "argv": list(self.argv),
            "cells": [c.to_dict() for c in self.cells],
            "repeats": self.repeats,
            "data_sources": {name: s.to_dict() for name, s in self.data_sources.items()},
            "options": {
                "timeout_s": o.timeout_s,
                "intra_op_threads": o.intra_op_threads,
                "inter_op_threads": o.inter_op_threads,
                "measure_peak": o.measure_peak,
                "cluster": list(o.cluster) if o.cluster else None,
                "task_index": o.task_index,
                "fork_workers": o.fork_workers,
                "sampling": dataclasses.asdict(o.sampling) if o.sampling else None,
                "count_flops": o.count_flops,
            },
            "slots": [s.to_dict() for s in self.slots],
            "profile": None if profile is None else {"first": profile[0], "last": profile[1]},
            "state": self.state,
        }
        optional = {"updated_at": self.updated_at, "peaks": dict(self.peaks) or None}
        doc.update({k: v for k, v in optional.items() if v is not None})
        if self.ab is not None:
            doc["ab"] = dataclasses.asdict(self.ab)
        if self.shard is not None:
            doc["shard"] = self.shard.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], output_dir: Path) -> Plan:
        """Parses a manifest of :data:`MANIFEST_VERSION` whose results are in
        ``output_dir``; fields added since the first manifests take their defaults.

        Raises:
          ValueError, KeyError, TypeError: the document is malformed.
        """
        o, profile = doc["options"], doc.get("profile")
        options = RunOptions(
            output_dir=output_dir,
            intra_op_threads=o["intra_op_threads"],
            inter_op_threads=o["inter_op_threads"],
            timeout_s=o["timeout_s"],
            profile=(profile["first"], profile["last"]) if profile else None,
            measure_peak=o.get("measure_peak", True),
            cluster=tuple(o["cluster"]) if o.get("cluster") else None,
            task_index=o.get("task_index", 0),
            fork_workers=o.get("fork_workers", True),
            sampling=Sampling(**o["sampling"]) if o.get("sampling") else None,
            count_flops=o.get("count_flops", True),
        )
        sources = {k: DataSource.from_dict(v) for k, v in doc["data_sources"].items()}
        return cls(
            invocation_id=doc["invocation_id"],
            cells=tuple(Cell.from_dict(c) for c in doc["cells"]),
            repeats=doc["repeats"],
            data_sources=sources,
            options=options,
            slots=tuple(Slot.from_dict(s) for s in doc["slots"]),
            created_at=doc["created_at"],
            argv=tuple(doc.get("argv", ())),
            state=doc.get("state", "planned"),
            updated_at=doc.get("updated_at"),
            peaks=dict(doc.get("peaks") or {}),
            ab=ABSide(**doc["ab"]) if doc.get("ab") else None,
            shard=Shard.from_dict(doc["shard"]) if doc.get("shard") else None,
        )


def create_plan(
    cells: Sequence[Cell],
    repeats: int,
    options: RunOptions,
    sources: Mapping[str, DataSource],
    argv: Sequence[str] = (),
    ab: ABSide | None = None,
    shard: Shard | None = None,
) -> Plan:
    """The plan of a new invocation: cells, options and interleaved slots.

    With ``options.profile=(first, last)``, every cell also gets one profiling run, after
    all timing runs, that traces steps ``[first, last)``. With ``shard=Shard(k, n)`` the
    plan holds the k-th of n slices of those slots (:func:`shard_slots`) and its shard
    names the whole matrix's plan id.

    Raises:
      ValueError: more shards than slots (a shard would have nothing to run).
    """
    invocation = new_invocation_id(f"s{shard.index}of{shard.count}" if shard else "")
    slots = [
        Slot(f"{invocation}-c{i:02d}-r{r}", i, r) for r in range(repeats) for i in range(len(cells))
    ]
    if options.profile is not None:
        slots += [Slot(f"{invocation}-c{i:02d}-p", i, 0, "profile") for i in range(len(cells))]
    used = {c.workload.dataset for c in cells}
    plan = Plan(
        invocation_id=invocation,
        cells=tuple(cells),
        repeats=repeats,
        data_sources={name: s for name, s in sources.items() if name in used},
        options=options,
        slots=tuple(slots),
        created_at=utc_timestamp(),
        argv=tuple(argv),
        ab=ab,
    )
    return plan if shard is None else _slice(plan, shard)


def _slice(plan: Plan, shard: Shard) -> Plan:
    if shard.count > len(plan.slots):
        raise ValueError(
            f"shard {shard}: the plan has {len(plan.slots)} run(s) ({len(plan.cells)} cell(s) "
            f"x {plan.repeats} repeat(s){', plus profiling' if plan.options.profile else ''}), "
            f"too few for {shard.count} shards; use at most {len(plan.slots)}"
        )
    named = Shard(shard.index, shard.count, plan_id(plan.to_dict(), shard.count))
    return dataclasses.replace(plan, slots=shard_slots(plan.slots, shard), shard=named)


def shard_slots(slots: Sequence[Slot], shard: Shard) -> tuple[Slot, ...]:
    """The slots ``shard`` runs, in plan order (so still interleaved).

    The slots are dealt to the shards in turn, cell by cell -- each cell's repeats, then
    the profiling runs -- so shard sizes differ by at most one, and a cell's repeats spread
    over as many shards as they can: with at least as many repeats as shards, every shard
    runs every cell, and a difference between machines cannot pass for one between cells.
    (Dealing in plan order would put all of a cell's repeats on one shard whenever the
    number of cells is a multiple of the number of shards.)
    """
    dealt = sorted(slots, key=lambda s: (s.purpose != "timing", s.cell_index, s.repeat))
    mine = {s.slot_id for s in dealt[shard.index - 1 :: shard.count]}
    return tuple(s for s in slots if s.slot_id in mine)


def write_plan(results: ResultsDir, plan: Plan) -> None:
    """Stores ``plan`` as its invocation's manifest."""
    results.write_invocation(plan.invocation_id, plan.to_dict())


def read_plan(results: ResultsDir, invocation_id: str | None) -> Plan:
    """The plan of ``invocation_id``, or of the newest invocation in ``results``.

    Raises:
      MatrixError: naming the manifest, when it is missing, unreadable or malformed.
    """
    if invocation_id is None:
        paths = sorted(results.invocations.glob("*.json"))
        if not paths:
            raise MatrixError(f"{results.root}: no invocation to resume")
        path = paths[-1]
    else:
        path = results.manifest_path(invocation_id)
        if not path.is_file():
            raise MatrixError(f"{results.root}: no invocation {invocation_id}")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MatrixError(f"{path}: unreadable invocation manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != MANIFEST_KIND:
        raise MatrixError(f"{path}: not a tapebench invocation manifest")
    if doc.get("schema_version") != MANIFEST_VERSION:
        raise MatrixError(
            f"{path}: manifest version {doc.get('schema_version')!r} "
            f"is not supported (expected {MANIFEST_VERSION})"
        )
    try:
        check_manifest(doc)  # every field's type, named
        return Plan.from_dict(doc, results.root)
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MatrixError(f"{path}: {detail}") from None


def trace_run_name(cell: Cell, invocation_id: str) -> str:
    """The directory name of a cell's trace: readable, unique per cell and invocation, no
    slashes. Parts of the variant at their plain values are left out; run settings, too
    long to spell, appear as a digest of them."""
    v, w = cell.variant, cell.workload
    label = f"{v.mode}-{v.precision}-{v.device}_{w.model}_{w.dataset}_b{w.batch_size}"
    extra = [
        f"x{v.steps_per_call}" if v.steps_per_call != 1 else "",
        v.input_mode if v.input_mode != "tfdata" else "",
        f"{v.strategy}{v.replicas}" if v.strategy != "none" else "",
        f"s{digest(cell.settings.to_dict())}" if not cell.settings.is_default else "",
    ]
    label += "".join(f"_{part}" for part in extra if part)
    return f"{label}_{invocation_id.rsplit('-', 1)[-1]}"


def digest(value: Any) -> str:
    """A short hex digest of ``value``'s canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]
