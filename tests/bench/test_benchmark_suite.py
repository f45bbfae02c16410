"""The pytest-benchmark suite keeps per-step figures: two real saved runs of the tiny model,
calibrated to very different steps per round, compare per step -- in pytest-benchmark's
own ``--benchmark-compare-fail`` and in ``tapebench compare``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from reports.sides import load_side
from tests.bench.test_cli import run_cli
from tests.conftest import ROOT, subprocess_env

SUITE = "bench/benchmarks/test_steps.py"
CASES = ("tiny-function/float32", "tiny-fit/float32")


def _suite(tmp_path, round_s: float, *options: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(tmp_path)
    env["TAPEBENCH_BENCHMARK_ROUND_S"] = str(round_s)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *(f"{SUITE}::test_train_step[{case}]" for case in CASES),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--benchmark-storage={tmp_path / 'storage'}",
            *options,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A run calibrated to one step per round, saved; then one to ~0.5 s rounds (tens to
    hundreds of steps), compared with it by pytest-benchmark with a 300% fail threshold."""
    tmp = tmp_path_factory.mktemp("benchmarks")
    short = _suite(tmp, 0.001, "--benchmark-save=short", f"--benchmark-json={tmp / 'a.json'}")
    assert short.returncode == 0, short.stdout + short.stderr
    long = _suite(
        tmp,
        0.5,
        "--benchmark-compare=0001",
        "--benchmark-compare-fail=median:300%",
        f"--benchmark-json={tmp / 'b.json'}",
    )
    return tmp, long


def _benchmarks(path):
    return {b["param"]: b for b in json.loads(path.read_text())["benchmarks"]}


def test_the_saved_statistics_are_per_step(two_runs):
    tmp, long = two_runs
    assert long.returncode == 0, long.stdout + long.stderr  # no false regression
    a, b = _benchmarks(tmp / "a.json"), _benchmarks(tmp / "b.json")
    assert set(a) == set(b) == set(CASES)
    for case in CASES:
        for bench in (a[case], b[case]):
            info = bench["extra_info"]
            assert bench["stats"]["iterations"] == info["steps_per_round"]
            assert info["stats_per"] == "step"
        # The premise: a very different amount of work per round.
        assert (
            b[case]["extra_info"]["steps_per_round"]
            >= 10 * a[case]["extra_info"]["steps_per_round"]
        )
    # fit is timed through the function Keras fit compiles, not tapebench's own step.
    assert a["tiny-fit/float32"]["extra_info"]["step_function"] == "multi_step_on_iterator"
    assert a["tiny-function/float32"]["extra_info"]["step_function"] == "train_step"


def test_tapebench_compare_reads_per_step_figures(two_runs):
    tmp, _ = two_runs
    out = tmp / "verdicts.json"
    result = run_cli(tmp, "compare", str(tmp / "a.json"), str(tmp / "b.json"), "--json", str(out))
    assert result.returncode == 0, result.stderr
    verdicts = json.loads(out.read_text())["verdicts"]
    assert len(verdicts) == len(CASES)
    b = _benchmarks(tmp / "b.json")
    for v in verdicts:
        case = v["cell"].split("[", 1)[1].rstrip("]")
        assert v["candidate_median_s"] == pytest.approx(b[case]["stats"]["median"])
        assert 1 / 4 < v["ratio"] < 4  # round times differ tens of times; steps alike


def test_files_that_stored_round_times_are_read_per_step_too(two_runs, tmp_path):
    # Before one iteration was one step, a file held whole rounds (iterations 1).
    tmp, _ = two_runs
    doc = json.loads((tmp / "b.json").read_text())
    for bench in doc["benchmarks"]:
        steps = bench["extra_info"]["steps_per_round"]
        bench["stats"]["data"] = [x * steps for x in bench["stats"]["data"]]
        bench["stats"]["median"] *= steps
        bench["stats"]["iterations"] = 1
    (tmp_path / "rounds.json").write_text(json.dumps(doc))
    new, old = load_side(tmp / "b.json"), load_side(tmp_path / "rounds.json")
    assert new.cells.keys() == old.cells.keys()
    for cell, runs in new.cells.items():
        np.testing.assert_allclose(old.cells[cell].finished[0], runs.finished[0], rtol=1e-12)
