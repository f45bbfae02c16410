"""Runs one cell in a fresh worker process and turns what it reports into a RunRecord.

The parent never imports TensorFlow: the worker's peak RSS (``wait4``) is then its own, and
a crash, abort or OOM kill of the worker ends that run only. Per-run timeouts and
interruption are handled here: the worker is asked to stop (SIGTERM, after which it sends
the steps it has), then killed if it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine.fingerprint import SOURCE_ROOT, merge_fingerprint
from bench.matrix.signals import StopRequest
from reports.schema import CELL_DEFAULTS, VARIANT_FIELDS, EpochRecord, RunRecord, Steps

GRACE_S = 15.0  # how long a stopping worker may take to send its partial results
EventHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """What a worker is asked to do."""

    run_id: str
    invocation_id: str
    cell: dict[str, Any]
    repeat: int
    data_source: dict[str, Any]
    slot_id: str | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    probe: bool = False
    source_root: str | None = None  # the tapebench source the worker runs (default: this)
    inject_delay_s: float = 0.0  # a known per-step slowdown, for validating the gate
    source_commit: str | None = None  # the commit source_root was exported from, if known
    purpose: str = "timing"
    profile: dict[str, Any] | None = None  # first, last, trace_root, run_name
    peak: list[tuple[str, str]] | None = None  # (device, precision) pairs to benchmark
    cluster: tuple[str, ...] | None = None  # multi-worker over machines: every HOST:PORT
    task_index: int = 0  # ... and this machine's worker

    def worker_input(self, events_fd: int) -> str:
        """The JSON document the worker takes as its argument."""
        # Fields at the value they had before they existed are left out, so that a worker
        # from an older source tree (the baseline of `tapebench ab`) can still read the job.
        cell = {k: v for k, v in self.cell.items() if CELL_DEFAULTS.get(k, ...) != v}
        variant = {k: cell[k] for k in VARIANT_FIELDS if k in cell}
        workload = {k: v for k, v in cell.items() if k not in VARIANT_FIELDS}
        return json.dumps(
            {
                "run_id": self.run_id,
                "events_fd": events_fd,
                "variant": variant,
                "workload": workload,
                "data_source": self.data_source,
                "probe": self.probe,
                "intra_op_threads": self.intra_op_threads,
                "inter_op_threads": self.inter_op_threads,
                "inject_delay_s": self.inject_delay_s,
                "profile": self.profile,
                "peak": self.peak,
            }
        )


def timestamp() -> str:
    """Now, in UTC, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class RunAssembler:
    """Accumulates a worker's events into the fields of a RunRecord."""

    job: Job
    runtime: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    steps: Steps = field(default_factory=Steps)
    epochs: list[EpochRecord] = field(default_factory=list)
    end: dict[str, Any] | None = None

    def feed(self, event: dict[str, Any]) -> None:
        """Takes one event from the worker."""
        kind = event.get("event")
        if kind == "hello":
            self.runtime = event.get("runtime")
        elif kind == "begin":
            info = dict(event["info"])
            self.info = {**self.info, **info, **(info.pop("extra", None) or {})}
            self.info.pop("extra", None)
        elif kind == "steps":
            self.steps = self.steps.extend(
                event["epoch"],
                event["first_step"],
                tuple(event["phases"]),
                tuple(event["seconds"]),
                tuple(x if x is not None else float("nan") for x in event["losses"]),
                tuple(event.get("input_seconds") or ()),
                int(event.get("steps_per_sample") or 1),
            )
        elif kind == "epoch":
            data = {k: event[k] for k in EpochRecord.__dataclass_fields__ if k in event}
            seconds = event["train_seconds"]
            data["samples_per_second"] = event["train_examples"] / seconds if seconds else 0.0
            self.epochs.append(EpochRecord(**data))
        elif kind == "peak":
            self.info.setdefault("peaks", {})[f"{event['device']}/{event['precision']}"] = event[
                "flops"
            ]
        elif kind == "trace":
            self.info["trace"] = event["relative_path"]
        elif kind == "end":
            self.end = event

    def _fingerprint(self) -> dict[str, Any]:
        fingerprint = merge_fingerprint(self.runtime)
        if self.job.source_commit:  # an exported tree cannot tell its own commit reliably
            fingerprint.update(git_commit=self.job.source_commit, git_dirty=False)
        return fingerprint

    def record(self, status: str, reason: str | None, **run: Any) -> RunRecord:
        """The RunRecord with the given outcome."""
        j = self.job
        return RunRecord(
            run_id=j.run_id,
            slot_id=j.slot_id,
            purpose=j.purpose,
            invocation_id=j.invocation_id,
            cell=j.cell,
            repeat=j.repeat,
            status=status,
            reason=reason,
            data_source=j.data_source,
            info=self.info,
            fingerprint=self._fingerprint(),
            steps=self.steps,
            epochs=tuple(self.epochs),
            **run,
        )


