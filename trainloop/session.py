"""A training session: model, optimizer and the wrapped steps of one variant, built once.

Both the timed loop and the pytest-benchmark suite train through a session, so they run
exactly the same step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from trainloop import inputs
from trainloop.config import Variant, Workload
from trainloop.devices import device_scope
from trainloop.models import create_model
from trainloop.step import (
    StepFn,
    create_device_sync,
    create_eval_step,
    create_optimizer,
    create_train_step,
    precision_policy,
    wrap_step,
)
from trainloop.strategies import create_strategy


@dataclass(frozen=True)
class Session:
    """The built pieces of one variant. Use it inside :func:`open_session`'s block, where
    the device scope is active."""

    variant: Variant
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    train_step_fn: StepFn  # the plain Python step, before wrapping
    train_step: StepFn
    eval_step: StepFn
    sync: Callable[[], None]
    sync_method: str
    device: str
    policy: str
    strategy: tf.distribute.Strategy | None = None
    batch_dim: int | None = None  # the train step's batch dimension (None: any)

    def describe(self) -> dict[str, Any]:
        """Parameter count, dtypes, sync method and device, for the run record."""
        first = self.model.layers[0]
        return {
            "parameters": int(self.model.count_params()),
            "policy": self.policy,
            "compute_dtype": str(first.compute_dtype),
            "variable_dtype": str(first.variable_dtype),
            "sync_method": self.sync_method,
            "device": self.device,
        }


@contextlib.contextmanager
def _placement(variant: Variant) -> Iterator[tuple[str, tf.distribute.Strategy | None]]:
    """The device scope, or the strategy's scope (which places variables and ops itself)."""
    strategy = create_strategy(variant)
    if strategy is None:
        with device_scope(variant.device) as device:
            yield device, None
    else:
        with strategy.scope():
            yield (
                (
                    f"{variant.strategy} over {strategy.num_replicas_in_sync} "
                    f"{variant.device} replicas"
                ),
                strategy,
            )


@contextlib.contextmanager
def open_session(
    variant: Variant, workload: Workload, num_classes: int = 10, partial_batches: bool = False
) -> Iterator[Session]:
    """Seeds everything, then builds the model under the variant's precision policy on its
    device (or under its distribution strategy), with the optimizer built before any
    tracing (else the first call traces twice).

    The compiled train step is traced for the workload's batch size, as a ``tf.function``
    a user writes would be: an unknown batch dimension costs the step a few percent (shapes
    the graph optimiser cannot fold). With ``partial_batches`` -- a smaller last batch will
    reach the step -- its batch dimension is left unknown instead, so that batch does not
    retrace. The evaluation step always takes any batch size.

    Raises:
      trainloop.devices.DeviceUnavailableError: the variant's device is not visible.
    """
    keras.utils.set_random_seed(workload.seed)
    with _placement(variant) as (device, strategy), precision_policy(variant.precision) as policy:
        model = create_model(workload.model, num_classes)
        optimizer = create_optimizer(workload.learning_rate, workload.epochs, variant.precision)
        optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.CategoricalCrossentropy(reduction=None)  # per example
        signature = inputs.input_signature(num_classes)
        batch_dim = None if partial_batches else workload.batch_size
        train_signature = inputs.input_signature(num_classes, batch_dim)
        sync, sync_method = create_device_sync(variant.device)
        if variant.strategy == "multiworker":
            # sync_devices would try to reach remote eager workers; the fetch of the
            # (all-reduced) loss already waits for this worker's step.
            sync, sync_method = (lambda: None), "fetch"
        step_fn = create_train_step(model, loss_fn, optimizer)
        # fit trains with the step Keras compiles; its evaluation (and any use of our
        # step) runs as a tf.function, like the function variant's.
        mode = "function" if variant.mode == "fit" else variant.mode
        yield Session(
            variant=variant,
            model=model,
            optimizer=optimizer,
            train_step_fn=step_fn,
            train_step=wrap_step(step_fn, mode, train_signature),
            eval_step=wrap_step(create_eval_step(model), mode, signature),
            sync=sync,
            sync_method=sync_method,
            device=device,
            policy=policy.name,
            strategy=strategy,
            batch_dim=batch_dim,
        )
