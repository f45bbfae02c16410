"""The sharded-matrix workflow: its shard matrix matches the N of its --shard K/N, each
tapebench command line parses, the steps fail when tapebench fails, and the report job
collects every shard's artifact.

Each ``run:`` script is executed as GitHub's runner executes it, with a stub ``tapebench``
on PATH that records its arguments and exits as told.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from bench.cli import create_parser
from bench.cli.run import plan_cells
from bench.matrix.plan import create_plan
from reports.shards import Shard
from tests.conftest import ROOT

yaml = pytest.importorskip("yaml")

WORKFLOW = ROOT / ".github" / "workflows" / "sharded-matrix.yml"
# How the runner starts a `run:` script (GitHub's docs, "jobs.<job_id>.steps[*].shell"):
# no shell given means `bash -e {0}` (no pipefail); `shell: bash` adds pipefail.
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}
STUB = '#!/bin/sh\nprintf "%s\\n" "$@" > "$STUB_ARGS"\nexit "$STUB_EXIT"\n'


@pytest.fixture(scope="module")
def jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def expand(text: str, shard: int) -> str:
    """``text`` with the ``${{ matrix.shard }}`` expressions the runner substitutes."""
    return re.sub(r"\$\{\{\s*matrix\.shard\s*\}\}", str(shard), text)


def run_step(tmp_path: Path, step: dict, shard: int, exit_code: int) -> tuple[int, list[str]]:
    """Runs ``step``'s script with a ``tapebench`` that exits ``exit_code``; returns the
    script's exit code and the arguments tapebench got."""
    bin_dir, script = tmp_path / "bin", tmp_path / "step.sh"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "tapebench").write_text(STUB)
    (bin_dir / "tapebench").chmod(0o755)
    script.write_text(expand(step["run"], shard))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STUB_ARGS": str(tmp_path / "args"),
        "STUB_EXIT": str(exit_code),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "TAPEBENCH_HISTORY_DB": str(tmp_path / "history.sqlite"),
    }
    done = subprocess.run([*SHELLS[step.get("shell")], str(script)], env=env, cwd=tmp_path)
    return done.returncode, (tmp_path / "args").read_text().splitlines()


def tapebench_steps(job: dict) -> list[dict]:
    return [s for s in job["steps"] if "tapebench" in s.get("run", "")]


def test_the_shard_matrix_is_the_n_of_the_command_and_each_shard_plans(tmp_path, jobs):
    job = jobs["shard"]
    (step,) = tapebench_steps(job)
    (count,) = re.findall(r"--shard \$\{\{\s*matrix\.shard\s*\}\}/(\d+)", step["run"])
    assert job["strategy"]["matrix"]["shard"] == list(range(1, int(count) + 1))
    assert job["strategy"]["fail-fast"] is False  # one failed shard leaves the others
    total, planned = 0, 0
    for shard in job["strategy"]["matrix"]["shard"]:
        code, argv = run_step(tmp_path, step, shard, 0)
        args = create_parser().parse_args(argv)
        assert code == 0 and args.command == "run" and args.shard == Shard(shard, int(count))
        cells, options, sources = plan_cells(args)
        plan = create_plan(cells, args.repeats, options, sources, shard=args.shard)
        total, planned = len(cells) * args.repeats, planned + len(plan.slots)
        assert {s.cell_index for s in plan.slots} == set(range(len(cells)))  # every cell
    assert planned == total


@pytest.mark.parametrize("name", ["shard", "report"])
def test_every_tapebench_step_fails_when_tapebench_fails(tmp_path, jobs, name):
    for step in tapebench_steps(jobs[name]):
        assert run_step(tmp_path, step, 2, 0)[0] == 0, step["run"]
        assert run_step(tmp_path, step, 2, 1)[0] != 0, step["run"]
        assert run_step(tmp_path, step, 2, 2)[0] != 0, step["run"]


def test_the_report_job_merges_every_shard_artifact(tmp_path, jobs):
    shard_job, report_job = jobs["shard"], jobs["report"]
    (upload,) = [s for s in shard_job["steps"] if "upload-artifact" in s.get("uses", "")]
    (download,) = [s for s in report_job["steps"] if "download-artifact" in s.get("uses", "")]
    names = [expand(upload["with"]["name"], k) for k in shard_job["strategy"]["matrix"]["shard"]]
    assert len(set(names)) == len(names)
    assert all(fnmatch.fnmatch(n, download["with"]["pattern"]) for n in names)
    assert download["with"]["merge-multiple"] is True
    (run_step_,) = tapebench_steps(shard_job)
    words = shlex.split(expand(run_step_["run"], 1))
    assert upload["with"]["path"].rstrip("/") == words[words.index("-o") + 1]
    assert "!cancelled()" in upload["if"] and "!cancelled()" in report_job["if"]
    assert report_job["needs"] == "shard"
    for step in tapebench_steps(report_job):
        args = create_parser().parse_args(run_step(tmp_path, step, 1, 0)[1])
        assert [str(p) for p in args.results] == [download["with"]["path"]]
