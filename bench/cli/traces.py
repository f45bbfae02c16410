"""``tapebench traces``: a results directory's profiles in the browser, on loopback only.

TensorBoard serves them, with xprof as its profile plugin (xprof registers itself as
TensorBoard's ``profile`` plugin; tensorboard-plugin-profile is the same code under its
old name), bound to 127.0.0.1: the UI -- and its capture-profile button, which makes the
server connect to whatever address is typed in -- is reachable from this machine alone.
``xprof --logdir`` has no host option and binds every interface, its gRPC worker too
(port 50051). From another machine, forward the port: ``ssh -L 6006:127.0.0.1:6006``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

from bench.cli.errors import PROG, UsageError
from bench.cli.paths import check_input_dir

LOOPBACK = "127.0.0.1"


def parse_port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _sessions(results: Path) -> list[Path]:
    check_input_dir(results)
    root = results / "traces" / "plugins" / "profile"
    found = sorted(p for p in root.glob("*") if any(p.glob("*.xplane.pb")))
    if not found:
        raise UsageError(
            f"{results}: no traces in {root} (record them with tapebench run "
            "--profile FIRST:LAST -o RESULTS_DIR)"
        )
    return found


def _tensorboard(logdir: Path, port: int) -> Any:
    """A TensorBoard on loopback, configured but not started."""
    if importlib.util.find_spec("xprof") is None:
        raise UsageError("serving traces needs xprof: pip install -e '.[profile]'")
    try:
        from tensorboard import program
    except ImportError:
        raise UsageError("serving traces needs TensorBoard: pip install -e '.[profile]'") from None
    server = program.TensorBoard()
    # load_fast=false: the profile plugin reads its files itself, so TensorBoard's
    # data-server subprocess (another listening port) has nothing to do.
    server.configure(logdir=str(logdir), host=LOOPBACK, port=port, load_fast="false")
    return server


def traces_command(args: argparse.Namespace) -> int:
    """Serves the traces of ``args.results`` on 127.0.0.1 until interrupted."""
    sessions = _sessions(args.results)
    server = _tensorboard(args.results / "traces", args.port)
    from tensorboard.program import TensorBoardServerException

    try:
        url = server.launch()
    except TensorBoardServerException as exc:  # the port is in use, most likely
        raise UsageError(f"cannot serve on {LOOPBACK}:{args.port}: {exc}") from None
    print(
        f"{PROG}: {len(sessions)} profile(s) of {args.results} at {url}#profile "
        "(this machine only; Ctrl-C stops)",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print(f"{PROG}: stopped serving", file=sys.stderr)
    return 0


HELP = "serve a results directory's profiles to a browser on this machine"
DESCRIPTION = (
    "Serves the traces recorded with run --profile in TensorBoard's profile tab (xprof), "
    "listening on 127.0.0.1 only."
)


def register(sub: Any) -> None:
    """Adds ``tapebench traces``."""
    p = sub.add_parser("traces", help=HELP, description=DESCRIPTION)
    p.add_argument("results", type=Path, metavar="RESULTS_DIR", help="a results directory")
    p.add_argument(
        "--port",
        type=parse_port,
        default=6006,
        help="port on 127.0.0.1 (default: 6006; 0 picks a free one)",
    )
    p.set_defaults(handler=traces_command)
