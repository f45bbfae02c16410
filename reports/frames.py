"""Run records to tidy pandas DataFrames: runs (one row per run), steps, epochs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.schema import CELL_FIELDS, SETTINGS_FIELD, EpochRecord, RunRecord, settings_label

INFO_FIELDS = (
    "first_step_s",
    "eval_first_call_s",
    "tracing_count_after_first",
    "sync_method",
    "parameters",
    "policy",
    "compute_dtype",
    "variable_dtype",
    "flops_per_step",
    "flops_per_step_profiler",
    "peak_flops",
    "injected_delay_s",
    "fit_jit_compile",
    "fit_steps_per_execution",
)
ENV_FIELDS = (
    "hostname",
    "cpu_model",
    "cpu_count",
    "gpu_driver",
    "python",
    "tensorflow",
    "keras",
    "numpy",
    "intra_op_threads",
    "inter_op_threads",
    "onednn_opts",
    "xla_flags",
    "tapebench",
    "git_commit",
    "git_dirty",
)


def _final_tracing_count(record: RunRecord) -> int | None:
    counts = [e.tracing_count for e in record.epochs if e.tracing_count is not None]
    return counts[-1] if counts else None


def run_row(record: RunRecord) -> dict[str, object]:
    """One flat row describing ``record`` (without its per-step and per-epoch data)."""
    after_first = record.info.get("tracing_count_after_first")
    final = _final_tracing_count(record)
    row: dict[str, object] = {
        "run_id": record.run_id,
        "invocation_id": record.invocation_id,
        "variant": record.variant_name,
        "repeat": record.repeat,
        "status": record.status,
        "purpose": record.purpose,
        "trace": record.info.get("trace"),
        "reason": record.reason,
        **{f: record.cell[f] for f in CELL_FIELDS},
        SETTINGS_FIELD: settings_label(record.cell),
        **{f: record.info.get(f) for f in INFO_FIELDS},
        "steps_in_epoch": record.info.get("steps_per_epoch"),  # as executed
        "tracing_count_final": final,
        "retraced": bool(after_first is not None and final is not None and final > after_first),
        "peak_rss_bytes": record.peak_rss_bytes,
        "wall_seconds": record.wall_seconds,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "data_origin": record.data_source.get("origin"),
        "log_file": record.log_file,
        "target_precision": (record.info.get("sampling") or {}).get("target_precision"),
        "stopped_by": (record.info.get("sampling") or {}).get("stopped_by"),
        "started_by": record.info.get("started_by"),
    }
    row.update({f"env_{f}": record.fingerprint.get(f) for f in ENV_FIELDS})
    return row


def runs_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run."""
    return pd.DataFrame([run_row(r) for r in records])


STEP_COLUMNS = [
    "run_id",
    "epoch",
    "step",
    "phase",
    "seconds",
    "loss",
    "input_seconds",
    "cpu_seconds",
]


def _step_columns(record: RunRecord) -> dict[str, Any]:
    columns: dict[str, Any] = {"run_id": record.run_id, **asdict(record.steps)}
    for optional in ("input_seconds", "cpu_seconds"):
        if not columns[optional]:
            columns[optional] = [None] * len(record.steps)
    return columns


def steps_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per sample (call): run_id, epoch, step, phase, seconds, loss, input_seconds,
    cpu_seconds."""
    frames = [pd.DataFrame(_step_columns(r)) for r in records if len(r.steps)]
    if not frames:
        return pd.DataFrame(columns=STEP_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def epochs_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per epoch of each run."""
    rows = [{"run_id": r.run_id, **asdict(e)} for r in records for e in r.epochs]
    columns = ["run_id", *EpochRecord.__dataclass_fields__]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Results:
    """Records and their three tidy frames; ``roots`` maps run ids to the results
    directory each was read from (where its trace and log paths are relative to)."""

    records: tuple[RunRecord, ...]
    runs: pd.DataFrame
    steps: pd.DataFrame
    epochs: pd.DataFrame
    roots: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls, records: Sequence[RunRecord], roots: dict[str, Path] | None = None
    ) -> Results:
        """Builds the frames from ``records``."""
        records = tuple(records)
        return cls(
            records,
            runs_frame(records),
            steps_frame(records),
            epochs_frame(records),
            dict(roots or {}),
        )

    def with_purpose(self, purpose: str) -> Results:
        """Only the runs of ``purpose`` (``timing`` or ``profile``)."""
        return Results.from_records([r for r in self.records if r.purpose == purpose], self.roots)
