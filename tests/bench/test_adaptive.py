"""Adaptive sampling across runs: which cells get another run, and the whole loop."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.matrix.adaptive import cell_state, next_round, relative_half_width
from bench.matrix.cells import Cell, RunOptions, Sampling
from bench.matrix.plan import create_plan
from reports.load import load_records
from tests.reports.factories import make_record
from trainloop.config import Variant, Workload
from trainloop.datasets import DataSource

SYNTHETIC = {"synthetic": DataSource("synthetic", "synthetic", "generated")}


def _plan(sampling: Sampling | None, cells: int = 2, repeats: int = 3):
    workload = Workload(model="tiny", dataset="synthetic")
    variants = [Variant("function"), Variant("eager")][:cells]
    options = RunOptions(output_dir=Path("/nonexistent"), sampling=sampling)
    return create_plan([Cell(v, workload) for v in variants], repeats, options, SYNTHETIC)


def _runs(plan, medians_by_cell, wall=5.0, status="ok"):
    out = []
    for slot in plan.slots:
        median = medians_by_cell[slot.cell_index][slot.repeat]
        record = make_record(slot.slot_id, timed=(median,) * 5, status=status, repeat=slot.repeat)
        out.append(dataclasses.replace(record, slot_id=slot.slot_id, wall_seconds=wall))
    return out


def test_a_wide_cell_gets_another_run_and_a_narrow_one_does_not():
    plan = _plan(Sampling(precision=0.02, cell_budget_s=100))
    records = _runs(plan, {0: [0.10, 0.101, 0.0995], 1: [0.10, 0.15, 0.07]})
    (slot,) = next_round(plan, records)
    assert slot.cell_index == 1 and slot.repeat == 3 and slot.slot_id.endswith("-c01-r3")


def test_the_budget_and_max_runs_end_the_sampling():
    wide = {0: [0.10, 0.15, 0.07], 1: [0.10, 0.15, 0.07]}
    spent = _plan(Sampling(precision=0.02, cell_budget_s=18))  # 3 runs of 5 s: no room
    assert next_round(spent, _runs(spent, wide)) == []
    capped = _plan(Sampling(precision=0.02, max_runs=3))
    assert next_round(capped, _runs(capped, wide)) == []


def test_failed_runs_and_plans_without_a_precision_get_nothing_more():
    plan = _plan(Sampling(precision=0.02))
    wide = {0: [0.10, 0.15, 0.07], 1: [0.10, 0.15, 0.07]}
    assert next_round(plan, _runs(plan, wide, status="failed")) == []
    fixed = _plan(None)
    assert next_round(fixed, _runs(fixed, wide)) == []


def test_the_relative_half_width_is_the_run_level_interval():
    assert relative_half_width([[0.1] * 5]) == float("inf")  # one run: no run-level interval
    narrow = relative_half_width([[0.100] * 5, [0.101] * 5, [0.099] * 5])
    wide = relative_half_width([[0.10] * 5, [0.15] * 5, [0.07] * 5])
    assert 0 < narrow < 0.05 < wide
    assert cell_state([make_record(status="timeout")]).ok == 0


def test_a_quick_matrix_samples_until_precise_or_out_of_time(tmp_path):
    """End to end: a loose precision is met within each run and the three planned runs;
    an impossible one runs out of the cell's budget, which is a result (ok, with a
    warning and the precision reached), not a failure."""
    from tests.bench.test_cli import run_cli

    common = [
        "--model",
        "tiny",
        "--dataset",
        "synthetic",
        "--variants",
        "function",
        "--devices",
        "cpu",
        "--batch-size",
        "16",
        "--min-timed-steps",
        "6",
    ]
    loose = run_cli(tmp_path, "run", *common, "--precision", "0.9", "-o", str(tmp_path / "a"))
    assert loose.returncode == 0, loose.stderr
    records = load_records([tmp_path / "a"])
    assert len(records) == 3
    assert all(r.info["sampling"]["stopped_by"] == "precision" for r in records)
    assert all(len(r.steps.timed_seconds) == 6 for r in records)
    tight = run_cli(
        tmp_path,
        "run",
        *common,
        "--precision",
        "0.0001",
        "--run-budget",
        "1",
        "--cell-budget",
        "60",
        "--max-runs",
        "4",
        "-o",
        str(tmp_path / "b"),
    )
    assert tight.returncode == 0, tight.stderr
    records = load_records([tmp_path / "b"])
    assert 3 <= len(records) <= 4 and all(r.status == "ok" for r in records)
    assert all(r.info["sampling"]["stopped_by"] == "budget" for r in records)
    assert "not the ±0.0% asked: the time budget ran out first" in tight.stdout


@pytest.mark.parametrize("value", ["0", "1.5", "x"])
def test_a_bad_precision_is_refused(tmp_path, value):
    from tests.bench.test_cli import run_cli

    result = run_cli(tmp_path, "run", "--precision", value, "-o", str(tmp_path / "o"))
    assert result.returncode == 2 and "--precision" in result.stderr
    assert not (tmp_path / "o").exists()
