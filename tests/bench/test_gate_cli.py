"""tapebench compare and tapebench ab, run as a user would."""

import dataclasses
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
        (["BASE", "BASE", "--threshold", "0"], "'0' is not a finite positive number"),
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
        "3",
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
    assert "after 3 pairs" in result.stdout and "group-sequential interval" in result.stdout
    order = [
        line.split(": ")[0].split("] ")[1]
        for line in result.stderr.splitlines()
        if ": ok" in line and "] " in line
    ]
    assert order == ["baseline", "candidate", "candidate", "baseline", "baseline", "candidate"]
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


def _failed_store(root, statuses):
    store = ResultsDir(root).create()
    for i, status in enumerate(statuses):
        store.write_run(
            make_record(
                f"x{i}",
                status=status,
                reason="ValueError: boom",
                repeat=i,
                fingerprint={"tensorflow": "2.21.0", "cpu_model": "x"},
            )
        )
    return root


def test_compare_fails_when_every_candidate_run_failed(tmp_path):
    base = _store(tmp_path / "base", [0.040, 0.041, 0.039, 0.040, 0.0405])
    dead = _failed_store(tmp_path / "dead", ["failed", "oom", "timeout", "failed", "diverged"])
    result = run_cli(tmp_path, "compare", str(base), str(dead), "--json", str(tmp_path / "v.json"))
    assert result.returncode == 1, result.stderr
    assert "**candidate failed**: failed 2/5, oom 1/5, timeout 1/5, diverged 1/5" in result.stdout
    assert "(ValueError: boom); log: logs/x0.log" in result.stdout
    assert "**Gate: fail** (1 of 1 cell(s))" in result.stdout
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["fail"] is True and doc["verdicts"][0]["verdict"] == "candidate failed"
    assert "0 regression(s) and 1 failed candidate(s)" in result.stderr


def test_compare_leaves_profiling_runs_out(tmp_path):
    base = _store(tmp_path / "base", [0.040, 0.041, 0.039, 0.040, 0.0405])
    cand = _store(tmp_path / "cand", [0.0401, 0.0399, 0.0402, 0.040, 0.0398])
    slow = make_record(
        "p", timed=(0.09,) * 40, fingerprint={"tensorflow": "2.21.0", "cpu_model": "x"}
    )
    ResultsDir(cand).write_run(dataclasses.replace(slow, purpose="profile"))
    result = run_cli(tmp_path, "compare", str(base), str(cand), "--json", str(tmp_path / "v.json"))
    assert result.returncode == 0, result.stderr
    (verdict,) = json.loads((tmp_path / "v.json").read_text())["verdicts"]
    assert verdict["candidate_runs"] == 5 and verdict["verdict"] == "no change"


def test_compare_appends_the_markdown_to_a_summary_file(tmp_path):
    base = _store(tmp_path / "base", [0.040, 0.041, 0.039, 0.040, 0.0405])
    slow = _store(tmp_path / "slow", [0.048, 0.049, 0.0475, 0.0485, 0.048])
    summary = tmp_path / "out" / "summary.md"
    summary.parent.mkdir()
    summary.write_text("# Earlier step\n\n")
    result = run_cli(tmp_path, "compare", str(base), str(slow), "--summary", str(summary))
    assert result.returncode == 1
    text = summary.read_text()
    assert text.startswith("# Earlier step\n\n| Cell |") and "**regression**" in text
    assert text.endswith("\n\n") and text[len("# Earlier step\n\n") :].strip() in result.stdout
    assert sorted(p.name for p in summary.parent.iterdir()) == ["summary.md"]  # no temp left
    bad = run_cli(tmp_path, "compare", str(base), str(slow), "--summary", str(base / "runs"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert f"--summary {base / 'runs'}: is a directory" in bad.stderr
    assert bad.stdout == ""  # refused before any verdict is printed


@pytest.mark.slow
def test_ab_fails_when_every_candidate_run_fails(tmp_path):
    # Every candidate step is slowed far past the time limit: the candidate never
    # finishes a run, and the gate must fail rather than compare nothing.
    summary = tmp_path / "summary.md"
    tiny = ["--model", "tiny", "--steps-per-epoch", "15", "--timeout", "25"]
    result = run_cli(
        tmp_path,
        *["ab", "--baseline", "HEAD", *tiny, "--inject-delay-ms", "600000"],
        *["-o", str(tmp_path / "ab"), "--summary", str(summary)],
        timeout=600,
    )
    assert result.returncode == 1, result.stderr
    assert "**candidate failed**: candidate run timeout" in result.stdout
    assert len(list((tmp_path / "ab" / "candidate" / "runs").glob("*.json"))) == 1  # at once
    assert "**Gate: fail**" in summary.read_text()


def test_compare_ranks_timed_out_candidate_runs_as_the_slowest(tmp_path):
    # Two finished candidate runs are too few for a verdict; the three that timed out
    # count as slower than anything finished, and make it a regression.
    base = _store(tmp_path / "base", [0.040, 0.041, 0.039, 0.040, 0.0405])
    cand = _store(tmp_path / "cand", [0.046, 0.047])
    late = _failed_store(tmp_path / "late", ["timeout"] * 3)
    for run in (late / "runs").glob("*.json"):
        run.rename(cand / "runs" / run.name)
    result = run_cli(tmp_path, "compare", str(base), str(cand))
    assert result.returncode == 1, result.stdout
    assert "**regression**" in result.stdout and "3 candidate run(s) timed out" in result.stdout
