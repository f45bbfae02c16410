"""A worker factory: one process that has imported TensorFlow forks each worker.

Importing TensorFlow takes seconds on a small machine -- most of a short run's start-up.
A zygote imports it (and the tapebench modules a worker uses) once, *without executing a
single TensorFlow operation*, then forks one child per run. Each child is a new process
whose TensorFlow runtime starts from nothing: no thread pools, no device, no traced or
compiled function exists before the fork, so tracing and compilation are measured in every
run as before. The child then runs the source tree's own ``bench.worker.main()``, exactly
as ``python -m bench.worker JOB`` would.

This file runs as ``python -c <this source> SOCKET_FD`` with the source tree it serves as
the working directory (first on ``sys.path``), so it can serve older trees (the baseline
of ``tapebench ab``) whose own packages do not have it. Standard library only until
``_preload``. The protocol over the SOCK_SEQPACKET socket: the parent sends
``{"job": {...}, "env": {...}, "cpus": [...] or null}`` with two descriptors (the log
file, the event pipe's write end); the zygote answers ``{"started": PID}`` and, when
that child exits, ``{"exited": PID, "status": WAIT_STATUS, "maxrss_kb": N}``.
"""

import contextlib
import json
import os
import select
import signal
import socket
import sys

# Modules a worker imports; older trees may lack some of them.
PRELOAD = (
    "numpy",
    "tensorflow",
    "keras",
    "bench.worker",
    "trainloop.loop",
    "trainloop.fit",
    "trainloop.feeds",
    "trainloop.session",
    "trainloop.models",
    "trainloop.datasets",
    "trainloop.devices",
    "trainloop.flops",
    "trainloop.strategies",
    "trainloop.distribute",
)


def _preload() -> None:
    """Imports what workers use, and checks that TensorFlow's runtime has not started."""
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from tensorflow.python.eager import context

    ctx = context.context_safe()
    if ctx is not None and getattr(ctx, "_context_handle", None) is not None:
        raise RuntimeError("TensorFlow's runtime started in the zygote; refusing to fork")


def _send(sock: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the parent is gone; the children finish on their own
        sock.send(json.dumps(message).encode())


def _child(sock: socket.socket, wake: tuple[int, int], request: dict, fds: list[int]) -> None:
    """Becomes the worker. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sock.close()
        for fd in wake:
            os.close(fd)
        os.setsid()  # its own session: the parent stops it (and its children) as a group
        log_fd, events_fd = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        if request.get("cpus"):  # pinned before TensorFlow sizes its thread pools
            os.sched_setaffinity(0, request["cpus"])
        os.environ.update(request["env"])
        job = dict(request["job"], events_fd=events_fd)
        sys.argv = ["bench.worker", json.dumps(job)]
        from bench import worker

        code = int(worker.main())
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "status": status, "maxrss_kb": usage.ru_maxrss})


def serve(sock: socket.socket) -> None:
    """Forks a worker for every request until the parent closes the socket."""
    wake = os.pipe()
    os.set_blocking(wake[1], False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _send(sock, {"ready": os.getpid()})
    while True:
        ready, _, _ = select.select([sock.fileno(), wake[0]], [], [])
        if wake[0] in ready:
            os.read(wake[0], 4096)
            _reap(sock)
        if sock.fileno() not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
        except InterruptedError:
            continue
        if not data:
            return
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            _child(sock, wake, request, fds)
        for fd in fds:
            os.close(fd)
        _send(sock, {"started": pid, "id": request.get("id")})


def main() -> None:
    """Entry point: ``python -c <source> SOCKET_FD``."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        _preload()
    except Exception as exc:  # reported to the parent, which then starts workers itself
        _send(sock, {"error": f"{type(exc).__name__}: {exc}"})
        raise
    serve(sock)


if __name__ == "__main__":
    main()
