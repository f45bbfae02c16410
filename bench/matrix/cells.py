"""What a tapebench invocation runs: cells (variant x workload) and how runs execute.

Frozen dataclasses validated on construction; the CLI builds exactly these, so the Python
API and the command line share one schema.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.matrix.settings import RunSettings
from reports.schema import SETTINGS_FIELD, cell_label
from trainloop.config import DEVICES, Variant, Workload

_VARIANT_NAMES = frozenset(f.name for f in dataclasses.fields(Variant))
_WORKLOAD_NAMES = frozenset(f.name for f in dataclasses.fields(Workload))

# Named workloads. "quick" is the default of `tapebench run`: adaptive sampling, at least
# three runs a cell, each run measuring until its median is known to 2% or 4 s have
# passed (at least 2 timed steps after 1 warm-up step, so a pathologically slow variant
# costs a few of its steps, not minutes), more runs while a cell's interval is wider than
# 2% (20 s a cell at most): the whole standard comparison in about three minutes on a
# 2-core machine. "reference" is the full training.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(epochs=1, steps_per_epoch=400, warmup_steps=1, eval_examples=0),
    "reference": dict(epochs=25, steps_per_epoch=None, warmup_steps=10, eval_examples=None),
    # Short runs for a regression gate: many of them fit in a CI job.
    "gate": dict(epochs=1, steps_per_epoch=60, warmup_steps=10, eval_examples=0),
}
PRESET_HELP = {
    "quick": "3+ runs a cell until its interval is within 2%% (4 s a run, 20 s a cell), "
    "no evaluation",
    "reference": "25 full epochs, the full test set, no time limit",
    "gate": "1 epoch x 60 steps, no evaluation, at most 120 s per run",
}
# Per-run wall-clock limits of the presets: a guard against hangs (adaptive sampling ends
# slow runs long before); without sampling, a pathologically slow variant shows up as a
# timeout with the steps it managed instead of holding a comparison up for many minutes.
PRESET_TIMEOUTS: dict[str, float | None] = {"quick": 300.0, "reference": None, "gate": 120.0}
PRESET_REPEATS = {"quick": 3, "reference": 1, "gate": 1}


def preset_sampling(preset: str) -> Sampling | None:
    """The adaptive sampling a preset comes with (None: planned steps and runs)."""
    if preset != "quick":
        return None
    return Sampling(
        precision=0.02, run_budget_s=4.0, cell_budget_s=20.0, min_timed_steps=2, max_runs=5
    )


# The default comparison: each execution mode in float32, each mixed policy compiled, and
# Keras fit.
STANDARD_VARIANTS = (
    ("eager", "float32"),
    ("function", "float32"),
    ("xla", "float32"),
    ("function", "mixed_bfloat16"),
    ("function", "mixed_float16"),
    ("fit", "float32"),  # Keras model.fit: what most users run instead
)


@dataclass(frozen=True)
class Cell:
    """One thing to measure: a variant on a workload, its worker set up as ``settings``
    say."""

    variant: Variant
    workload: Workload
    settings: RunSettings = field(default_factory=RunSettings)

    def __post_init__(self) -> None:
        replicas, batch = self.variant.replicas, self.workload.batch_size
        if batch % replicas:
            raise ValueError(
                f"batch_size={batch} does not split evenly over {replicas} "
                f"replicas (the batch size is the global batch)"
            )

    @property
    def label(self) -> str:
        """A short human label, :func:`reports.schema.cell_label`'s: variant and workload,
        e.g. ``xla/float32@cpu tiny/mnist b64 2x100``."""
        return cell_label(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Flat variant + workload fields (the record schema's ``cell``), and the
        settings under ``settings`` where they change anything."""
        doc = {**asdict(self.variant), **asdict(self.workload)}
        if not self.settings.is_default:
            doc[SETTINGS_FIELD] = self.settings.to_dict()
        return doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """The inverse of :meth:`to_dict`. Variant fields added after a cell was stored
        are missing from it and take their defaults, the meaning they had before.

        Raises:
          ValueError: an unknown field, or a value the dataclasses reject.
        """
        unknown = set(data) - _VARIANT_NAMES - _WORKLOAD_NAMES - {SETTINGS_FIELD}
        if unknown:
            raise ValueError(f"cell: unknown field(s) {', '.join(sorted(unknown))}")
        variant = {k: v for k, v in data.items() if k in _VARIANT_NAMES}
        workload = {k: v for k, v in data.items() if k in _WORKLOAD_NAMES}
        settings = RunSettings.from_dict(data.get(SETTINGS_FIELD) or {})
        return cls(Variant(**variant), Workload(**workload), settings)


@dataclass(frozen=True)
class VariantChoice:
    """A variant as the command line names it (``--variants``, ``report --baseline``).

    ``device_given`` says whether the text named a device (``@DEVICE``): such a variant
    runs on that device only; one without runs on each device of ``--devices``.
    """

    variant: Variant
    device_given: bool = False

    @classmethod
    def parse(cls, text: str) -> VariantChoice:
        """Parses ``text`` in :meth:`Variant.parse`'s grammar (the one parser)."""
        # In that grammar "@" only ever introduces the device.
        return cls(Variant.parse(text), "@" in text)

    def to_dict(self) -> dict[str, Any]:
        """The variant's cell fields (the record vocabulary), ``device`` only if given."""
        fields = asdict(self.variant)
        if not self.device_given:
            del fields["device"]
        return fields

    def on_devices(self, devices: Sequence[str]) -> list[Variant]:
        """The variant on each of ``devices``, or on its own device if it named one."""
        if self.device_given:
            return [self.variant]
        return [dataclasses.replace(self.variant, device=d) for d in dict.fromkeys(devices)]


