"""What trains a run's epochs, and the clock that times their calls.

Two trainers implement :class:`Trainer`: the hand-written loop through a feed
(:mod:`trainloop.loop`) and Keras ``fit`` (:mod:`trainloop.fit`). Both read the same
:class:`RunSetup` and time their calls with the same :class:`CallClock`, so the intervals,
the per-step split of a call, the phases and the listener's schedule cannot drift apart.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainloop.events import LoopInfo, LoopListener, StepChunk
from trainloop.plan import StepPlan
from trainloop.sampling import StopRule
from trainloop.session import Session
from trainloop.tracing import TraceWindow

PROGRESS_INTERVAL_S = 0.5
_UNMARKED = contextlib.nullcontext()


def busy_wait(start: float, seconds: float) -> float:
    """Spins until ``seconds`` after ``start`` (a sleep could oversleep); returns the end."""
    end = start + seconds
    now = time.perf_counter()
    while now < end:
        now = time.perf_counter()
    return now


@dataclass(frozen=True)
class EpochTraining:
    """What one epoch's training measured: its time (the epoch's own preparation and its
    calls), the examples it trained on and the mean loss of its calls."""

    epoch: int
    seconds: float
    examples: int
    loss: float


@dataclass(frozen=True)
class RunSetup:
    """What a trainer is given.

    Attributes:
      plan: the calls of every epoch and their phases.
      session: the built model, optimizer and steps.
      batch_size: examples per step.
      last_batch: examples in an epoch's last batch when ``plan.partial_last``.
      describe: facts about the run for :class:`LoopInfo` (parameters, dtypes, ...).
      inject_delay_s: a busy wait added to every step, inside its interval.
      trace: the profiler window, or None.
      stop_rule: ends the run early once it has measured enough (adaptive sampling).
      inject_work: units of real work (:func:`trainloop.step.create_burner`) added to every
        step, inside its interval; ``burn`` runs them.
    """

    plan: StepPlan
    session: Session
    batch_size: int
    last_batch: int
    describe: dict[str, Any] = field(default_factory=dict)
    inject_delay_s: float = 0.0
    trace: TraceWindow | None = None
    stop_rule: StopRule | None = None
    inject_work: int = 0
    burn: Callable[[int], None] | None = None

    def loop_info(
        self, first_call_s: float, tracing_count: int | None, extra: dict[str, Any] | None = None
    ) -> LoopInfo:
        """What ``listener.loop_begin`` receives after the run's first call."""
        describe = dict(self.describe)
        if extra:
            describe["extra"] = {**describe.get("extra", {}), **extra}
        return LoopInfo(
            first_step_s=first_call_s, tracing_count_after_first=tracing_count, **describe
        )


class Trainer(Protocol):
    """Trains every epoch of a run, timed."""

    def tracing_count(self) -> int | None:
        """How often the called function has been traced (None when eager)."""
        ...

    def train(self, listener: LoopListener, epoch_end: Callable[[EpochTraining], None]) -> None:
        """Runs the plan's epochs, reporting to ``listener``; after each epoch calls
        ``epoch_end`` (which evaluates and reports it) outside the timed intervals.

        Raises:
          DivergedError: the loss became non-finite (the steps so far are reported first).
        """
        ...


