"""The one GradientTape training step, and the one place that decides how it executes.

Every variant runs the same Python step function; :func:`wrap_step` is the only code that
differs between eager, ``tf.function`` and XLA (orbit's "options decide the wrapping in one
factory" rule).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

StepFn = Callable[..., Any]


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[keras.DTypePolicy]:
    """Makes ``precision`` the global Keras dtype policy, restoring the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield keras.mixed_precision.global_policy()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def create_optimizer(
    learning_rate: float, epochs: int, precision: str
) -> keras.optimizers.Optimizer:
    """Adam with Keras 2's ``decay=lr/epochs``: lr / (1 + (lr/epochs) * step), per step.

    Keras 3 silently ignores ``decay``; InverseTimeDecay with ``decay_steps=1`` is the same
    schedule. ``mixed_float16`` gets dynamic loss scaling (LossScaleOptimizer).
    """
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        learning_rate, decay_steps=1, decay_rate=learning_rate / epochs
    )
    optimizer: keras.optimizers.Optimizer = keras.optimizers.Adam(learning_rate=schedule)
    if precision == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def create_train_step(
    model: keras.Model, loss_fn: keras.losses.Loss, optimizer: keras.optimizers.Optimizer
) -> StepFn:
    """The training step shared by every variant: forward under a tape, loss, gradients,
    apply. Returns the (unscaled) batch loss.

    ``loss_fn`` returns per-example losses (``reduction=None``); their average is taken by
    ``tf.nn.compute_average_loss``, which divides by the *global* batch size -- the batch
    itself without a strategy, the batch of all replicas under one -- so that the gradients
    the strategy all-reduces (sums) are those of the global mean loss.
    ``optimizer.scale_loss`` is the identity for plain optimizers and applies the dynamic
    loss scale for LossScaleOptimizer, whose ``apply_gradients`` unscales and skips
    non-finite steps; so one code path serves every precision and strategy.
    """
    variables = model.trainable_variables

    def train_step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(labels, probs))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return train_step


def create_eval_step(model: keras.Model) -> StepFn:
    """Forward pass in inference mode; returns (sum of example losses, correct count)."""

    def eval_step(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        probs = model(images, training=False)
        losses = keras.losses.categorical_crossentropy(labels, probs)
        hits = tf.equal(tf.argmax(probs, axis=-1), tf.argmax(labels, axis=-1))
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(hits, tf.int32))

    return eval_step


def wrap_step(fn: StepFn, mode: str, input_signature: Sequence[tf.TensorSpec]) -> StepFn:
    """Wraps ``fn`` for execution ``mode`` (``eager``, ``function`` or ``xla``).

    Compiled modes are traced for ``input_signature``; where its batch dimension is
    unknown, a partial batch does not retrace (XLA still compiles a new executable for
    each new shape).
    """
    if mode == "eager":
        return fn
    if mode in ("function", "xla"):
        return tf.function(fn, input_signature=list(input_signature), jit_compile=(mode == "xla"))
    raise ValueError(f"mode={mode!r} is not one of eager, function, xla")


def tracing_count(step: StepFn) -> int | None:
    """How often a wrapped step has been traced; None for an eager step."""
    counter = getattr(step, "experimental_get_tracing_count", None)
    return int(counter()) if counter else None


def create_device_sync(device: str = "gpu") -> tuple[Callable[[], None], str]:
    """Returns (sync, method): ``sync()`` waits for all queued device work to finish.

    Called right after a value has been fetched to the host, at the end of every timed
    interval, so asynchronous dispatch (GPU kernels, async eager execution) cannot make a
    step look faster than it was: ``tf.test.experimental.sync_devices`` (TF 2.12 and
    later). On the CPU with synchronous execution -- TensorFlow's default -- a call
    returns only once its ops have run, so the host fetch of the loss already ends the
    step; the sync would add nothing but its own cost (about 0.4% of a reference step,
    steps alternating with and without it), and the fetch alone is the sync.
    """
    sync = getattr(tf.test.experimental, "sync_devices", None)
    synchronous = tf.config.experimental.get_synchronous_execution()
    if sync is None or (device == "cpu" and synchronous):
        return (lambda: None), "fetch"
    return sync, "fetch+sync_devices"


WORK_UNIT = 256  # the injected work's unit: one float32 matmul of this square size


def create_burner() -> Callable[[int], None]:
    """Returns ``burn(units)``: ``units`` chained float32 matmuls of WORK_UNIT square on the
    current device, in one compiled call, waited for -- real work on the step's threads,
    which a busy machine slows as it slows the step (unlike a wait for a fixed time).
    Used to slow a candidate by a known amount when checking a regression gate."""
    with tf.init_scope():
        weights = tf.random.stateless_uniform([WORK_UNIT, WORK_UNIT], seed=(1, 2)) / WORK_UNIT

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def chain(units: tf.Tensor) -> tf.Tensor:
        x = tf.ones([WORK_UNIT, WORK_UNIT])
        for _ in tf.range(units):
            x = tf.tanh(tf.linalg.matmul(x, weights))
        return x[0, 0]

    def burn(units: int) -> None:
        float(chain(tf.constant(units, tf.int32)))

    burn(1)  # trace it now, not inside a step
    return burn


def work_unit_seconds(burn: Callable[[int], None], units: int = 200) -> float:
    """The time one unit of :func:`create_burner`'s work takes here (median of five)."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        burn(units)
        times.append((time.perf_counter() - start) / units)
    return sorted(times)[2]
