"""The sequential A/B's scheduler on synthetic runs: which pairs come next, and when it
stops -- early on a clear difference or a clear no change, at the budget otherwise, at
once on a broken candidate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from bench.gate.ab import _sequential, ab_verdicts
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.plan import Plan, create_plan
from reports.regression import GatePolicy
from reports.sequential import LookSchedule
from tests.reports.factories import make_record
from trainloop.config import Variant, Workload
from trainloop.datasets import DataSource

SCHEDULE = LookSchedule.every(2, 4, 12)
POLICY = GatePolicy(threshold=0.10)


def _plans() -> list[Plan]:
    cell = Cell(Variant("function"), Workload(model="tiny", dataset="synthetic"))
    sources = {"synthetic": DataSource("synthetic", "synthetic", "generated")}
    return [
        create_plan([cell], 1, RunOptions(output_dir=Path(f"/x/{side}")), sources)
        for side in ("baseline", "candidate")
    ]


def _simulate(ratio: float, sd: float, seed: int = 0, broken_at: int | None = None):
    """Drives the scheduler to its end, as the job loop does, with runs whose medians are
    log-normal around 40 ms (baseline) and ``ratio`` times that (candidate)."""
    rng = np.random.default_rng(seed)
    plans, records = _plans(), [[], []]
    more = _sequential(SCHEDULE, POLICY)
    order = [(0, plans[0].slots[0]), (1, plans[1].slots[0])]
    while order:
        for k, slot in order:
            if slot not in plans[k].slots:
                plans[k] = dataclasses.replace(plans[k], slots=(*plans[k].slots, slot))
            median = 0.040 * (ratio if k else 1.0) * float(np.exp(sd * rng.standard_normal()))
            status = "failed" if (k == 1 and slot.repeat == broken_at) else "ok"
            record = make_record(slot.slot_id, timed=(median,) * 9, status=status)
            records[k].append(dataclasses.replace(record, slot_id=slot.slot_id))
        order = more(plans, records)
    (verdict,) = ab_verdicts(plans, records, SCHEDULE, POLICY).values()
    return verdict, len(records[1])


def test_a_clear_slowdown_stops_at_the_first_look():
    verdict, pairs = _simulate(1.5, 0.02)
    assert verdict.verdict == "regression" and pairs == 4


def test_a_clear_no_change_stops_early():
    verdict, pairs = _simulate(1.0, 0.01)
    assert verdict.verdict == "no change" and pairs == 4


def test_an_undecidable_difference_runs_to_the_budget():
    verdict, pairs = _simulate(1.05, 0.15, seed=3)
    assert verdict.verdict == "inconclusive" and pairs == SCHEDULE.max_pairs
    assert "budget ran out" in verdict.reason


def test_a_broken_candidate_ends_the_cell_at_once():
    verdict, pairs = _simulate(1.0, 0.01, broken_at=1)
    assert verdict.verdict == "candidate failed" and pairs == 2
    assert verdict.candidate_status == "failed"
    assert verdict.reason.startswith("candidate run failed") and "log: logs/" in verdict.reason


def test_pairs_alternate_their_order():
    plans, records = _plans(), [[], []]
    for k in (0, 1):
        record = make_record(plans[k].slots[0].slot_id, timed=(0.04,) * 9)
        records[k].append(dataclasses.replace(record, slot_id=plans[k].slots[0].slot_id))
    order = _sequential(SCHEDULE, POLICY)(plans, records)
    assert [k for k, _ in order] == [1, 0]  # pair 1 runs B A
    assert [s.repeat for _, s in order] == [1, 1]


def test_a_duet_runs_each_pair_side_by_side_on_cpus_of_their_own(tmp_path):
    import os

    import pytest

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("a duet needs two CPUs")
    from reports.load import load_records
    from tests.bench.test_cli import run_cli

    out = tmp_path / "duet"
    result = run_cli(
        tmp_path,
        "ab",
        "--baseline",
        "HEAD",
        "--duet",
        "--runs",
        "3",
        "--model",
        "tiny",
        "--steps-per-epoch",
        "12",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    base = sorted(load_records([out / "baseline"]), key=lambda r: r.repeat)
    cand = sorted(load_records([out / "candidate"]), key=lambda r: r.repeat)
    for a, b in zip(base, cand, strict=True):
        assert a.fingerprint["cpu_affinity"] != b.fingerprint["cpu_affinity"]
        assert len(a.fingerprint["cpu_affinity"]) == 1
        # side by side: each started before the other finished
        assert a.started_at < b.finished_at and b.started_at < a.finished_at
