"""Which steps a run takes, call by call, and the phase of every call.

Both trainers -- the hand-written loop and Keras ``fit`` -- read the same plan, so they split
epochs into calls, number steps and label phases alike. No TensorFlow here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def phase(
    step: int,
    warmup: int,
    partial: bool = False,
    profiled: bool = False,
    epoch_first: bool = False,
) -> str:
    """The phase of the call starting at run step ``step``: ``first`` (tracing,
    compilation), ``profiled``, ``partial`` (a smaller last batch), ``epoch_first`` (an
    epoch's first call after the first epoch: where per-epoch work that cannot be moved out
    of a step lands, such as the input stream starting a new pass), ``warmup`` (steps
    1..warmup) or ``timed``."""
    if step == 0:
        return "first"
    if profiled:
        return "profiled"
    if partial:
        return "partial"
    if epoch_first:
        return "epoch_first"
    return "warmup" if step <= warmup else "timed"


@dataclass(frozen=True)
class StepPlan:
    """How a run's epochs split into calls.

    Attributes:
      steps_per_epoch: steps an epoch asks for (a full pass, or the workload's cap).
      epochs: the workload's epochs.
      steps_per_call: steps one call runs.
      warmup_steps: steps after the first call that are ``warmup``.
      partial_last: an epoch's last batch is smaller than the others (kept remainder).
      max_steps: stop after this many steps over the whole run (None: no limit).
      whole_calls: every call runs ``steps_per_call`` steps, even the last of an epoch
        (Keras ``fit`` executions on an endless stream); otherwise the last call of an
        epoch runs what is left.
      profiled: the run steps the profiler traces (empty when it does not run).
    """

    steps_per_epoch: int
    epochs: int
    steps_per_call: int = 1
    warmup_steps: int = 0
    partial_last: bool = False
    max_steps: int | None = None
    whole_calls: bool = False
    profiled: range = range(0)

    def __post_init__(self) -> None:
        for name in ("steps_per_epoch", "epochs", "steps_per_call"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps!r} must be >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps!r} must be >= 1")

    @property
    def epoch_steps(self) -> int:
        """Steps a whole epoch runs: ``steps_per_epoch``, rounded up to whole calls when
        every call is whole."""
        if not self.whole_calls:
            return self.steps_per_epoch
        return math.ceil(self.steps_per_epoch / self.steps_per_call) * self.steps_per_call

    def first_step(self, epoch: int) -> int:
        """The run step of epoch ``epoch``'s first step."""
        return epoch * self.epoch_steps

    def calls(self, epoch: int) -> tuple[int, ...]:
        """The steps of each call of epoch ``epoch`` (empty once ``max_steps`` is reached)."""
        n, k = self.epoch_steps, self.steps_per_call
        if self.max_steps is not None:
            n = max(0, min(n, self.max_steps - self.first_step(epoch)))
            if self.whole_calls:
                n = math.ceil(n / k) * k  # a call cannot stop half-way
        return tuple(min(k, n - i) for i in range(0, n, k))

    @property
    def epochs_to_run(self) -> int:
        """Epochs that have at least one call."""
        if self.max_steps is None:
            return self.epochs
        return min(self.epochs, math.ceil(self.max_steps / self.epoch_steps))

    def is_complete(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` runs all its steps (``max_steps`` does not cut it)."""
        return sum(self.calls(epoch)) == self.epoch_steps

    def traced(self, first: int, steps: int) -> bool:
        """Whether the call of ``steps`` steps from run step ``first`` is traced."""
        return any(s in self.profiled for s in range(first, first + steps))

    def phases(self, epoch: int) -> tuple[str, ...]:
        """The phase of every call of epoch ``epoch``."""
        calls = self.calls(epoch)
        partial = self.partial_last and self.is_complete(epoch)
        out, step = [], self.first_step(epoch)
        for i, k in enumerate(calls):
            out.append(
                phase(
                    step,
                    self.warmup_steps,
                    partial=partial and i == len(calls) - 1,
                    profiled=self.traced(step, k),
                    epoch_first=i == 0,
                )
            )
            step += k
        return tuple(out)
