"""Every variant timed alike: what no interval may hold, how a call's time is split over
its steps, and Keras fit trained in one call and timed like the loop.

The harness's clock is skewed: work that must stay out of the intervals (a listener call,
a feed's epoch start, the profiler's start and export) moves it forward by SKIP_S, far
more than any real step takes, so an interval that held such work would be longer than
SKIP_S -- deterministically, however loaded the machine.
"""

from __future__ import annotations

import time
import types

import keras
import pytest
import tensorflow as tf

from reports.schema import PHASES
from tests.trainloop.test_step import Recorder
from trainloop import feeds, fit, loop, session, trainer
from trainloop.config import Variant, Workload
from trainloop.loop import DivergedError, TrainingLoop
from trainloop.tracing import TraceWindow

SKIP_S = 100.0


class SkewedClock(types.SimpleNamespace):
    """``time`` for the harness's modules, whose ``perf_counter`` runs ``skew`` ahead."""

    skew = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.skew

    def monotonic(self) -> float:
        return time.monotonic() + self.skew

    def process_time(self) -> float:
        return time.process_time()  # a skipped pause spends no CPU

    def skip(self, seconds: float = SKIP_S) -> None:
        self.skew += seconds


CLOCK = SkewedClock()


@pytest.fixture(autouse=True)
def skewed_clock(monkeypatch):
    """The harness reads CLOCK instead of the time module."""
    CLOCK.skew = 0.0
    for module in (loop, fit, trainer):
        monkeypatch.setattr(module, "time", CLOCK, raising=False)
    return CLOCK


class EventRecorder(Recorder):
    """Keeps what the loop reports, and the order of the calls."""

    def __init__(self, slow: bool = False) -> None:
        super().__init__()
        self.slow, self.events = slow, []

    def _pause(self):
        if self.slow:
            CLOCK.skip()

    def loop_begin(self, info):
        super().loop_begin(info)
        self.events.append("begin")
        self._pause()

    def progress(self, epoch, step, steps):
        super().progress(epoch, step, steps)
        self.events.append("progress")
        self._pause()

    def steps_end(self, chunk):
        super().steps_end(chunk)
        self.events.append("steps")


class SlowWindow(TraceWindow):
    """A profiler window whose start and export take SKIP_S and start no profiler."""

    def before(self, step: int) -> None:
        if step == self.first:
            CLOCK.skip()

    def after(self, step: int) -> None:
        if step == self.last - 1:
            CLOCK.skip()


def run(spec, data, listener=None, loop_args=None, **workload):
    settings = dict(
        model="tiny", epochs=2, steps_per_epoch=6, warmup_steps=1, eval_examples=0, batch_size=32
    )
    settings.update(workload)
    listener = listener if listener is not None else EventRecorder()
    loop = TrainingLoop(Variant.parse(spec), Workload(**settings), data, **(loop_args or {}))
    loop.run(listener)
    return listener


def after_first(rec):
    """Every per-step interval but the run's first call (tracing, compilation)."""
    return [s for c in rec.chunks for s, p in zip(c.seconds, c.phases, strict=True) if p != "first"]


@pytest.mark.parametrize("spec", ["function", "eager", "fit"])
def test_listener_calls_fall_in_no_interval(learnable, spec):
    rec = run(spec, learnable, EventRecorder(slow=True))
    assert rec.events.count("begin") == 1 and rec.progress_calls >= 2
    assert max(after_first(rec)) < SKIP_S
    # nor in the epoch's time: the second epoch's progress report paused the run
    assert rec.epochs[1].train_seconds < SKIP_S


@pytest.mark.parametrize(
    "spec, feed",
    [
        ("function", feeds.DatasetFeed),
        ("function+numpy", feeds.NumpyFeed),
        ("function+staged", feeds.StagedFeed),
    ],
)
def test_an_epochs_preparation_is_in_its_time_but_in_no_step(monkeypatch, learnable, spec, feed):
    real = feed.start_epoch

    def slow_start(self, epoch):
        real(self, epoch)
        CLOCK.skip()

    monkeypatch.setattr(feed, "start_epoch", slow_start)
    rec = run(spec, learnable)
    assert max(after_first(rec)) < SKIP_S
    assert all(e.train_seconds > SKIP_S for e in rec.epochs)
    assert rec.phases == ["first", "warmup"] + ["timed"] * 4 + ["epoch_first"] + ["timed"] * 5


