"""The overhead benchmark runs every condition side by side (figures are not asserted:
they measure this machine, not the code)."""

from __future__ import annotations

import subprocess
import sys

from bench.benchmarks.overhead import COMPARISONS
from tests.conftest import ROOT, subprocess_env


def _overhead(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.benchmarks.overhead", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
        cwd=ROOT,
        timeout=600,
    )


def test_the_harness_and_the_bare_loops_run_side_by_side(tmp_path):
    result = _overhead(tmp_path, "--model", "tiny", "--rounds", "2", "--steps", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "function/float32@cpu, tiny: 2 rounds of 3-step blocks"
    conditions = {name for top, bottom, _ in COMPARISONS for name in (top, bottom)}
    for name in conditions:
        assert any(line.strip().startswith(f"{name} ") and "ms per step" in line for line in lines)
    for _, _, label in COMPARISONS:
        assert any(line.startswith(f"  {label}") and "95% CI" in line for line in lines)
    assert lines[-1].startswith("machinery alone")


def test_a_variant_it_cannot_compare_is_one_line_and_exit_2(tmp_path):
    result = _overhead(tmp_path, "--variant", "function+staged")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("function/float32+staged@cpu: needs the tf.data input, one step per call")
    )
