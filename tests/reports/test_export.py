import json

import pandas as pd
import pytest

from reports.export import console_text, latex_text, numeric_table, write_table
from reports.frames import Results
from reports.report import build_report
from tests.reports.factories import make_record


@pytest.fixture
def report():
    return build_report(
        Results.from_records(
            [
                make_record("e", timed=(0.5, 0.6), mode="eager"),
                make_record("f", timed=(0.1, 0.2, 0.3), reason=None),
                make_record("g", status="skipped", reason="no GPU visible", device="gpu"),
            ]
        )
    )


def test_numeric_exports_round_trip_in_si_units(tmp_path, report):
    csv = pd.read_csv(write_table(report, "csv", tmp_path / "s.csv"))
    parquet = pd.read_parquet(write_table(report, "parquet", tmp_path / "s.parquet"))
    for frame in (csv, parquet):
        row = frame.set_index("variant").loc["function/float32@cpu"]
        assert row["step_median_s"] == pytest.approx(0.2)
        assert row["speedup"] == pytest.approx(0.55 / 0.2)
    doc = json.loads(write_table(report, "json", tmp_path / "s.json").read_text())
    assert [c["variant"] for c in doc["cells"]] == list(numeric_table(report)["variant"])
    assert any(w["kind"] == "single-run" for w in doc["warnings"])


def test_text_exports(tmp_path, report):
    text = console_text(report)
    lines = text.splitlines()
    assert lines[0].startswith("tiny model on synthetic")
    assert lines[1].startswith("Variant") and set(lines[2]) <= {"-", " "}
    assert any(line.startswith("function/float32@cpu  ok") for line in lines)
    latex = latex_text(report)
    assert r"\begin{tabular}{llrrrrrrrrrr}" in latex  # alignment follows the columns
    assert r"\toprule" in latex and r"function/float32@cpu & ok" in latex
    assert r"2.75$\times$" in latex and "%" not in latex.replace(r"\%", "")
    md = write_table(report, "markdown", tmp_path / "s.md").read_text()
    assert md.startswith("**tiny model on synthetic")
    with pytest.raises(ValueError, match="format='xlsx'"):
        write_table(report, "xlsx", tmp_path / "s.xlsx")
