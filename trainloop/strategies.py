"""tf.distribute strategies for the strategy axis.

* ``mirrored`` -- ``MirroredStrategy`` over the first N GPUs, or over N *logical* CPU
  devices carved out of the one physical CPU (they share its cores: this shows the
  mechanics and costs of data parallelism, not a speedup);
* ``multiworker`` -- ``MultiWorkerMirroredStrategy``: one process per worker, each with one
  device, the cluster described by ``TF_CONFIG`` (the harness writes it).

Collective operations get a timeout, so a worker whose peer died fails instead of hanging;
so does forming the cluster, so a worker whose peers never come fails too.
"""

from __future__ import annotations

import socket

import tensorflow as tf
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
from tensorflow.python.distribute import multi_worker_util
from tensorflow.python.eager import context

from trainloop.config import Variant

COLLECTIVE_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 60.0  # how long the workers of a cluster wait for each other to start


class ClusterJoinError(RuntimeError):
    """The workers of a multi-worker cluster did not all join in time; names the absent."""


def split_cpu(replicas: int) -> None:
    """Splits the CPU into ``replicas`` logical devices. Must run before TensorFlow
    initialises its devices (before the first op)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


_STRATEGIES: dict[tuple[str, str, int], tf.distribute.Strategy] = {}


def create_strategy(
    variant: Variant,
    timeout_s: float = COLLECTIVE_TIMEOUT_S,
    join_timeout_s: float = JOIN_TIMEOUT_S,
) -> tf.distribute.Strategy | None:
    """The strategy of ``variant`` (one per process and kind: a multi-worker strategy must
    be created once, at start-up, before other TensorFlow work), or None without one.
    A multi-worker strategy waits at most ``join_timeout_s`` for every worker to join.

    Raises:
      trainloop.devices.DeviceUnavailableError: fewer devices than replicas.
      ClusterJoinError: the cluster did not form in time.
    """
    if variant.strategy == "none":
        return None
    key = (variant.strategy, variant.device, variant.replicas)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _build(variant, timeout_s, join_timeout_s)
    return _STRATEGIES[key]


def _bound_cluster_join(join_timeout_s: float) -> tf.distribute.cluster_resolver.ClusterResolver:
    """Configures TensorFlow's coordination service as MultiWorkerMirroredStrategy would
    (it leaves an existing configuration alone), but with a deadline: without one, a
    chief whose peers never start waits for them forever. With ``cluster_register_with_
    barrier`` every task's registration waits for all, so the chief fails in time too."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    ctx = context.context()
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(join_timeout_s * 1000),
    )
    ctx.coordination_service.cluster_register_with_barrier = True
    return resolver


def _unreachable(resolver: tf.distribute.cluster_resolver.ClusterResolver) -> list[str]:
    """The other workers that accept no connection now: ``worker 1 at HOST:PORT``."""
    absent = []
    for index, address in enumerate(resolver.cluster_spec().job_tasks("worker")):
        if index == resolver.task_id:
            continue
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError:
            absent.append(f"worker {index} at {address}")
    return absent


def _join(
    options: tf.distribute.experimental.CommunicationOptions, join_timeout_s: float
) -> tf.distribute.Strategy:
    resolver = _bound_cluster_join(join_timeout_s)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as exc:
        absent = _unreachable(resolver)
        why = f"no answer from {', '.join(absent)}" if absent else str(exc).splitlines()[0]
        raise ClusterJoinError(
            f"the cluster did not form within {join_timeout_s:g} s: {why} (start every "
            "worker's command within that time, and check that its port is reachable)"
        ) from None


def _build(variant: Variant, timeout_s: float, join_timeout_s: float) -> tf.distribute.Strategy:
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
    return _join(options, join_timeout_s)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Workers split every batch (the data is in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
