"""The timed training loop: begin / epochs of timed calls and a timed evaluation / end.

Timing rules (see README, "How tapebench measures"):

* every interval runs from the end of the previous call to the host fetch of this call's
  loss followed by a device sync, so it includes taking the next batch; the time until the
  batch is in hand is recorded separately as input time;
* a call runs ``steps_per_call`` steps; its sample is stored per step (time / steps);
* per-epoch work (the feed's epoch start), listener calls and the profiler's start and
  export fall in no interval (:class:`~trainloop.trainer.CallClock`);
* the first call (tracing, XLA compilation) is phase ``first``; every later epoch's first
  call is ``epoch_first`` (a new pass of the input stream starts there); calls within the
  next ``warmup_steps`` steps are ``warmup``; a smaller last batch is ``partial``; steps
  traced by the profiler are ``profiled``; all others are ``timed``
  (:class:`~trainloop.plan.StepPlan`);
* evaluation is timed separately, and its tracing is done (and timed) before training;
* the tracing count of the called function is read after the first call and each epoch.

The loop knows nothing about files or benchmarks: it reports to a :class:`LoopListener`.
``fit`` variants train through Keras instead (:mod:`trainloop.fit`), timed the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.datasets import ArrayData
from trainloop.devices import device_peak_bytes, process_rss_bytes, reset_device_peak
from trainloop.events import DivergedError, EpochResult, LoopListener
from trainloop.feeds import Feed, create_feed
from trainloop.flops import analytic_flops_per_step, profiler_flops_per_step
from trainloop.plan import StepPlan
from trainloop.sampling import StopRule
from trainloop.session import Session, open_session
from trainloop.step import create_burner, tracing_count, work_unit_seconds
from trainloop.tracing import TraceWindow
from trainloop.trainer import CallClock, EpochTraining, RunSetup, Trainer

__all__ = ["DivergedError", "TrainingLoop"]

Evaluation = tuple[float, int, int, float]  # mean loss, correct, examples, seconds


def _evaluate(
    eval_step: Callable[..., Any], dataset: tf.data.Dataset, sync: Callable[[], None]
) -> Evaluation:
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


def create_plan(
    variant: Variant,
    workload: Workload,
    examples: int,
    max_steps: int | None = None,
    trace: TraceWindow | None = None,
) -> StepPlan:
    """The calls of every epoch of ``variant`` training ``workload`` on ``examples``."""
    w, k = workload, variant.steps_per_call
    full, n = w.steps_per_pass(examples), w.steps_in_epoch(examples)
    whole = variant.mode == "fit"  # Keras runs whole executions of k steps
    # The last batch of a pass is smaller when the remainder is kept; it ends an epoch only
    # when epochs are full passes (and, for fit, a whole number of executions).
    partial = (
        not w.drop_remainder
        and n == full
        and examples % w.batch_size != 0
        and (not whole or n % k == 0)
    )
    return StepPlan(
        steps_per_epoch=n,
        epochs=w.epochs,
        steps_per_call=k,
        warmup_steps=w.warmup_steps,
        partial_last=partial,
        max_steps=max_steps,
        whole_calls=whole,
        profiled=range(trace.first, trace.last) if trace is not None else range(0),
    )


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
        stop_rule: StopRule | None = None,
        inject_work: int = 0,
        measure_work_unit: bool = False,
    ) -> None:
        """
        Args:
          inject_delay_s: a busy wait added to every step, inside its timed interval: a
            known slowdown for validating regression checks. Reported in LoopInfo.
          trace: a window of steps to capture with the profiler; those steps are phase
            ``profiled``. Starting the profiler and exporting the trace are kept out of
            every interval and out of the epoch time.
          max_steps: stop training after this many steps (over all epochs).
          stop_rule: end the run once it has measured enough (precision or time); the
            rule then says why (its ``reason``).
          inject_work: units of real work (matmuls, :func:`trainloop.step.create_burner`)
            added to every step, inside its timed interval: a known slowdown that load
            stretches as it stretches the step. Reported in LoopInfo.
          measure_work_unit: measure what one unit takes here (LoopInfo.work_unit_s), so
            that a slowdown can be sized as a fraction of the step.

        Raises:
          ValueError: an argument is out of range, or the variant is an unsupported
            combination (see ``Variant.unsupported_reason``).
        """
        if inject_delay_s < 0:
            raise ValueError(f"inject_delay_s={inject_delay_s!r} must be >= 0")
        if inject_work < 0:
            raise ValueError(f"inject_work={inject_work!r} must be >= 0")
        self.inject_work, self.measure_work_unit = inject_work, measure_work_unit
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} must be >= 1")
        reason = variant.unsupported_reason()
        if reason:
            raise ValueError(f"{variant.name}: {reason}")
        self.variant, self.workload, self.data = variant, workload, data
        self.inject_delay_s, self.trace, self.stop_rule = inject_delay_s, trace, stop_rule
        self.plan = create_plan(variant, workload, len(data.x_train), max_steps, trace)

    def run(self, listener: LoopListener) -> None:
        """Trains for ``workload.epochs`` epochs, reporting to ``listener``.

        Raises:
          DivergedError: the loss became non-finite (the steps so far are reported first).
          trainloop.devices.DeviceUnavailableError: the variant's device is not visible.
        """
        v, w = self.variant, self.workload
        partial = self.plan.partial_last
        with open_session(v, w, self.data.num_classes, partial_batches=partial) as session:
            # The stream keeps a partial batch only where an epoch ends with it: with capped
            # epochs it would otherwise surface mid-epoch, a smaller batch timed as a full one.
            train_ds = inputs.create_train_dataset(
                self.data, w.batch_size, w.seed, drop_remainder=not partial
            )
            eval_ds = (
                inputs.create_eval_dataset(self.data, w.batch_size, w.eval_examples)
                if w.eval_examples != 0
                else None
            )
            setup = self.setup(session, eval_ds)
            trainer = self.create_trainer(setup, train_ds)

            def epoch_end(training: EpochTraining) -> None:
                evaluated = _evaluate(session.eval_step, eval_ds, session.sync) if eval_ds else None
                listener.epoch_end(self._epoch_result(training, evaluated, trainer.tracing_count()))
                reset_device_peak(v.device)

            reset_device_peak(v.device)
            setup.describe["ready_at"] = time.monotonic()  # start-up ends here
            trainer.train(listener, epoch_end)

    def setup(self, session: Session, eval_ds: tf.data.Dataset | None = None) -> RunSetup:
        """What the trainer is given; traces the evaluation step (timed) on ``eval_ds``."""
        w = self.workload
        describe = dict(
            session.describe(),
            eval_first_call_s=self._trace_eval(session, eval_ds),
            steps_per_epoch=self.plan.epoch_steps,
            injected_delay_s=self.inject_delay_s,
            flops_per_step=analytic_flops_per_step(session.model, w.batch_size),
            injected_work_units=self.inject_work,
        )
        burn = create_burner() if self.inject_work or self.measure_work_unit else None
        if burn is not None and self.measure_work_unit:
            describe["work_unit_s"] = work_unit_seconds(burn)
        self._step_fn = session.train_step_fn
        return RunSetup(
            plan=self.plan,
            session=session,
            batch_size=w.batch_size,
            last_batch=len(self.data.x_train) % w.batch_size or w.batch_size,
            describe=describe,
            inject_delay_s=self.inject_delay_s,
            trace=self.trace,
            stop_rule=self.stop_rule,
            inject_work=self.inject_work,
            burn=burn,
        )

    def profiler_flops(self) -> float | None:
        """FLOPs of one training step by TensorFlow's graph profiler, after :meth:`run`:
        the step is traced once more (about a second for the reference CNN), so it is
        counted after training rather than before the first call."""
        step_fn = getattr(self, "_step_fn", None)
        if step_fn is None:
            raise RuntimeError("profiler_flops() counts the step of a finished run()")
        return profiler_flops_per_step(step_fn, self.workload.batch_size, self.data.num_classes)

    def create_trainer(self, setup: RunSetup, train_ds: tf.data.Dataset) -> Trainer:
        """Keras fit for ``fit`` variants, else timed calls through the variant's feed."""
        if self.variant.mode == "fit":
            from trainloop.fit import FitTrainer

            return FitTrainer(setup, train_ds)
        feed = create_feed(setup.session, self.variant, self.workload, self.data, train_ds)
        return FeedTrainer(setup, feed)

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

    def _epoch_result(
        self, training: EpochTraining, evaluated: Evaluation | None, traces: int | None
    ) -> EpochResult:
        test_loss = accuracy = eval_s = None
        count = 0
        if evaluated is not None:
            test_loss, correct, count, eval_s = evaluated
            accuracy = correct / count if self.data.labels_meaningful and count else None
        return EpochResult(
            epoch=training.epoch,
            train_seconds=training.seconds,
            train_examples=training.examples,
            train_loss=training.loss,
            eval_seconds=eval_s,
            eval_examples=count,
            test_loss=test_loss,
            test_accuracy=accuracy,
            tracing_count=traces,
            rss_bytes=process_rss_bytes(),
            device_peak_bytes=device_peak_bytes(self.variant.device),
        )


