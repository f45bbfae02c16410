"""Where an eager step's time goes, read from the profiler's timeline.

An eager step runs its operations one at a time from Python, on the thread that holds the
step marker (``Trace("train", step_num=...)``). On that thread the profiler records each
operation (``EagerLocalExecute: <type>``, its kernel inside as ``EagerKernelExecute``) and
the TensorFlow calls between them (``TFE_Py_FastPathExecute_C``, ``convert_to_tensor``,
``TFE_DeleteTensorHandle``, ...). The marker's span therefore splits into three parts that
add up to the step:

* **ops** -- inside an operation (its kernel, plus the eager runtime's per-op work:
  placement checks, kernel lookup, copies);
* **dispatch** -- inside a TensorFlow event but outside every operation: the Python API's
  way into the runtime, tensor conversion, handle deletion;
* **Python** -- inside no event: Keras layers, the tape, the optimizer's Python code (and
  any time the thread waited for a core).

Work other threads do during the step (an intra-op pool running an op's loops, tf.data)
runs alongside the step thread; it is reported on its own, not as part of the step.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

OP_PREFIX = "EagerLocalExecute: "
KERNEL = "EagerKernelExecute"

Event = dict[str, Any]


def covered(intervals: Iterable[tuple[float, float]]) -> float:
    """The length of the union of ``(start, end)`` intervals."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _clipped(events: Iterable[Event], start: float, end: float) -> list[tuple[float, float]]:
    spans = ((max(e["ts"], start), min(e["ts"] + e["dur"], end)) for e in events)
    return [(a, b) for a, b in spans if b > a]


def _outermost_ops(events: Iterable[Event]) -> list[Event]:
    """Operation events not nested in another one (an op can run others inside it)."""
    out, reach = [], -math.inf
    for e in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
        if e["name"].startswith(OP_PREFIX) and e["ts"] >= reach:
            out.append(e)
            reach = e["ts"] + e["dur"]
    return out


def step_markers(events: Sequence[Event]) -> list[Event]:
    """The step markers (``Trace(name, step_num=...)``), in time order."""
    marked = [e for e in events if {"step_num", "step_name"} <= set(e.get("args", {}))]
    return sorted(marked, key=lambda e: e["ts"])


@dataclass(frozen=True)
class EagerSteps:
    """Per-step means (ms) over the traced steps of an eager run; ``op_ms + dispatch_ms +
    python_ms == wall_ms``."""

    steps: int
    wall_ms: float
    op_ms: float
    kernel_ms: float  # of op_ms: inside the kernels themselves
    dispatch_ms: float
    python_ms: float
    parallel_ms: float  # other threads' busy time during the step, alongside it
    ops_per_step: float
    step_ms: tuple[float, ...]  # each traced step's wall time
    ops: pd.DataFrame  # type, calls, total_ms: over all traced steps

    def __post_init__(self) -> None:
        if self.steps < 1 or len(self.step_ms) != self.steps:
            raise ValueError(f"{self.steps} steps with {len(self.step_ms)} step times")
        parts = self.op_ms + self.dispatch_ms + self.python_ms
        if not math.isclose(parts, self.wall_ms, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"ops, dispatch and Python add to {parts} ms, not {self.wall_ms}")


def _one_step(marker: Event, events: Sequence[Event]) -> dict[str, Any]:
    start, end = marker["ts"], marker["ts"] + marker["dur"]
    thread = (marker["pid"], marker["tid"])
    inside = [
        e
        for e in events
        if e is not marker
        and e["ts"] < end
        and e["ts"] + e["dur"] > start
        and "step_num" not in e.get("args", {})
    ]
    mine = [e for e in inside if (e["pid"], e["tid"]) == thread]
    ops = [
        (e["name"][len(OP_PREFIX) :], b - a)
        for e in _outermost_ops(mine)
        for a, b in _clipped([e], start, end)
    ]
    op_us = sum(us for _, us in ops)
    busy_us = covered(_clipped(mine, start, end))
    others: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for e in inside:
        if (e["pid"], e["tid"]) != thread:
            others[(e["pid"], e["tid"])].append(e)
    return {
        "wall": end - start,
        "op": op_us,
        "kernel": covered(_clipped((e for e in mine if e["name"] == KERNEL), start, end)),
        "dispatch": busy_us - op_us,
        "python": (end - start) - busy_us,
        "parallel": sum(covered(_clipped(es, start, end)) for es in others.values()),
        "ops": ops,
    }


def eager_steps(events: Sequence[Event]) -> EagerSteps | None:
    """The breakdown of the marked steps in a timeline; None if it holds no marked step
    with an eager operation in it (a compiled step runs as one function call)."""
    markers = step_markers(events)
    parts = [_one_step(m, events) for m in markers]
    if not parts or not any(p["ops"] for p in parts):
        return None
    n = len(parts)
    calls: Counter[str] = Counter()
    total_us: Counter[str] = Counter()
    for p in parts:
        for op_type, us in p["ops"]:
            calls[op_type] += 1
            total_us[op_type] += us
    ops = pd.DataFrame({"type": list(calls), "calls": list(calls.values())}).assign(
        total_ms=lambda d: d["type"].map(total_us) / 1e3
    )

    def mean_ms(key: str) -> float:
        return sum(p[key] for p in parts) / n / 1e3

    return EagerSteps(
        steps=n,
        wall_ms=mean_ms("wall"),
        op_ms=mean_ms("op"),
        kernel_ms=mean_ms("kernel"),
        dispatch_ms=mean_ms("dispatch"),
        python_ms=mean_ms("python"),
        parallel_ms=mean_ms("parallel"),
        ops_per_step=sum(calls.values()) / n,
        step_ms=tuple(p["wall"] / 1e3 for p in parts),
        ops=ops.sort_values("total_ms", ascending=False, ignore_index=True),
    )
