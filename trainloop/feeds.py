"""Feeds: how batches reach the step, and how many steps one call runs.

A feed pairs an input mode with the executable it calls:

* ``tfdata`` -- a prefetching tf.data pipeline; with ``steps_per_call`` N > 1, one call of
  a compiled in-graph loop takes N batches from the iterator itself (the step count is a
  tensor argument, so a shorter last call does not retrace);
* ``numpy`` -- NumPy fancy indexing per step, converted to tensors by the call (the classic
  tutorial's way);
* ``staged`` -- the whole training set placed on the device once; a call receives the
  batch's indices and gathers the batch inside the step.

The train step itself is the one from :mod:`trainloop.step` in every case.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.datasets import ArrayData
from trainloop.session import Session
from trainloop.step import wrap_step
from trainloop.strategies import shard_by_data


class Feed:
    """Fetches a call's inputs (timed as input) and runs the call (timed as compute)."""

    # False where the batches are read inside the compiled call, so ``fetch`` does not
    # obtain them and its time is not the input pipeline's.
    fetch_reads_input = True

    def start_epoch(self, epoch: int) -> None:
        """Prepares the epoch's batch order (part of the epoch's time)."""
        raise NotImplementedError

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        """The arguments of the call that runs ``steps`` steps from ``first_step``
        (counted within the epoch)."""
        raise NotImplementedError

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        """Runs the call; returns the mean loss of its steps."""
        raise NotImplementedError

    @property
    def traced(self) -> Any:
        """The wrapped callable whose tracing count is watched (None when eager)."""
        raise NotImplementedError


class DatasetFeed(Feed):
    """tf.data, one step per call."""

    def __init__(self, session: Session, dataset: tf.data.Dataset) -> None:
        self.session, self.dataset = session, dataset
        self.iterator: Any = None

    def start_epoch(self, epoch: int) -> None:
        # One iterator for the whole run: the dataset is an endless stream of epochs.
        if self.iterator is None:
            self.iterator = iter(self.dataset)

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        return next(self.iterator)

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        return self.session.train_step(*args)

    @property
    def traced(self) -> Any:
        return self.session.train_step


class InGraphLoopFeed(DatasetFeed):
    """tf.data, ``steps`` steps per call in a compiled loop that reads the iterator."""

    fetch_reads_input = False

    def __init__(self, session: Session, dataset: tf.data.Dataset) -> None:
        super().__init__(session, dataset)
        step = session.train_step_fn

        def train_steps(iterator: Any, steps: tf.Tensor) -> tf.Tensor:
            total = tf.constant(0.0)
            for _ in tf.range(steps):
                images, labels = next(iterator)
                total += tf.cast(step(images, labels), tf.float32)
            return total / tf.cast(steps, tf.float32)

        self._loop = tf.function(train_steps, jit_compile=session.variant.mode == "xla")

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        return self.iterator, tf.constant(steps)

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        return self._loop(*args)

    @property
    def traced(self) -> Any:
        return self._loop


class NumpyFeed(Feed):
    """NumPy slicing per step, a fresh seeded permutation per epoch."""

    def __init__(self, session: Session, data: ArrayData, batch_size: int, seed: int) -> None:
        self.session, self.batch_size, self.seed = session, batch_size, seed
        self.x, self.y = inputs.to_model_arrays(data.x_train, data.y_train, data.num_classes)
        self.order = np.arange(len(self.x))

    def start_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        index = self.order[first_step * self.batch_size : (first_step + 1) * self.batch_size]
        return self.x[index], self.y[index]

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        return self.session.train_step(*args)

    @property
    def traced(self) -> Any:
        return self.session.train_step


class StagedFeed(Feed):
    """The training set on the device; calls receive batch indices and gather in-step."""

    def __init__(self, session: Session, data: ArrayData, batch_size: int, seed: int) -> None:
        self.session, self.batch_size, self.seed = session, batch_size, seed
        x, y = inputs.to_model_arrays(data.x_train, data.y_train, data.num_classes)
        self.n = len(x)
        self.x, self.y = tf.constant(x), tf.constant(y)  # under the session's device scope
        step = session.train_step_fn

        def staged_step(index: tf.Tensor) -> tf.Tensor:
            return step(tf.gather(self.x, index), tf.gather(self.y, index))

        signature = (tf.TensorSpec([session.batch_dim], tf.int32, name="index"),)
        self._step = wrap_step(staged_step, session.variant.mode, signature)
        self.batches: list[tf.Tensor] = []

    def start_epoch(self, epoch: int) -> None:
        """Splits a fresh permutation into per-batch index tensors, so that fetching a
        batch is a list lookup."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n).astype(np.int32)
        b = self.batch_size
        self.batches = [tf.constant(order[i : i + b]) for i in range(0, self.n, b)]

    def fetch(self, first_step: int, steps: int) -> tuple[Any, ...]:
        return (self.batches[first_step],)

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        return self._step(*args)

    @property
    def traced(self) -> Any:
        return self._step


class DistributedFeed(DatasetFeed):
    """tf.data distributed by the session's strategy: each call runs the train step on
    every replica (``strategy.run``) and sums the replicas' losses, each already divided by
    the global batch size, into the global mean."""

    def __init__(self, session: Session, dataset: tf.data.Dataset) -> None:
        strategy = session.strategy
        if strategy is None:
            raise ValueError("a distributed feed needs a session with a strategy")
        if session.variant.strategy == "multiworker":
            dataset = shard_by_data(dataset)
        self.distributed = strategy.experimental_distribute_dataset(dataset)
        super().__init__(session, self.distributed)
        step = session.train_step_fn

        def distributed_step(images: Any, labels: Any) -> tf.Tensor:
            per_replica = strategy.run(step, args=(images, labels))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self._step = tf.function(
            distributed_step,
            input_signature=list(self.distributed.element_spec),
            jit_compile=session.variant.mode == "xla",
        )

    def run(self, args: tuple[Any, ...]) -> tf.Tensor:
        return self._step(*args)

    @property
    def traced(self) -> Any:
        return self._step


def create_feed(
    session: Session,
    variant: Variant,
    workload: Workload,
    data: ArrayData,
    dataset: tf.data.Dataset,
) -> Feed:
    """The feed for ``variant``'s input mode and steps per call."""
    if variant.strategy != "none":
        return DistributedFeed(session, dataset)
    if variant.input_mode == "numpy":
        return NumpyFeed(session, data, workload.batch_size, workload.seed)
    if variant.input_mode == "staged":
        return StagedFeed(session, data, workload.batch_size, workload.seed)
    if variant.steps_per_call > 1:
        return InGraphLoopFeed(session, dataset)
    return DatasetFeed(session, dataset)
