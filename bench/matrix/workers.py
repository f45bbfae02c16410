"""Running a job: its worker processes (one, or one per replica of a multi-worker cell),
read by one loop, and the record they make.

Stop rules, the same for one worker or N:

* a stop request (Ctrl-C, SIGTERM) or the run timeout asks every worker to stop (SIGTERM,
  after which a worker sends the steps it finished) and kills them :data:`GRACE_S` later;
* a worker that ends without finishing asks the others to stop, and kills them
  :data:`PEER_GRACE_S` later: a cluster that lost a member cannot go on, and must not hang;
* a second stop request kills every worker at once.
"""

from __future__ import annotations

import os
import selectors
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.matrix.job import Job
from bench.matrix.launcher import ForkedWorker, Launcher
from bench.matrix.multiworker import WorkerGroup, plan_workers
from bench.matrix.process import (
    RunAssembler,
    WorkerProcess,
    describe_exit,
    parse_event,
    reap,
    signal_worker,
    spawn_worker,
)
from bench.matrix.signals import StopRequest
from reports.schema import RunRecord, utc_timestamp

GRACE_S = 15.0  # how long a stopping worker may take to send its partial results
PEER_GRACE_S = 5.0  # how long the rest of a group may take to stop after one worker died
EventHook = Callable[[dict[str, Any]], None]


