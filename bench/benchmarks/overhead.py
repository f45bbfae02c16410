"""The harness against a bare loop of the same step, and where the difference goes.

    python -m bench.benchmarks.overhead [--rounds 150] [--steps 4] [--variant function]

In one process, on one session (reference CNN, synthetic data, batch 64), it runs rounds of
blocks of ``--steps`` steps, in a fresh random order every round, under six conditions:

* ``harness`` -- tapebench's epoch loop on the variant's default feed (the tf.data stream)
  reporting to the real listener (the worker's, writing JSON lines to a pipe that a thread
  drains, as the parent does); the per-step times are the ones it records;
* ``bare: stream`` -- a bare loop of the same step, wrapped as a user would (a plain
  ``tf.function``), taking its batches from the same stream and fetching every loss;
* ``bare: stream + sync`` -- the same, with ``sync_devices`` after every step (the harness
  syncs so where devices run asynchronously; on the CPU the loss fetch ends the step);
* ``bare: stream + sync, any batch`` -- and the step traced with an unknown batch
  dimension, as the harness did before it traced for the batch size;
* ``bare: same tensors`` -- the bare loop on one batch every step, no input pipeline (an
  outside timer's loop);
* ``bare: own model`` -- that loop on a model and optimizer built outside the session (no
  device scope, no seeding): the model's construction.

Per-step times are intervals from the end of one step to the end of the next; each block's
first step is dropped (it follows another condition's block; the harness's is its epoch's
first call). Short blocks and many rounds: per round, each condition's median is divided by
a reference condition's, and the median of those paired ratios, with a bootstrap interval,
is reported, so load that changes slower than a round (a few hundred ms) cancels. It ends
with the loop's machinery alone: the epoch loop around a step that does nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bench.worker import EventListener, EventWriter
from reports import stats
from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.datasets import synthetic_arrays
from trainloop.feeds import DatasetFeed
from trainloop.loop import FeedTrainer, TrainingLoop
from trainloop.models import create_model
from trainloop.session import Session, open_session
from trainloop.step import create_optimizer, create_train_step, precision_policy, wrap_step

Block = Callable[[], list[float]]  # runs a block, returns its per-step seconds


class _PipeListener(EventListener):
    """The worker's listener on a real pipe, drained by a thread; keeps the last chunk."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        super().__init__(EventWriter(os.fdopen(write_fd, "w", encoding="utf-8")))
        reader = os.fdopen(read_fd, encoding="utf-8")
        threading.Thread(target=lambda: [None for _ in reader], daemon=True).start()
        self.chunk: Any = None

    def steps_end(self, chunk: Any) -> None:
        super().steps_end(chunk)
        self.chunk = chunk


def _bare(step: Any, batch: Callable[[], Any], sync: Callable[[], None] | None, n: int) -> Block:
    """A bare loop of ``n`` steps: the loss fetched every step, synced if ``sync``."""

    def block() -> list[float]:
        out, last = [], time.perf_counter()
        for _ in range(n):
            float(step(*batch()))
            if sync is not None:
                sync()
            now = time.perf_counter()
            out.append(now - last)
            last = now
        return out[1:]

    return block


def _harness(trainer: FeedTrainer, listener: _PipeListener) -> Block:
    """One epoch of the harness per block; its recorded per-step times (phase timed)."""
    epochs = iter(range(1, 1 << 30))

    def block() -> list[float]:
        trainer.epoch(next(epochs), listener)
        chunk = listener.chunk
        return [s for s, p in zip(chunk.seconds, chunk.phases, strict=True) if p == "timed"]

    return block


def _user_step(step_fn: Any, mode: str, signature: Any = None) -> Any:
    """The step as a user wraps it: plain, ``tf.function`` or ``tf.function`` with XLA."""
    if mode == "eager":
        return step_fn
    if signature is not None:
        return wrap_step(step_fn, mode, signature)
    return tf.function(step_fn, jit_compile=mode == "xla")


def _own_step(variant: Variant, workload: Workload) -> Any:
    """The same step on a model and optimizer built outside any session."""
    with precision_policy(variant.precision):
        model = create_model(workload.model)
        optimizer = create_optimizer(workload.learning_rate, workload.epochs, variant.precision)
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.CategoricalCrossentropy(reduction=None)
    return _user_step(create_train_step(model, loss_fn, optimizer), variant.mode)


def _blocks(loop: TrainingLoop, session: Session, dataset: Any, steps: int) -> dict[str, Block]:
    """The six conditions, built on one session."""
    v, w = loop.variant, loop.workload
    feed = DatasetFeed(session, dataset)  # the default feed
    listener = _PipeListener()
    trainer = FeedTrainer(loop.setup(session), feed)
    trainer.epoch(0, listener)  # the harness's first call and warm-up
    stream = feed.iterator.__next__
    fixed = stream()
    same = lambda: fixed  # noqa: E731
    user = _user_step(session.train_step_fn, v.mode)
    any_batch = _user_step(session.train_step_fn, v.mode, inputs.input_signature(10))
    sync = session.sync
    return {
        "harness": _harness(trainer, listener),
        "bare: stream": _bare(user, stream, None, steps),
        "bare: stream + sync": _bare(user, stream, sync, steps),
        "bare: stream + sync, any batch": _bare(any_batch, stream, sync, steps),
        "bare: same tensors": _bare(user, same, None, steps),
        "bare: own model": _bare(_own_step(v, w), same, None, steps),
    }