class CallClock:
    """Times the calls of one epoch.

    A call's interval runs from the end of the previous call (or from :meth:`begin`, after
    the epoch's own preparation) to the end of this call, taken after its loss has been
    fetched to the host and the devices synced; it is stored per step (divided by the
    call's steps). Work inside :meth:`excluded` -- listener calls, starting the profiler
    and exporting its trace -- is cut out of the interval it falls in and out of the epoch.
    """

    def __init__(
        self,
        setup: RunSetup,
        epoch: int,
        listener: LoopListener,
        loop_info: Callable[[float], LoopInfo],
        start: float | None = None,
    ) -> None:
        """``loop_info(first_call_s)`` builds what ``listener.loop_begin`` receives after
        the run's first call; ``start`` is when the epoch's preparation began (now)."""
        self.setup, self.epoch, self.listener = setup, epoch, listener
        plan = setup.plan
        self.calls, self.phases = plan.calls(epoch), plan.phases(epoch)
        self._epoch_steps = sum(self.calls)
        self.first_step = plan.first_step(epoch)
        self.call_seconds: list[float] = []
        self.input_seconds: list[float | None] = []
        self.cpu_seconds: list[float] = []  # the process's CPU time (all threads) per call
        self.losses: list[float] = []
        self.steps_done = 0  # steps of the calls timed so far
        self._loop_info = loop_info
        self._start = time.perf_counter() if start is None else start
        self._prep = 0.0
        self._last = self._input = self._start
        self._last_cpu = time.process_time()
        self._next_progress = 0.0
        self._reported = False

    def begin(self) -> None:
        """Starts the first call's interval: the epoch's preparation is over."""
        self._last = time.perf_counter()
        self._last_cpu = time.process_time()
        self._prep = self._last - self._start

    @property
    def finished(self) -> bool:
        """Whether every call of the epoch has been timed."""
        return len(self.call_seconds) == len(self.calls)

    def _call_steps(self) -> range:
        """The run steps of the call in progress."""
        first = self.first_step + self.steps_done
        return range(first, first + self.calls[len(self.call_seconds)])

    def input_ready(self) -> None:
        """Notes that the call's inputs are in hand (the end of its input time)."""
        self._input = time.perf_counter()

    def end_call(self, loss: float, reads_input: bool = False) -> None:
        """Ends the call's interval; call it after fetching ``loss`` and syncing."""
        k = self.calls[len(self.call_seconds)]
        if self.setup.burn is not None and self.setup.inject_work:
            self.setup.burn(self.setup.inject_work * k)
        t = time.perf_counter()
        if self.setup.inject_delay_s:
            t = busy_wait(t, self.setup.inject_delay_s * k)
        cpu = time.process_time()
        self.cpu_seconds.append(cpu - self._last_cpu)
        self._last_cpu = cpu
        self.call_seconds.append(t - self._last)
        self.input_seconds.append((self._input - self._last) / k if reads_input else None)
        self.losses.append(loss)
        self.steps_done += k
        self._last = t

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        """Work in this block is in no interval and not in the epoch's time."""
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._last += time.perf_counter() - start
            self._last_cpu += time.process_time() - start_cpu

    def open_trace(self) -> None:
        """Before a call: starts the profiler if the call holds the window's first step."""
        trace = self.setup.trace
        if trace is not None and trace.first in self._call_steps():
            with self.excluded():
                trace.before(trace.first)

    def marker(self) -> contextlib.AbstractContextManager[Any]:
        """The profiler's step marker around a traced call; a no-op otherwise."""
        trace = self.setup.trace
        if trace is None:
            return _UNMARKED
        steps = self._call_steps()
        if not self.setup.plan.traced(steps[0], len(steps)):
            return _UNMARKED
        return trace.step(steps[0])

    def close_trace(self) -> None:
        """After a call: stops the profiler (exporting the trace) if the call held the
        window's last step."""
        trace = self.setup.trace
        if trace is None:
            return
        last = self.first_step + self.steps_done - 1
        if last - self.calls[len(self.call_seconds) - 1] < trace.last - 1 <= last:
            with self.excluded():
                trace.after(trace.last - 1)

    @property
    def stopped(self) -> bool:
        """Whether the run's stop rule has ended it (see :meth:`after_call`)."""
        rule = self.setup.stop_rule
        return rule is not None and rule.reason is not None

    def after_call(self) -> None:
        """The work due after a call, out of every interval: ``loop_begin`` after the
        run's first call, ``progress`` at most every PROGRESS_INTERVAL_S, and the stop
        rule's look at the call (then :attr:`stopped` says whether to stop)."""
        rule = self.setup.stop_rule
        if rule is not None:
            i = len(self.call_seconds) - 1
            with self.excluded():
                rule.observe(self.call_seconds[i] / self.calls[i], self.calls[i], self.phases[i])
                rule.should_stop()
        if self.first_step == 0 and len(self.call_seconds) == 1:
            with self.excluded():
                self.listener.loop_begin(self._loop_info(self.call_seconds[0]))
        now = time.perf_counter()
        if now >= self._next_progress:
            with self.excluded():
                self.listener.progress(self.epoch, self.steps_done, self._epoch_steps)
            self._next_progress = now + PROGRESS_INTERVAL_S

    def report_steps(self) -> None:
        """Sends the timed calls to the listener (once, also after an error)."""
        if self._reported:
            return
        self._reported = True
        done = len(self.call_seconds)
        chunk = StepChunk(
            self.epoch,
            self.first_step,
            tuple(s / k for s, k in zip(self.call_seconds, self.calls, strict=False)),
            tuple(self.losses),
            self.phases[:done],
            tuple(self.input_seconds),
            self.setup.plan.steps_per_call,
            tuple(c / k for c, k in zip(self.cpu_seconds, self.calls, strict=False)),
        )
        with self.excluded():
            self.listener.steps_end(chunk)

    def training(self) -> EpochTraining:
        """The epoch's time (its preparation and its calls), examples and mean loss."""
        setup, steps = self.setup, self.steps_done
        examples = steps * setup.batch_size
        if setup.plan.partial_last and self.finished and setup.plan.is_complete(self.epoch):
            examples -= setup.batch_size - setup.last_batch
        losses = self.losses or [float("nan")]
        return EpochTraining(
            self.epoch, self._prep + sum(self.call_seconds), examples, sum(losses) / len(losses)
        )
