"""The CI gate's workflow step fails when ``tapebench ab`` does: its ``run:`` script is run
the way GitHub's runner runs it, with a stub ``tapebench`` on PATH."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "perf-gate.yml"
# How the runner starts a `run:` script (GitHub's docs, "jobs.<job_id>.steps[*].shell"):
# no shell given means `bash -e {0}` (no pipefail!); `shell: bash` adds pipefail.
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}


def read_steps(text: str) -> list[dict[str, str]]:
    """The steps of a workflow's single job: each step's top-level keys, with plain
    values and ``|`` / ``>`` block scalars; nested mappings (``with:``) are skipped.
    Enough YAML for this file, and it refuses what it does not understand."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "steps:")
    steps: list[dict[str, str]] = []
    item_indent = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if item_indent is None:
            item_indent = indent
        if indent < item_indent:
            break
        body = line.strip()
        if indent == item_indent:
            if not body.startswith("- "):
                raise ValueError(f"line {i + 1}: expected a step item")
            steps.append({})
            body = body[2:]
        elif indent != item_indent + 2:
            i += 1  # inside a nested mapping
            continue
        key, _, value = body.partition(":")
        value = value.strip()
        if value in ("|", ">"):
            block = []
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i].strip())
                i += 1
            steps[-1][key] = ("\n" if value == "|" else " ").join(block).strip() + "\n"
            continue
        if value.startswith(("|", ">")):
            raise ValueError(f"line {i + 1}: block scalar {value!r} not supported")
        steps[-1][key] = value
        i += 1
    return steps


def gate_step() -> dict[str, str]:
    steps = [s for s in read_steps(WORKFLOW.read_text()) if "tapebench ab" in s.get("run", "")]
    assert len(steps) == 1, steps
    return steps[0]


def run_step(step: dict[str, str], tmp_path: Path, exit_code: int) -> subprocess.CompletedProcess:
    """Runs the step's script as the runner would, with a stub tapebench that records its
    arguments and exits with ``exit_code``."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    stub = stubs / "tapebench"
    stub.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\n'
        f'echo "| Cell | Verdict |"\nexit {exit_code}\n'
    )
    stub.chmod(0o755)
    # The runner substitutes expressions before the shell sees the script.
    script = re.sub(r"\$\{\{\s*github\.base_ref\s*\}\}", "main", step["run"])
    assert "${{" not in script, script
    path = tmp_path / "step.sh"
    path.write_text(script)
    shell = step.get("shell")
    if shell not in SHELLS:
        pytest.fail(f"the gate step uses shell {shell!r}, which this test does not model")
    env = {
        **os.environ,
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    return subprocess.run(
        [*SHELLS[shell], str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("exit_code", [0, 1, 2])
def test_the_gate_step_fails_exactly_when_tapebench_ab_does(tmp_path, exit_code):
    result = run_step(gate_step(), tmp_path, exit_code)
    assert result.returncode == exit_code, result.stderr


def test_the_gate_step_hands_the_summary_file_to_tapebench(tmp_path):
    run_step(gate_step(), tmp_path, 0)
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:3] == ["ab", "--baseline", "origin/main"]
    assert args[args.index("--summary") + 1] == str(tmp_path / "summary.md")


def test_the_reader_reads_block_scalars_and_defaults():
    text = (
        "jobs:\n  j:\n    steps:\n      - uses: a@v1\n        with:\n          x: 1\n"
        "      - run: >\n          one\n          two\n      - name: n\n        shell: bash\n"
        "        run: |\n          a\n          b\n"
    )
    assert read_steps(text) == [
        {"uses": "a@v1", "with": ""},
        {"run": "one two\n"},
        {"name": "n", "shell": "bash", "run": "a\nb\n"},
    ]
