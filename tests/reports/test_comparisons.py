"""Speedups with intervals, geometric means, break-even, time-to-accuracy, parity: small
synthetic records with answers worked out by hand."""

import math

import pytest

from reports.comparisons import break_even_steps, run_time_to_accuracy
from reports.frames import Results
from reports.report import ReportOptions, build_report
from tests.reports.factories import epochs_of, make_record


def _report(*records, **options):
    report = build_report(Results.from_records(records), ReportOptions(**options))
    return report, report.table.set_index("variant")


def test_speedup_with_interval_against_eager():
    _, t = _report(
        make_record("e", timed=(0.5,) * 20, mode="eager"),
        make_record("f", timed=(0.1,) * 20),
        make_record("x", timed=(0.25,) * 10 + (0.2,) * 11, mode="xla"),
    )
    assert t.loc["eager/float32@cpu", "speedup"] == 1.0
    row = t.loc["function/float32@cpu"]
    assert (row["speedup"], row["speedup_ci_low"], row["speedup_ci_high"]) == (5.0, 5.0, 5.0)
    row = t.loc["xla/float32@cpu"]
    assert row["speedup"] == 2.5  # 0.5 / median 0.2
    assert row["speedup_ci_low"] == 2.0 and row["speedup_ci_high"] == 2.5
    assert row["baseline_variant"] == "eager/float32@cpu"


def test_another_baseline():
    _, t = _report(
        make_record("e", timed=(0.5,), mode="eager"),
        make_record("f", timed=(0.1,)),
        baseline=("function", "float32"),
    )
    assert t.loc["eager/float32@cpu", "speedup"] == pytest.approx(0.2)


def test_geometric_mean_over_workloads_is_not_clipped():
    report, _ = _report(
        make_record("e1", timed=(0.4,), mode="eager", batch_size=32),
        make_record("f1", timed=(0.2,), batch_size=32),  # 2x faster
        make_record("e2", timed=(0.4,), mode="eager", batch_size=64),
        make_record("f2", timed=(0.8,), batch_size=64),  # 2x slower
    )
    g = report.geomeans.set_index("variant").loc["function/float32@cpu"]
    assert g["cells"] == 2 and g["geomean_speedup"] == pytest.approx(1.0)
    assert (g["min_speedup"], g["max_speedup"]) == (0.5, 2.0)


@pytest.mark.parametrize(
    "first_v, step_v, first_b, step_b, expected",
    [
        (10, 1, 1, 2, 10),  # 10 + 9*1 = 19 <= 1 + 9*2 = 19; at n=9: 18 > 17
        (3.0, 1.0, 1.0, 1.5, 5),  # 3 + 4 = 7 <= 1 + 6 = 7
        (0.5, 1, 1, 2, 1),  # cheaper first step: even at once
        (10, 2, 1, 2, math.inf),  # no faster per step: never
        (10, 3, 1, 2, math.inf),
    ],
)
def test_break_even_steps(first_v, step_v, first_b, step_b, expected):
    assert break_even_steps(first_v, step_v, first_b, step_b) == expected
    n = expected
    if math.isfinite(n) and n > 1:
        assert first_v + (n - 1) * step_v <= first_b + (n - 1) * step_b
        assert first_v + (n - 2) * step_v > first_b + (n - 2) * step_b


def test_break_even_in_the_report():
    _, t = _report(
        make_record("e", timed=(2.0,), first=1.0, mode="eager"),
        make_record("f", timed=(1.0,), first=10.0),
    )
    assert t.loc["function/float32@cpu", "break_even_steps"] == 10
    assert t.loc["eager/float32@cpu", "break_even_steps"] == 1


def test_time_to_accuracy_puts_compilation_and_evaluation_on_the_clock():
    epochs = epochs_of((10.0, 10.0, 10.0), (1.0, 1.0, 1.0), (0.5, 0.8, 0.9))
    frame = Results.from_records([make_record(epochs=epochs)]).epochs
    assert run_time_to_accuracy(frame, 2.0, 0.8) == 2 + 11 + 11
    assert run_time_to_accuracy(frame, None, 0.5) == 11
    assert math.isnan(run_time_to_accuracy(frame, 2.0, 0.95))
    slow = epochs_of((20.0, 20.0, 20.0), (1.0, 1.0, 1.0), (0.5, 0.8, 0.9))
    _, t = _report(
        make_record("a", epochs=epochs, eval_first=2.0),
        make_record("b", epochs=epochs, eval_first=4.0, repeat=1),
        make_record("s", epochs=slow, mode="xla"),
        target_accuracy=0.8,
    )
    row = t.loc["function/float32@cpu"]
    assert row["tta_s"] == 25.0 and row["tta_runs_reached"] == 2  # median of 24 and 26
    assert t.loc["xla/float32@cpu", "tta_s"] == 42.0


def test_accuracy_parity_flags_a_mixed_precision_drop():
    settled = (0.1,) * 1000  # parity is only judged once BatchNorm statistics have settled
    report, _ = _report(
        make_record("f", accuracy=0.90, timed=settled),
        make_record("b", accuracy=0.85, precision="mixed_bfloat16", timed=settled),
        make_record("h", accuracy=0.895, precision="mixed_float16", timed=settled),
    )
    parity = [f for f in report.findings if f.kind == "accuracy-parity"]
    assert [f.variant for f in parity] == ["function/mixed_bfloat16@cpu"]
    assert "85.00% is more than 1.0% below float32's 90.00%" in str(parity[0])
    early, _ = _report(
        make_record("f", accuracy=0.90), make_record("b", accuracy=0.50, precision="mixed_bfloat16")
    )
    assert not [f for f in early.findings if f.kind == "accuracy-parity"]


def test_stability_findings():
    report, _ = _report(
        make_record("a", timed=(0.1,) * 10, tracing=(1, 2)),
        make_record("b", timed=tuple(0.1 * (1 + i % 2 * 3) for i in range(60)), mode="xla"),
        make_record("c", status="failed", reason="ValueError: boom", mode="eager"),
    )
    kinds = {(f.kind, f.variant) for f in report.findings}
    assert ("few-steps", "function/float32@cpu") in kinds
    assert ("retraced", "function/float32@cpu") in kinds
    assert ("unstable", "xla/float32@cpu") in kinds
    assert ("not-ok", "eager/float32@cpu") in kinds
    assert ("single-run", None) in kinds
    failed = next(f for f in report.findings if f.kind == "not-ok")
    assert "ValueError: boom (log: logs/c.log)" in str(failed)


def test_mixed_environments_are_flagged():
    report, _ = _report(
        make_record("a"),
        make_record("b", mode="xla", fingerprint={"tensorflow": "2.20.0", "hostname": "h"}),
    )
    assert any(f.kind == "mixed-environments" for f in report.findings)
    assert len(report.environments) == 2
