"""pytest-benchmark suite: one benchmark per variant of the training step.

Run with ``pytest bench/benchmarks`` (or ``tox -e benchmark``); pytest-benchmark's own
``--benchmark-autosave``, ``--benchmark-compare`` and ``--benchmark-compare-fail`` work as
usual, and ``tapebench compare`` reads the JSON it saves.

Each benchmark builds the variant's session (untimed), times the first call (tracing,
compilation) on its own, runs warm-up steps, then times rounds of ``steps_per_round``
steps -- enough for a round to last about 0.2 s -- each ending with a device sync. Rounds
reuse a few batches staged on the device, so the input pipeline is not measured. A retrace
during the timed rounds fails the benchmark.

All benchmarks share one process (that is how pytest-benchmark works), unlike
``tapebench run``, which isolates every run; the precision policy is restored after each.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from bench.machine.fingerprint import host_fingerprint
from bench.matrix.cells import STANDARD_VARIANTS
from trainloop.config import Variant, Workload

tf = pytest.importorskip("tensorflow")

from trainloop.devices import describe_runtime  # noqa: E402
from trainloop.session import open_session  # noqa: E402
from trainloop.step import tracing_count  # noqa: E402

ROUND_S = 0.2  # a timed round lasts at least this long
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


def _params(model: str) -> list[Any]:
    return [pytest.param(model, Variant(m, p), id=f"{model}-{m}/{p}") for m, p in STANDARD_VARIANTS]


@pytest.mark.parametrize("model, variant", _params("tiny") + _params("reference"))
def test_train_step(benchmark: Any, model: str, variant: Variant) -> None:
    workload = Workload(model=model, dataset="synthetic", batch_size=64, epochs=1)
    with open_session(variant, workload) as session:
        batches = _staged_batches(workload.batch_size)
        step, sync = session.train_step, session.sync

        def run(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                loss = step(*batches[i % STAGED])
            float(loss)
            sync()
            return time.perf_counter() - start

        first_step_s = run(1)
        run(WARMUP_STEPS)
        steps_per_round = max(1, math.ceil(ROUND_S / run(1)))
        traces_before = tracing_count(step)
        benchmark.pedantic(run, args=(steps_per_round,), rounds=ROUNDS, iterations=1)
        traces_after = tracing_count(step)
    benchmark.extra_info.update(
        variant=variant.name,
        model=model,
        batch_size=workload.batch_size,
        steps_per_round=steps_per_round,
        first_step_s=first_step_s,
        fingerprint={**host_fingerprint(), **describe_runtime()},
    )
    assert traces_after == traces_before, (
        f"{variant.name}: the step was traced again during the timed rounds "
        f"({traces_before} -> {traces_after})"
    )
