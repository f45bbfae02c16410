"""The worker: runs one cell in a fresh process and streams what it measures to the parent.

Started by :mod:`bench.matrix.process` as ``python -m bench.worker TASK_JSON`` (a
:class:`bench.matrix.job.WorkerTask`). Events are JSON lines on a pipe (the task's
``events_fd``), so stdout and stderr, where TensorFlow writes its logs, can go to the run's
log file untouched. Every run ends with exactly one ``end`` event carrying its status,
unless the process itself dies.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import IO, Any

from bench.machine.fingerprint import SOURCE_ROOT, source_revision
from bench.matrix.job import TraceRequest, WorkerTask
from bench.matrix.multiworker import join_timeout
from reports.layout import PROFILE_SESSIONS, trace_relative_path
from trainloop.datasets import DataSource, load_arrays
from trainloop.idx import DataFileError


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like KeyboardInterrupt so partial results are sent."""


class EventWriter:
    """Writes one JSON object per line to the parent's pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def emit(self, event: str, **data: Any) -> None:
        """Sends ``event`` with ``data``; non-finite floats become null (strict JSON)."""
        payload = json.dumps(_finite({"event": event, **data}), default=str, allow_nan=False)
        self._stream.write(payload + "\n")
        self._stream.flush()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def log(message: str) -> None:
    """A timestamped line in the run's log (the worker's stderr), for people reading it."""
    stamp = time.strftime("%H:%M:%S", time.localtime())
    print(f"{stamp} tapebench worker: {message}", file=sys.stderr, flush=True)


class EventListener:
    """A trainloop listener that forwards everything to the parent (and notes it in the log)."""

    def __init__(self, events: EventWriter) -> None:
        self.events = events

    def loop_begin(self, info: Any) -> None:
        log(f"first step took {info.first_step_s:.3f} s; training")
        self.events.emit("begin", info=vars(info))

    def progress(self, epoch: int, step: int, steps_in_epoch: int) -> None:
        self.events.emit("progress", epoch=epoch, step=step, steps=steps_in_epoch)

    def steps_end(self, chunk: Any) -> None:
        self.events.emit("steps", **vars(chunk))

    def epoch_end(self, result: Any) -> None:
        log(
            f"epoch {result.epoch} done in {result.train_seconds:.2f} s, "
            f"train loss {result.train_loss:.4f}, test accuracy {result.test_accuracy}"
        )
        self.events.emit("epoch", **vars(result))


def _configure_runtime(task: WorkerTask) -> None:
    """What must happen before TensorFlow executes its first op: thread pools, logical CPU
    devices for a mirrored strategy on the CPU, and a multi-worker strategy itself."""
    import tensorflow as tf

    from trainloop.strategies import create_strategy, split_cpu

    if task.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(task.intra_op_threads)
    if task.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(task.inter_op_threads)
    if task.probe or task.peak:
        return
    variant = task.cell.variant
    if variant.strategy == "mirrored" and variant.device == "cpu":
        split_cpu(variant.replicas)
    if variant.strategy == "multiworker":
        # Joins the cluster TF_CONFIG describes, waiting for the others a bounded time.
        create_strategy(variant, join_timeout_s=join_timeout(os.environ))


def _measure_peaks(task: WorkerTask, events: EventWriter) -> None:
    from trainloop.matmul_peak import matmul_peak_flops

    for device, precision in task.peak:
        flops = matmul_peak_flops(precision, device)
        log(f"peak {device}/{precision}: {flops / 1e9:.1f} GFLOP/s")
        events.emit("peak", device=device, precision=precision, flops=flops)


def _stop_rule(task: WorkerTask, started: float) -> Any:
    """The run's adaptive-sampling rule (None without one, and for profiling passes)."""
    from trainloop.sampling import StopRule

    s = task.sampling
    if not s or task.profile:
        return None
    budget = s.get("budget_s")
    return StopRule(
        precision=s.get("precision"),
        deadline=None if budget is None else started + float(budget),
        min_timed_steps=int(s.get("min_timed_steps") or 20),
    )


