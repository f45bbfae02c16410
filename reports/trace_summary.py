"""Profiler traces summarised without a UI: top operations, a breakdown by category, and
the profiler's step time next to the harness's own.

Traces are read with the converters xprof ships (``xspace_to_tool_data``:
``framework_op_stats`` for the op tables, ``overview_page`` for step times), imported only
when a report has traces. On the CPU every op runs on the host; under XLA the step is one
compiled cluster, whose inside the op tables cannot show -- the summary says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.frames import Results

MISMATCH = 0.10  # profiler vs harness step time: flag a larger relative difference
# (category, substrings of the lower-cased op type), first match wins.
CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle", ("idle",)),
    ("XLA cluster", ("xla",)),
    ("all-reduce & collectives", ("collective", "allreduce", "nccl")),
    ("convolution", ("conv",)),
    ("matmul", ("matmul", "einsum")),
    ("pooling", ("pool",)),
    ("input pipeline", ("iterator", "dataset")),
    ("variables & optimizer updates", ("variable", "resourceapply")),
    (
        "data movement & casts",
        (
            "transpose",
            "reshape",
            "copy",
            "concat",
            "slice",
            "gather",
            "scatter",
            "pad",
            "tile",
            "broadcast",
            "pack",
            "split",
            "squeeze",
            "expanddims",
            "send",
            "recv",
            "cast",
        ),
    ),
    (
        "host-side overhead",
        (
            "identity",
            "noop",
            "partitionedcall",
            "_arg",
            "_retval",
            "const",
            "placeholder",
            "__inference",
        ),
    ),
    ("reduction", ("sum", "mean", "max", "min", "prod", "argm", "reduce", "all", "any")),
    (
        "elementwise",
        (
            "add",
            "sub",
            "mul",
            "div",
            "relu",
            "sigmoid",
            "tanh",
            "exp",
            "log",
            "sqrt",
            "square",
            "neg",
            "select",
            "equal",
            "greater",
            "less",
            "softmax",
            "biasadd",
            "batchnorm",
            "pow",
            "abs",
            "sign",
            "floor",
            "maximum",
            "minimum",
            "addn",
            "reciprocal",
            "fill",
            "zeros",
            "ones",
            "range",
        ),
    ),
)


def op_category(op_type: str) -> str:
    """The category of a profiler op type (e.g. ``_MklNativeFusedConv2D``: convolution)."""
    t = op_type.lower()
    for name, needles in CATEGORY_RULES:
        if any(n in t for n in needles):
            return name
    return "other"


class TraceReadError(RuntimeError):
    """A trace could not be converted; the message carries the converter's last words."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[Path]:
    """Sends file descriptor 2 (the converters' C++ logging) to a temporary file."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield Path(f"/proc/self/fd/{sink.fileno()}")
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tool(paths: list[str], tool: str) -> list[dict[str, Any]]:
    from xprof.convert import raw_to_tool_data  # imported only when there are traces

    with _quiet_stderr():
        data, _ = raw_to_tool_data.xspace_to_tool_data(paths, tool, {})
    if not data:
        raise TraceReadError(f"{paths[0]}: xprof returned no {tool} data")
    return json.loads(data)


def _table(table: dict[str, Any]) -> pd.DataFrame:
    columns = [c["id"] for c in table["cols"]]
    rows = [[(cell or {}).get("v") for cell in row["c"]] for row in table["rows"]]
    return pd.DataFrame(rows, columns=columns)


def xplane_files(trace_dir: Path) -> list[str]:
    """The ``*.xplane.pb`` files of one profile session directory."""
    return sorted(str(p) for p in trace_dir.glob("*.xplane.pb"))


def read_trace(trace_dir: Path) -> tuple[pd.DataFrame, list[float]]:
    """(op table with idle time, per-step durations in ms) of one session directory."""
    paths = xplane_files(trace_dir)
    if not paths:
        raise TraceReadError(f"{trace_dir}: no .xplane.pb file")
    ops = _table(_tool(paths, "framework_op_stats")[0])
    steps: list[float] = []
    for table in _tool(paths, "overview_page"):
        if not isinstance(table, dict) or "cols" not in table:
            continue
        frame = _table(table)
        if "stepTimeMs" in frame.columns:
            steps = [float(x) for x in frame["stepTimeMs"].dropna()]
    return ops, steps


@dataclass(frozen=True)
class ProfileSummary:
    """What one cell's trace says."""

    run_id: str
    variant: str
    workload: str
    trace_dir: Path
    steps: int
    profiler_step_ms: float
    harness_step_ms: float
    top_ops: pd.DataFrame  # rank, operation, type, category, occurrences, total/per-step ms, share
    categories: pd.DataFrame  # category, per-step ms, share of the step
    notes: tuple[str, ...]

    @property
    def mismatch(self) -> float:
        """|profiler / harness - 1| for the same steps."""
        return abs(self.profiler_step_ms / self.harness_step_ms - 1)


