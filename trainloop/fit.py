"""The ``fit`` variant: the same model, optimizer, loss and tf.data pipeline, trained by
Keras ``model.fit`` with its default compile settings -- what most users run.

It is timed like the hand-written loop: a callback takes the time at the end of each
execution (``steps_per_execution`` steps), after fetching the loss to the host and a
device sync, so asynchronous dispatch cannot hide work. Keras reports the running mean of
the loss, which is what the step records hold for fit runs.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from trainloop.events import DivergedError, LoopInfo, LoopListener, StepChunk
from trainloop.session import Session
from trainloop.tracing import TraceWindow

if TYPE_CHECKING:
    from trainloop.loop import TrainingLoop


class _Timer(keras.callbacks.Callback):
    """Records the end of every execution, synced."""

    def __init__(
        self,
        sync: Any,
        progress: Any,
        trace: TraceWindow | None = None,
        first_step: int = 0,
        per_call: int = 1,
    ) -> None:
        super().__init__()
        self.sync, self.progress = sync, progress
        self.trace, self.first_step, self.per_call = trace, first_step, per_call
        self.ends: list[float] = []
        self.losses: list[float] = []
        self._next_progress = 0.0
        self._marker: Any = None

    def _steps(self) -> range:
        """The run steps of the execution in progress."""
        first = self.first_step + len(self.ends) * self.per_call
        return range(first, first + self.per_call)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        trace = self.trace
        if trace is None:
            return
        steps = self._steps()
        if not any(trace.covers(s) for s in steps):
            return
        if trace.first in steps:
            trace.before(trace.first)
        self._marker = trace.step(steps[0])
        self._marker.__enter__()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))  # a host fetch: waits for the step
        self.sync()
        if self._marker is not None:
            self._marker.__exit__(None, None, None)
            self._marker = None
            if self.trace is not None and self.trace.last - 1 in self._steps():
                self.trace.after(self.trace.last - 1)
        now = time.perf_counter()
        self.ends.append(now)
        self.losses.append(loss)
        if now >= self._next_progress:
            self.progress(len(self.ends))
            self._next_progress = now + 0.5
        if not math.isfinite(loss):
            self.model.stop_training = True


class FitTrainer:
    """Trains epoch by epoch with ``model.fit``."""

    def __init__(self, loop: TrainingLoop, session: Session, dataset: tf.data.Dataset) -> None:
        self.loop, self.session, self.dataset = loop, session, dataset
        model = session.model
        model.compile(
            optimizer=session.optimizer,
            loss=keras.losses.CategoricalCrossentropy(),  # the same loss, batch-averaged
            steps_per_execution=loop.variant.steps_per_call,
        )
        self.settings = {
            "fit_jit_compile": bool(getattr(model, "jit_compile", False)),
            "fit_steps_per_execution": loop.variant.steps_per_call,
        }

    def tracing_count(self) -> int | None:
        function = getattr(self.session.model, "train_function", None)
        counter = getattr(function, "experimental_get_tracing_count", None)
        return int(counter()) if counter else None

    def epoch(
        self, epoch: int, listener: LoopListener, describe: dict[str, Any]
    ) -> tuple[float, int, float]:
        """One epoch of ``model.fit``; returns (seconds, examples, mean loss)."""
        loop, w = self.loop, self.loop.workload
        n = loop.steps_in_epoch(epoch)
        per_call = loop.variant.steps_per_call
        timer = _Timer(
            self.session.sync,
            lambda calls: listener.progress(epoch, min(calls * per_call, n), n),
            loop.trace,
            epoch * loop.steps_per_epoch,
            per_call,
        )
        start = time.perf_counter()
        try:
            self.session.model.fit(
                self.dataset,
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=n,
                verbose=0,
                callbacks=[timer],
                shuffle=False,  # the pipeline shuffles already
            )
        finally:
            self._report(epoch, start, timer, n, listener, describe)
        if timer.losses and not math.isfinite(timer.losses[-1]):
            raise DivergedError(f"loss became {timer.losses[-1]} at epoch {epoch}")
        return (
            (timer.ends[-1] if timer.ends else time.perf_counter()) - start,
            n * w.batch_size,
            timer.losses[-1] if timer.losses else math.nan,
        )

    def _report(
        self,
        epoch: int,
        start: float,
        timer: _Timer,
        n: int,
        listener: LoopListener,
        describe: dict[str, Any],
    ) -> None:
        loop = self.loop
        per_call = loop.variant.steps_per_call
        calls = [min(per_call, n - i) for i in range(0, n, per_call)][: len(timer.ends)]
        edges = [start, *timer.ends]
        seconds = tuple((edges[i + 1] - edges[i]) / k for i, k in enumerate(calls))
        run_step = epoch * loop.steps_per_epoch
        if run_step == 0 and timer.ends:
            listener.loop_begin(
                LoopInfo(
                    first_step_s=timer.ends[0] - start,
                    tracing_count_after_first=self.tracing_count(),
                    **{**describe, "extra": self.settings},
                )
            )
        listener.steps_end(
            StepChunk(
                epoch,
                run_step,
                seconds,
                tuple(timer.losses),
                loop.phases(run_step, calls, False),
                tuple(None for _ in calls),
                per_call,
            )
        )