class FeedTrainer:
    """Runs every epoch as timed calls through a feed."""

    def __init__(self, setup: RunSetup, feed: Feed) -> None:
        self.setup, self.feed = setup, feed

    def tracing_count(self) -> int | None:
        """How often the feed's called function has been traced (None when eager)."""
        return tracing_count(self.feed.traced)

    def train(self, listener: LoopListener, epoch_end: Callable[[EpochTraining], None]) -> None:
        """Runs the plan's epochs; see :class:`~trainloop.trainer.Trainer`."""
        rule = self.setup.stop_rule
        for epoch in range(self.setup.plan.epochs_to_run):
            epoch_end(self.epoch(epoch, listener))
            if rule is not None and rule.reason is not None:
                break

    def epoch(self, epoch: int, listener: LoopListener) -> EpochTraining:
        """Runs one epoch's calls."""
        feed, sync = self.feed, self.setup.session.sync
        reads_input = feed.fetch_reads_input
        clock = CallClock(
            self.setup, epoch, listener, lambda s: self.setup.loop_info(s, self.tracing_count())
        )
        feed.start_epoch(epoch)  # the epoch's preparation: in its time, in no step
        clock.begin()
        try:
            for k in clock.calls:
                clock.open_trace()
                args = feed.fetch(clock.steps_done, k)
                clock.input_ready()
                with clock.marker():
                    loss = float(feed.run(args))
                    sync()
                clock.end_call(loss, reads_input)
                clock.close_trace()
                if not math.isfinite(loss):
                    step = clock.first_step + clock.steps_done - 1
                    raise DivergedError(f"loss became {loss} at epoch {epoch} step {step}")
                clock.after_call()
                if clock.stopped:
                    break
        finally:
            clock.report_steps()
        return clock.training()
