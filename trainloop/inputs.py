"""Input pipelines: arrays in memory to batched ``tf.data`` pipelines.

Images are scaled to [0, 1] with a channel axis and labels one-hot encoded: by the tf.data
pipeline as it gathers each batch (so start-up does not convert the whole training set),
up front for the NumPy and staged inputs and for evaluation. Per step the work is small
and identical across execution modes.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainloop.datasets import ArrayData


def to_model_arrays(
    images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``[N, 28, 28]`` and int labels -> float32 ``[N, 28, 28, 1]`` in [0, 1], one-hot."""
    x = (images.astype(np.float32) / 255.0)[..., np.newaxis]
    y = np.eye(num_classes, dtype=np.float32)[labels]
    return x, y


def input_signature(
    num_classes: int, batch_size: int | None = None
) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    """The step's input specs; the batch dimension is unknown when ``batch_size`` is None."""
    return (
        tf.TensorSpec([batch_size, 28, 28, 1], tf.float32, name="images"),
        tf.TensorSpec([batch_size, num_classes], tf.float32, name="labels"),
    )


def create_train_dataset(
    data: ArrayData, batch_size: int, seed: int, drop_remainder: bool
) -> tf.data.Dataset:
    """An endless stream of passes over the training set, each reshuffled
    (deterministically, from ``seed``), batched, prefetched.

    Endless so that a run reads it through one iterator: the training loop takes each
    epoch's steps from the stream, and a pass ends exactly where an epoch ends when epochs
    are full passes. Starting a fresh iterator per epoch would destroy the previous one
    mid-pass whenever epochs are cut short, and destroying an iterator while its parallel
    ``map`` has batches in flight can block for seconds (up to ~10 s observed on a 2-core
    CPU), which would land in the next epoch's first step.
    """
    # The arrays stay uint8 / integer labels in memory; each batch is scaled and one-hot
    # encoded as it is gathered -- the same float32 values as :func:`to_model_arrays`, at
    # a fraction of the start-up (no 200 MB float copy of the training set to build).
    with tf.device("/CPU:0"):
        x_t, y_t = tf.constant(data.x_train), tf.constant(data.y_train.astype(np.int32))
    n, classes = len(data.x_train), data.num_classes

    def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.cast(tf.gather(x_t, idx), tf.float32) / 255.0
        return images[..., tf.newaxis], tf.one_hot(tf.gather(y_t, idx), classes)

    return (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=drop_remainder)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )


def create_eval_dataset(data: ArrayData, batch_size: int, examples: int | None) -> tf.data.Dataset:
    """The first ``examples`` test examples (all if None), in order, batched."""
    end = len(data.x_test) if examples is None else min(examples, len(data.x_test))
    x, y = to_model_arrays(data.x_test[:end], data.y_test[:end], data.num_classes)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache()
