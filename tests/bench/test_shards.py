"""Shards of a plan: disjoint, covering, balanced, spread, named alike on every machine,
and resumed one shard at a time."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from bench.matrix import execute
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import resume_matrix, run_plan
from bench.matrix.plan import Plan, create_plan, read_plan, write_plan
from bench.matrix.store import ResultsDir
from reports.load import load_records
from reports.shards import Shard
from tests.bench.test_plan import SYNTHETIC, TINY
from trainloop.config import Variant

MODES = ("eager", "function", "xla", "fit")


def cells_of(n: int, workload=TINY) -> list[Cell]:
    return [Cell(Variant.parse(m), workload) for m in MODES[:n]]


def shards_of(cells, repeats, n, options=None) -> list[Plan]:
    options = options or RunOptions(output_dir=Path("out"))
    sources = {"synthetic": SYNTHETIC}
    return [
        create_plan(cells, repeats, options, sources, shard=Shard(k, n)) for k in range(1, n + 1)
    ]


def place(slot) -> tuple[str, int, int]:
    """Where a slot is in the matrix, whatever its invocation's id."""
    return slot.purpose, slot.cell_index, slot.repeat


@pytest.mark.parametrize(
    "n_cells, repeats, n, profile",
    [(2, 2, 2, False), (3, 2, 2, True), (4, 3, 2, False), (2, 4, 4, True), (3, 1, 3, False),
     (2, 2, 4, False), (4, 6, 3, False), (1, 5, 2, True)],
)  # fmt: skip
def test_shards_cover_the_plan_once_balanced_spread_and_interleaved(n_cells, repeats, n, profile):
    options = RunOptions(output_dir=Path("out"), profile=(1, 2) if profile else None)
    cells = cells_of(n_cells)
    whole = create_plan(cells, repeats, options, {"synthetic": SYNTHETIC})
    shards = shards_of(cells, repeats, n, options)
    order = [place(s) for s in whole.slots]
    places = [[place(s) for s in shard.slots] for shard in shards]
    assert sorted(p for ps in places for p in ps) == sorted(order)  # disjoint, and the union
    for ps in places:
        assert ps == [p for p in order if p in ps]  # the plan's interleaved order
    assert max(map(len, places)) - min(map(len, places)) <= 1
    for cell in range(n_cells):
        per_shard = [sum(p[:2] == ("timing", cell) for p in ps) for ps in places]
        assert sum(c > 0 for c in per_shard) == min(repeats, n)  # repeats spread out
        assert max(per_shard) - min(per_shard) <= 1
    ids = [s.slot_id for shard in shards for s in shard.slots]
    assert len(set(ids)) == len(ids)  # run ids never collide when shards are merged
    assert {shard.shard.plan_id for shard in shards} == {shards[0].shard.plan_id}
    assert [shard.shard.index for shard in shards] == list(range(1, n + 1))


def test_every_shard_runs_every_cell_when_repeats_are_a_multiple_of_shards():
    # 4 cells on 2 shards: dealing slots in plan order (slot i to shard i mod 2) would give
    # each cell's repeats to one shard, so each machine would measure half the cells.
    for shard in shards_of(cells_of(4), 4, 2):
        assert Counter(s.cell_index for s in shard.slots) == {0: 2, 1: 2, 2: 2, 3: 2}


def test_the_plan_id_depends_on_the_matrix_not_on_the_machine(tmp_path):
    cells = cells_of(2)
    here = shards_of(cells, 2, 2, RunOptions(output_dir=tmp_path / "a"))[0]
    there = create_plan(
        cells,
        2,
        RunOptions(output_dir=tmp_path / "b", data_dir=tmp_path),
        {"synthetic": dataclasses.replace(SYNTHETIC, origin="elsewhere")},
        argv=["tapebench", "run", "--shard", "2/2"],
        shard=Shard(2, 2),
    )
    assert here.invocation_id != there.invocation_id
    assert here.shard.plan_id == there.shard.plan_id
    others = [
        shards_of(cells, 3, 2)[0],  # repeats
        shards_of(cells[:1], 2, 2)[0],  # cells
        shards_of(cells, 2, 3)[0],  # shard count
        shards_of(cells, 2, 2, RunOptions(output_dir=tmp_path, timeout_s=9.0))[0],
        shards_of(cells, 2, 2, RunOptions(output_dir=tmp_path, intra_op_threads=1))[0],
        shards_of(cells, 2, 2, RunOptions(output_dir=tmp_path, profile=(1, 2)))[0],
        shards_of(cells_of(2, TINY.replace(batch_size=8)), 2, 2)[0],
    ]
    assert len({here.shard.plan_id, *(p.shard.plan_id for p in others)}) == len(others) + 1


def test_a_sharded_plan_round_trips_through_its_manifest(tmp_path):
    (plan, _) = shards_of(cells_of(2), 2, 2, RunOptions(output_dir=tmp_path))
    results = ResultsDir(tmp_path).create()
    write_plan(results, plan)
    assert read_plan(results, plan.invocation_id) == plan
    doc = json.loads(results.manifest_path(plan.invocation_id).read_text())
    assert doc["shard"] == {"index": 1, "count": 2, "plan": plan.shard.plan_id}
    assert "-s1of2-" in plan.invocation_id


@pytest.mark.parametrize("n", [5, 9])
def test_more_shards_than_runs_is_refused(n):
    with pytest.raises(ValueError, match=rf"shard 1/{n}: the plan has 4 run\(s\).*at most 4"):
        shards_of(cells_of(2), 2, n)


def test_resuming_a_shard_runs_its_own_slots_only(tmp_path, monkeypatch):
    # Variants this machine never runs are recorded as skipped without a worker: the
    # shard logic is exercised without TensorFlow.
    monkeypatch.setattr(execute, "ensure_peaks", lambda jobs, results: {})
    cells = [Cell(Variant.parse(t), TINY) for t in ("eager:2", "xla:2@cpu", "fit+numpy")]
    options = RunOptions(output_dir=tmp_path / "out")
    first, second = shards_of(cells, 2, 2, options)
    done = run_plan(first)
    assert done.pending == 0 and done.executed == len(first.slots) == 3
    results = ResultsDir(options.output_dir)
    write_plan(results, second)  # planned, then stopped before its first run
    resumed = resume_matrix(options.output_dir)  # the newest invocation: the second shard
    assert resumed.invocation_id == second.invocation_id
    assert resumed.executed == len(second.slots) == 3 and resumed.pending == 0
    records = load_records([options.output_dir])
    by_invocation = Counter(r.invocation_id for r in records)
    assert by_invocation == {first.invocation_id: 3, second.invocation_id: 3}
    places = {(r.cell["mode"], r.repeat) for r in records}
    assert len(places) == 6 and all(r.status == "skipped" for r in records)
    stored = read_plan(results, second.invocation_id)
    assert stored.shard == second.shard and stored.state == "complete"