@pytest.mark.parametrize("spec", ["function", "function:3", "fit"])
def test_starting_and_exporting_the_profile_fall_in_no_interval(learnable, spec):
    window = SlowWindow("unused", 3, 6)
    rec = run(
        spec, learnable, loop_args=dict(trace=window, max_steps=6), epochs=1, steps_per_epoch=8
    )
    assert max(after_first(rec)) < SKIP_S
    assert rec.phases[-1] == "profiled"
    assert len(rec.chunks) == 1 and sum(rec.chunks[0].seconds) < 6 * SKIP_S


STEP_S = 10.0


@pytest.fixture
def slow_steps(monkeypatch):
    """Every training step -- the loop's and Keras fit's -- moves the clock by STEP_S
    inside the compiled call, so a call of k steps lasts k * STEP_S (and a little) whatever
    the harness believes k to be."""

    def slow(step):
        def step_and_skip(*args):
            out = step(*args)
            with tf.control_dependencies(tf.nest.flatten(out)):
                tf.py_function(lambda: CLOCK.skip(STEP_S) or 0.0, [], tf.float32)
            return out

        return step_and_skip

    real_create = session.create_train_step
    monkeypatch.setattr(session, "create_train_step", lambda *a: slow(real_create(*a)))
    real_keras_step = keras.Model.train_step
    monkeypatch.setattr(
        keras.Model, "train_step", lambda self, data: slow(real_keras_step)(self, data)
    )


@pytest.mark.parametrize("spec, calls", [("function:5", [5, 5, 2]), ("fit:5", [5, 5, 5])])
def test_a_calls_time_is_divided_by_the_steps_it_ran(learnable, slow_steps, spec, calls):
    # 12 steps per epoch in calls of 5: the loop's last call runs the 2 left; Keras runs
    # whole executions on the endless stream, so fit's epoch runs 15 steps.
    rec = run(spec, learnable, epochs=1, steps_per_epoch=12)
    per_step = after_first(rec)
    assert len(per_step) == len(calls) - 1
    # Each call lasted its steps' STEP_S and a little: divided by the wrong count, the short
    # last call would come out below STEP_S, or above it by a whole fraction of it.
    assert all(STEP_S <= s < 1.05 * STEP_S for s in per_step), per_step
    assert rec.epochs[0].train_examples == sum(calls) * 32
    assert rec.info.steps_per_epoch == sum(calls)


def test_fit_trains_every_epoch_in_one_fit_call(monkeypatch, learnable):
    fits = []
    real_fit = keras.Model.fit

    def counted_fit(self, *args, **kwargs):
        fits.append(kwargs.get("epochs"))
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counted_fit)
    rec = run("fit", learnable, epochs=3, steps_per_epoch=4, eval_examples=64)
    assert fits == [3]  # one iterator, one shuffle buffer, one set-up for the whole run
    first_calls = ["first", "warmup", "timed", "timed"]
    assert rec.phases == first_calls + (["epoch_first"] + ["timed"] * 3) * 2
    assert set(rec.phases) <= set(PHASES)
    # The retrace count is read right after the first call, before anything else.
    assert rec.events[0] == "begin"
    assert rec.info.tracing_count_after_first == 1
    assert [e.tracing_count for e in rec.epochs] == [1, 1, 1]
    assert all(e.eval_examples == 64 and e.eval_seconds > 0 for e in rec.epochs)


def test_fit_stops_after_max_steps(learnable):
    rec = run("fit", learnable, loop_args=dict(max_steps=6), epochs=5, steps_per_epoch=4)
    assert [len(c.seconds) for c in rec.chunks] == [4, 2]
    assert [e.train_examples for e in rec.epochs] == [4 * 32, 2 * 32]


def test_fit_stops_at_once_when_the_loss_diverges(learnable):
    rec = EventRecorder()
    with pytest.raises(DivergedError, match="loss became nan"):
        run("fit", learnable, rec, epochs=3, steps_per_epoch=16, learning_rate=1e30)
    assert rec.chunks and sum(len(c.seconds) for c in rec.chunks) < 3 * 16
    assert not rec.epochs or len(rec.epochs) < len(rec.chunks)
