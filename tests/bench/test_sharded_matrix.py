"""A matrix run as two shards reports what the same matrix run in one piece reports.

Real ``tapebench run`` invocations in subprocesses (tiny model, synthetic data, a few
steps), as two machines of a CI matrix would run them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from tests.bench.test_cli import run_cli
from tests.bench.test_matrix import QUICK


def report_csv(tmp_path: Path, *dirs: Path) -> pd.DataFrame:
    result = run_cli(tmp_path, "report", *map(str, dirs), "--format", "csv", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "shard" not in result.stderr  # nothing missing, nothing run twice
    return pd.read_csv(io.StringIO(result.stdout))


def test_two_shards_report_the_cells_and_run_counts_of_the_whole_matrix(tmp_path):
    matrix = [*QUICK, "--variants", "eager,function", "--repeats", "2", "--eval-examples", "0"]
    whole, first, second = (tmp_path / d for d in ("whole", "shard1", "shard2"))
    for out, shard in ((whole, ()), (first, ("--shard", "1/2")), (second, ("--shard", "2/2"))):
        result = run_cli(tmp_path, "run", *matrix, *shard, "-o", str(out))
        assert result.returncode == 0, result.stderr
        if shard:
            assert f"this is shard {shard[1]} of plan" in result.stderr

    manifests = [
        json.loads(next((d / "invocations").glob("*.json")).read_text()) for d in (first, second)
    ]
    assert [m["shard"]["index"] for m in manifests] == [1, 2]
    assert manifests[0]["shard"]["plan"] == manifests[1]["shard"]["plan"]
    runs = [{p.name for p in (d / "runs").glob("*.json")} for d in (first, second)]
    assert len(runs[0]) == len(runs[1]) == 2 and not runs[0] & runs[1]

    columns = ["variant", "status", "runs", "runs_ok", "steps"]
    merged = report_csv(tmp_path, first, second)[columns].sort_values("variant")
    alone = report_csv(tmp_path, whole)[columns].sort_values("variant")
    assert list(alone["variant"]) == ["eager/float32@cpu", "function/float32@cpu"]
    assert list(alone["runs"]) == [2, 2] and (alone["status"] == "ok").all()
    pd.testing.assert_frame_equal(merged.reset_index(drop=True), alone.reset_index(drop=True))
