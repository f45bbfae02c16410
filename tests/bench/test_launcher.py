"""Workers forked from a zygote: fresh runtimes, exit codes and peak RSS, and the fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.matrix.launcher import Launcher, Zygote, ZygoteError
from bench.matrix.process import _child_env

WORKER = """
import json, os, sys

def main():
    job = json.loads(sys.argv[1])
    {body}
    with os.fdopen(job["events_fd"], "w") as events:
        events.write(json.dumps({{"event": "end", "status": "ok", "pid": os.getpid(),
                                 "sid": os.getsid(0), "tf": initialized()}}) + "\\n")
    return int(job.get("exit_code", 0))

def initialized():
    from tensorflow.python.eager import context
    ctx = context.context_safe()
    return ctx is not None and ctx._context_handle is not None
"""


def _tree(root: Path, body: str = "pass", at_import: str = "") -> Path:
    """A source tree whose ``bench.worker`` reports what it sees and exits."""
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "__init__.py").write_text("")
    (root / "bench" / "worker.py").write_text(at_import + WORKER.format(body=body))
    return root


def _fork(zygote: Zygote, tmp_path: Path, job: dict) -> tuple[int, dict]:
    read_fd, write_fd = os.pipe()
    with open(tmp_path / "worker.log", "wb") as log:
        pid = zygote.fork(job, {"TAPEBENCH_PROBE": "1"}, log.fileno(), write_fd)
    os.close(write_fd)
    with os.fdopen(read_fd) as events:
        return pid, json.loads(events.readline())


def test_a_forked_worker_is_a_new_process_with_no_runtime_yet(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "src", body="assert os.environ['TAPEBENCH_PROBE'] == '1'")
    launcher = Launcher(tmp_path)
    try:
        zygote = launcher.zygote(str(tree), _child_env("cpu", tree))
        assert zygote is not None
        pid, first = _fork(zygote, tmp_path, {"run_id": "a", "exit_code": 3})
        _, second = _fork(zygote, tmp_path, {"run_id": "b"})
        assert first["pid"] == pid != second["pid"]
        assert first["sid"] == pid  # its own session: stopping it stops its group only
        assert first["tf"] is False and second["tf"] is False  # nothing ran before the fork
        status, maxrss_kb = zygote.wait_for(pid)
        assert os.waitstatus_to_exitcode(status) == 3
        assert maxrss_kb * 1024 > 100 * 2**20  # TensorFlow is loaded: the RSS is real
    finally:
        launcher.close()


def test_a_zygote_whose_runtime_started_is_refused(tmp_path: Path) -> None:
    """Anything TensorFlow executed before the fork would be shared by every run: the zygote
    refuses, and the launcher falls back to starting workers the usual way."""
    tree = _tree(tmp_path / "src", at_import="import tensorflow as tf\ntf.constant(1) + 1\n")
    zygote = Zygote(str(tree), _child_env("cpu", tree), tmp_path / "z.log")
    with pytest.raises(ZygoteError, match="runtime started"):
        zygote.start()
    zygote.close()
    launcher = Launcher(tmp_path)
    assert launcher.zygote(str(tree), _child_env("cpu", tree)) is None
    launcher.close()


@pytest.mark.parametrize("flag, started_by", [([], "zygote"), (["--exec-workers"], "python")])
def test_runs_say_how_their_worker_started(tmp_path: Path, flag: list, started_by: str) -> None:
    from reports.load import load_records
    from tests.bench.test_cli import run_cli
    from tests.bench.test_matrix import QUICK

    out = tmp_path / "out"
    result = run_cli(tmp_path, "run", *QUICK, "--variants", "function", *flag, "-o", str(out))
    assert result.returncode == 0, result.stderr
    (record,) = load_records([out])
    assert record.status == "ok"
    assert record.info["started_by"].startswith(started_by)
    assert record.info["tracing_count_after_first"] == 1  # traced afresh in this run
    assert record.info["flops_per_step_profiler"] > 0  # counted after training, repeat 0
    cpu, wall = record.steps.timed_cpu_seconds, record.steps.timed_seconds
    assert len(cpu) == len(wall) and all(c > 0 for c in cpu)  # the process's CPU per step
    startup = record.info["startup"]
    assert 0 <= startup["worker"] <= startup["data"] <= startup["ready"] <= startup["first_timed"]
