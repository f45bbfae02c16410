import math

import pandas as pd
import pytest

from reports.frames import Results
from reports.load import load_results
from reports.markdown import markdown_table, timing_table
from reports.schema import ResultFileError
from reports.summary import summarize
from tests.reports.factories import make_record


def _summary(*records):
    return summarize(Results.from_records(records)).set_index("variant")


def test_statistics_use_only_timed_steps_of_ok_runs():
    s = _summary(
        make_record(timed=(0.1, 0.2, 0.3, 0.4)),
        make_record("r1", timed=(9.0,), status="interrupted", repeat=1),
    )
    row = s.loc["function/float32@cpu"]
    assert row["steps"] == 4 and row["runs"] == 2 and row["runs_ok"] == 1
    assert row["step_median_s"] == pytest.approx(0.25)
    assert row["step_p25_s"] == pytest.approx(0.175)
    assert row["throughput"] == pytest.approx(10 / 0.25)
    assert row["first_step_s"] == 5.0
    assert row["status"] == "ok 1/2, interrupted 1/2"


def test_repeats_are_pooled():
    s = _summary(
        make_record("a", timed=(1.0, 2.0)), make_record("b", timed=(3.0, 4.0), first=7.0, repeat=1)
    )
    row = s.loc["function/float32@cpu"]
    assert row["step_median_s"] == 2.5 and row["steps"] == 4
    assert row["first_step_s"] == 6.0


def test_speedup_against_eager_float32_on_the_same_device_and_workload():
    s = _summary(
        make_record("e", timed=(0.5, 0.5, 0.5), mode="eager"),
        make_record("f", timed=(0.1, 0.1, 0.1)),
        make_record("b", timed=(0.25,), precision="mixed_bfloat16"),
        make_record("g", timed=(0.05,), device="gpu"),  # no eager gpu baseline
        make_record("w", timed=(0.1,), batch_size=20),  # another workload: no baseline
    )
    assert s.loc["eager/float32@cpu", "speedup"] == 1.0
    function = s.loc["function/float32@cpu"]
    assert function.loc[function["batch_size"] == 10, "speedup"].item() == 5.0
    assert math.isnan(function.loc[function["batch_size"] == 20, "speedup"].item())
    assert s.loc["function/mixed_bfloat16@cpu", "speedup"] == 2.0
    assert math.isnan(s.loc["function/float32@gpu", "speedup"])


def test_skipped_cells_keep_their_reason_and_have_no_numbers():
    s = _summary(make_record(status="skipped", reason="no GPU visible", device="gpu"))
    row = s.loc["function/float32@gpu"]
    assert row["status"] == "skipped" and row["reason"] == "no GPU visible"
    assert row["steps"] == 0 and math.isnan(row["step_median_s"])


def test_retrace_in_the_timed_phase_is_flagged():
    s = _summary(make_record(tracing=(1, 2)), make_record("x", tracing=(1, 1), mode="xla"))
    assert bool(s.loc["function/float32@cpu", "retraced"])
    assert not bool(s.loc["xla/float32@cpu", "retraced"])


def test_timing_table_shows_each_cell():
    table = timing_table(
        summarize(
            Results.from_records(
                [
                    make_record("e", timed=(0.5,), mode="eager"),
                    make_record("f", timed=(0.1, 0.2, 0.3), accuracy=0.875),
                    make_record("s", status="skipped", reason="no GPU visible", device="gpu"),
                ]
            )
        )
    )
    assert "| function/float32@cpu | ok | 200.0 (150.0–250.0), n=3 | 50 | 5.00 |" in table
    assert "87.5%" in table and "5.00×" not in table and "2.50×" in table
    assert "| function/float32@gpu | skipped: no GPU visible | n/a |" in table
    assert table.startswith("**tiny model on synthetic, batch 10, 1 epoch x full epochs")
    assert "Test accuracy after 5 training steps: BatchNorm's moving statistics" in table


def test_markdown_table_escapes_pipes():
    text = markdown_table(["a", "b"], [["x|y", "1"]], "lr")
    assert text.splitlines() == ["| a | b |", "| :--- | ---: |", "| x\\|y | 1 |"]


def test_frames_are_tidy():
    r = Results.from_records([make_record(timed=(0.1, 0.2))])
    assert list(r.steps["phase"]) == ["first", "warmup", "timed", "timed"]
    assert r.epochs.loc[0, "test_accuracy"] == 0.5
    assert isinstance(r.runs, pd.DataFrame) and r.runs.loc[0, "env_tensorflow"] == "2.21.0"


def test_loading_reports_the_bad_file(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.json").write_text('{"schema_version": 1, "kind": "tapeb')
    with pytest.raises(ResultFileError, match=r"a\.json: corrupt or truncated"):
        load_results([tmp_path])
    with pytest.raises(ResultFileError, match="no such file"):
        load_results([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultFileError, match="no run files"):
        load_results([tmp_path / "empty"])


def test_a_cell_without_ok_runs_is_summarised_from_its_partial_runs():
    s = _summary(
        make_record(timed=(4.0, 4.2), status="timeout", reason="exceeded 150 s"),
        make_record("e", timed=(0.2,), mode="eager"),
    )
    row = s.loc["function/float32@cpu"]
    assert bool(row["partial"]) and row["runs_ok"] == 0
    assert row["step_median_s"] == pytest.approx(4.1) and row["speedup"] == pytest.approx(0.2 / 4.1)
    table = timing_table(
        summarize(
            Results.from_records(
                [make_record(timed=(4.0,), status="timeout", reason="exceeded 150 s")]
            )
        )
    )
    assert "timeout: exceeded 150 s (figures from the steps it finished)" in table
    assert not bool(s.loc["eager/float32@cpu", "partial"])
