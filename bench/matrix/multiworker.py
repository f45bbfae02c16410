"""Multi-worker runs: N worker processes on 127.0.0.1 forming one TF_CONFIG cluster.

One run of a ``multiworker`` cell is N processes. Each gets ``TF_CONFIG`` naming all N
addresses and its own index, its own log (``<run_id>-w<i>.log``) and its own event pipe.
The chief's (worker 0's) events make the run record; every worker's outcome, median step
time, peak RSS and log go into ``info["workers"]``, and the run's peak RSS is their sum.

Nothing may hang: a worker that exits without finishing ends the run at once (the others
are stopped, then killed), with that worker's last log line as the reason; the per-run
timeout applies to the whole group; inside TensorFlow, collectives time out as well.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from bench.matrix.process import (
    GRACE_S,
    EventHook,
    Job,
    RunAssembler,
    describe_exit,
    execute_run,
    kill_worker,
    parse_event,
    reap,
    spawn_worker,
    stop_worker,
    timestamp,
)
from bench.matrix.signals import StopRequest
from reports.schema import RunRecord


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses``."""
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


def worker_log(log_file: Path, index: int) -> Path:
    """The log of worker ``index`` of the run logged at ``log_file``."""
    return log_file.with_name(f"{log_file.stem}-w{index}{log_file.suffix}")


def execute_multiworker_run(
    job: Job,
    log_file: Path,
    timeout_s: float | None = None,
    on_event: EventHook | None = None,
    stop: StopRequest | None = None,
) -> RunRecord:
    """Runs ``job`` as ``job.cell["replicas"]`` cooperating worker processes on
    127.0.0.1 -- or, with ``job.cluster`` (one worker per machine), only this machine's
    worker, ``job.task_index``."""
    stop = stop or StopRequest()
    count = int(job.cell["replicas"])
    if job.cluster is not None:
        if len(job.cluster) != count:
            raise ValueError(
                f"the cluster lists {len(job.cluster)} workers but the cell has {count} replicas"
            )
        addresses, local = list(job.cluster), [job.task_index]
    else:
        addresses, local = [f"127.0.0.1:{p}" for p in free_ports(count)], list(range(count))
    logs = [worker_log(log_file, i) for i in local]
    started, t0 = timestamp(), time.monotonic()
    workers = [
        spawn_worker(job, log, {"TF_CONFIG": tf_config(addresses, i)})
        for log, i in zip(logs, local, strict=True)
    ]
    assemblers = [RunAssembler(job) for _ in local]
    outcome, culprit = _pump_all(workers, assemblers, t0, timeout_s, on_event, stop, logs)
    rss = [reap(proc) for proc, _ in workers]
    summaries = [
        _summary(i, a, p.returncode, log, r)
        for i, a, (p, _), log, r in zip(local, assemblers, workers, logs, rss, strict=True)
    ]
    chief = assemblers[0]
    chief.info["workers"] = summaries
    chief.info["cluster"] = addresses
    run = dict(
        started_at=started,
        finished_at=timestamp(),
        wall_seconds=time.monotonic() - t0,
        peak_rss_bytes=sum(rss),
        exit_code=workers[0][0].returncode,
        log_file=str(logs[0]),
    )
    reason: str | None
    if outcome == "timeout":
        status, reason = "timeout", f"exceeded the {timeout_s:g} s run timeout"
    elif outcome == "interrupted":
        status, reason = "interrupted", "tapebench was interrupted during this run"
    elif culprit is not None:
        status = "failed"
        reason = f"worker {local[culprit]} of {count}: {summaries[culprit]['reason']}"
    else:
        ends = [a.end or {} for a in assemblers]
        bad = [i for i, e in enumerate(ends) if e.get("status") != "ok"]
        status = "ok" if not bad else str(ends[bad[0]].get("status") or "failed")
        reason = None if not bad else f"worker {local[bad[0]]}: {summaries[bad[0]]['reason']}"
    return chief.record(status, reason, **run)


def _summary(
    index: int, assembler: RunAssembler, code: int | None, log: Path, rss: int
) -> dict[str, Any]:
    end = assembler.end or {}
    timed = [
        s
        for s, p in zip(assembler.steps.seconds, assembler.steps.phase, strict=True)
        if p == "timed"
    ]
    return {
        "index": index,
        "status": end.get("status", "failed"),
        "reason": end.get("reason") or (None if end else describe_exit(code or 0, log)),
        "median_step_s": statistics.median(timed) if timed else None,
        "peak_rss_bytes": rss,
        "exit_code": code,
        "log_file": str(log),
    }


def _pump_all(
    workers: list[tuple[Any, int]],
    assemblers: list[RunAssembler],
    t0: float,
    timeout_s: float | None,
    on_event: EventHook | None,
    stop: StopRequest,
    logs: list[Path],
) -> tuple[str, int | None]:
    """Feeds every worker's events to its assembler until all pipes close.

    Returns (``done``/``timeout``/``interrupted``, the index of a worker that died first
    or None).
    """
    buffers = {fd: b"" for _, fd in workers}
    index = {fd: i for i, (_, fd) in enumerate(workers)}
    open_fds = set(buffers)
    outcome, culprit, deadline = "done", None, None
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        while open_fds:
            try:
                for key, _ in sel.select(timeout=0.25):
                    fd = int(key.fd)
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        sel.unregister(fd)
                        os.close(fd)
                        open_fds.discard(fd)
                        i = index[fd]
                        if culprit is None and (assemblers[i].end or {}).get("status") != "ok":
                            culprit = i  # gone without finishing: stop the others
                        continue
                    buffers[fd] += chunk
                    *lines, buffers[fd] = buffers[fd].split(b"\n")
                    for line in lines:
                        event = parse_event(line)
                        if event is not None:
                            assemblers[index[fd]].feed(event)
                            if on_event and index[fd] == 0:
                                on_event(event)
            except KeyboardInterrupt:
                stop.request()
            now = time.monotonic()
            if stop.requested:
                outcome = "interrupted"
            elif timeout_s and now - t0 > timeout_s:
                outcome = "timeout"
            if (outcome != "done" or culprit is not None) and deadline is None:
                for proc, _ in workers:
                    stop_worker(proc)
                deadline = now + (GRACE_S if culprit is None else 5.0)
            if deadline is not None and (now > deadline or stop.urgent):
                for proc, _ in workers:
                    kill_worker(proc)
                deadline = float("inf")
    return outcome, culprit


def execute_job(
    job: Job,
    log_file: Path,
    timeout_s: float | None = None,
    on_event: EventHook | None = None,
    stop: StopRequest | None = None,
) -> RunRecord:
    """Runs ``job`` in one worker, or in one per replica for a multi-worker cell."""
    if job.cell.get("strategy") == "multiworker" and not (job.probe or job.peak):
        return execute_multiworker_run(job, log_file, timeout_s, on_event, stop)
    return execute_run(job, log_file, timeout_s, on_event, stop)