def _summarise(run: pd.Series, trace_dir: Path, harness: np.ndarray, top: int) -> ProfileSummary:
    ops, step_ms = read_trace(trace_dir)
    n_steps = max(len(step_ms), 1)
    self_us = ops["total_self_time"].astype(float)
    category = ops["type"].map(op_category)
    if run["mode"] == "xla":  # the compiled function is the cluster, not call overhead
        category = category.mask(ops["type"].str.startswith("__inference"), "XLA cluster")
    busy_us = self_us[category != "idle"].sum() or float("nan")
    ops = ops.assign(
        category=category, per_step_ms=self_us / n_steps / 1e3, share=self_us / busy_us
    )
    busy = ops[ops["category"] != "idle"].sort_values("total_self_time", ascending=False)
    table = busy.head(top).assign(
        rank=range(1, min(top, len(busy)) + 1),
        total_ms=lambda d: d["total_self_time"].astype(float) / 1e3,
    )
    categories = (
        busy.groupby("category")[["per_step_ms", "share"]]
        .sum()
        .sort_values("per_step_ms", ascending=False)
        .reset_index()
    )
    # Idle: core time the step left unused. The profiler's own IDLE row sums the idle
    # time of every thread (pools hold more threads than there are cores), so it says
    # little; cores x step time - busy thread time is what the machine had spare.
    cores = int(run.get("env_cpu_count") or 1)
    busy_per_step = busy_us / n_steps / 1e3
    capacity = cores * (float(np.median(step_ms)) if step_ms else float("nan"))
    idle = pd.DataFrame(
        [
            {
                "category": f"idle cores (of {cores} x step time)",
                "per_step_ms": max(capacity - busy_per_step, 0.0),
                "share": max(1 - busy_per_step / capacity, 0.0),
            }
        ]
    )
    categories = pd.concat([categories, idle], ignore_index=True)
    notes = [
        "Self times are summed over threads: with several cores busy at once, the "
        "per-step times of all operations add up to more than the step time. Shares "
        "are of the busy thread time, except idle, which is the share of the cores' time "
        "(cores x step time) no operation used."
    ]
    xla_share = categories.loc[categories["category"] == "XLA cluster", "share"].sum()
    if xla_share > 0.3:
        notes.append(
            "Under XLA the step runs as one compiled cluster: its time shows up as the "
            "cluster op (the __inference_... function), and the ops fused inside it are "
            "not broken down on the CPU (xprof's hlo_stats and op_profile are empty there). "
            "The idle figure overstates: work the cluster hands to XLA's own threads is not "
            "visible as operations."
        )
    return ProfileSummary(
        run_id=run["run_id"],
        variant=run["variant"],
        workload=f"{run['model']}/{run['dataset']}/b{run['batch_size']}",
        trace_dir=trace_dir,
        steps=len(step_ms),
        profiler_step_ms=float(np.median(step_ms)) if step_ms else float("nan"),
        harness_step_ms=float(np.median(harness)) * 1e3 if harness.size else float("nan"),
        top_ops=table[
            [
                "rank",
                "operation",
                "type",
                "category",
                "occurrences",
                "total_ms",
                "per_step_ms",
                "share",
            ]
        ].reset_index(drop=True),
        categories=categories,
        notes=tuple(notes),
    )


def summarize_profiles(results: Results, top: int = 10) -> tuple[list[ProfileSummary], list[str]]:
    """A summary per profiling run whose trace can be read, and a problem per one that
    cannot (missing trace, converter missing or failing)."""
    runs = results.runs
    if runs.empty or "purpose" not in runs.columns:
        return [], []
    summaries, problems = [], []
    for _, run in runs[(runs["purpose"] == "profile") & runs["trace"].notna()].iterrows():
        root = results.roots.get(run["run_id"])
        trace_dir = (root / run["trace"]) if root is not None else Path(run["trace"])
        steps = results.steps
        harness = steps.loc[
            (steps["run_id"] == run["run_id"]) & (steps["phase"] == "profiled"), "seconds"
        ].to_numpy(float)
        try:
            summaries.append(_summarise(run, trace_dir, harness, top))
        except ImportError:
            problems.append(
                "traces were captured, but xprof is not installed "
                "(pip install xprof) so they cannot be summarised"
            )
            break
        except (TraceReadError, OSError, ValueError, KeyError) as exc:
            problems.append(f"{run['variant']}: cannot read the trace in {trace_dir}: {exc}")
    return summaries, problems
