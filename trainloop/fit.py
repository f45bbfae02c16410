"""The ``fit`` variant: the same model, optimizer, loss and tf.data pipeline, trained by
Keras ``model.fit`` with its default compile settings -- what most users run.

The whole run is one ``fit()`` call (``epochs`` epochs of the plan's steps), so Keras builds
its iterator and fills the input's shuffle buffer once, as the hand-written loop does. It is
timed like the loop, by the same :class:`~trainloop.trainer.CallClock`: a callback ends an
execution's interval (``steps_per_execution`` steps) after fetching the loss to the host and
a device sync, keeps listener calls and the profiler out of the intervals, and at each
epoch's end reports the steps and hands the epoch to the loop, which evaluates it out of
the training time. Keras reports the running mean of the loss over the epoch, which is
what the step records hold for fit runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from trainloop.events import DivergedError, LoopListener
from trainloop.trainer import CallClock, EpochTraining, RunSetup


def keras_train_function(model: keras.Model) -> Any:
    """The ``tf.function`` that ``fit`` calls once per execution, or None before fit has
    built it. Keras 3 wraps it in a plain Python function (``model.train_function``), so
    it is taken from that function's closure."""
    function = getattr(model, "train_function", None)
    if function is None or hasattr(function, "experimental_get_tracing_count"):
        return function
    names = getattr(getattr(function, "__code__", None), "co_freevars", ())
    cells = dict(zip(names, getattr(function, "__closure__", None) or (), strict=False))
    cell = cells.get("multi_step_on_iterator")
    return cell.cell_contents if cell is not None else None


def compile_for_fit(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, steps_per_execution: int
) -> None:
    """Compiles ``model`` as the fit variant trains it: the session's optimizer, the same
    (batch-averaged) loss, Keras' defaults for everything else."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        steps_per_execution=steps_per_execution,
    )


class _FitClock(keras.callbacks.Callback):
    """Times every execution of ``fit`` and ends each epoch."""

    def __init__(
        self,
        trainer: FitTrainer,
        listener: LoopListener,
        epoch_end: Callable[[EpochTraining], None],
    ) -> None:
        super().__init__()
        self.trainer, self.listener, self.epoch_end = trainer, listener, epoch_end
        self.setup = trainer.setup
        self.clock: CallClock | None = None
        self.fit_start = time.perf_counter()
        self.diverged: float | None = None
        self._marker = contextlib.ExitStack()

    def _loop_info(self, first_call_s: float) -> Any:
        return self.setup.loop_info(
            first_call_s, self.trainer.tracing_count(), self.trainer.settings
        )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # The first epoch's preparation is fit's own set-up (iterator, callbacks, ...).
        start = self.fit_start if epoch == 0 else None
        self.clock = CallClock(self.setup, epoch, self.listener, self._loop_info, start)
        self.clock.begin()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.clock is not None:
            self.clock.open_trace()
            self._marker.enter_context(self.clock.marker())

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        clock = self.clock
        if clock is None:
            return
        loss = float((logs or {}).get("loss", math.nan))  # a host fetch: waits for the step
        self.setup.session.sync()
        self._marker.close()
        clock.end_call(loss)
        clock.close_trace()
        last_epoch = clock.epoch == self.setup.plan.epochs_to_run - 1
        if not math.isfinite(loss):
            self.diverged = loss
            self.model.stop_training = True  # at once, as the loop does
        elif clock.finished and last_epoch:
            self.model.stop_training = True  # max_steps may end the last epoch early
        clock.after_call()
        if clock.stopped:
            self.model.stop_training = True  # the stop rule: measured enough

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        clock = self.clock
        if clock is None:
            return
        clock.report_steps()
        if self.diverged is None and clock.losses:
            # Keras' loss is the running mean over the epoch: its last value is the epoch's.
            self.epoch_end(dataclasses.replace(clock.training(), loss=clock.losses[-1]))


class FitTrainer:
    """Trains the whole run with one ``model.fit`` call."""

    def __init__(self, setup: RunSetup, dataset: tf.data.Dataset) -> None:
        self.setup, self.dataset = setup, dataset
        model, plan = setup.session.model, setup.plan
        compile_for_fit(model, setup.session.optimizer, plan.steps_per_call)
        self.settings = {
            "fit_jit_compile": bool(getattr(model, "jit_compile", False)),
            "fit_steps_per_execution": plan.steps_per_call,
        }

    def tracing_count(self) -> int | None:
        """How often fit's compiled train function has been traced (None before fit)."""
        function = keras_train_function(self.setup.session.model)
        counter = getattr(function, "experimental_get_tracing_count", None)
        return int(counter()) if counter else None

    def train(self, listener: LoopListener, epoch_end: Callable[[EpochTraining], None]) -> None:
        """Runs the plan's epochs in one ``fit``; see :class:`~trainloop.trainer.Trainer`."""
        plan = self.setup.plan
        callback = _FitClock(self, listener, epoch_end)
        try:
            self.setup.session.model.fit(
                self.dataset,
                epochs=plan.epochs_to_run,
                steps_per_epoch=plan.steps_per_epoch,
                verbose=0,
                callbacks=[callback],
                shuffle=False,  # the pipeline shuffles already
            )
        finally:
            if callback.clock is not None:
                callback.clock.report_steps()  # an error mid-epoch: its steps so far
        if callback.diverged is not None and callback.clock is not None:
            clock = callback.clock
            step = clock.first_step + clock.steps_done - 1
            raise DivergedError(
                f"loss became {callback.diverged} at epoch {clock.epoch} step {step}"
            )
