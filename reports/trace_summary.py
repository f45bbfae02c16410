"""Profiler traces summarised without a UI: top operations, a breakdown by category, and
the profiler's step time next to the harness's own.

Traces are read with the converters xprof ships (``reports.xprof_data``), imported only
when a report has traces. On the CPU every op runs on the host. A compiled step's ops come
from the op tables (``framework_op_stats``); under XLA the step is one compiled cluster,
whose inside the op tables cannot show -- the summary says so. An eager step's ops are
missing from those tables (they run inline on the Python thread), so an eager cell is
summarised from the timeline instead: its ops and the dispatch and Python time between
them (``reports.eager_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.eager_steps import EagerSteps, eager_steps
from reports.frames import Results
from reports.op_categories import op_category
from reports.xprof_data import (
    TraceReadError,
    read_marked_calls,
    read_op_stats,
    read_timeline,
)

MISMATCH = 0.10  # profiler vs harness step time: flag a larger relative difference
OP_COLUMNS = [
    "rank",
    "operation",
    "type",
    "category",
    "occurrences",
    "total_ms",
    "per_step_ms",
    "share",
]
GRAPH_NOTE = (
    "Self times are summed over threads: with several cores busy at once, the "
    "per-step times of all operations add up to more than the step time. Shares "
    "are of the busy thread time, except idle, which is the share of the cores' time "
    "(cores x step time) no operation used."
)
XLA_NOTE = (
    "Under XLA the step runs as one compiled cluster: its time shows up as the "
    "cluster op (the __inference_... function), and the ops fused inside it are "
    "not broken down on the CPU (xprof's hlo_stats and op_profile are empty there). "
    "The idle figure overstates: work the cluster hands to XLA's own threads is not "
    "visible as operations."
)


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
    categories: pd.DataFrame  # category, per-step ms, share
    notes: tuple[str, ...]
    share_of: str = "busy time"  # what the op and category shares are shares of
    eager: EagerSteps | None = None  # an eager step's breakdown, from the timeline

    @property
    def mismatch(self) -> float:
        """|profiler / harness - 1| for the same steps."""
        return abs(self.profiler_step_ms / self.harness_step_ms - 1)


def _ranked(ops: pd.DataFrame, top: int) -> pd.DataFrame:
    """The first ``top`` rows of ops sorted by time, with their rank, in OP_COLUMNS."""
    head = ops.head(top)
    return head.assign(rank=range(1, len(head) + 1))[OP_COLUMNS].reset_index(drop=True)


def _by_category(ops: pd.DataFrame) -> pd.DataFrame:
    return ops.groupby("category")[["per_step_ms", "share"]].sum().reset_index()


def _graph_tables(
    run: pd.Series, ops: pd.DataFrame, n_steps: int
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(busy ops by self time, categories, busy ms per step) from an op table."""
    self_us = ops["total_self_time"].astype(float)
    category = ops["type"].map(op_category)
    if run["mode"] == "xla":  # the compiled function is the cluster, not call overhead
        category = category.mask(ops["type"].str.startswith("__inference"), "XLA cluster")
    busy_us = self_us[category != "idle"].sum() or float("nan")
    ops = ops.assign(
        category=category,
        per_step_ms=self_us / n_steps / 1e3,
        share=self_us / busy_us,
        total_ms=self_us / 1e3,
    )
    busy = ops[ops["category"] != "idle"].sort_values("total_self_time", ascending=False)
    categories = _by_category(busy).sort_values("per_step_ms", ascending=False)
    return busy, categories, busy_us / n_steps / 1e3


def _idle_row(run: pd.Series, busy_per_step: float, step_ms: list[float]) -> pd.DataFrame:
    # Idle: core time the step left unused. The profiler's own IDLE row sums the idle
    # time of every thread (pools hold more threads than there are cores), so it says
    # little; cores x step time - busy thread time is what the machine had spare.
    cores = int(run.get("env_cpu_count") or 1)
    capacity = cores * (float(np.median(step_ms)) if step_ms else float("nan"))
    row = {
        "category": f"idle cores (of {cores} x step time)",
        "per_step_ms": max(capacity - busy_per_step, 0.0),
        "share": max(1 - busy_per_step / capacity, 0.0),
    }
    return pd.DataFrame([row])


