"""The timed training loop: begin / epochs of timed steps and a timed evaluation / end.

Timing rules (see README, "How tapebench measures"):

* every step interval runs from the end of the previous step to the fetch of this step's
  loss followed by a device sync, so it includes taking the next batch from the pipeline;
* the first call (tracing, XLA compilation) is phase ``first``; the next ``warmup_steps``
  are ``warmup``; a smaller last batch is ``partial``; all other steps are ``timed``;
* evaluation is timed separately, and its tracing is done (and timed) before training;
* the step function's tracing count is read after the first step and after every epoch.

The loop knows nothing about files or benchmarks: it reports to a :class:`LoopListener`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import tensorflow as tf

from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.datasets import ArrayData
from trainloop.profiling import TraceWindow
from trainloop.session import open_session
from trainloop.step import tracing_count

PROGRESS_INTERVAL_S = 0.5


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class LoopInfo:
    """Facts about the run, known once the first step has executed."""

    parameters: int
    policy: str
    compute_dtype: str
    variable_dtype: str
    sync_method: str
    first_step_s: float
    eval_first_call_s: float | None
    tracing_count_after_first: int | None
    steps_per_epoch: int
    device: str
    injected_delay_s: float = 0.0


@dataclass(frozen=True)
class StepChunk:
    """Raw per-step samples of (part of) one epoch."""

    epoch: int
    first_step: int
    seconds: tuple[float, ...]
    losses: tuple[float, ...]
    phases: tuple[str, ...]


@dataclass(frozen=True)
class EpochResult:
    """Per-epoch totals; accuracy is None where labels are meaningless (synthetic)."""

    epoch: int
    train_seconds: float
    train_examples: int
    train_loss: float
    eval_seconds: float | None
    eval_examples: int
    test_loss: float | None
    test_accuracy: float | None
    tracing_count: int | None


class LoopListener(Protocol):
    """Receives what the loop measures; called outside the timed intervals."""

    def loop_begin(self, info: LoopInfo) -> None: ...

    def progress(self, epoch: int, step: int, steps_in_epoch: int) -> None: ...

    def steps_end(self, chunk: StepChunk) -> None: ...

    def epoch_end(self, result: EpochResult) -> None: ...


_UNMARKED = contextlib.nullcontext()


def _busy_wait(start: float, seconds: float) -> float:
    """Spins until ``seconds`` after ``start`` (a sleep could oversleep); returns the end."""
    end = start + seconds
    now = time.perf_counter()
    while now < end:
        now = time.perf_counter()
    return now


def _phase(global_step: int, warmup: int, partial: bool, profiled: bool = False) -> str:
    if global_step == 0:
        return "first"
    if profiled:
        return "profiled"
    if partial:
        return "partial"
    return "warmup" if global_step <= warmup else "timed"


def _evaluate(
    eval_step: Callable[..., Any], dataset: tf.data.Dataset, sync: Callable[[], None]
) -> tuple[float, int, int, float]:
    """Returns (mean loss, correct, examples, seconds) over ``dataset``."""
    start = time.perf_counter()
    loss_sum, correct, count = tf.constant(0.0), tf.constant(0), 0
    for images, labels in dataset:
        batch_loss, batch_correct = eval_step(images, labels)
        loss_sum += batch_loss
        correct += batch_correct
        count += int(images.shape[0])
    loss_value, correct_value = float(loss_sum), int(correct)
    sync()
    seconds = time.perf_counter() - start
    return loss_value / max(count, 1), correct_value, count, seconds


class TrainingLoop:
    """One cell's training: builds model, optimizer and steps, then runs the epochs."""

    def __init__(
        self,
        variant: Variant,
        workload: Workload,
        data: ArrayData,
        inject_delay_s: float = 0.0,
        trace: TraceWindow | None = None,
        max_steps: int | None = None,
    ) -> None:
        """
        Args:
          inject_delay_s: a busy wait added to every step, inside its timed interval: a
            known slowdown for validating regression checks. Reported in LoopInfo.
          trace: a window of steps to capture with the profiler; those steps are phase
            ``profiled``. Starting the profiler and exporting the trace are kept out of
            every step's interval (not out of the epoch time).
          max_steps: stop training after this many steps (over all epochs).
        """
        if inject_delay_s < 0:
            raise ValueError(f"inject_delay_s={inject_delay_s!r} must be >= 0")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} must be >= 1")
        self.variant, self.workload, self.data = variant, workload, data
        self.inject_delay_s, self.trace, self.max_steps = inject_delay_s, trace, max_steps
        w = workload
        full = inputs.steps_per_epoch(len(data.x_train), w.batch_size, w.drop_remainder)
        self.steps_per_epoch = min(full, w.steps_per_epoch or full)
        # The last batch of a full pass is smaller when the remainder is kept.
        self._partial_last = (
            not w.drop_remainder
            and self.steps_per_epoch == full
            and len(data.x_train) % w.batch_size != 0
        )

    def run(self, listener: LoopListener) -> None:
        """Trains for ``workload.epochs`` epochs, reporting to ``listener``.

        Raises:
          DivergedError: the loss became non-finite (the steps so far are reported first).
          trainloop.devices.DeviceUnavailableError: the variant's device is not visible.
        """
        v, w = self.variant, self.workload
        with open_session(v, w, self.data.num_classes) as session:
            train_ds = inputs.create_train_dataset(
                self.data, w.batch_size, w.seed, w.drop_remainder
            )
            eval_ds = (
                inputs.create_eval_dataset(self.data, w.batch_size, w.eval_examples)
                if w.eval_examples != 0
                else None
            )
            sync, train_step, eval_step = session.sync, session.train_step, session.eval_step
            describe = dict(
                session.describe(),
                eval_first_call_s=self._trace_eval(eval_step, eval_ds, sync),
                steps_per_epoch=self.steps_per_epoch,
                injected_delay_s=self.inject_delay_s,
            )
            for epoch in range(w.epochs):
                if self.max_steps is not None and epoch * self.steps_per_epoch >= self.max_steps:
                    break
                train_s, examples, train_loss = self._train_epoch(
                    epoch, train_ds, train_step, sync, listener, describe
                )
                evaluated = _evaluate(eval_step, eval_ds, sync) if eval_ds else None
                listener.epoch_end(
                    self._epoch_result(
                        epoch, train_s, examples, train_loss, evaluated, tracing_count(train_step)
                    )
                )

    def _mark(self, step: int) -> contextlib.AbstractContextManager[None]:
        """The profiler's step marker for traced steps; a shared no-op otherwise."""
        trace = self.trace
        return trace.step(step) if trace is not None and trace.covers(step) else _UNMARKED

    def _epoch_result(
        self,
        epoch: int,
        train_s: float,
        examples: int,
        train_loss: float,
        evaluated: tuple[float, int, int, float] | None,
        traces: int | None,
    ) -> EpochResult:
        test_loss = accuracy = eval_s = None
        count = 0
        if evaluated is not None:
            test_loss, correct, count, eval_s = evaluated
            accuracy = correct / count if self.data.labels_meaningful and count else None
        return EpochResult(
            epoch=epoch,
            train_seconds=train_s,
            train_examples=examples,
            train_loss=train_loss,
            eval_seconds=eval_s,
            eval_examples=count,
            test_loss=test_loss,
            test_accuracy=accuracy,
            tracing_count=traces,
        )

    def _trace_eval(
        self,
        eval_step: Callable[..., Any],
        eval_ds: tf.data.Dataset | None,
        sync: Callable[[], None],
    ) -> float | None:
        """Calls the eval step once per distinct batch shape, so that tracing (and XLA
        compilation) is timed here rather than inside the first epoch's evaluation."""
        if eval_ds is None or self.variant.mode == "eager":
            return None
        start, seen = time.perf_counter(), set()
        for images, labels in eval_ds:
            if images.shape[0] not in seen:
                seen.add(images.shape[0])
                float(eval_step(images, labels)[0])
        sync()
        return time.perf_counter() - start

    def _train_epoch(
        self,
        epoch: int,
        dataset: tf.data.Dataset,
        step: Callable[..., Any],
        sync: Callable[[], None],
        listener: LoopListener,
        describe: dict[str, Any],
    ) -> tuple[float, int, float]:
        """Runs one epoch's steps; returns (seconds, examples, mean loss)."""
        w, delay, trace = self.workload, self.inject_delay_s, self.trace
        first_global = epoch * self.steps_per_epoch
        n = self.steps_per_epoch
        if self.max_steps is not None:
            n = min(n, self.max_steps - first_global)
        partial_last = self._partial_last and n == self.steps_per_epoch
        seconds: list[float] = []
        losses: list[float] = []
        next_progress = 0.0
        start = t_prev = time.perf_counter()
        iterator = iter(dataset)  # creating it is part of the epoch (and of step 0)
        try:
            for i in range(n):
                if trace is not None and trace.first == first_global + i:
                    trace.before(first_global + i)  # starting the profiler is not a step
                    t_prev = time.perf_counter()
                images, labels = next(iterator)
                with self._mark(first_global + i):
                    loss = float(step(images, labels))
                    sync()
                t = time.perf_counter()
                if delay:
                    t = _busy_wait(t, delay)
                seconds.append(t - t_prev)
                losses.append(loss)
                t_prev = t
                if trace is not None and trace.last - 1 == first_global + i:
                    trace.after(first_global + i)  # exporting the trace is not a step
                    t_prev = time.perf_counter()
                if first_global + i == 0:
                    listener.loop_begin(
                        LoopInfo(
                            first_step_s=seconds[0],
                            tracing_count_after_first=tracing_count(step),
                            **describe,
                        )
                    )
                if not math.isfinite(loss):
                    raise DivergedError(f"loss became {loss} at epoch {epoch} step {i}")
                if t >= next_progress:
                    listener.progress(epoch, i + 1, n)
                    next_progress = t + PROGRESS_INTERVAL_S
        finally:
            phases = tuple(
                _phase(
                    first_global + i,
                    w.warmup_steps,
                    partial_last and i == n - 1,
                    trace is not None and trace.covers(first_global + i),
                )
                for i in range(len(seconds))
            )
            listener.steps_end(
                StepChunk(epoch, first_global, tuple(seconds), tuple(losses), phases)
            )
        examples = (n - 1) * w.batch_size + (
            len(self.data.x_train) % w.batch_size if partial_last else w.batch_size
        )
        return t_prev - start, examples, sum(losses) / len(losses)
