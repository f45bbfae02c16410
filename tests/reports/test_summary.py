import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from reports.frames import Results
from reports.load import load_results
from reports.markdown import markdown_table, timing_markdown
from reports.report import build_report
from reports.schema import ResultFileError
from reports.summary import summarize
from tests.reports.factories import make_record


def _summary(*records):
    return summarize(Results.from_records(records)).set_index("variant")


def _markdown(*records):
    return timing_markdown(build_report(Results.from_records(records)))


def test_statistics_use_only_timed_steps_of_ok_runs():
    s = _summary(
        make_record(timed=(0.1, 0.2, 0.3, 0.4)),
        make_record("r1", timed=(9.0,), status="interrupted", repeat=1),
    )
    row = s.loc["function/float32@cpu"]
    assert row["steps"] == 4 and row["runs"] == 2 and row["runs_ok"] == 1
    assert row["step_median_s"] == pytest.approx(0.25)
    # type-7 quantiles of 0.1..0.4: p25 = 0.175, p10 = 0.13, p90 = 0.37
    assert row["step_p25_s"] == pytest.approx(0.175)
    assert (row["step_p10_s"], row["step_p90_s"]) == (pytest.approx(0.13), pytest.approx(0.37))
    assert row["step_iqr_s"] == pytest.approx(0.15)
    assert row["step_ci_low_s"] <= 0.25 <= row["step_ci_high_s"]
    assert row["throughput"] == pytest.approx(10 / 0.25)
    assert row["first_step_s"] == 5.0
    assert row["status"] == "ok 1/2, interrupted 1/2"
    assert row["peak_rss_bytes"] == 2**30


def test_single_step_and_all_equal_cells():
    s = _summary(make_record(timed=(0.2,)), make_record("x", timed=(0.3,) * 5, mode="xla"))
    one = s.loc["function/float32@cpu"]
    assert (one["step_median_s"], one["step_ci_low_s"], one["step_ci_high_s"]) == (0.2,) * 3
    assert one["step_iqr_s"] == 0 and math.isnan(one["step_cv"])
    same = s.loc["xla/float32@cpu"]
    assert (same["step_ci_low_s"], same["step_ci_high_s"]) == (0.3, 0.3)
    assert same["step_cv"] == 0 and same["step_iqr_s"] == 0


def test_repeats_are_pooled():
    s = _summary(
        make_record("a", timed=(1.0, 2.0)), make_record("b", timed=(3.0, 4.0), first=7.0, repeat=1)
    )
    row = s.loc["function/float32@cpu"]
    assert row["step_median_s"] == 2.5 and row["steps"] == 4 and row["runs_ok"] == 2
    assert row["first_step_s"] == 6.0


def test_final_and_best_accuracy():
    from tests.reports.factories import epochs_of

    s = _summary(
        make_record(epochs=epochs_of((1.0, 1.0), (0.1, 0.1), (0.9, 0.8))),
        make_record("b", repeat=1, epochs=epochs_of((1.0, 1.0), (0.1, 0.1), (0.7, 0.8))),
    )
    row = s.loc["function/float32@cpu"]
    assert row["test_accuracy"] == pytest.approx(0.8)
    assert row["best_test_accuracy"] == pytest.approx(0.85)


def test_skipped_cells_keep_their_reason_and_have_no_numbers():
    s = _summary(make_record(status="skipped", reason="no GPU visible", device="gpu"))
    row = s.loc["function/float32@gpu"]
    assert row["status"] == "skipped" and row["reason"] == "no GPU visible"
    assert row["steps"] == 0 and math.isnan(row["step_median_s"])


def test_retrace_in_the_timed_phase_is_flagged():
    s = _summary(make_record(tracing=(1, 2)), make_record("x", tracing=(1, 1), mode="xla"))
    assert bool(s.loc["function/float32@cpu", "retraced"])
    assert not bool(s.loc["xla/float32@cpu", "retraced"])


def test_a_cell_without_ok_runs_is_summarised_from_its_partial_runs():
    s = _summary(make_record(timed=(4.0, 4.2), status="timeout", reason="exceeded 150 s"))
    row = s.loc["function/float32@cpu"]
    assert bool(row["partial"]) and row["runs_ok"] == 0
    assert row["step_median_s"] == pytest.approx(4.1)
    table = _markdown(make_record(timed=(4.0,), status="timeout", reason="exceeded 150 s"))
    assert "timeout: exceeded 150 s (figures from the steps it finished)" in table


def test_timing_markdown_shows_each_cell_with_spread_and_n():
    table = _markdown(
        make_record("e", timed=(0.5,), mode="eager"),
        make_record("f", timed=(0.1, 0.2, 0.3), accuracy=0.875),
        make_record("s", status="skipped", reason="no GPU visible", device="gpu"),
    )
    row = next(line for line in table.splitlines() if line.startswith("| function/"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["function/float32@cpu", "ok", "200 [100–300] †", "150–250", "3 (1)"]
    assert cells[5].startswith("50.0 [")
    assert cells[9] == "87.5%" and cells[10].startswith("2.50×")
    assert "| function/float32@gpu | skipped: no GPU visible | n/a |" in table
    assert table.startswith("**tiny model on synthetic, batch 10, 1 epoch x full epochs")
    assert "Step ms: median [95% CI]" in table
    assert "Test accuracy after 5 training steps: BatchNorm's moving statistics" in table
    assert "**Warnings**" in table and "each cell ran in one process" in table


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


def _runs(medians):
    return tuple(tuple(m * (1 + d) for d in (-0.01, 0.0, 0.01)) for m in medians)


def test_the_median_interval_of_several_runs_is_the_t_interval_of_log_run_medians():
    medians = (0.10, 0.12, 0.11, 0.13)
    records = [make_record(f"r{i}", timed=t, repeat=i) for i, t in enumerate(_runs(medians))]
    t = build_report(Results.from_records(records)).table.set_index("variant")
    row = t.loc["function/float32@cpu"]
    logs = np.log(medians)
    expected = np.exp(sps.t.interval(0.95, 3, logs.mean(), sps.sem(logs)))
    assert (row["step_ci_low_s"], row["step_ci_high_s"]) == pytest.approx(tuple(expected))
    assert not row["ci_within_run"]


def test_the_speedup_interval_of_several_runs_is_welch_on_log_run_medians():
    eager, function = (0.50, 0.55, 0.52), (0.10, 0.12, 0.11, 0.105)
    records = [
        make_record(f"e{i}", timed=t, repeat=i, mode="eager") for i, t in enumerate(_runs(eager))
    ] + [make_record(f"f{i}", timed=t, repeat=i) for i, t in enumerate(_runs(function))]
    t = build_report(Results.from_records(records)).table.set_index("variant")
    row = t.loc["function/float32@cpu"]
    welch = sps.ttest_ind(np.log(eager), np.log(function), equal_var=False)
    expected = np.exp(welch.confidence_interval(0.95))
    assert (row["speedup_ci_low"], row["speedup_ci_high"]) == pytest.approx(tuple(expected))
    assert not row["speedup_ci_within_run"]
