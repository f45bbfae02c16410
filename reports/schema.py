"""The record schema: one immutable record per run, stored as one versioned JSON file.

This module is the single definition of the on-disk format. ``bench`` writes records with
it and ``reports`` reads them with it (imports only go ``bench -> reports``), so writer and
reader cannot drift apart. Standard library only.

A run file holds ``{"schema_version", "kind", "run": {...}, "steps": {...}, "epochs": [...]}``;
steps are stored column-wise (raw per-step samples; every statistic is derived from them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from reports.typecheck import check_fields, expect_list, expect_object, required

SCHEMA_VERSION = 1
KIND = "tapebench.run"
STATUSES = ("ok", "skipped", "failed", "diverged", "oom", "timeout", "interrupted")
PURPOSES = ("timing", "profile")  # a profile run captures a trace; its timings are not used
PHASES = ("first", "epoch_first", "warmup", "timed", "partial", "profiled")
VARIANT_FIELDS = (
    "mode",
    "precision",
    "device",
    "steps_per_call",
    "input_mode",
    "strategy",
    "replicas",
)
WORKLOAD_FIELDS = (
    "model",
    "dataset",
    "batch_size",
    "epochs",
    "steps_per_epoch",
    "warmup_steps",
    "eval_examples",
    "seed",
    "learning_rate",
    "drop_remainder",
)
CELL_FIELDS = VARIANT_FIELDS + WORKLOAD_FIELDS
# The JSON type of each cell field (those of trainloop.config's Variant and Workload, which
# reports may not import; a test keeps the two in step).
CELL_TYPES: dict[str, Any] = {
    **dict.fromkeys(("mode", "precision", "device", "input_mode", "strategy"), str),
    **dict.fromkeys(("model", "dataset"), str),
    **dict.fromkeys(("steps_per_call", "replicas", "batch_size", "epochs"), int),
    **dict.fromkeys(("warmup_steps", "seed"), int),
    **dict.fromkeys(("steps_per_epoch", "eval_examples"), int | None),
    "learning_rate": float,
    "drop_remainder": bool,
}
# The JSON type of the ``info`` fields reports compute with (a record may hold others).
INFO_TYPES: dict[str, Any] = {
    **dict.fromkeys(("first_step_s", "eval_first_call_s", "injected_delay_s"), float | None),
    **dict.fromkeys(("flops_per_step", "flops_per_step_profiler", "peak_flops"), float | None),
    **dict.fromkeys(("tracing_count_after_first", "parameters"), int | None),
    **dict.fromkeys(("steps_per_epoch", "fit_steps_per_execution"), int | None),
    "trace": str | None,
}
# Cell fields added after the first records were written, with the value they implied.
CELL_DEFAULTS = {"steps_per_call": 1, "input_mode": "tfdata", "strategy": "none", "replicas": 1}
# A cell's run settings (bench.matrix.settings.RunSettings: threads, environment
# variables), stored under this key only where they change anything; the frames carry
# their label (settings_label, "" for none) under the same name.
SETTINGS_FIELD = "settings"
# What tells one cell's runs from another's: the variant and workload, and the settings.
CELL_KEY_FIELDS = (*CELL_FIELDS, SETTINGS_FIELD)
# Fingerprint fields a cell's settings set on purpose: thread counts, and the environment
# variables the fingerprint records.
SETTING_FINGERPRINT = {
    "TF_ENABLE_ONEDNN_OPTS": "onednn_opts",
    "XLA_FLAGS": "xla_flags",
    "TF_XLA_FLAGS": "tf_xla_flags",
}
SETTABLE_FIELDS = frozenset({"intra_op_threads", "inter_op_threads", *SETTING_FINGERPRINT.values()})


def settings_label(cell: Mapping[str, Any]) -> str:
    """A cell's run settings in a few words, e.g. ``intra 2, inter 1,
    TF_ENABLE_ONEDNN_OPTS=0``; "" for a cell without any."""
    settings = cell.get(SETTINGS_FIELD) or {}
    parts = [
        f"{short} {settings[name]}"
        for name, short in (("intra_op_threads", "intra"), ("inter_op_threads", "inter"))
        if settings.get(name)
    ]
    parts += [f"{name}={value}" for name, value in sorted((settings.get("env") or {}).items())]
    return ", ".join(parts)


def controlled_fields(cell: Mapping[str, Any]) -> set[str]:
    """The fingerprint fields ``cell``'s settings set on purpose (they differ between
    such cells by design, not because the environment changed)."""
    settings = cell.get(SETTINGS_FIELD) or {}
    fields = {n for n in ("intra_op_threads", "inter_op_threads") if settings.get(n)}
    env = settings.get("env") or {}
    return fields | {f for name, f in SETTING_FINGERPRINT.items() if name in env}


def variant_label(cell: Mapping[str, Any]) -> str:
    """``MODE[:STEPS_PER_CALL]/PRECISION[+INPUT][@DEVICE][*STRATEGY:N]`` of a cell's
    variant fields (``@DEVICE`` left out when ``cell`` names no device).

    ``reports`` may not import ``trainloop``, so this renders the grammar of
    ``trainloop.config.Variant.name`` for stored cells; a test keeps the two in step. A
    cell with run settings has them appended in brackets (:func:`settings_label`).
    """
    calls = cell.get("steps_per_call", 1)
    feed = cell.get("input_mode", "tfdata")
    strategy, replicas = cell.get("strategy", "none"), cell.get("replicas", 1)
    device = cell.get("device")
    settings = settings_label(cell)
    return (
        f"{cell['mode']}{f':{calls}' if calls != 1 else ''}/{cell['precision']}"
        f"{f'+{feed}' if feed != 'tfdata' else ''}{f'@{device}' if device else ''}"
        f"{f'*{strategy}:{replicas}' if strategy != 'none' else ''}"
        f"{f' [{settings}]' if settings else ''}"
    )


def cell_label(cell: Mapping[str, Any], every_field: bool = False) -> str:
    """A cell's label: ``VARIANT MODEL/DATASET bBATCH EPOCHSxSTEPS``; with
    ``every_field``, the remaining workload fields too, so different cells never share one
    (the regression gate's key)."""
    c = cell
    steps = "all" if c["steps_per_epoch"] is None else c["steps_per_epoch"]
    label = (
        f"{variant_label(c)} {c['model']}/{c['dataset']} b{c['batch_size']} {c['epochs']}x{steps}"
    )
    if not every_field:
        return label
    evals = "all" if c["eval_examples"] is None else c["eval_examples"]
    label += f" warmup {c['warmup_steps']} eval {evals} seed {c['seed']} lr {c['learning_rate']:g}"
    return label + ("" if c["drop_remainder"] else " keep-partial")


def utc_timestamp(timespec: str = "milliseconds") -> str:
    """Now, in UTC, ISO 8601 (to the millisecond unless ``timespec`` says otherwise): the
    format of every timestamp tapebench stores (records' ``started_at``/``finished_at``,
    manifests' ``created_at``). Strings of one ``timespec`` sort in time order."""
    return datetime.now(UTC).isoformat(timespec=timespec)


# Fingerprint fields that must agree for two results to be compared as like for like
# (hostname, commit and library patch versions may differ; hardware and stack may not).
COMPARABLE_FIELDS = (
    "cpu_model",
    "cpu_count",
    "gpu_driver",
    "gpus",
    "python",
    "tensorflow",
    "keras",
    "intra_op_threads",
    "inter_op_threads",
    "onednn_opts",
    "xla_flags",
    "tf_xla_flags",
)
T = TypeVar("T")


class ResultFileError(ValueError):
    """A results file is unreadable, corrupt, truncated or of an unknown schema version."""


@dataclass(frozen=True)
class Steps:
    """Raw samples, column-wise: one per call of the step (one step per call unless the
    cell's ``steps_per_call`` is larger). ``step`` is the run step (from 0) the call
    started at; ``seconds``, ``input_seconds`` (the part spent obtaining the batch,
    where measured) and ``cpu_seconds`` (the CPU time of the whole process, all its
    threads, in the call's interval, where measured) are per step: the call's figure
    divided by its steps."""

    epoch: tuple[int, ...] = ()
    step: tuple[int, ...] = ()
    phase: tuple[str, ...] = ()
    seconds: tuple[float, ...] = ()
    loss: tuple[float | None, ...] = ()
    input_seconds: tuple[float | None, ...] = ()
    cpu_seconds: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        optional = ("input_seconds", "cpu_seconds")
        lengths = {len(getattr(self, f.name)) for f in fields(self) if f.name not in optional}
        if len(lengths) > 1:
            raise ValueError(f"step columns have different lengths: {sorted(lengths)}")
        for name in optional:
            if getattr(self, name) and len(getattr(self, name)) != len(self.step):
                raise ValueError(f"{name} must be empty or as long as the other columns")
        bad = set(self.phase) - set(PHASES)
        if bad:
            raise ValueError(f"unknown step phase(s) {sorted(bad)}; expected {PHASES}")
        negative = next((i for i, s in enumerate(self.seconds) if s < 0), None)
        if negative is not None:
            raise ValueError(
                f"seconds[{negative}] is {self.seconds[negative]}, expected a time >= 0"
            )

    def __len__(self) -> int:
        return len(self.step)

    @property
    def timed_seconds(self) -> tuple[float, ...]:
        """The per-step seconds of phase ``timed``: the samples every statistic uses."""
        return tuple(s for s, p in zip(self.seconds, self.phase, strict=True) if p == "timed")

    @property
    def timed_cpu_seconds(self) -> tuple[float, ...]:
        """The per-step process CPU seconds of phase ``timed`` (empty where not measured)."""
        if not self.cpu_seconds:
            return ()
        pairs = zip(self.cpu_seconds, self.phase, strict=True)
        return tuple(float(c) for c, p in pairs if p == "timed" and c is not None)

    def extend(
        self,
        epoch: int,
        first_step: int,
        phases: tuple[str, ...],
        seconds: tuple[float, ...],
        losses: tuple[float, ...],
        input_seconds: tuple[float | None, ...] = (),
        stride: int = 1,
        cpu_seconds: tuple[float | None, ...] = (),
    ) -> Steps:
        """A copy with one chunk of consecutive calls of ``stride`` steps appended."""
        n = len(seconds)
        inputs = input_seconds or (None,) * n
        return Steps(
            epoch=self.epoch + (epoch,) * n,
            step=self.step + tuple(range(first_step, first_step + n * stride, stride)),
            phase=self.phase + phases,
            seconds=self.seconds + seconds,
            loss=self.loss + tuple(x if math.isfinite(x) else None for x in losses),
            input_seconds=(self.input_seconds or (None,) * len(self.step)) + tuple(inputs),
            cpu_seconds=(self.cpu_seconds or (None,) * len(self.step))
            + tuple(cpu_seconds or (None,) * n),
        )


@dataclass(frozen=True)
class EpochRecord:
    """Totals for one epoch; evaluation fields are None when evaluation is off."""

    epoch: int
    train_seconds: float
    train_examples: int
    train_loss: float | None
    samples_per_second: float
    eval_seconds: float | None = None
    eval_examples: int = 0
    test_loss: float | None = None
    test_accuracy: float | None = None
    tracing_count: int | None = None
    rss_bytes: int | None = None  # the worker's resident memory at the epoch's end
    device_peak_bytes: int | None = None  # the accelerator allocator's peak in the epoch


@dataclass(frozen=True)
class RunRecord:
    """Everything one run (one cell, one repeat, one process) produced.

    ``slot_id`` names the (cell, repeat) place in its invocation's plan the run filled; a
    resumed invocation may re-run an interrupted slot, and the new run has the same slot.

    ``cell`` holds the variant and workload fields (:data:`CELL_FIELDS`); ``fingerprint``
    the environment; ``info`` what the loop reported about itself (parameter count, dtype
    policy, sync method, first-step and tracing facts).
    """

    run_id: str
    invocation_id: str
    cell: dict[str, Any]
    repeat: int
    status: str
    slot_id: str | None = None
    purpose: str = "timing"
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_seconds: float | None = None
    peak_rss_bytes: int | None = None
    exit_code: int | None = None
    log_file: str | None = None
    data_source: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    steps: Steps = field(default_factory=Steps)
    epochs: tuple[EpochRecord, ...] = ()

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose={self.purpose!r} is not one of {', '.join(PURPOSES)}")
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r} is not one of {', '.join(STATUSES)}")
        missing = [f for f in CELL_FIELDS if f not in self.cell]
        if missing:
            raise ValueError(f"cell is missing {', '.join(missing)}")

    @property
    def variant_name(self) -> str:
        """The label used in tables (``trainloop.config.Variant.name``'s grammar)."""
        return variant_label(self.cell)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored for this run."""
        run = asdict(self)
        steps, epochs = run.pop("steps"), run.pop("epochs")
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "run": run,
            "steps": {k: list(v) for k, v in steps.items()},
            "epochs": epochs,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunRecord:
        """Parses a stored document, checking every field's type.

        Raises:
          ValueError: naming the field (``steps.seconds[3] is "abc", expected a number``).
        """
        if doc.get("kind") != KIND:
            raise ValueError(f"not a tapebench run file (kind={doc.get('kind')!r})")
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r} is not supported (this tapebench "
                f"reads version {SCHEMA_VERSION})"
            )
        steps = _construct(Steps, required(doc, "steps", ""), "steps")
        epochs = tuple(
            _construct(EpochRecord, e, f"epochs[{i}]")
            for i, e in enumerate(expect_list(required(doc, "epochs", ""), "epochs"))
        )
        run = dict(expect_object(required(doc, "run", ""), "run"))
        for name in ("cell", "info"):
            run[name] = expect_object(run.get(name, {}), f"run.{name}")
        run["cell"] = {**CELL_DEFAULTS, **run["cell"]}  # fields added since: their old meaning
        check_fields(run["cell"], CELL_TYPES, "run.cell")
        check_fields(run["info"], INFO_TYPES, "run.info")
        return _construct(cls, {**run, "steps": steps, "epochs": epochs}, "run")


_HINTS: dict[type, dict[str, Any]] = {}


def _construct(cls: type[T], data: dict[str, Any], where: str) -> T:
    """``cls(**data)``, with missing or unknown fields, and values of the wrong JSON type,
    reported by name (lists become the tuples the dataclasses hold)."""
    data = expect_object(data, where)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    required = {
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING
    }
    missing, unknown = sorted(required - set(data)), sorted(set(data) - known)
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    hints = _HINTS.setdefault(cls, get_type_hints(cls))
    check_fields(data, hints, where)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_run(path: str | Path) -> RunRecord:
    """Reads one run file.

    Raises:
      ResultFileError: naming the file, when it is unreadable, not JSON (e.g. truncated),
        of another schema version, or missing fields.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: corrupt or truncated JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ResultFileError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    try:
        return RunRecord.from_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:  # ValueError names the field
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ResultFileError(f"{path}: {detail}") from None
