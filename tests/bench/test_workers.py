"""The one worker pump and its stop rules, on stand-in worker processes (no TensorFlow).

A stand-in speaks the worker's event protocol on a pipe and behaves as told: finish,
die, ignore SIGTERM, or answer it with the ``interrupted`` end a real worker sends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.matrix import workers as workers_module
from bench.matrix.cells import Cell
from bench.matrix.job import Job, WorkerTask
from bench.matrix.multiworker import LocalWorker, WorkerGroup
from bench.matrix.process import RunAssembler, reap
from bench.matrix.signals import StopRequest
from bench.matrix.workers import Worker, pump, run_status
from trainloop.config import Variant, Workload

STAND_IN = """
import json, os, signal, sys, time
fd, behaviour = int(sys.argv[1]), sys.argv[2]
def send(event, **data):
    os.write(fd, (json.dumps({"event": event, **data}) + "\\n").encode())
def on_term(signum, frame):
    send("end", status="interrupted", reason="interrupted by a signal")
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if behaviour == "stubborn" else on_term)
send("hello", runtime={})
if behaviour == "die":
    os._exit(3)
if behaviour in ("ok", "diverged"):
    send("end", status=behaviour, reason=None if behaviour == "ok" else "loss became nan")
    os._exit(0)
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 30)
send("end", status="ok", reason=None)
"""

JOB = Job(WorkerTask("r", Cell(Variant(), Workload(model="tiny", dataset="synthetic"))), "inv", 0)


def start(tmp_path: Path, index: int, behaviour: str, *extra: str) -> Worker:
    """A stand-in worker in its own session, as spawn_worker starts real ones."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    read_fd, write_fd = os.pipe()
    log = tmp_path / f"w{index}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(write_fd), behaviour, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    # Its first event comes after its SIGTERM handler is set: a signal cannot beat it.
    assert select.select([read_fd], [], [], 30)[0], "the stand-in never started"
    return Worker(index, proc, read_fd, log, RunAssembler(JOB))


def finish(workers: list[Worker], group: WorkerGroup, **pump_args: object):
    outcome, culprit = pump(workers, **pump_args)  # type: ignore[arg-type]
    for w in workers:
        reap(w.proc)
    return outcome, run_status(outcome, pump_args.get("timeout_s"), workers, culprit, group)


def group_of(count: int) -> WorkerGroup:
    local = tuple(LocalWorker(i, Path(f"w{i}.log"), {}) for i in range(count))
    return WorkerGroup(count, local, tuple(f"127.0.0.1:{i}" for i in range(count)))


SINGLE = WorkerGroup(1, (LocalWorker(0, Path("w0.log"), {}),))


def test_a_second_stop_request_kills_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(workers_module, "GRACE_S", 3600.0)  # only the second request kills
    worker = start(tmp_path, 0, "stubborn", "8")  # ignores SIGTERM, would end ok in 8 s
    stop = StopRequest()
    stop.request()
    stop.request()
    outcome, status = finish([worker], SINGLE, timeout_s=None, on_event=None, stop=stop)
    assert worker.proc.returncode == -signal.SIGKILL
    assert outcome == "interrupted"
    assert status == ("interrupted", "tapebench was interrupted during this run")


def test_a_stop_request_lets_the_worker_send_its_steps(tmp_path):
    worker = start(tmp_path, 0, "sleep")
    stop = StopRequest()
    stop.request()
    _, status = finish([worker], SINGLE, timeout_s=None, on_event=None, stop=stop)
    assert worker.proc.returncode == 0  # it answered SIGTERM itself
    assert worker.assembler.outcome == ("interrupted", "interrupted by a signal")
    assert status[0] == "interrupted"


def test_the_timeout_stops_every_worker_of_a_group(tmp_path):
    workers = [start(tmp_path, i, "sleep") for i in range(2)]
    outcome, status = finish(workers, group_of(2), timeout_s=0.5, on_event=None, stop=StopRequest())
    assert outcome == "timeout" and status == ("timeout", "exceeded the 0.5 s run timeout")
    assert [w.assembler.outcome[0] for w in workers] == ["interrupted", "interrupted"]


def test_a_dead_worker_stops_the_others_and_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(workers_module, "PEER_GRACE_S", 3600.0)
    workers = [start(tmp_path, 0, "sleep"), start(tmp_path, 1, "die")]
    events: list[dict] = []
    outcome, status = finish(
        workers, group_of(2), timeout_s=None, on_event=events.append, stop=StopRequest()
    )
    assert outcome == "done"
    assert workers[0].assembler.outcome == ("interrupted", "interrupted by a signal")
    assert status == ("failed", "worker 1 of 2: worker exited with code 3")
    assert [e["event"] for e in events] == ["hello", "end"]  # the chief's events only


@pytest.mark.parametrize(
    "behaviours, expected",
    [
        (["ok"], ("ok", None)),
        (["diverged"], ("diverged", "loss became nan")),
        (["die"], ("failed", "worker exited with code 3")),
    ],
)
def test_one_worker_keeps_the_status_it_ended_with(tmp_path, behaviours, expected):
    workers = [start(tmp_path, i, b) for i, b in enumerate(behaviours)]
    _, status = finish(workers, SINGLE, timeout_s=None, on_event=None, stop=StopRequest())
    assert status == expected


def test_a_group_reports_its_first_failing_worker_by_index(tmp_path):
    workers = [start(tmp_path, 0, "ok"), start(tmp_path, 1, "diverged")]
    _, status = finish(workers, group_of(2), timeout_s=None, on_event=None, stop=StopRequest())
    assert status == ("diverged", "worker 1 of 2: loss became nan")
    summary = workers[1].summary(rss=5)
    assert (summary["index"], summary["status"], summary["peak_rss_bytes"]) == (1, "diverged", 5)
    assert json.dumps(summary)  # stored in the record's info as it is