@dataclass(frozen=True)
class Sampling:
    """Adaptive sampling: measure until the answer is precise enough, or time is up.

    Attributes:
      precision: the relative half-width of the 95% interval to reach: each run stops
        once its median is known this well (:mod:`trainloop.sampling`), and a cell gets
        more runs until its run-level interval is this narrow (:mod:`bench.matrix.adaptive`).
        None: runs take their planned steps, cells their planned runs.
      run_budget_s: each run's time, from starting its worker; then it stops (after at
        least ``min_timed_steps``) with status ok and the precision it reached.
      cell_budget_s: the time all runs of a cell may take together.
      min_timed_steps: the floor of timed steps a run measures, whatever the budget.
      max_runs: the most runs a cell gets.
    """

    precision: float | None = None
    run_budget_s: float | None = None
    cell_budget_s: float | None = None
    min_timed_steps: int = 20
    max_runs: int = 10

    def __post_init__(self) -> None:
        if self.precision is not None and not 0 < self.precision < 1:
            raise ValueError(f"precision={self.precision!r} must be a fraction in (0, 1)")
        for name in ("run_budget_s", "cell_budget_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}={value!r} must be a positive number of seconds")
        if self.min_timed_steps < 1 or self.max_runs < 1:
            raise ValueError("min_timed_steps and max_runs must be integers >= 1")


@dataclass(frozen=True)
class RunOptions:
    """How runs execute, independent of what they measure.

    Attributes:
      output_dir: the results directory (created if missing).
      data_dir: a directory holding the dataset files, or None to search the usual places.
      intra_op_threads, inter_op_threads: TensorFlow thread pools (0 = TensorFlow's default).
      timeout_s: wall-clock limit per run, or None.
      profile: steps ``(first, last)`` to trace in one extra profiling run per cell.
      measure_peak: measure (once per environment, cached) the matmul peak of each device
        and precision, so reports can show the fraction of peak each variant reaches.
      cluster, task_index: for multi-worker cells spread over machines: every worker's
        HOST:PORT, and this machine's index; only that worker is started here.
      fork_workers: fork each worker from a zygote that has imported TensorFlow (but run
        nothing in it) instead of starting ``python -m bench.worker``: seconds less per run.
      sampling: adaptive sampling (a precision and time budgets), or None.
      count_flops: count each cell's FLOPs per step with TensorFlow's profiler after its
        first run's training (a cross-check of the analytic count; a second or two a cell).
    """

    output_dir: Path = Path("tapebench-results")
    data_dir: Path | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    timeout_s: float | None = None
    profile: tuple[int, int] | None = None
    measure_peak: bool = True
    cluster: tuple[str, ...] | None = None
    task_index: int = 0
    fork_workers: bool = True
    sampling: Sampling | None = None
    count_flops: bool = True

    def __post_init__(self) -> None:
        if self.cluster is not None:
            if len(self.cluster) < 2 or any(":" not in a for a in self.cluster):
                raise ValueError(
                    f"cluster={','.join(self.cluster)!r} must list at least two HOST:PORT addresses"
                )
            if not 0 <= self.task_index < len(self.cluster):
                raise ValueError(
                    f"task_index={self.task_index} is not an index into the "
                    f"{len(self.cluster)}-worker cluster"
                )
        if self.profile is not None and not 0 <= self.profile[0] < self.profile[1]:
            raise ValueError(
                f"profile window {self.profile[0]}:{self.profile[1]} must satisfy 0 <= first < last"
            )
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be an integer >= 0 (0: TF default)")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"timeout_s={self.timeout_s!r} must be positive")
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise ValueError(f"output dir {self.output_dir} exists and is not a directory")


def create_variants(
    modes: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    devices: Sequence[str] = DEVICES,
) -> list[Variant]:
    """The variants to run on each device.

    With neither ``modes`` nor ``precisions`` given, the standard comparison
    (:data:`STANDARD_VARIANTS`); otherwise the cross product of the given modes (default:
    function) and precisions (default: float32).
    """
    if modes is None and precisions is None:
        pairs: Iterable[tuple[str, str]] = STANDARD_VARIANTS
    else:
        pairs = itertools.product(modes or ["function"], precisions or ["float32"])
    pairs = list(dict.fromkeys(pairs))
    return [
        Variant(mode=m, precision=p, device=d) for d in dict.fromkeys(devices) for m, p in pairs
    ]


def choose_variants(choices: Sequence[VariantChoice], devices: Sequence[str]) -> list[Variant]:
    """``--variants`` on ``--devices``: device by device (those of ``devices`` first, then
    the ones only a choice names), each choice that runs there, without repeats."""
    every = dict.fromkeys([*devices, *(c.variant.device for c in choices if c.device_given)])
    return list(
        dict.fromkeys(
            v for d in every for c in choices for v in c.on_devices(devices) if v.device == d
        )
    )


def create_workloads(
    base: Workload,
    models: Sequence[str] = (),
    datasets: Sequence[str] = (),
    batch_sizes: Sequence[int] = (),
) -> list[Workload]:
    """``base`` varied over the given models x datasets x batch sizes (each defaulting to
    ``base``'s own value)."""
    return [
        base.replace(model=m, dataset=d, batch_size=b)
        for m in dict.fromkeys(models or [base.model])
        for d in dict.fromkeys(datasets or [base.dataset])
        for b in dict.fromkeys(batch_sizes or [base.batch_size])
    ]


def create_cells(
    variants: Sequence[Variant], workloads: Workload | Sequence[Workload]
) -> list[Cell]:
    """Every variant on every workload, workload by workload."""
    if isinstance(workloads, Workload):
        workloads = [workloads]
    if not variants:
        raise ValueError("nothing to run: no variants selected")
    return [Cell(v, w) for w in workloads for v in variants]
