"""Plans and jobs: typed values that round-trip, and what earlier versions wrote still runs."""

from __future__ import annotations

import json

import pytest

from bench.matrix import execute
from bench.matrix.cells import Cell, RunOptions
from bench.matrix.execute import resume_matrix
from bench.matrix.job import Job, WorkerTask
from bench.matrix.jobs import Side, create_job
from bench.matrix.plan import MatrixError, Plan, create_plan, read_plan
from bench.matrix.store import ResultsDir
from reports.load import load_records
from tests.reports.factories import make_record
from trainloop.config import Variant, Workload
from trainloop.datasets import DataSource

SYNTHETIC = DataSource("synthetic", "synthetic", "generated")
TINY = Workload(
    "tiny", "synthetic", 16, epochs=1, steps_per_epoch=3, warmup_steps=1, eval_examples=0
)
# Cell fields the first manifests and records did not have yet.
ADDED_SINCE = ("steps_per_call", "input_mode", "strategy", "replicas")


def test_a_plan_round_trips_through_its_manifest(tmp_path):
    cells = [Cell(Variant.parse(t), TINY) for t in ("eager", "function:2/mixed_bfloat16@gpu")]
    options = RunOptions(output_dir=tmp_path, profile=(1, 3), cluster=None, timeout_s=9.0)
    plan = create_plan(cells, 2, options, {"synthetic": SYNTHETIC}, ["tapebench", "run"])
    interleaved = ["c00-r0", "c01-r0", "c00-r1", "c01-r1", "-c00-p", "-c01-p"]
    assert [s.slot_id[-6:] for s in plan.slots] == interleaved
    doc = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(doc, tmp_path) == plan


def test_jobs_carry_the_plan_and_the_task_the_worker_reads(tmp_path):
    cells = [Cell(Variant.parse("function*multiworker:2"), TINY.replace(batch_size=32))]
    options = RunOptions(output_dir=tmp_path, profile=(1, 3), intra_op_threads=2)
    plan = create_plan(cells, 1, options, {"synthetic": SYNTHETIC})
    timing, profile = (create_job(Side(plan), s, attempt=2) for s in plan.slots)
    assert timing.run_id == plan.slots[0].slot_id + "-a2" and timing.task.profile is None
    assert profile.purpose == "profile" and profile.task.profile.first == 1
    assert profile.task.profile.trace_root == str((tmp_path / "traces").resolve())
    doc = json.loads(profile.task.to_json(events_fd=7))
    # Variant fields at the value they had before they existed stay out of the protocol.
    assert set(doc["variant"]) == {"mode", "precision", "device", "strategy", "replicas"}
    task, fd = WorkerTask.from_json(json.dumps({**doc, "added_by_a_newer_tree": 1}))
    assert (task, fd) == (profile.task, 7)
    probe = timing.derive("x-probe", probe=True)
    assert probe.task.probe and not probe.multiworker and timing.multiworker


def _first_layout(plan: Plan) -> dict:
    """``plan``'s manifest as the first version wrote it: three options, no profile, no
    slot purposes, cells without the variant fields added since."""
    doc = plan.to_dict()
    first_options = ("timeout_s", "intra_op_threads", "inter_op_threads")
    doc["options"] = {k: doc["options"][k] for k in first_options}
    del doc["profile"]
    for cell in doc["cells"]:
        for key in ADDED_SINCE:
            del cell[key]
    return doc


def _old_run(slot_id: str, invocation: str, status: str) -> dict:
    record = make_record(slot_id, status=status, model="tiny", batch_size=16)
    doc = record.to_dict()
    doc["run"].update(slot_id=slot_id, invocation_id=invocation)
    for key in ADDED_SINCE:
        del doc["run"]["cell"][key]
    return doc


def test_an_invocation_written_by_the_first_version_resumes(tmp_path, monkeypatch):
    # The efficiency columns' matmul peaks are not what this is about.
    monkeypatch.setattr(execute, "ensure_peaks", lambda jobs, results: {})
    results = ResultsDir(tmp_path / "out").create()
    cells = [Cell(Variant.parse(t), TINY) for t in ("function", "eager")]
    plan = create_plan(cells, 1, RunOptions(output_dir=results.root), {"synthetic": SYNTHETIC})
    results.manifest_path(plan.invocation_id).write_text(json.dumps(_first_layout(plan)))
    done, stopped = plan.slots
    for slot, status in ((done, "ok"), (stopped, "interrupted")):
        doc = _old_run(slot.slot_id, plan.invocation_id, status)
        results.run_path(slot.slot_id).write_text(json.dumps(doc))
    assert read_plan(results, None) == plan  # the fields added since take their defaults

    result = resume_matrix(results.root)
    assert (result.executed, result.pending, result.interrupted) == (1, 0, False)
    (rerun,) = [r for r in load_records([results.root]) if r.run_id.endswith("-a2")]
    assert rerun.slot_id == stopped.slot_id and rerun.status == "ok", rerun.reason
    assert rerun.cell["mode"] == "eager" and rerun.cell["input_mode"] == "tfdata"
    manifest = json.loads(results.manifest_path(plan.invocation_id).read_text())
    assert manifest["state"] == "complete" and manifest["schema_version"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(schema_version=2), "manifest version 2 is not supported"),
        (lambda d: d.pop("cells"), "cells is missing"),
        (lambda d: d.update(repeats="2"), 'repeats is "2", expected an integer'),
        (lambda d: d.update(options=None), "options is null, expected an object"),
        (lambda d: d.update(data_sources=[]), "data_sources is [], expected an object"),
        (lambda d: d["slots"].__setitem__(0, [1]), "slots[0] is [1], expected an object"),
        (lambda d: d["cells"][0].update(batch_size="8"), 'cells[0].batch_size is "8"'),
        (lambda d: d["cells"][0].update(colour="red"), "cell: unknown field(s) colour"),
        (lambda d: d["slots"][0].update(cell_index=5), "name no cell of the plan"),
    ],
)
def test_a_broken_manifest_is_named_with_what_is_wrong(tmp_path, change, message):
    results = ResultsDir(tmp_path).create()
    options = RunOptions(output_dir=tmp_path)
    plan = create_plan([Cell(Variant(), TINY)], 1, options, {"synthetic": SYNTHETIC})
    doc = plan.to_dict()
    change(doc)
    path = results.manifest_path(plan.invocation_id)
    path.write_text(json.dumps(doc))
    with pytest.raises(MatrixError) as info:
        read_plan(results, plan.invocation_id)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_probe_job_needs_no_data_source():
    task = WorkerTask("p", Cell(Variant(device="gpu"), Workload()), probe=True)
    doc = json.loads(Job(task, "list", repeat=0).task.to_json(events_fd=3))
    assert doc["probe"] is True and doc["data_source"] == {}
    assert WorkerTask.from_json(json.dumps(doc))[0] == task
