"""pytest-benchmark suite: one benchmark per variant of the training step.

Run with ``pytest bench/benchmarks`` (or ``tox -e benchmark``); pytest-benchmark's own
table, ``--benchmark-autosave``, ``--benchmark-compare`` and ``--benchmark-compare-fail``
work as usual, and ``tapebench compare`` reads the JSON it saves.

Every figure pytest-benchmark keeps is **per training step**: one benchmark "iteration" is
one step -- the call, the host fetch of its loss and a device sync, as in ``tapebench run``
-- and a round runs ``steps_per_round`` of them (pytest-benchmark divides the round's time
by its iterations). Each variant calibrates its own steps per round, enough for a round to
last about ``TAPEBENCH_BENCHMARK_ROUND_S`` seconds (default 0.2), so the work per round
differs between variants and may differ between two saved runs; per-step figures stay
comparable across both.

Each benchmark builds the variant's session (untimed), times the first call (tracing,
compilation) on its own and runs warm-up steps before the rounds. Steps cycle through a few
batches staged in memory, so the input pipeline is not measured. A retrace during the rounds
fails the benchmark. The ``fit`` variants compile the model as Keras ``fit`` does, train
their first and warm-up steps with ``model.fit`` itself, and then time the function fit
calls once per step (``model.train_function``, on an iterator over the staged batches) --
fit's per-step callbacks are not in the figure.

All benchmarks share one process (that is how pytest-benchmark works), unlike
``tapebench run``, which isolates every run; the precision policy is restored after each.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from bench.machine.fingerprint import host_fingerprint
from bench.matrix.cells import STANDARD_VARIANTS
from trainloop.config import Variant, Workload

tf = pytest.importorskip("tensorflow")

from trainloop.devices import describe_runtime  # noqa: E402
from trainloop.fit import compile_for_fit, keras_train_function  # noqa: E402
from trainloop.session import Session, open_session  # noqa: E402
from trainloop.step import tracing_count  # noqa: E402

ROUND_S = float(os.environ.get("TAPEBENCH_BENCHMARK_ROUND_S", "0.2"))
ROUNDS = 7
WARMUP_STEPS = 5
STAGED = 4  # distinct batches cycled through


def _staged_batches(batch_size: int, seed: int = 0) -> list[tuple[Any, Any]]:
    rng = tf.random.Generator.from_seed(seed)
    return [
        (
            rng.uniform([batch_size, 28, 28, 1]),
            tf.one_hot(rng.uniform([batch_size], 0, 10, tf.int32), 10),
        )
        for _ in range(STAGED)
    ]


Step = tuple[Callable[[], Any], Any, float]  # one step, its traced function, first call s


def _time(step: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


def _loop_step(session: Session, batches: list[tuple[Any, Any]]) -> Step:
    """One step of the hand-written loop's wrapped step (the first one timed)."""
    step, sync, batch = session.train_step, session.sync, itertools.cycle(batches).__next__

    def one_step() -> float:
        loss = float(step(*batch()))
        sync()
        return loss

    first_s = _time(one_step, 1)
    _time(one_step, WARMUP_STEPS)
    return one_step, step, first_s


def _fit_step(session: Session, batches: list[tuple[Any, Any]]) -> Step:
    """One step of Keras fit: the model compiled as the fit variant does, its first call
    (fit's set-up and tracing, timed) and warm-up steps trained by ``model.fit``, then
    the function fit calls once per step."""
    xs, ys = (tf.stack(t) for t in zip(*batches, strict=True))
    dataset = tf.data.Dataset.from_tensor_slices((xs, ys)).repeat()
    model = session.model
    compile_for_fit(model, session.optimizer, session.variant.steps_per_call)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    first_s = time.perf_counter() - start
    model.fit(dataset, epochs=1, steps_per_epoch=WARMUP_STEPS, verbose=0, shuffle=False)
    iterator, sync = iter(dataset), session.sync

    def one_step() -> float:
        loss = float(model.train_function(iterator)["loss"])
        sync()
        return loss

    return one_step, keras_train_function(model), first_s


def _params(model: str) -> list[Any]:
    return [pytest.param(model, Variant(m, p), id=f"{model}-{m}/{p}") for m, p in STANDARD_VARIANTS]


@pytest.mark.parametrize("model, variant", _params("tiny") + _params("reference"))
def test_train_step(benchmark: Any, model: str, variant: Variant) -> None:
    workload = Workload(model=model, dataset="synthetic", batch_size=64, epochs=1)
    with open_session(variant, workload) as session:
        batches = _staged_batches(workload.batch_size)
        build = _fit_step if variant.mode == "fit" else _loop_step
        step, traced, first_step_s = build(session, batches)
        steps_per_round = max(1, math.ceil(ROUND_S / (_time(step, 3) / 3)))
        traces_before = tracing_count(traced)
        # One iteration is one step: pytest-benchmark's statistics are per step.
        benchmark.pedantic(step, rounds=ROUNDS, iterations=steps_per_round)
        traces_after = tracing_count(traced)
    benchmark.extra_info.update(
        variant=variant.name,
        model=model,
        batch_size=workload.batch_size,
        steps_per_round=steps_per_round,
        stats_per="step",
        step_function=getattr(traced, "__name__", type(traced).__name__),
        first_step_s=first_step_s,
        fingerprint={**host_fingerprint(), **describe_runtime()},
    )
    assert traces_after == traces_before, (
        f"{variant.name}: the step was traced again during the timed rounds "
        f"({traces_before} -> {traces_after})"
    )
