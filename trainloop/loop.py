"""The timed training loop: begin / epochs of timed calls and a timed evaluation / end.

Timing rules (see README, "How tapebench measures"):

* every interval runs from the end of the previous call to the host fetch of this call's
  loss followed by a device sync, so it includes taking the next batch; the time until the
  batch is in hand is recorded separately as input time;
* a call runs ``steps_per_call`` steps; its sample is stored per step (time / steps);
* the first call (tracing, XLA compilation) is phase ``first``; calls within the next
  ``warmup_steps`` steps are ``warmup``; a smaller last batch is ``partial``; steps traced
  by the profiler are ``profiled``; all others are ``timed``;
* evaluation is timed separately, and its tracing is done (and timed) before training;
* the tracing count of the called function is read after the first call and each epoch.

The loop knows nothing about files or benchmarks: it reports to a :class:`LoopListener`.
``fit`` variants train through Keras instead (:mod:`trainloop.fit`), timed the same way.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.datasets import ArrayData
from trainloop.devices import device_peak_bytes, process_rss_bytes, reset_device_peak
from trainloop.events import (
    DivergedError,
    EpochResult,
    LoopInfo,
    LoopListener,
    StepChunk,
    phase,
)
from trainloop.feeds import Feed, create_feed
from trainloop.flops import analytic_flops_per_step, profiler_flops_per_step
from trainloop.session import Session, open_session
from trainloop.step import tracing_count
from trainloop.tracing import TraceWindow

__all__ = ["DivergedError", "TrainingLoop"]
PROGRESS_INTERVAL_S = 0.5
_UNMARKED = contextlib.nullcontext()


def _busy_wait(start: float, seconds: float) -> float:
    """Spins until ``seconds`` after ``start`` (a sleep could oversleep); returns the end."""
    end = start + seconds
    now = time.perf_counter()
    while now < end:
        now = time.perf_counter()
    return now


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
    return loss_value / max(count, 1), correct_value, count, time.perf_counter() - start


class TrainingLoop:
    """One cell's training: builds the session, then runs the epochs."""

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
            every interval (not out of the epoch time).
          max_steps: stop training after this many steps (over all epochs).

        Raises:
          ValueError: an argument is out of range, or the variant is an unsupported
            combination (see ``Variant.unsupported_reason``).
        """
        if inject_delay_s < 0:
            raise ValueError(f"inject_delay_s={inject_delay_s!r} must be >= 0")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} must be >= 1")
        reason = variant.unsupported_reason()
        if reason:
            raise ValueError(f"{variant.name}: {reason}")
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

    def steps_in_epoch(self, epoch: int) -> int:
        """Steps epoch ``epoch`` runs (fewer when ``max_steps`` ends the run in it)."""
        if self.max_steps is None:
            return self.steps_per_epoch
        return max(0, min(self.steps_per_epoch, self.max_steps - epoch * self.steps_per_epoch))

    def run(self, listener: LoopListener) -> None:
        """Trains for ``workload.epochs`` epochs, reporting to ``listener``.

        Raises:
          DivergedError: the loss became non-finite (the steps so far are reported first).
          trainloop.devices.DeviceUnavailableError: the variant's device is not visible.
        """
        v, w = self.variant, self.workload
        with open_session(v, w, self.data.num_classes) as session:
            # The stream keeps a partial batch only where an epoch ends with it: with capped
            # epochs it would otherwise surface mid-epoch, a smaller batch timed as a full one.
            train_ds = inputs.create_train_dataset(
                self.data, w.batch_size, w.seed, drop_remainder=not self._partial_last
            )
            eval_ds = (
                inputs.create_eval_dataset(self.data, w.batch_size, w.eval_examples)
                if w.eval_examples != 0
                else None
            )
            describe = dict(
                session.describe(),
                eval_first_call_s=self._trace_eval(session, eval_ds),
                steps_per_epoch=self.steps_per_epoch,
                injected_delay_s=self.inject_delay_s,
                flops_per_step=analytic_flops_per_step(session.model, w.batch_size),
                flops_per_step_profiler=profiler_flops_per_step(
                    session.train_step_fn, w.batch_size, self.data.num_classes
                ),
            )
            trainer = self.trainer(session, train_ds)
            for epoch in range(w.epochs):
                if not self.steps_in_epoch(epoch):
                    break
                reset_device_peak(v.device)
                train_s, examples, train_loss = trainer.epoch(epoch, listener, describe)
                evaluated = _evaluate(session.eval_step, eval_ds, session.sync) if eval_ds else None
                listener.epoch_end(
                    self._epoch_result(
                        epoch, train_s, examples, train_loss, evaluated, trainer.tracing_count()
                    )
                )

    def trainer(self, session: Session, train_ds: tf.data.Dataset) -> Any:
        """What runs an epoch for this variant: Keras fit, or timed calls through a feed.
        Both have ``epoch(epoch, listener, describe)`` and ``tracing_count()``."""
        if self.variant.mode == "fit":
            from trainloop.fit import FitTrainer

            return FitTrainer(self, session, train_ds)
        feed = create_feed(session, self.variant, self.workload, self.data, train_ds)
        return _FeedTrainer(self, session, feed)

    def _trace_eval(self, session: Session, eval_ds: tf.data.Dataset | None) -> float | None:
        """Calls the eval step once per distinct batch shape, so that tracing (and XLA
        compilation) is timed here rather than inside the first epoch's evaluation."""
        if eval_ds is None or self.variant.mode == "eager":
            return None
        start, seen = time.perf_counter(), set()
        for images, labels in eval_ds:
            if images.shape[0] not in seen:
                seen.add(images.shape[0])
                float(session.eval_step(images, labels)[0])
        session.sync()
        return time.perf_counter() - start

    def mark(self, step: int) -> contextlib.AbstractContextManager[Any]:
        """The profiler's step marker for traced steps; a shared no-op otherwise."""
        trace = self.trace
        return trace.step(step) if trace is not None and trace.covers(step) else _UNMARKED

    def phases(self, first: int, calls: list[int], partial_last: bool) -> tuple[str, ...]:
        """Phases of consecutive calls of ``calls[i]`` steps starting at run step ``first``."""
        out, step = [], first
        trace = self.trace
        for i, n in enumerate(calls):
            out.append(
                phase(
                    step,
                    self.workload.warmup_steps,
                    partial_last and i == len(calls) - 1,
                    trace is not None and trace.covers(step),
                )
            )
            step += n
        return tuple(out)

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
            rss_bytes=process_rss_bytes(),
            device_peak_bytes=device_peak_bytes(self.variant.device),
        )