@dataclass
class Worker:
    """One started worker process: its pipe, its log and what it has reported."""

    index: int  # in the run's group of workers
    proc: WorkerProcess
    fd: int
    log: Path
    assembler: RunAssembler
    buffer: bytes = b""

    def read(self, on_event: EventHook | None) -> bool:
        """Reads what the pipe holds and feeds each whole event on; False at its end."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return False
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        for line in lines:
            event = parse_event(line)
            if event is not None:
                self.assembler.feed(event)
                if on_event:
                    on_event(event)
        return True

    def outcome(self) -> tuple[str, str | None]:
        """The (status, reason) it ended with; ``failed`` and why, if it sent no end.
        Call after :func:`reap`."""
        code = self.proc.returncode
        return self.assembler.outcome or ("failed", describe_exit(code or 0, self.log))

    def summary(self, rss: int) -> dict[str, Any]:
        """What ``info["workers"]`` holds about this worker."""
        status, reason = self.outcome()
        timed = self.assembler.steps.timed_seconds
        return {
            "index": self.index,
            "status": status,
            "reason": reason,
            "median_step_s": statistics.median(timed) if timed else None,
            "peak_rss_bytes": rss,
            "exit_code": self.proc.returncode,
            "log_file": str(self.log),
        }


def _signal_all(workers: list[Worker], signum: int) -> None:
    for w in workers:
        signal_worker(w.proc, signum)


class _Pump:
    """The state of one :func:`pump`: pipes still open, the outcome, the stop deadline."""

    def __init__(self, workers: list[Worker], timeout_s: float | None, stop: StopRequest) -> None:
        self.workers, self.timeout_s, self.stop = workers, timeout_s, stop
        self.open = {w.fd: w for w in workers}
        self.outcome = "done"
        self.culprit: Worker | None = None
        self.deadline: float | None = None
        self.killed = False
        self.t0 = time.monotonic()

    def read(self, sel: selectors.BaseSelector, on_event: EventHook | None) -> None:
        """Reads every pipe that is ready; notes the first worker gone before finishing."""
        for key, _ in sel.select(timeout=0.25):
            worker = self.open[int(key.fd)]
            if worker.read(on_event if worker is self.workers[0] else None):
                continue
            sel.unregister(worker.fd)
            os.close(worker.fd)
            del self.open[worker.fd]
            if self.culprit is None and (worker.assembler.outcome or ("",))[0] != "ok":
                self.culprit = worker

    def enforce(self, now: float) -> None:
        """Applies the stop rules (see the module docstring)."""
        if self.stop.requested:
            self.outcome = "interrupted"
        elif self.outcome == "done" and self.timeout_s and now - self.t0 > self.timeout_s:
            self.outcome = "timeout"
        ending = self.outcome != "done" or self.culprit is not None
        if self.deadline is None and self.open and ending:
            _signal_all(self.workers, signal.SIGTERM)
            self.deadline = now + (GRACE_S if self.culprit is None else PEER_GRACE_S)
        overdue = self.deadline is not None and (now > self.deadline or self.stop.urgent)
        if overdue and not self.killed:
            _signal_all(self.workers, signal.SIGKILL)
            self.killed = True


def pump(
    workers: list[Worker],
    timeout_s: float | None,
    on_event: EventHook | None,
    stop: StopRequest,
) -> tuple[str, Worker | None]:
    """Feeds every worker's events to its assembler (the first worker's also to
    ``on_event``) until every pipe has closed, applying the stop rules above; the run
    timeout counts from this call.

    Returns ``done``, ``timeout`` or ``interrupted``, and the first worker whose pipe closed
    before it finished (None if none did).
    """
    state = _Pump(workers, timeout_s, stop)
    with selectors.DefaultSelector() as sel:
        for fd in state.open:
            sel.register(fd, selectors.EVENT_READ)
        while state.open:
            try:
                state.read(sel, on_event)
            except KeyboardInterrupt:
                stop.request()
            state.enforce(time.monotonic())
    return state.outcome, state.culprit


def run_status(
    outcome: str,
    timeout_s: float | None,
    workers: list[Worker],
    culprit: Worker | None,
    group: WorkerGroup,
) -> tuple[str, str | None]:
    """The run's (status, reason): the timeout or the stop request if either ended it;
    else the first worker that did not end ``ok`` (the one that ended first, if any)."""
    if outcome == "timeout":
        return "timeout", f"exceeded the {timeout_s:g} s run timeout"
    if outcome == "interrupted":
        return "interrupted", "tapebench was interrupted during this run"
    for worker in [culprit, *workers] if culprit else workers:
        status, reason = worker.outcome()
        if status != "ok":
            if group.multiworker:
                reason = f"worker {worker.index} of {group.count}: {reason or status}"
            return status, reason
    return "ok", None


def execute_job(
    job: Job,
    log_file: Path,
    timeout_s: float | None = None,
    on_event: EventHook | None = None,
    stop: StopRequest | None = None,
    launcher: Launcher | None = None,
) -> RunRecord:
    """Runs ``job`` in fresh worker processes (forked by ``launcher``'s zygotes where it
    has them) and returns its record.

    When ``stop`` is requested (or KeyboardInterrupt arrives, which then requests it), the
    record has status ``interrupted`` with the steps finished so far. A multi-worker run's
    record is the chief's (worker 0's), with every worker in ``info["workers"]`` and the
    sum of their peak RSS.
    """
    stop = stop or StopRequest()
    group = plan_workers(job, log_file)
    started, t0 = utc_timestamp(), time.monotonic()
    workers = [
        Worker(w.index, *spawn_worker(job, w.log, w.env, launcher), w.log, RunAssembler(job))
        for w in group.local
    ]
    outcome, culprit = pump(workers, timeout_s, on_event, stop)
    rss = [reap(w.proc) for w in workers]
    status, reason = run_status(outcome, timeout_s, workers, culprit, group)
    chief = workers[0]
    chief.assembler.info["startup"] = chief.assembler.startup(t0)
    chief.assembler.info["started_by"] = (
        "zygote" if isinstance(chief.proc, ForkedWorker) else "python -m bench.worker"
    )
    if group.multiworker:
        chief.assembler.info["workers"] = [w.summary(r) for w, r in zip(workers, rss, strict=True)]
        chief.assembler.info["cluster"] = list(group.addresses)
    return chief.assembler.record(
        status,
        reason,
        started_at=started,
        finished_at=utc_timestamp(),
        wall_seconds=time.monotonic() - t0,
        peak_rss_bytes=sum(rss),
        exit_code=chief.proc.returncode,
        log_file=str(chief.log),
    )
