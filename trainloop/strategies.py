"""tf.distribute strategies for the strategy axis.

* ``mirrored`` -- ``MirroredStrategy`` over the first N GPUs, or over N *logical* CPU
  devices carved out of the one physical CPU (they share its cores: this shows the
  mechanics and costs of data parallelism, not a speedup);
* ``multiworker`` -- ``MultiWorkerMirroredStrategy``: one process per worker, each with one
  device, the cluster described by ``TF_CONFIG`` (the harness writes it).

Collective operations get a timeout, so a worker whose peer died fails instead of hanging.
"""

from __future__ import annotations

import tensorflow as tf

from trainloop.config import Variant

COLLECTIVE_TIMEOUT_S = 60.0


def split_cpu(replicas: int) -> None:
    """Splits the CPU into ``replicas`` logical devices. Must run before TensorFlow
    initialises its devices (before the first op)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


_STRATEGIES: dict[tuple[str, str, int], tf.distribute.Strategy] = {}


def create_strategy(
    variant: Variant, timeout_s: float = COLLECTIVE_TIMEOUT_S
) -> tf.distribute.Strategy | None:
    """The strategy of ``variant`` (one per process and kind: a multi-worker strategy must
    be created once, at start-up, before other TensorFlow work), or None without one.

    Raises:
      trainloop.devices.DeviceUnavailableError: fewer devices than replicas.
    """
    if variant.strategy == "none":
        return None
    key = (variant.strategy, variant.device, variant.replicas)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _build(variant, timeout_s)
    return _STRATEGIES[key]


def _build(variant: Variant, timeout_s: float) -> tf.distribute.Strategy:
    from trainloop.devices import DeviceUnavailableError

    kind = variant.device.upper()
    if variant.strategy == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices(kind)]
        if len(devices) < variant.replicas:
            raise DeviceUnavailableError(
                f"{variant.replicas} {kind} devices wanted for mirrored, {len(devices)} visible"
            )
        return tf.distribute.MirroredStrategy(devices=devices[: variant.replicas])
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Workers split every batch (the data is in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