def _summarise_graph(
    run: pd.Series, trace_dir: Path, harness: np.ndarray, top: int
) -> ProfileSummary:
    ops, call_ms = read_op_stats(trace_dir)
    call_ms = call_ms or read_marked_calls(trace_dir)
    # The profiler marks calls; a call of MODE:N runs N training steps.
    calls = int(run.get("steps_per_call") or 1)
    step_ms = [ms / calls for ms in call_ms]
    busy, categories, busy_per_step = _graph_tables(run, ops, max(len(step_ms), 1) * calls)
    categories = pd.concat([categories, _idle_row(run, busy_per_step, step_ms)], ignore_index=True)
    xla_share = categories.loc[categories["category"] == "XLA cluster", "share"].sum()
    notes = (GRAPH_NOTE, XLA_NOTE) if xla_share > 0.3 else (GRAPH_NOTE,)
    return _summary(
        run,
        trace_dir,
        harness,
        step_ms,
        top_ops=_ranked(busy, top),
        categories=categories.reset_index(drop=True),
        notes=notes,
    )


def _ms(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _eager_notes(e: EagerSteps) -> tuple[str, ...]:
    between = e.dispatch_ms + e.python_ms
    return (
        f"An eager step runs its {e.ops_per_step:,.0f} operations one at a time from "
        f"Python. Of its {_ms(e.wall_ms)} ms (the mean over {e.steps} traced steps, on the "
        f"step's thread), {_ms(e.op_ms)} ms ({e.op_ms / e.wall_ms:.0%}) are inside "
        f"operations ({_ms(e.kernel_ms)} ms of them in their kernels, the rest the eager "
        "runtime's per-op work), "
        f"{_ms(e.dispatch_ms)} ms ({e.dispatch_ms / e.wall_ms:.0%}) in TensorFlow's "
        "dispatch between them (the Python API's calls into the runtime, tensor "
        f"conversion, handle deletion) and {_ms(e.python_ms)} ms "
        f"({e.python_ms / e.wall_ms:.0%}) in Python (Keras layers, the tape, the "
        "optimizer; also any time the thread waited for a core): "
        f"{between / e.ops_per_step * 1e3:.3g} µs between consecutive operations. "
        "Shares are of the step's wall time.",
        f"Other threads (intra-op pools running the ops' loops, tf.data) were busy "
        f"{_ms(e.parallel_ms)} ms per step alongside the step's thread. A compiled step "
        "hands the whole graph to the runtime in one call, without the per-op dispatch "
        "and Python time.",
    )


def _summarise_eager(
    run: pd.Series, trace_dir: Path, harness: np.ndarray, top: int
) -> ProfileSummary:
    e = eager_steps(read_timeline(trace_dir))
    if e is None:
        raise TraceReadError(f"{trace_dir}: no marked step with eager operations in it")
    ops = e.ops.assign(
        operation=e.ops["type"],
        category=e.ops["type"].map(op_category),
        occurrences=e.ops["calls"],
        per_step_ms=e.ops["total_ms"] / e.steps,
    ).assign(share=lambda d: d["per_step_ms"] / e.wall_ms)
    between = pd.DataFrame(
        {
            "category": ["TensorFlow dispatch between ops", "Python between ops"],
            "per_step_ms": [e.dispatch_ms, e.python_ms],
        }
    ).assign(share=lambda d: d["per_step_ms"] / e.wall_ms)
    categories = pd.concat([_by_category(ops), between], ignore_index=True)
    return _summary(
        run,
        trace_dir,
        harness,
        list(e.step_ms),
        top_ops=_ranked(ops, top),
        categories=categories.sort_values("per_step_ms", ascending=False, ignore_index=True),
        notes=_eager_notes(e),
        share_of="step time",
        eager=e,
    )


def _summary(
    run: pd.Series, trace_dir: Path, harness: np.ndarray, step_ms: list[float], **tables: Any
) -> ProfileSummary:
    return ProfileSummary(
        run_id=run["run_id"],
        variant=run["variant"],
        workload=f"{run['model']}/{run['dataset']}/b{run['batch_size']}",
        trace_dir=trace_dir,
        steps=len(step_ms),
        profiler_step_ms=float(np.median(step_ms)) if step_ms else float("nan"),
        harness_step_ms=float(np.median(harness)) * 1e3 if harness.size else float("nan"),
        **tables,
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
            summarise = _summarise_eager if run["mode"] == "eager" else _summarise_graph
            summaries.append(summarise(run, trace_dir, harness, top))
        except ImportError:
            problems.append(
                "traces were captured, but xprof is not installed "
                "(pip install xprof) so they cannot be summarised"
            )
            break
        except (TraceReadError, OSError, ValueError, KeyError) as exc:
            problems.append(f"{run['variant']}: cannot read the trace in {trace_dir}: {exc}")
    return summaries, problems
