"""The eager step breakdown on a hand-built timeline whose answer is known."""

from __future__ import annotations

import pytest

from reports.eager_steps import OP_PREFIX, covered, eager_steps


def _event(name, start, end, tid=1, **args):
    return {"name": name, "pid": 7, "tid": tid, "ts": start, "dur": end - start, "args": args}


def _op(op_type, start, end):
    return _event(OP_PREFIX + op_type, start, end)


TIMELINE = [
    # Before the first step: the input fetch, outside every marker.
    _op("IteratorGetNext", 0, 90),
    _event("train 3", 100, 1100, step_num="3", step_name="train 3"),
    _event("TFE_Py_FastPathExecute_C", 150, 400),
    _op("Conv2D", 200, 380),
    _event("EagerKernelExecute", 220, 370),
    _event("convert_to_tensor", 450, 500),  # dispatch, no op inside
    _event("TFE_Py_FastPathExecute_C", 600, 700),
    _op("MatMul", 610, 690),
    _event("EagerKernelExecute", 620, 680),
    _op("Identity", 630, 640),  # run inside MatMul: not counted twice
    # Another thread: an intra-op pool, nested regions, one running past the step's end.
    _event("ThreadpoolListener::Region", 250, 350, tid=2),
    _event("ThreadpoolListener::Region", 300, 320, tid=2),
    _event("ThreadpoolListener::Region", 1050, 1200, tid=2),
    _event("train 4", 2000, 2500, step_num="4", step_name="train 4"),
    _event("TFE_Py_FastPathExecute_C", 2050, 2350),
    _op("Conv2D", 2100, 2300),
    _event("EagerKernelExecute", 2120, 2280),
]


def test_union_of_intervals():
    assert covered([(5, 6), (0, 2), (1, 3), (1.5, 2.5)]) == 4
    assert covered([]) == 0


def test_the_step_splits_into_ops_dispatch_and_python():
    e = eager_steps(TIMELINE)
    assert e is not None and e.steps == 2
    assert e.step_ms == (1.0, 0.5)
    # Step 3: ops 180 + 80 µs; TensorFlow events cover 250 + 50 + 100 µs; 1000 µs wall.
    # Step 4: op 200 µs; events 300 µs; 500 µs wall. Means over the two steps:
    assert e.wall_ms == pytest.approx((1000 + 500) / 2 / 1e3)
    assert e.op_ms == pytest.approx((260 + 200) / 2 / 1e3)
    assert e.dispatch_ms == pytest.approx((140 + 100) / 2 / 1e3)
    assert e.python_ms == pytest.approx((600 + 200) / 2 / 1e3)
    assert e.kernel_ms == pytest.approx((150 + 60 + 160) / 2 / 1e3)
    # The pool thread: 100 µs of nested regions plus 50 µs clipped at the step's end.
    assert e.parallel_ms == pytest.approx(150 / 2 / 1e3)
    assert e.ops_per_step == 1.5
    ops = e.ops.set_index("type")
    assert list(ops.index) == ["Conv2D", "MatMul"]
    assert ops.loc["Conv2D", "calls"] == 2
    assert ops.loc["Conv2D", "total_ms"] == pytest.approx(0.38)
    assert ops.loc["MatMul", "total_ms"] == pytest.approx(0.08)


def test_no_breakdown_without_marked_eager_ops():
    assert eager_steps([]) is None
    unmarked = [e for e in TIMELINE if "step_num" not in e["args"]]
    assert eager_steps(unmarked) is None
    no_ops = [e for e in TIMELINE if not e["name"].startswith(OP_PREFIX)]
    assert eager_steps(no_ops) is None
