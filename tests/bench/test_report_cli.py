"""tapebench report, on stored records (no TensorFlow involved)."""

import json

import pandas as pd
import pytest

from bench.matrix.store import ResultsDir
from tests.bench.test_cli import run_cli
from tests.reports.factories import epochs_of, make_record


@pytest.fixture
def results(tmp_path):
    store = ResultsDir(tmp_path / "results").create()
    curve = epochs_of((10.0, 10.0), (1.0, 1.0), (0.6, 0.9))
    for record in (
        make_record("e", timed=(0.5,) * 1000, mode="eager", epochs=curve),
        make_record("f", timed=(0.1,) * 1000, epochs=curve),
        make_record(
            "b",
            timed=(0.08,) * 1000,
            precision="mixed_bfloat16",
            epochs=epochs_of((8.0, 8.0), (1.0, 1.0), (0.6, 0.8)),
        ),
    ):
        store.write_run(record)
    return store.root


def test_report_prints_markdown_by_default(tmp_path, results):
    result = run_cli(tmp_path, "report", str(results), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| function/float32@cpu | ok | 100 [100–100] † |" in result.stdout
    assert (
        "function/mixed_bfloat16@cpu: test accuracy 80.00% is more than 1.0% below" in result.stdout
    )


def test_report_writes_every_format_and_html(tmp_path, results):
    out, page = tmp_path / "out", tmp_path / "page" / "report.html"
    result = run_cli(
        tmp_path,
        "report",
        str(results),
        "--format",
        "markdown,console,csv,json,parquet,latex",
        "--out",
        str(out),
        "--html",
        str(page),
        "--baseline",
        "function",
        "--target-accuracy",
        "0.85",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.csv",
        "summary.json",
        "summary.md",
        "summary.parquet",
        "summary.tex",
        "summary.txt",
    ]
    frame = pd.read_parquet(out / "summary.parquet").set_index("variant")
    assert frame.loc["eager/float32@cpu", "speedup"] == pytest.approx(0.2)
    assert frame.loc["function/float32@cpu", "tta_s"] == pytest.approx(22.0)
    assert json.loads((out / "summary.json").read_text())["cells"][0]["variant"]
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    "args, message",
    [
        (["nowhere"], "nowhere: no such file or directory"),
        (["RESULTS", "--format", "parquet"], "--format parquet writes files: add --out DIR"),
        (["RESULTS", "--baseline", "turbo"], "mode 'turbo' is not one of"),
        (["RESULTS", "--target-accuracy", "85"], "'85' is not a fraction between 0 and 1"),
        (["RESULTS", "--invocation", "nope"], "no runs of invocation(s) nope"),
    ],
)
def test_report_usage_errors(tmp_path, results, args, message):
    args = [str(results) if a == "RESULTS" else a for a in args]
    result = run_cli(tmp_path, "report", *args, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def test_report_names_a_corrupt_file(tmp_path, results):
    bad = next((results / "runs").glob("*.json"))
    bad.write_text(bad.read_text()[:-40])
    result = run_cli(tmp_path, "report", str(results), timeout=60)
    assert result.returncode == 2 and f"{bad.name}: corrupt or truncated JSON" in result.stderr


def test_report_baseline_takes_the_variant_grammar(tmp_path):
    store = ResultsDir(tmp_path / "results").create()
    for record in (
        make_record("f", timed=(0.1,) * 100),
        make_record("f10", timed=(0.05,) * 100, steps_per_call=10),
        make_record("g", timed=(0.02,) * 100, device="gpu"),
    ):
        store.write_run(record)
    out = tmp_path / "out"
    result = run_cli(
        tmp_path, "report", str(store.root), "--baseline", "function:10", "--format", "csv",
        "--out", str(out), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out / "summary.csv").set_index("variant")
    assert frame.loc["function/float32@cpu", "speedup"] == pytest.approx(0.5)
    assert frame.loc["function:10/float32@cpu", "speedup"] == pytest.approx(1.0)
    assert pd.isna(frame.loc["function/float32@gpu", "speedup"])  # no function:10 on the gpu
    # Naming a device compares every cell with that device's baseline.
    result = run_cli(tmp_path, "report", str(store.root), "--baseline", "function@cpu", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Speedup vs function/float32@cpu" in result.stdout
    gpu_row = next(r for r in result.stdout.splitlines() if r.startswith("| function/float32@gpu"))
    assert "5.00×" in gpu_row  # 0.1 s on the cpu / 0.02 s on the gpu
