"""Starting worker processes cheaply: forked from a zygote that has imported TensorFlow.

The parent keeps one zygote (:mod:`bench.matrix.zygote`) per source tree and environment
and asks it to fork each worker; a worker it cannot get that way is started with ``python
-m bench.worker`` as before. Either way the worker is a new process in its own session,
writing its output to the run's log and its events to a pipe the parent reads, and the
parent learns its exit status and peak RSS when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ZYGOTE_SOURCE = Path(__file__).with_name("zygote.py")
READY_TIMEOUT_S = 120.0


class ZygoteError(RuntimeError):
    """The zygote could not start or stopped answering."""


@dataclass
class ForkedWorker:
    """A worker forked by a zygote: what ``subprocess.Popen`` offers the runner."""

    pid: int
    zygote: Zygote
    returncode: int | None = None
    maxrss_bytes: int = 0

    def wait(self) -> int:
        """Blocks until the worker exits; sets ``returncode`` and ``maxrss_bytes``."""
        if self.returncode is None:
            status, maxrss_kb = self.zygote.wait_for(self.pid)
            self.returncode = os.waitstatus_to_exitcode(status)
            self.maxrss_bytes = maxrss_kb * 1024
        return self.returncode


@dataclass
class Zygote:
    """One zygote process serving one source tree under one environment."""

    source_root: str
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    exits: dict[int, tuple[int, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Starts the zygote and waits until it has imported everything.

        Raises:
          ZygoteError: it could not start or import.
        """
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE_SOURCE.read_text(), str(child.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(child.fileno(),),
                env=self.env,
                cwd=self.source_root,
                start_new_session=True,
            )
        child.close()
        self.sock = parent
        message = self._receive(READY_TIMEOUT_S)
        if "ready" not in message:
            self.close()
            raise ZygoteError(message.get("error", f"unexpected answer {message}"))

    def _receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        if self.sock is None:
            raise ZygoteError("the zygote is not running")
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(1 << 16)
        except (TimeoutError, OSError) as exc:
            raise ZygoteError(f"no answer from the zygote ({exc})") from None
        if not data:
            raise ZygoteError("the zygote exited")
        return dict(json.loads(data))

    def _next(self) -> dict[str, Any]:
        """The next message, recording exit reports as they pass."""
        message = self._receive()
        if "exited" in message:
            self.exits[int(message["exited"])] = (message["status"], message["maxrss_kb"])
        return message

    def fork(
        self,
        job: dict[str, Any],
        env: dict[str, str],
        log_fd: int,
        events_fd: int,
        cpus: tuple[int, ...] | None = None,
    ) -> int:
        """Asks for a worker running ``job`` (pinned to ``cpus``, if given); its pid."""
        if self.sock is None:
            raise ZygoteError("the zygote is not running")
        payload = json.dumps({"job": job, "env": env, "cpus": cpus}).encode()
        with self.lock:
            try:
                socket.send_fds(self.sock, [payload], [log_fd, events_fd])
            except OSError as exc:
                raise ZygoteError(f"cannot reach the zygote ({exc})") from None
            while True:
                message = self._next()
                if "started" in message:
                    return int(message["started"])

    def wait_for(self, pid: int) -> tuple[int, int]:
        """(wait status, peak RSS in KiB) of the forked worker ``pid``, once it exits.
        Safe from several threads (workers run side by side in a duet)."""
        while True:
            with self.lock:
                if pid in self.exits:
                    return self.exits.pop(pid)
                self._next()

    def close(self) -> None:
        """Stops the zygote (its running workers are not affected)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None


class Launcher:
    """Zygotes by (source tree, environment), started on first use and kept for reuse."""

    def __init__(self, log_dir: Path, name: str = "zygote") -> None:
        self.log_dir, self.name = log_dir, name
        self.zygotes: dict[str, Zygote | None] = {}

    def zygote(self, source_root: str, env: dict[str, str]) -> Zygote | None:
        """The zygote for ``source_root`` under ``env``; None where one cannot start."""
        key = json.dumps([source_root, sorted(env.items())])
        if key not in self.zygotes:
            log = self.log_dir / f"{self.name}-zygote{len(self.zygotes)}.log"
            zygote = Zygote(source_root, env, log)
            try:
                zygote.start()
                self.zygotes[key] = zygote
            except (OSError, ZygoteError):
                self.zygotes[key] = None  # start each worker with `python -m bench.worker`
        return self.zygotes[key]

    def close(self) -> None:
        """Stops every zygote."""
        for zygote in self.zygotes.values():
            if zygote is not None:
                zygote.close()
        self.zygotes.clear()