def describe_exit(code: int, log_file: Path) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        why = f"worker killed by {name}"
        if -code == signal.SIGKILL:
            why += " (out of memory, or killed from outside)"
    else:
        why = f"worker exited with code {code}"
    try:
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return f"{why}; last log line: {lines[-1].strip()[:300]}" if lines else why


def _child_env(device: str, source_root: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # a CPU run must not place anything on a GPU
    return env


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """Asks the worker to stop; partial results follow on the event pipe."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)


def spawn_worker(
    job: Job, log_file: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts ``python -m bench.worker`` for ``job`` in its own session, output to
    ``log_file``; returns the process and the read end of its event pipe."""
    read_fd, write_fd = os.pipe()
    source = job.source_root or str(SOURCE_ROOT)
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", job.worker_input(write_fd)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            env={**_child_env(job.cell["device"], source), **(env or {})},
            cwd=source,  # `python -m bench.worker` resolves from here first
            start_new_session=True,  # the parent decides when a worker stops
        )
    os.close(write_fd)
    return proc, read_fd


def reap(proc: subprocess.Popen[bytes]) -> int:
    """Waits for ``proc``; sets its return code; returns its peak RSS in bytes."""
    _, wait_status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    return usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def execute_run(
    job: Job,
    log_file: Path,
    timeout_s: float | None = None,
    on_event: EventHook | None = None,
    stop: StopRequest | None = None,
) -> RunRecord:
    """Runs ``job`` in a new worker process and returns its record.

    When ``stop`` is requested (or KeyboardInterrupt arrives, which then requests it), the
    worker is asked to stop and the record has status ``interrupted`` with the steps it
    finished; a second request kills the worker at once.
    """
    stop = stop or StopRequest()
    assembler = RunAssembler(job)
    started, t0 = timestamp(), time.monotonic()
    proc, read_fd = spawn_worker(job, log_file)
    outcome = _pump(proc, read_fd, assembler, t0, timeout_s, on_event, stop)
    rss = reap(proc)
    run = dict(
        started_at=started,
        finished_at=timestamp(),
        wall_seconds=time.monotonic() - t0,
        peak_rss_bytes=rss,
        exit_code=proc.returncode,
        log_file=str(log_file),
    )
    end = assembler.end or {}
    reason: str | None
    if outcome == "timeout":
        status, reason = "timeout", f"exceeded the {timeout_s:g} s run timeout"
    elif outcome == "interrupted":
        status, reason = "interrupted", "tapebench was interrupted during this run"
    elif end:
        status, reason = str(end["status"]), end.get("reason")
    else:
        status, reason = "failed", describe_exit(proc.returncode, log_file)
    return assembler.record(status, reason, **run)


def _pump(
    proc: subprocess.Popen[bytes],
    read_fd: int,
    assembler: RunAssembler,
    t0: float,
    timeout_s: float | None,
    on_event: EventHook | None,
    stop: StopRequest,
) -> str:
    """Feeds events to ``assembler`` until the worker closes the pipe.

    Returns ``done``, ``timeout`` or ``interrupted``.
    """
    outcome, stop_deadline, buffer = "done", None, b""
    with selectors.DefaultSelector() as sel:
        sel.register(read_fd, selectors.EVENT_READ)
        while True:
            try:
                ready = sel.select(timeout=0.25)
                if ready:
                    chunk = os.read(read_fd, 1 << 16)
                    if not chunk:
                        break
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        event = parse_event(line)
                        if event is not None:
                            assembler.feed(event)
                            if on_event:
                                on_event(event)
            except KeyboardInterrupt:
                stop.request()
            if stop.requested:
                outcome = "interrupted"
            if stop.urgent and stop_deadline != float("inf"):
                stop_deadline = 0.0  # a second request: stop waiting
            now = time.monotonic()
            if outcome == "done" and timeout_s and now - t0 > timeout_s:
                outcome = "timeout"
            if outcome != "done" and stop_deadline is None:
                stop_worker(proc)
                stop_deadline = now + GRACE_S
            if stop_deadline is not None and now > stop_deadline:
                kill_worker(proc)
                stop_deadline = float("inf")
    os.close(read_fd)
    return outcome


def parse_event(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None  # a line cut short by a dying worker
    return event if isinstance(event, dict) else None


def kill_worker(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def probe_job(job: Job) -> Job:
    """A job that only reports the worker's runtime (versions, devices), then exits."""
    return replace(job, probe=True)
