"""The environment fingerprint stored with every run: what produced the numbers.

The host half (machine, OS, source revision) is read here, in the parent, without
TensorFlow; the runtime half (TensorFlow/Keras versions, devices, threads, flags) is
reported by each worker (``trainloop.devices.describe_runtime``) and merged in.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[2]
COMMIT_MARKER = ".tapebench-commit"  # written into source trees exported from git


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_driver() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version() -> str:
    try:
        return metadata.version("tapebench")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def machine_fingerprint() -> dict[str, Any]:
    """CPU, GPU driver, OS, hostname and tapebench version of this machine (cached)."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_driver": _gpu_driver(),
        "tapebench": _version(),
    }


def source_revision() -> dict[str, Any]:
    """The git commit of the tapebench source and whether it has uncommitted changes.

    Read afresh for every run: workers import the source anew, so an edit made while a
    matrix runs shows up as ``git_dirty`` on the runs that used it.
    """
    commit = _git("rev-parse", "--show-toplevel")
    if commit is None or Path(commit).resolve() != SOURCE_ROOT:
        # Not a checkout of its own (e.g. a tree exported by `tapebench ab`): the exporter
        # leaves the commit in a marker file.
        marker = SOURCE_ROOT / COMMIT_MARKER
        exported = marker.read_text().strip() if marker.is_file() else None
        return {"git_commit": exported, "git_dirty": False if exported else None}
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def host_fingerprint() -> dict[str, Any]:
    """Machine, OS and source revision of this process (no TensorFlow needed)."""
    return {**machine_fingerprint(), **source_revision()}


def merge_fingerprint(runtime: dict[str, Any] | None) -> dict[str, Any]:
    """The host fingerprint plus a worker's runtime description."""
    return {**host_fingerprint(), **(runtime or {})}
