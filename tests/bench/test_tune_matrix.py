"""Per-cell run settings (threads, environment): stored with the cell, applied to its
workers, kept apart by reports, and left out of the machine's peak."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.machine import peak_cache
from bench.matrix.cells import Cell, RunOptions, RunSettings
from bench.matrix.execute import run_plan
from bench.matrix.job import Job, WorkerTask
from bench.matrix.plan import create_plan, trace_run_name
from bench.matrix.store import ResultsDir
from reports.checks import stability_findings
from reports.frames import Results
from reports.load import load_records
from reports.schema import cell_label
from reports.sides import environment_differences, load_side
from reports.summary import summarize
from tests.reports.factories import CELL, make_record
from trainloop.config import Variant, Workload
from trainloop.datasets import DataSource

OFF = RunSettings.create(1, 1, TF_ENABLE_ONEDNN_OPTS="0")
SYNTHETIC = {"synthetic": DataSource("synthetic", "synthetic", "generated")}
TINY = Workload(
    model="tiny", dataset="synthetic", epochs=1, steps_per_epoch=4, eval_examples=0,
    warmup_steps=1, batch_size=16,
)  # fmt: skip


def test_settings_round_trip_and_a_default_cell_is_stored_as_before():
    cell = Cell(Variant("function"), TINY, OFF)
    doc = cell.to_dict()
    assert doc["settings"] == {
        "env": {"TF_ENABLE_ONEDNN_OPTS": "0"},
        "intra_op_threads": 1,
        "inter_op_threads": 1,
    }
    assert Cell.from_dict(doc) == cell
    assert "settings" not in Cell(Variant("function"), TINY).to_dict()
    assert cell.label.startswith(
        "function/float32@cpu [intra 1, inter 1, TF_ENABLE_ONEDNN_OPTS=0] tiny/"
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ((("PYTHONPATH", "/x"),), "cannot be set per cell"),
        ((("lower", "1"),), "cannot be set per cell"),
        ((("B", "1"), ("A", "1")), "sorted"),
        ((("A", 1),), "must be a string"),
    ],
)
def test_bad_settings_are_refused_by_name(env, message):
    with pytest.raises(ValueError, match=message):
        RunSettings(env=env)
    with pytest.raises(ValueError, match="intra_op_threads=-1"):
        RunSettings(intra_op_threads=-1)


def test_traces_of_cells_differing_in_steps_per_call_or_settings_do_not_collide():
    """Before, every ``function`` cell of a workload shared one trace directory name."""
    cells = [
        Cell(Variant("function"), TINY),
        Cell(Variant("function", steps_per_call=10), TINY),
        Cell(Variant("function", input_mode="staged"), TINY),
        Cell(Variant("function"), TINY, OFF),
    ]
    names = {trace_run_name(c, "20261127T000000Z-abc123") for c in cells}
    assert len(names) == len(cells)


def test_a_cell_runs_with_its_settings_and_reports_keep_it_apart(tmp_path: Path):
    """Two cells of one variant, one with oneDNN off and its own thread counts, in one
    invocation: each run's fingerprint shows what it ran with (the environment reached
    TensorFlow in a zygote of its own), and the report has two rows and no warning of
    mixed environments."""
    cells = [Cell(Variant("function"), TINY), Cell(Variant("function"), TINY, OFF)]
    options = RunOptions(output_dir=tmp_path / "out", measure_peak=False, count_flops=False)
    result = run_plan(create_plan(cells, 1, options, SYNTHETIC))
    assert [r.status for r in result.records] == ["ok", "ok"]
    plain, off = result.records
    assert off.cell["settings"]["env"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert off.fingerprint["onednn_opts"] == "0" != plain.fingerprint["onednn_opts"]
    assert off.fingerprint["intra_op_threads"] == 1 == off.fingerprint["inter_op_threads"]
    assert off.info.get("flops_per_step_profiler") is None  # count_flops=False
    assert len(list((tmp_path / "out" / "logs").glob("*zygote*.log"))) == 2
    records = load_records([tmp_path / "out"])
    table = summarize(Results.from_records(records))
    assert len(table) == 2
    assert list(table["settings"]) == ["", "intra 1, inter 1, TF_ENABLE_ONEDNN_OPTS=0"]
    assert not [f for f in stability_findings(table, records) if f.kind == "mixed-environments"]


def _results(root: Path, cpu: str, tag: str) -> Path:
    """A results directory with a default cell and one whose settings turn oneDNN off."""
    results = ResultsDir(root).create()
    settings = {**CELL, "settings": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}}
    default = make_record(f"{tag}a", fingerprint={"onednn_opts": None, "cpu_model": cpu})
    chosen = make_record(f"{tag}b", fingerprint={"onednn_opts": "0", "cpu_model": cpu})
    results.write_run(default)
    results.write_run(dataclasses.replace(chosen, cell=settings))
    return root


def test_compare_leaves_out_only_what_settings_chose(tmp_path):
    """oneDNN off by a cell's settings is not a different environment; another CPU is."""
    base = load_side(_results(tmp_path / "a", "A", "a"))
    assert len(base.cells) == 2  # the two cells are told apart by their settings
    assert environment_differences(base, load_side(_results(tmp_path / "b", "A", "b"))) == []
    other = load_side(_results(tmp_path / "c", "B", "c"))
    assert environment_differences(base, other) == ["cpu_model"]
    records = load_records([tmp_path / "a"])
    assert cell_label(records[0].cell) != cell_label(records[1].cell)


