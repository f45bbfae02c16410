"""The harness's own cost: the same training steps timed by tapebench's loop and untimed.

    python -m bench.benchmarks.overhead [--blocks 8] [--steps 100]

In one process, on one session (reference CNN, function mode, float32, tf.data input), it
alternates blocks of ``--steps`` steps run by tapebench's epoch loop -- per-step clock
reads, host fetch of every loss, device sync, phase and progress bookkeeping, the records
-- with blocks of the same steps in a bare loop that only calls the step (and syncs once at
the end). It prints each block and the ratio of the medians: the harness's overhead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from trainloop.config import Variant, Workload
from trainloop.datasets import synthetic_arrays
from trainloop.inputs import create_train_dataset
from trainloop.loop import TrainingLoop
from trainloop.session import open_session


class _Quiet:
    """A listener that keeps nothing: the loop's own bookkeeping is what is measured."""

    def loop_begin(self, info: Any) -> None: ...

    def progress(self, epoch: int, step: int, steps: int) -> None: ...

    def steps_end(self, chunk: Any) -> None: ...

    def epoch_end(self, result: Any) -> None: ...


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison and prints the overhead."""
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.overhead")
    parser.add_argument("--blocks", type=int, default=8, help="blocks of each kind")
    parser.add_argument("--steps", type=int, default=100, help="steps per block")
    parser.add_argument("--model", default="reference")
    parser.add_argument("--variant", default="function")
    args = parser.parse_args(argv)
    variant = Variant.parse(args.variant)
    workload = Workload(
        model=args.model,
        dataset="synthetic",
        epochs=10_000,
        steps_per_epoch=args.steps,
        warmup_steps=0,
        eval_examples=0,
    )
    data = synthetic_arrays(0)
    loop = TrainingLoop(variant, workload, data)
    with open_session(variant, workload, data.num_classes) as session:
        dataset = create_train_dataset(data, workload.batch_size, workload.seed, True)
        trainer = loop.trainer(session, dataset)
        feed, sync = trainer.feed, session.sync
        describe = dict(session.describe(), eval_first_call_s=None, steps_per_epoch=args.steps)
        trainer.epoch(0, _Quiet(), describe)  # tracing and warm-up, not measured

        def untimed() -> float:
            start = time.perf_counter()
            feed.start_epoch(0)
            for i in range(args.steps):
                loss = feed.run(feed.fetch(i, 1))
            float(loss)
            sync()
            return time.perf_counter() - start

        def timed(epoch: int) -> float:
            start = time.perf_counter()
            trainer.epoch(epoch, _Quiet(), describe)
            return time.perf_counter() - start

        bare, harness = [], []
        print(f"{'block':>5} {'untimed s':>10} {'timed s':>10}")
        for block in range(args.blocks):
            bare.append(untimed())
            harness.append(timed(block + 1))
            print(f"{block:>5} {bare[-1]:>10.3f} {harness[-1]:>10.3f}", flush=True)
    overhead = statistics.median(harness) / statistics.median(bare) - 1
    per_step = (statistics.median(harness) - statistics.median(bare)) / args.steps
    print(
        f"\nmedian block: untimed {statistics.median(bare):.3f} s, timed "
        f"{statistics.median(harness):.3f} s ({args.steps} steps of {variant.name})"
    )
    print(f"harness overhead: {overhead:+.2%} of step time ({per_step * 1e6:+.0f} µs per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
