"""tapebench compare and tapebench ab, run as a user would."""

import json
import re
import subprocess

import pytest

from bench.matrix.store import ResultsDir
from tests.bench.test_cli import run_cli
from tests.conftest import ROOT
from tests.reports.factories import make_record


def _store(root, medians, **fingerprint):
    """One run per median, each with 40 steps of +-2% around it."""
    store = ResultsDir(root).create()
    for i, m in enumerate(medians):
        steps = tuple(m * (1 + 0.02 * ((k % 5) - 2) / 2) for k in range(40))
        store.write_run(
            make_record(
                f"r{i}",
                timed=steps,
                repeat=i,
                fingerprint={"tensorflow": "2.21.0", "cpu_model": "x", **fingerprint},
            )
        )
    return root


def test_compare_passes_on_no_change_and_fails_on_a_regression(tmp_path):
    base = _store(tmp_path / "base", [0.040, 0.041, 0.039, 0.040, 0.0405])
    same = _store(tmp_path / "same", [0.0401, 0.0399, 0.0402, 0.040, 0.0398])
    slow = _store(tmp_path / "slow", [0.048, 0.049, 0.0475, 0.0485, 0.048])
    ok = run_cli(tmp_path, "compare", str(base), str(same), "--json", str(tmp_path / "v.json"))
    assert ok.returncode == 0, ok.stderr
    assert "**no change**" in ok.stdout
    assert json.loads((tmp_path / "v.json").read_text())["regression"] is False
    bad = run_cli(tmp_path, "compare", str(base), str(slow))
    assert bad.returncode == 1
    assert re.search(r"\*\*regression\*\*: \+(19|20)\.\d%", bad.stdout)


def test_compare_refuses_different_environments_unless_allowed(tmp_path):
    base = _store(tmp_path / "base", [0.04] * 4)
    other = _store(tmp_path / "other", [0.04] * 4, tensorflow="2.20.0")
    refused = run_cli(tmp_path, "compare", str(base), str(other))
    assert refused.returncode == 2
    assert "differ in tensorflow" in refused.stderr and len(refused.stderr.splitlines()) == 1
    allowed = run_cli(tmp_path, "compare", str(base), str(other), "--allow-mixed-environments")
    assert allowed.returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["nowhere", "nowhere"], "nowhere: no such file or directory"),
        (["BASE", "BASE", "--threshold", "0"], "'0' is not a positive number"),
    ],
)
def test_compare_usage_errors(tmp_path, args, message):
    base = _store(tmp_path / "base", [0.04] * 3)
    args = [str(base) if a == "BASE" else a for a in args]
    result = run_cli(tmp_path, "compare", *args)
    assert result.returncode == 2 and message in result.stderr


def test_compare_reads_pytest_benchmark_json(tmp_path):
    def save(path, medians):
        path.mkdir()
        for i, m in enumerate(medians):
            doc = {
                "machine_info": {"cpu": {"brand_raw": "x"}},
                "benchmarks": [
                    {
                        "fullname": "test_steps.py::test_train_step[tiny-function/float32]",
                        "stats": {
                            "median": m * 4,
                            "data": [m * 4 * (1 + d) for d in (-0.01, 0, 0.01, 0.005, -0.005)],
                        },
                        "extra_info": {"steps_per_round": 4},
                    }
                ],
            }
            (path / f"{i:04d}_run.json").write_text(json.dumps(doc))
        return path

    base = save(tmp_path / "b", [0.010, 0.0101, 0.0099, 0.010])
    cand = save(tmp_path / "c", [0.013, 0.0131, 0.0129, 0.013])
    result = run_cli(tmp_path, "compare", str(base), str(cand))
    assert result.returncode == 1, result.stderr
    assert "test_train_step[tiny-function/float32]" in result.stdout
    assert "| 10.000 (4) | 13.000 (4) |" in result.stdout


# The last tree before the worker task became a typed value: its worker must still read
# the task this tree writes (`ab` starts the baseline revision's own worker).
OLDER_TREE = "76802cf"


def _commit(rev: str) -> str | None:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return found.stdout.strip() or None


def test_ab_measures_an_older_revision_against_this_source(tmp_path):
    # A shallow clone may lack the older tree; HEAD still exercises the mechanics.
    rev = OLDER_TREE if _commit(OLDER_TREE) else "HEAD"
    commit = _commit(rev)
    out = tmp_path / "ab"
    result = run_cli(
        tmp_path,
        "ab",
        "--baseline",
        rev,
        "--runs",
        "2",
        "--model",
        "tiny",
        "--steps-per-epoch",
        "15",
        "-o",
        str(out),
        "--json",
        str(tmp_path / "v.json"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "**inconclusive**: 2 run(s) on one side; need 3 or more" in result.stdout
    order = [
        line.split(": ")[0].split("] ")[1]
        for line in result.stderr.splitlines()
        if ": ok" in line and "] " in line
    ]
    assert order == ["baseline", "candidate", "candidate", "baseline"]  # A B, B A
    base = ResultsDir(out / "baseline")
    records = [json.loads(p.read_text()) for p in base.runs.glob("*.json")]
    assert {r["run"]["fingerprint"]["git_commit"] for r in records} == {commit}
    assert {r["run"]["fingerprint"]["source_root"] for r in records} == {
        str(out / "baseline-source")
    }
    again = run_cli(tmp_path, "ab", "--baseline", "HEAD", "-o", str(out))
    assert again.returncode == 2 and "is not empty" in again.stderr
    bad = run_cli(tmp_path, "ab", "--baseline", "no-such-rev", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "cannot export revision 'no-such-rev'" in bad.stderr