def test_the_peak_is_measured_without_a_cells_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen: list[Job] = []

    def fake_execute(job, log):
        seen.append(job)
        return make_record("peak", fingerprint={})

    monkeypatch.setattr(peak_cache, "execute_job", fake_execute)
    task = WorkerTask("t", Cell(Variant("function"), TINY, OFF))
    job = Job(task, "inv", 0, env=OFF.env)
    peak_cache.ensure_peaks([job], ResultsDir(tmp_path / "out").create())
    (peak,) = seen
    assert peak.env == () and peak.task.peak == (("cpu", "float32"),)


def test_a_more_hook_grows_the_plan_with_new_cells(tmp_path: Path):
    """The job loop runs what a caller's hook adds -- here a cell the plan did not have
    -- writes it into the manifest first, and stops when the hook asks for nothing."""
    from bench.matrix.plan import Slot, read_plan

    added = Cell(Variant("function", steps_per_call=2), TINY)

    def more(plans, records):
        plan = plans[0]
        if len(plan.cells) > 1:
            return []
        plans[0] = dataclasses.replace(plan, cells=(*plan.cells, added))
        return [(0, Slot(f"{plan.invocation_id}-c01-r0", 1, 0))]

    options = RunOptions(output_dir=tmp_path / "out", measure_peak=False, count_flops=False)
    plan = create_plan([Cell(Variant("function"), TINY)], 1, options, SYNTHETIC)
    result = run_plan(plan, more=more)
    assert [r.cell["steps_per_call"] for r in result.records] == [1, 2]
    stored = read_plan(result.results, plan.invocation_id)
    assert stored.cells[1] == added and stored.state == "complete"


def test_a_multi_step_calls_profile_is_summarised_per_training_step(tmp_path: Path):
    """The profiler marks calls; a call of function:10 is ten training steps. Before,
    its summary reported per call: ten times the harness's per-step time."""
    from reports.trace_summary import summarize_profiles

    workload = TINY.replace(steps_per_epoch=80, warmup_steps=0)
    cell = Cell(Variant("function", steps_per_call=10), workload)
    options = RunOptions(
        output_dir=tmp_path / "out", measure_peak=False, count_flops=False, profile=(10, 60)
    )
    plan = create_plan([cell], 1, options, SYNTHETIC)
    plan = dataclasses.replace(plan, slots=tuple(s for s in plan.slots if s.purpose == "profile"))
    result = run_plan(plan)
    roots = {r.run_id: result.results.root for r in result.records}
    (summary,), problems = summarize_profiles(Results.from_records(result.records, roots))
    assert problems == []
    assert summary.mismatch < 0.5, (summary.profiler_step_ms, summary.harness_step_ms)
