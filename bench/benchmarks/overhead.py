"""The harness's own cost: the same training steps timed by tapebench's loop and untimed.

    python -m bench.benchmarks.overhead [--pairs 30] [--steps 20]

In one process, on one session (reference CNN, function mode, float32, tf.data input), it
runs pairs of adjacent blocks -- ``--steps`` steps in tapebench's epoch loop (per-step
clock reads, host fetch of every loss, device sync, phase and progress bookkeeping, the
records) and the same steps in a bare loop that only calls the step and syncs once at the
end -- alternating which goes first. The median of the per-pair ratios, with a bootstrap
interval, is the overhead; pairing cancels most of the machine's drift.

Because a shared machine's noise is larger than the effect, it also times the loop's
machinery alone: the same epoch loop around a step that does nothing (a constant), against
a bare loop around the same nothing. That difference per step, divided by the real step
time, is a precise figure for the harness's share.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
import tensorflow as tf

from reports import stats
from trainloop.config import Variant, Workload
from trainloop.datasets import synthetic_arrays
from trainloop.feeds import create_feed
from trainloop.inputs import create_train_dataset
from trainloop.loop import FeedTrainer, TrainingLoop
from trainloop.session import open_session


class _Quiet:
    """A listener that keeps nothing: the loop's own bookkeeping is what is measured."""

    def loop_begin(self, info: Any) -> None: ...

    def progress(self, epoch: int, step: int, steps: int) -> None: ...

    def steps_end(self, chunk: Any) -> None: ...

    def epoch_end(self, result: Any) -> None: ...


class _NullFeed:
    """A feed whose step does no work: what remains is the loop's own machinery."""

    fetch_reads_input = True

    def __init__(self, loss: Any) -> None:
        self.loss, self.traced = loss, None

    def start_epoch(self, epoch: int) -> None: ...

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        return ()

    def run(self, args: tuple[Any, ...]) -> Any:
        return self.loss


def _blocks(
    trainer: Any, feed: Any, sync: Any, describe: dict[str, Any], steps: int, pairs: int
) -> list[float]:
    """Per-pair ratios timed / untimed, alternating which block runs first."""

    def untimed() -> float:
        start = time.perf_counter()
        feed.start_epoch(0)
        loss: Any = None
        for i in range(steps):
            loss = feed.run(feed.fetch(i, 1))
        float(loss)
        sync()
        return time.perf_counter() - start

    def timed(epoch: int) -> float:
        start = time.perf_counter()
        trainer.epoch(epoch, _Quiet())
        return time.perf_counter() - start

    ratios = []
    for k in range(pairs):
        if k % 2:
            a = untimed()
            b = timed(k + 1)
        else:
            b = timed(k + 1)
            a = untimed()
        ratios.append(b / a)
    return ratios


def main(argv: list[str] | None = None) -> int:
    """Runs both comparisons and prints the overhead."""
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.overhead")
    parser.add_argument("--pairs", type=int, default=30, help="pairs of blocks")
    parser.add_argument("--steps", type=int, default=20, help="steps per block")
    parser.add_argument("--model", default="reference")
    parser.add_argument("--variant", default="function")
    args = parser.parse_args(argv)
    variant = Variant.parse(args.variant)
    workload = Workload(
        model=args.model,
        dataset="synthetic",
        epochs=100_000,
        steps_per_epoch=args.steps,
        warmup_steps=0,
        eval_examples=0,
    )
    data = synthetic_arrays(0)
    loop = TrainingLoop(variant, workload, data)
    with open_session(variant, workload, data.num_classes) as session:
        dataset = create_train_dataset(data, workload.batch_size, workload.seed, True)
        feed = create_feed(session, variant, workload, data, dataset)
        trainer = FeedTrainer(loop.setup(session), feed)
        describe: dict[str, Any] = {}
        trainer.epoch(0, _Quiet())  # tracing and warm-up, not measured
        start = time.perf_counter()
        ratios = _blocks(trainer, trainer.feed, session.sync, describe, args.steps, args.pairs)
        step_s = (time.perf_counter() - start) / (2 * args.pairs * args.steps)
        low, high = stats.median_ci([np.log(ratios)])
        print(
            f"paired blocks ({args.pairs} pairs of {args.steps} steps, {variant.name}, "
            f"~{step_s * 1e3:.1f} ms per step):"
        )
        print(
            f"  timed/untimed median ratio {statistics.median(ratios):.4f} "
            f"[95% CI {np.exp(low):.4f}-{np.exp(high):.4f}]"
        )
        n = 2000
        null = _NullFeed(tf.constant(1.0))
        null_loop = TrainingLoop(variant, workload.replace(steps_per_epoch=n), data)
        null_trainer = FeedTrainer(null_loop.setup(session), null)  # type: ignore[arg-type]
        ratios_null = _blocks(null_trainer, null, session.sync, describe, n, 10)
        # the same null steps, untimed: what the bare loop costs per step
        bare = time.perf_counter()
        for i in range(n):
            null.run(null.fetch(i, 1))
        bare = (time.perf_counter() - bare) / n
        timed_null = statistics.median(ratios_null) * bare
    print(f"machinery alone (a step that does nothing, {n} steps x 10 pairs):")
    print(
        f"  {timed_null * 1e6:.1f} µs per step timed vs {bare * 1e6:.2f} µs bare: "
        f"{(timed_null - bare) * 1e6:.1f} µs of harness per step"
    )
    print(
        f"harness overhead: {(timed_null - bare) / step_s:.3%} of a {step_s * 1e3:.1f} ms "
        f"step (the paired blocks bound it at {np.exp(high) - 1:+.2%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
