"""Worker processes: starting, stopping and reaping them, and turning what one reports
into the fields of a RunRecord.

The parent never imports TensorFlow: the worker's peak RSS (``wait4``) is then its own, and
a crash, abort or OOM kill of the worker ends that run only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine.fingerprint import merge_fingerprint
from bench.matrix.job import Job
from bench.matrix.launcher import ForkedWorker, Launcher, ZygoteError
from reports.schema import EpochRecord, RunRecord, Steps


@dataclass
class RunAssembler:
    """Accumulates a worker's events into the fields of a RunRecord."""

    job: Job
    runtime: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    steps: Steps = field(default_factory=Steps)
    epochs: list[EpochRecord] = field(default_factory=list)
    end: dict[str, Any] | None = None
    stages: dict[str, float] = field(default_factory=dict)  # time.monotonic() of each

    def feed(self, event: dict[str, Any]) -> None:
        """Takes one event from the worker."""
        kind = event.get("event")
        if kind == "hello":
            self.runtime = event.get("runtime")
        elif kind == "begin":
            # when the first call's report arrived: its end, give or take the pipe, for
            # workers (of older trees) that do not say when they were ready
            self.stages.setdefault("begin", time.monotonic())
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
                tuple(event.get("cpu_seconds") or ()),
            )
        elif kind == "epoch":
            data = {k: event[k] for k in EpochRecord.__dataclass_fields__ if k in event}
            seconds = event["train_seconds"]
            data["samples_per_second"] = event["train_examples"] / seconds if seconds else 0.0
            self.epochs.append(EpochRecord(**data))
        elif kind == "peak":
            pair = f"{event['device']}/{event['precision']}"
            self.info.setdefault("peaks", {})[pair] = event["flops"]
        elif kind == "trace":
            self.info["trace"] = event["relative_path"]
        elif kind == "facts":
            self.info.update({k: v for k, v in event.items() if k != "event"})
        elif kind == "stage":
            self.stages[str(event["name"])] = float(event["at"])
        elif kind == "end":
            self.end = event

    def startup(self, spawned_at: float) -> dict[str, float]:
        """Where the run's start-up went: seconds from starting the worker (``spawned_at``,
        ``time.monotonic()`` in the parent: the same clock on Linux) to each stage --
        ``worker`` (its main() began), ``imported`` (TensorFlow imported, threads set),
        ``data`` (arrays loaded), ``ready`` (model, optimizer and input pipeline built),
        ``first_call`` (tracing and the first step done), ``first_timed`` (warm-up done:
        the first timed step begins)."""
        marks = dict(self.stages)
        begin = marks.pop("begin", None)
        ready = self.info.get("ready_at")
        first_call = begin if ready is None else float(ready) + float(self.info["first_step_s"])
        if ready is not None:
            marks["ready"] = float(ready)
        s = self.steps
        first = next((i for i, p in enumerate(s.phase) if p == "timed"), None)
        if first_call is not None:
            marks["first_call"] = first_call
            if first is not None:  # the warm-up calls: each its per-step time x its steps
                spans = [b - a for a, b in itertools.pairwise(s.step[: first + 1])]
                warmup = zip(s.seconds[1:], spans[1:], strict=False)
                marks["first_timed"] = first_call + sum(x * n for x, n in warmup)
        return {name: round(at - spawned_at, 4) for name, at in marks.items()}

    @property
    def outcome(self) -> tuple[str, str | None] | None:
        """The (status, reason) the worker ended with, or None if it sent no end."""
        if self.end is None:
            return None
        return str(self.end.get("status") or "failed"), self.end.get("reason")

    def _fingerprint(self) -> dict[str, Any]:
        fingerprint = merge_fingerprint(self.runtime)
        if self.job.source.commit:  # an exported tree cannot tell its own commit reliably
            fingerprint.update(git_commit=self.job.source.commit, git_dirty=False)
        return fingerprint

    def record(self, status: str, reason: str | None, **run: Any) -> RunRecord:
        """The RunRecord with the given outcome."""
        j = self.job
        return RunRecord(
            run_id=j.run_id,
            slot_id=j.slot_id,
            purpose=j.purpose,
            invocation_id=j.invocation_id,
            cell=j.cell.to_dict(),
            repeat=j.repeat,
            status=status,
            reason=reason,
            data_source=j.task.data_source.to_dict() if j.task.data_source else {},
            info=self.info,
            fingerprint=self._fingerprint(),
            steps=self.steps,
            epochs=tuple(self.epochs),
            **run,
        )


def describe_exit(code: int, log_file: Path) -> str:
    """Why a worker ended without reporting: its exit code or signal, and its last log line."""
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


def _child_env(device: str, source_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source_root), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # a CPU run must not place anything on a GPU
    return env


WorkerProcess = subprocess.Popen[bytes] | ForkedWorker


def _pin(cpus: tuple[int, ...] | None) -> Callable[[], None] | None:
    """What a started worker runs first: pinning itself to ``cpus`` (None: nothing)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def spawn_worker(
    job: Job, log_file: Path, env: dict[str, str] | None = None, launcher: Launcher | None = None
) -> tuple[WorkerProcess, int]:
    """Starts the worker for ``job`` in its own session, output to ``log_file``: forked by
    ``launcher``'s zygote for the job's source tree and environment (``job.env`` on top
    of this process's) where it has one, else as ``python -m bench.worker``; ``env`` is
    added after the fork. Returns the process and the read end of its event pipe."""
    read_fd, write_fd = os.pipe()
    source = job.source.root
    # The job's own environment is part of the zygote's: TensorFlow reads some of it
    # (oneDNN's switch, XLA's flags) as it is imported, before any fork.
    base = {**_child_env(job.cell.variant.device, source), **dict(job.env)}
    zygote = launcher.zygote(str(source), base) if launcher is not None else None
    try:
        with open(log_file, "wb") as log:
            if zygote is not None:
                with contextlib.suppress(ZygoteError):  # then start it the usual way
                    task = json.loads(job.task.to_json(write_fd))
                    pid = zygote.fork(task, env or {}, log.fileno(), write_fd, job.cpus)
                    return ForkedWorker(pid, zygote), read_fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.worker", job.task.to_json(write_fd)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env={**base, **(env or {})},
                cwd=source,  # `python -m bench.worker` resolves from here first
                start_new_session=True,  # the parent decides when a worker stops
                preexec_fn=_pin(job.cpus),
            )
            return proc, read_fd
    finally:
        os.close(write_fd)


def signal_worker(proc: WorkerProcess, signum: int) -> None:
    """Sends ``signum`` to the worker's process group (SIGTERM: stop and send the steps
    finished so far; SIGKILL: stop now)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def reap(proc: WorkerProcess) -> int:
    """Waits for ``proc``; sets its return code; returns its peak RSS in bytes."""
    if isinstance(proc, ForkedWorker):
        proc.wait()
        return proc.maxrss_bytes
    _, wait_status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    return usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def parse_event(line: bytes) -> dict[str, Any] | None:
    """One event line from a worker, or None for a line cut short by a dying worker."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
