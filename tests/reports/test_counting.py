"""Counting what was measured: steps (not calls) for MODE:N cells, like-with-like
baselines and parity, the memory peak."""

import dataclasses

import pandas as pd
import pytest

from reports.comparisons import first_step_cost
from reports.frames import Results
from reports.report import ReportOptions, build_report
from reports.summary import steps_per_sample
from tests.reports.factories import epochs_of, make_record


def _report(*records, **options):
    report = build_report(Results.from_records(records), ReportOptions(**options))
    return report, report.table.set_index("variant")


def test_steps_per_sample_counts_the_steps_of_each_call():
    record = make_record(timed=(0.1,) * 3, steps_per_call=10)
    record = dataclasses.replace(record, info={**record.info, "steps_per_epoch": 45})
    results = Results.from_records([record])
    # calls start at steps 0, 10, 20, 30, 40; the last stops at the epoch's end (45)
    assert list(steps_per_sample(results.steps, results.runs)) == [10, 10, 10, 10, 5]


def test_n_steps_and_steps_trained_count_steps_not_calls():
    _, t = _report(make_record(timed=(0.01,) * 12, steps_per_call=100))
    row = t.loc["function:100/float32@cpu"]
    assert row["steps"] == 1200  # 12 timed calls of 100 steps
    assert row["steps_trained"] == 1400  # plus the first call and one warm-up call


def test_the_few_steps_warning_counts_steps():
    report, _ = _report(make_record(timed=(0.01,), steps_per_call=100))
    assert not [f for f in report.findings if f.kind == "few-steps"]
    few, _ = _report(make_record(timed=(0.01,) * 4, steps_per_call=10))
    assert [f.message for f in few.findings if f.kind == "few-steps"] == [
        "only 40 timed steps; the median is noisy below 50"
    ]


def test_accuracy_parity_counts_steps_of_multi_step_calls():
    # 10 timed calls of 100 steps (plus first and warm-up): 1,200 steps, past the 1,000
    # it takes BatchNorm statistics to settle, though only 12 calls.
    calls = (0.01,) * 10
    report, _ = _report(
        make_record("f", accuracy=0.90, timed=calls, steps_per_call=100),
        make_record(
            "b", accuracy=0.80, timed=calls, steps_per_call=100, precision="mixed_bfloat16"
        ),
    )
    assert [f.variant for f in report.findings if f.kind == "accuracy-parity"] == [
        "function:100/mixed_bfloat16@cpu"
    ]


def test_break_even_uses_the_per_step_compile_cost_of_a_multi_step_call():
    # function:10's first call ran 10 steps in 10 s: one step with tracing costs
    # 10 - 9 * 0.1 = 9.1 s. Against eager (1 s, then 0.5 s a step) it catches up when
    # 9.1 + (n-1) 0.1 <= 1 + (n-1) 0.5, i.e. n - 1 >= 20.25: n = 22.
    _, t = _report(
        make_record("e", timed=(0.5,) * 5, first=1.0, mode="eager"),
        make_record("f", timed=(0.1,) * 5, first=10.0, steps_per_call=10),
    )
    row = t.loc["function:10/float32@cpu"]
    assert first_step_cost(row) == pytest.approx(9.1)
    assert row["break_even_steps"] == 22


def test_a_short_epoch_caps_the_first_call():
    row = pd.Series(
        {"steps_per_call": 100, "steps_per_epoch": 20, "first_step_s": 5.0, "step_median_s": 0.1}
    )
    assert first_step_cost(row) == pytest.approx(5.0 - 19 * 0.1)


def test_the_default_speedup_baseline_is_the_single_device_cell():
    _, t = _report(
        make_record("m", timed=(0.25,) * 5, mode="eager", strategy="mirrored", replicas=2),
        make_record("e", timed=(0.5,) * 5, mode="eager"),
        make_record("f", timed=(0.1,) * 5),
    )
    row = t.loc["function/float32@cpu"]
    assert row["baseline_variant"] == "eager/float32@cpu" and row["speedup"] == 5.0


def test_accuracy_parity_compares_cells_of_the_same_strategy():
    settled = (0.1,) * 1000
    mirrored = dict(strategy="mirrored", replicas=2)
    report, _ = _report(
        make_record("f", accuracy=0.95, timed=settled),
        make_record("m", accuracy=0.90, timed=settled, **mirrored),
        make_record("b", accuracy=0.895, timed=settled, precision="mixed_bfloat16", **mirrored),
    )
    assert not [f for f in report.findings if f.kind == "accuracy-parity"]


def test_the_accelerator_peak_is_the_largest_epoch_of_any_run():
    def run(run_id, peaks, repeat):
        epochs = tuple(
            dataclasses.replace(e, device_peak_bytes=p)
            for e, p in zip(epochs_of((1.0,) * 3, (0.1,) * 3, (0.5,) * 3), peaks, strict=True)
        )
        return make_record(run_id, epochs=epochs, repeat=repeat)

    _, t = _report(run("a", (100, 300, 200), 0), run("b", (150, 250, 120), 1))
    assert t.loc["function/float32@cpu", "device_peak_bytes"] == 300