def _measure(blocks: dict[str, Block], rounds: int, seed: int = 0) -> dict[str, list[list[float]]]:
    """Per condition, the per-step times of each round's block (warm-up round dropped)."""
    order, rng = list(blocks), random.Random(seed)
    samples: dict[str, list[list[float]]] = {name: [] for name in blocks}
    for r in range(rounds + 1):
        rng.shuffle(order)
        for name in order:
            times = blocks[name]()
            if r:
                samples[name].append(times)
    return samples


def _ratio(samples: dict[str, list[list[float]]], top: str, bottom: str) -> str:
    """The median over rounds of median(top) / median(bottom), with a 95% interval."""
    ratios = [
        statistics.median(a) / statistics.median(b)
        for a, b in zip(samples[top], samples[bottom], strict=True)
    ]
    low, high = stats.median_ci([np.log(ratios)])
    return (
        f"{statistics.median(ratios) - 1:+7.2%} [95% CI {np.exp(low) - 1:+.2%} to "
        f"{np.exp(high) - 1:+.2%}]"
    )


COMPARISONS = (
    ("harness", "bare: stream", "the harness against a bare loop of its step and feed"),
    ("harness", "bare: same tensors", "the harness against an outside timer's loop"),
    ("bare: own model", "bare: same tensors", "  a model built outside the session"),
    ("bare: stream", "bare: same tensors", "  the input stream (taking batches, its threads)"),
    ("bare: stream + sync", "bare: stream", "  sync_devices (the harness's on GPUs only)"),
    ("bare: stream + sync, any batch", "bare: stream + sync", "  an unknown batch dimension"),
)


def _report(samples: dict[str, list[list[float]]]) -> None:
    for name, runs in samples.items():
        pooled = [s for run in runs for s in run]
        print(f"  {name:32s} median {statistics.median(pooled) * 1e3:8.3f} ms per step")
    print("paired ratios (median over rounds):")
    for top, bottom, label in COMPARISONS:
        print(f"  {label:52s} {_ratio(samples, top, bottom)}")


class _NullFeed(DatasetFeed):
    """A feed whose step does no work: what remains is the loop's own machinery."""

    def __init__(self, loss: Any) -> None:
        self.loss, self.iterator = loss, None

    def start_epoch(self, epoch: int) -> None: ...

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        return ()

    def run(self, args: tuple[Any, ...]) -> Any:
        return self.loss

    @property
    def traced(self) -> Any:
        return None


def _machinery(loop: TrainingLoop, session: Session, steps: int = 2000) -> float:
    """Seconds per step of the epoch loop around a step that does nothing, less a bare
    loop around the same nothing (medians of 10 blocks)."""
    null = _NullFeed(tf.constant(1.0))
    null_loop = TrainingLoop(loop.variant, loop.workload.replace(steps_per_epoch=steps), loop.data)
    trainer, listener = FeedTrainer(null_loop.setup(session), null), _PipeListener()
    timed, bare = [], []
    for epoch in range(10):
        start = time.perf_counter()
        trainer.epoch(epoch, listener)
        timed.append((time.perf_counter() - start) / steps)
        start = time.perf_counter()
        for i in range(steps):
            float(null.run(null.fetch(i, 1)))
        bare.append((time.perf_counter() - start) / steps)
    return statistics.median(timed) - statistics.median(bare)


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, TrainingLoop]:
    """The options, and the loop they describe (bad values end with exit code 2)."""
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.overhead")
    parser.add_argument("--rounds", type=int, default=150, help="rounds of blocks (>= 2)")
    parser.add_argument("--steps", type=int, default=4, help="steps per block (>= 3)")
    parser.add_argument("--model", default="reference")
    parser.add_argument("--variant", default="function", help="eager, function or xla")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.steps < 3:
        parser.error(f"--rounds {args.rounds} / --steps {args.steps}: need >= 2 and >= 3")
    try:
        variant = Variant.parse(args.variant)
        workload = Workload(model=args.model, dataset="synthetic", epochs=1 << 30)
        workload = workload.replace(steps_per_epoch=args.steps, warmup_steps=0, eval_examples=0)
        if variant.mode == "fit" or variant.input_mode != "tfdata" or variant.steps_per_call != 1:
            raise ValueError(f"{variant.name}: needs the tf.data input, one step per call")
        return args, TrainingLoop(variant, workload, synthetic_arrays(0))
    except ValueError as exc:
        parser.error(str(exc))
        raise  # parser.error exits


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison and prints it."""
    args, loop = _parse(argv)
    w = loop.workload
    with open_session(loop.variant, w, loop.data.num_classes) as session:
        dataset = inputs.create_train_dataset(loop.data, w.batch_size, w.seed, True)
        samples = _measure(_blocks(loop, session, dataset, args.steps), args.rounds)
        print(f"{loop.variant.name}, {w.model}: {args.rounds} rounds of {args.steps}-step blocks")
        _report(samples)
        machinery = _machinery(loop, session)
    step_s = statistics.median(s for run in samples["harness"] for s in run)
    print(
        f"machinery alone (a step that does nothing): {machinery * 1e6:.1f} µs per step, "
        f"{machinery / step_s:.3%} of the step"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
