"""Multi-worker runs: N worker processes forming one TF_CONFIG cluster.

One run of a ``multiworker`` cell is N processes, on 127.0.0.1 (free ports), or -- with a
``--cluster`` of machines -- only this machine's one. Each gets ``TF_CONFIG`` naming all N
addresses and its own index, its own log (``<run_id>-w<i>.log``) and its own event pipe.
The chief's (worker 0's) events make the run record; every worker's outcome, median step
time, peak RSS and log go into ``info["workers"]`` (see :mod:`bench.matrix.workers`).
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.matrix.job import Job

# How long a multi-worker run's workers wait for each other to start (seconds; the
# default is trainloop.strategies.JOIN_TIMEOUT_S, which the parent may not import).
JOIN_TIMEOUT_ENV = "TAPEBENCH_JOIN_TIMEOUT"
DEFAULT_JOIN_TIMEOUT_S = 60.0


def join_timeout(environ: Mapping[str, str]) -> float:
    """Seconds the workers of a cluster wait for each other: ``$TAPEBENCH_JOIN_TIMEOUT``,
    or 60.

    Raises:
      ValueError: the variable is set to something else than a positive number.
    """
    text = environ.get(JOIN_TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_JOIN_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"${JOIN_TIMEOUT_ENV}={text!r} is not a positive number of seconds")
    return seconds


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses``."""
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


def worker_log(log_file: Path, index: int) -> Path:
    """The log of worker ``index`` of the run logged at ``log_file``."""
    return log_file.with_name(f"{log_file.stem}-w{index}{log_file.suffix}")


@dataclass(frozen=True)
class LocalWorker:
    """A worker process this machine starts for a run: its index in the run's group, its
    log and its extra environment."""

    index: int
    log: Path
    env: dict[str, str]


@dataclass(frozen=True)
class WorkerGroup:
    """Who runs a job: ``count`` workers in all, ``local`` of them started here, forming
    a cluster of ``addresses`` (empty for a single-process run)."""

    count: int
    local: tuple[LocalWorker, ...]
    addresses: tuple[str, ...] = ()

    @property
    def multiworker(self) -> bool:
        """Whether the run is a cluster (every worker is then named in the record)."""
        return bool(self.addresses)


def plan_workers(job: Job, log_file: Path) -> WorkerGroup:
    """One worker logging to ``log_file``; or, for a multi-worker cell, one per replica on
    127.0.0.1 -- or only this machine's, ``job.task_index``, of ``job.cluster``."""
    if not job.multiworker:
        return WorkerGroup(1, (LocalWorker(0, log_file, {}),))
    count = job.cell.variant.replicas
    if job.cluster is not None:
        if len(job.cluster) != count:
            raise ValueError(
                f"the cluster lists {len(job.cluster)} workers but the cell has {count} replicas"
            )
        addresses, indices = list(job.cluster), [job.task_index]
    else:
        addresses, indices = [f"127.0.0.1:{p}" for p in free_ports(count)], list(range(count))
    local = tuple(
        LocalWorker(i, worker_log(log_file, i), {"TF_CONFIG": tf_config(addresses, i)})
        for i in indices
    )
    return WorkerGroup(count, local, tuple(addresses))
