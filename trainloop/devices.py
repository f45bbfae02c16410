"""Device placement and a description of the TensorFlow runtime a run executes on."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class DeviceUnavailableError(RuntimeError):
    """The requested device kind is not visible to TensorFlow."""


def visible_devices(kind: str) -> list[str]:
    """Physical devices of ``kind`` (``cpu`` or ``gpu``) TensorFlow can see."""
    return [d.name for d in tf.config.list_physical_devices(kind.upper())]


@contextlib.contextmanager
def device_scope(kind: str) -> Iterator[str]:
    """Places ops on the first device of ``kind``; yields its name (e.g. ``/GPU:0``).

    Raises:
      DeviceUnavailableError: no device of that kind is visible. A GPU run never silently
        falls back to the CPU.
    """
    if not visible_devices(kind):
        raise DeviceUnavailableError(f"no {kind.upper()} visible")
    name = f"/{kind.upper()}:0"
    with tf.device(name):
        yield name


def _gpu_details() -> list[dict[str, Any]]:
    details = []
    for gpu in tf.config.list_physical_devices("GPU"):
        info = tf.config.experimental.get_device_details(gpu)
        capability = info.get("compute_capability")
        details.append(
            {
                "name": info.get("device_name", gpu.name),
                "compute_capability": ".".join(map(str, capability)) if capability else None,
            }
        )
    return details


def describe_runtime() -> dict[str, Any]:
    """Versions, devices, thread settings and the flags that change kernel choice."""
    build = dict(tf.sysconfig.get_build_info())
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "cuda_build": bool(build.get("is_cuda_build")),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "gpus": _gpu_details(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "tf_xla_flags": os.environ.get("TF_XLA_FLAGS"),
    }


def process_rss_bytes() -> int | None:
    """This process's resident memory now (Linux ``/proc/self/status``), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_device_peak(kind: str) -> None:
    """Restarts the peak of the accelerator allocator (GPU only; a no-op on the CPU)."""
    if kind == "gpu":
        tf.config.experimental.reset_memory_stats("GPU:0")


def device_peak_bytes(kind: str) -> int | None:
    """The accelerator allocator's peak since the last reset (GPU only, else None).

    On the CPU TensorFlow's allocator statistics cover only its own pool (tens of MB) and
    say nothing about the process, so the process's RSS is reported instead.
    """
    if kind != "gpu":
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