def _run(task: WorkerTask, events: EventWriter, started: float) -> tuple[str, str | None]:
    """Runs the task; returns (status, reason)."""
    import tensorflow as tf

    from trainloop.devices import DeviceUnavailableError, describe_runtime
    from trainloop.loop import DivergedError, TrainingLoop
    from trainloop.tracing import TraceWindow

    _configure_runtime(task)
    events.emit("stage", name="imported", at=time.monotonic())
    log(f"pid {os.getpid()}, run {task.run_id}, source {SOURCE_ROOT}")
    runtime = {**describe_runtime(), **source_revision(), "source_root": str(SOURCE_ROOT)}
    runtime["cpu_affinity"] = sorted(os.sched_getaffinity(0))  # pinned in a duet
    events.emit("hello", runtime=runtime, pid=os.getpid())
    if task.probe or task.peak:
        _measure_peaks(task, events)
        return "ok", None
    variant, workload, profile = task.cell.variant, task.cell.workload, task.profile
    trace, capture = None, None
    if profile:  # a profiling pass: trace the window, stop after it, skip evaluation
        capture = Path(profile.trace_root) / f".capture-{task.run_id}"
        trace = TraceWindow(str(capture), profile.first, profile.last)
        workload = workload.replace(eval_examples=0)
    try:
        if task.data_source is None:
            raise ValueError("the task names no data source")
        data = load_arrays(task.data_source, seed=workload.seed)
        events.emit("stage", name="data", at=time.monotonic())
        problem = _size_problem(workload, task.data_source, len(data.x_train))
        if problem:
            return "failed", problem
        log("data loaded; building the model")
        rule = _stop_rule(task, started)
        loop = TrainingLoop(
            variant,
            workload,
            data,
            inject_delay_s=task.inject_delay_s,
            trace=trace,
            max_steps=profile.last if profile else None,
            stop_rule=rule,
            inject_work=task.inject_work,
            measure_work_unit=task.measure_work_unit,
        )
        loop.run(EventListener(events))
        if rule is not None:
            events.emit("facts", sampling=rule.summary())
        if task.count_flops:  # once per cell is enough: it is the same for every run
            events.emit("facts", flops_per_step_profiler=loop.profiler_flops())
        if profile and capture is not None:
            _publish_trace(capture, profile, events)
    except DeviceUnavailableError as exc:
        return "skipped", str(exc)
    except DivergedError as exc:
        return "diverged", str(exc)
    except tf.errors.ResourceExhaustedError as exc:
        traceback.print_exc()
        return "oom", (exc.message or str(exc)).strip().splitlines()[0]
    except DataFileError as exc:
        return "failed", str(exc)
    return "ok", None


def _size_problem(workload: Any, source: DataSource, train_examples: int) -> str | None:
    """Why ``workload`` cannot train on the loaded data (the parent checks this before a
    run where it can; a resumed plan, a changed file or the Python API reach here)."""
    try:
        workload.check_train_size(train_examples)
    except ValueError as exc:
        where = source.paths[0].rsplit("/", 1)[0] if source.paths else "generated"
        return f"{source.name} ({where}): {exc}"
    return None


def _publish_trace(capture: Path, profile: TraceRequest, events: EventWriter) -> None:
    """Moves the captured session to ``<trace_root>/plugins/profile/<run_name>``, the
    layout xprof and TensorBoard read, with one run name per cell."""
    from trainloop.tracing import session_dirs

    sessions = session_dirs(capture)
    if not sessions:
        raise RuntimeError(f"the profiler wrote no trace under {capture}")
    target = Path(profile.trace_root).joinpath(*PROFILE_SESSIONS, profile.run_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)  # a re-run of the slot replaces its trace
    os.replace(sessions[-1], target)
    shutil.rmtree(capture, ignore_errors=True)
    log(f"trace written to {target}")
    events.emit("trace", relative_path=trace_relative_path(profile.run_name))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main() -> int:
    """Entry point of ``python -m bench.worker``."""
    started = time.monotonic()
    task, events_fd = WorkerTask.from_json(sys.argv[1])
    events = EventWriter(os.fdopen(events_fd, "w", encoding="utf-8"))
    events.emit("stage", name="worker", at=started)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        status, reason = _run(task, events, started)
    except (KeyboardInterrupt, Terminated):
        status, reason = "interrupted", "interrupted by a signal"
    except Exception as exc:  # any failure becomes a record, with the traceback in the log
        traceback.print_exc()
        last = (str(exc).strip().splitlines() or [""])[-1]
        status, reason = "failed", f"{type(exc).__name__}: {last}".rstrip(": ")
    log(f"{status}" + (f": {reason}" if reason else ""))
    events.emit("end", status=status, reason=reason)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is reported; skip TensorFlow's teardown, which can take seconds and would
    # only delay the next run.
    os._exit(code)
