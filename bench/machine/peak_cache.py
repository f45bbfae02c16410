"""The machine's matmul peak per device and precision, measured once per environment.

Measured by a worker (TensorFlow, the run's thread settings) and cached in
``$XDG_CACHE_HOME/tapebench/peaks.json`` (default ``~/.cache``) under a key made of what
decides the number: CPU model and count, GPU driver, Python, TensorFlow and Keras versions,
thread settings, oneDNN and XLA flags. Any of them changing means measuring again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.machine.fingerprint import machine_fingerprint
from bench.matrix.job import Job
from bench.matrix.store import ResultsDir, write_atomic
from bench.matrix.workers import execute_job


def cache_path() -> Path:
    """Where measured peaks are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tapebench" / "peaks.json"


def _version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment_key(intra_op_threads: int, inter_op_threads: int) -> str:
    """A digest of everything that decides the peak, read without importing TensorFlow."""
    machine = machine_fingerprint()
    fields = {
        "cpu_model": machine["cpu_model"],
        "cpu_count": machine["cpu_count"],
        "gpu_driver": machine["gpu_driver"],
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "threads": [intra_op_threads, inter_op_threads],
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "xla": [os.environ.get("XLA_FLAGS"), os.environ.get("TF_XLA_FLAGS")],
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _load() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ensure_peaks(jobs: list[Job], results: ResultsDir) -> dict[str, float]:
    """Peak FLOP/s for the ``(device, precision)`` of every job, keyed
    ``device/precision``. Missing ones are measured by one worker per device, started like
    that device's first job (same threads, same source, same visible devices) -- the first
    without an environment of its own, and without it in any case."""
    if not jobs:
        return {}
    # The peak is the machine's under this process's environment: a job's own environment
    # (its cell's run settings) is left out, as the cache key leaves it out.
    plain = [j for j in jobs if not j.env] or jobs
    jobs = [dataclasses.replace(j, env=()) for j in (plain[0], *jobs)]
    key = environment_key(jobs[0].task.intra_op_threads, jobs[0].task.inter_op_threads)
    cache = _load()
    known: dict[str, float] = dict(cache.get(key, {}))
    wanted = {(j.cell.variant.device, j.cell.variant.precision) for j in jobs}
    for device in sorted({d for d, _ in wanted}):
        missing = sorted(p for p in wanted if p[0] == device and f"{p[0]}/{p[1]}" not in known)
        if not missing:
            continue
        template = next(j for j in jobs if j.cell.variant.device == device)
        run_id = f"{template.invocation_id}-peak-{device}"
        job = template.derive(run_id, peak=tuple(missing), probe=False, profile=None)
        record = execute_job(job, results.log_path(job.run_id))
        known.update(record.info.get("peaks", {}))
    if known != cache.get(key, {}):
        cache[key] = known
        write_atomic(cache_path(), json.dumps(cache, indent=1).encode())
    return {f"{d}/{p}": known[f"{d}/{p}"] for d, p in wanted if f"{d}/{p}" in known}