class _FeedTrainer:
    """Runs an epoch as timed calls through a feed."""

    def __init__(self, loop: TrainingLoop, session: Session, feed: Feed) -> None:
        self.loop, self.session, self.feed = loop, session, feed

    def tracing_count(self) -> int | None:
        return tracing_count(self.feed.traced)

    def _calls(self, n: int) -> list[int]:
        per_call = self.loop.variant.steps_per_call
        return [min(per_call, n - i) for i in range(0, n, per_call)]

    def epoch(
        self, epoch: int, listener: LoopListener, describe: dict[str, Any]
    ) -> tuple[float, int, float]:
        """Runs one epoch's calls; returns (seconds, examples, mean loss)."""
        loop, feed, sync = self.loop, self.feed, self.session.sync
        w, delay, trace = loop.workload, loop.inject_delay_s, loop.trace
        reads_input = feed.fetch_reads_input
        n = loop.steps_in_epoch(epoch)
        run_step = epoch * loop.steps_per_epoch  # the run step of this epoch's first step
        partial_last = loop._partial_last and n == loop.steps_per_epoch
        calls = self._calls(n)
        seconds: list[float] = []
        inputs_s: list[float | None] = []
        losses: list[float] = []
        next_progress, done = 0.0, 0
        start = t_prev = time.perf_counter()
        feed.start_epoch(epoch)  # shuffling is part of the epoch (and of its first call)
        try:
            for k in calls:
                if trace is not None and trace.first == run_step + done:
                    trace.before(run_step + done)  # starting the profiler is not a step
                    t_prev = time.perf_counter()
                args = feed.fetch(done, k)
                t_input = time.perf_counter()
                with loop.mark(run_step + done):
                    loss = float(feed.run(args))
                    sync()
                t = time.perf_counter()
                if delay:
                    t = _busy_wait(t, delay * k)
                seconds.append((t - t_prev) / k)
                inputs_s.append((t_input - t_prev) / k if reads_input else None)
                losses.append(loss)
                t_prev = t
                if run_step + done == 0:
                    listener.loop_begin(
                        LoopInfo(
                            first_step_s=t - start,
                            tracing_count_after_first=tracing_count(feed.traced),
                            **describe,
                        )
                    )
                done += k
                if trace is not None and trace.last - 1 in range(
                    run_step + done - k, run_step + done
                ):
                    trace.after(trace.last - 1)  # exporting the trace is not a step
                    t_prev = time.perf_counter()
                if not math.isfinite(loss):
                    raise DivergedError(f"loss became {loss} at epoch {epoch} step {done - 1}")
                if t >= next_progress:
                    listener.progress(epoch, done, n)
                    next_progress = t + PROGRESS_INTERVAL_S
        finally:
            listener.steps_end(
                StepChunk(
                    epoch,
                    run_step,
                    tuple(seconds),
                    tuple(losses),
                    loop.phases(run_step, calls[: len(seconds)], partial_last),
                    tuple(inputs_s),
                    loop.variant.steps_per_call,
                )
            )
        examples = (n - 1) * w.batch_size + (
            len(loop.data.x_train) % w.batch_size if partial_last else w.batch_size
        )
        return t_prev - start, examples, sum(losses) / len(losses)
