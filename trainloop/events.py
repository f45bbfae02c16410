"""What a training loop reports, and to whom: plain records and the listener protocol.

No TensorFlow here: these are the values the worker sends to the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class LoopInfo:
    """Facts about the run, known once the first call has executed."""

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
    flops_per_step: float | None = None  # analytic (conv and dense layers)
    flops_per_step_profiler: float | None = None  # TensorFlow's graph profiler
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. fit's resolved settings
    # time.monotonic() when the run was ready to make its first call (model, optimizer,
    # input pipeline and evaluation's tracing done): where start-up ends
    ready_at: float | None = None
    injected_work_units: int = 0  # units of create_burner's work added to every step
    work_unit_s: float | None = None  # what one unit takes here, where measured


@dataclass(frozen=True)
class StepChunk:
    """Raw samples of (part of) one epoch: one per call, each call running
    ``steps_per_sample`` steps; ``seconds`` and ``input_seconds`` are per step (the call's
    time divided by its steps), ``first_step`` counts steps over the whole run."""

    epoch: int
    first_step: int
    seconds: tuple[float, ...]
    losses: tuple[float, ...]
    phases: tuple[str, ...]
    input_seconds: tuple[float | None, ...] = ()
    steps_per_sample: int = 1
    cpu_seconds: tuple[float | None, ...] = ()  # the process's CPU time (all threads) per step


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
    rss_bytes: int | None = None  # the process's resident memory at the epoch's end
    device_peak_bytes: int | None = None  # the accelerator allocator's peak in the epoch


class LoopListener(Protocol):
    """Receives what the loop measures; called outside the timed intervals."""

    def loop_begin(self, info: LoopInfo) -> None: ...

    def progress(self, epoch: int, step: int, steps_in_epoch: int) -> None: ...

    def steps_end(self, chunk: StepChunk) -> None: ...

    def epoch_end(self, result: EpochResult) -> None: ...
