"""The tapebench command, run as a user would: in a subprocess, on files in tmp_path."""

import json
import subprocess

import pytest

from reports.load import load_records
from tests.conftest import subprocess_env, tapebench_cmd

# Planned steps and one run a cell (no adaptive sampling): what these tests count on.
FIXED = ["--precision", "none", "--repeats", "1"]
TINY = [
    *FIXED,
    "--model",
    "tiny",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "5",
    "--warmup-steps",
    "1",
    "--eval-examples",
    "64",
    "--batch-size",
    "32",
]


def run_cli(tmp_path, *args, timeout=600):
    return subprocess.run(
        tapebench_cmd(*args),
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "--modes", "eager,jit"],
            "'eager,jit': expected a comma-separated list of eager, function, xla",
        ),
        (["run", "--batch-size", "0"], "'0' is not an integer >= 1"),
        (["run", "--epochs", "two"], "'two' is not an integer >= 1"),
        (["run", "--dataset", "cifar10"], "'cifar10': expected a comma-separated list of mnist"),
        (["run", "--batch-sizes", "32,x"], "'x' is not an integer >= 1"),
        (["run", "--repeats", "0"], "'0' is not an integer >= 1"),
        (["run", "--timeout", "-3"], "'-3' is not a positive number"),
        (["run", "--cluster", "hostonly"], "'hostonly': expected at least two HOST:PORT"),
        (["run", "--matrix", "missing.toml"], "missing.toml: cannot read"),
        (["run", "--variants", "xla@tpu"], "device 'tpu' is not one of cpu, gpu"),
        (["run", "--variants", ","], "expected MODE[:STEPS_PER_CALL][/PRECISION]"),
        (["run", "--variants", "eager", "--modes", "xla"], "--variants cannot be combined"),
        (["run", "--dataset", "mnist"], "dataset mnist not found"),
        (["run", "--data-dir", "nowhere"], "--data-dir nowhere: no such directory"),
        (["fly"], "invalid choice: 'fly'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    output = ["-o", str(tmp_path / "out")] if args[:1] == ["run"] else []
    result = run_cli(tmp_path, *args, *output, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tapebench")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_missing_mnist_names_every_way_out(tmp_path):
    result = run_cli(tmp_path, "run", timeout=60)
    line = result.stderr.strip()
    for hint in ("--data-dir", "--dataset fashion_mnist", "--dataset synthetic"):
        assert hint in line


def test_run_compares_variants_and_stores_everything(tmp_path, mnist_dir):
    out = tmp_path / "out"
    result = run_cli(
        tmp_path,
        "run",
        *TINY,
        "--data-dir",
        str(mnist_dir),
        "-o",
        str(out),
        "--variants",
        "eager,function,xla/mixed_bfloat16",
        "--devices",
        "cpu,gpu",
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout
    for row in (
        "| eager/float32@cpu | ok |",
        "| function/float32@cpu | ok |",
        "| xla/mixed_bfloat16@cpu | ok |",
        "| function/float32@gpu | skipped: no GPU visible |",
    ):
        assert row in table
    assert "1.00×" in table  # the eager baseline against itself
    # TensorFlow's C++ logging stays out of the terminal but lands in the run logs.
    assert "cpu_feature_guard" not in result.stderr and "oneDNN" not in result.stderr
    records = load_records([out])
    assert sorted(r.status for r in records) == ["ok"] * 3 + ["skipped"] * 3
    ok = [r for r in records if r.status == "ok"]
    for r in ok:
        assert [p for p in r.steps.phase] == ["first", "warmup", "timed", "timed", "timed"]
        assert r.data_source["origin"] == "data-dir"
        assert r.fingerprint["tensorflow"].startswith("2.") and r.fingerprint["hostname"]
        assert r.peak_rss_bytes > 100 * 2**20  # a TensorFlow process, measured by wait4
        assert r.epochs[0].test_accuracy is not None
    assert any("tensorflow" in (out / "logs" / f"{r.run_id}.log").read_text().lower() for r in ok)
    manifest = json.loads(next((out / "invocations").glob("*.json")).read_text())
    assert len(manifest["cells"]) == 6 and manifest["argv"][:2] == ["tapebench", "run"]
    assert (
        out / "invocations" / f"{manifest['invocation_id']}.md"
    ).read_text().strip() == table.strip()


def test_python_dash_m_bench_and_synthetic_data(tmp_path):
    result = run_cli(
        tmp_path,
        "run",
        *TINY,
        "--dataset",
        "synthetic",
        "--devices",
        "cpu",
        "--variants",
        "function",
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    assert "| function/float32@cpu | ok |" in result.stdout
    assert "n/a |" in result.stdout  # no accuracy on synthetic data; no eager baseline
    assert "[1/1]" in result.stderr  # progress
