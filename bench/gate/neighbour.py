"""A noisy neighbour on demand: the bursty load of a shared CI runner.

One process keeps one core busy for a random 1–5 s, then idles for a random 0–4 s, and
again, until stopped -- what another job on the same runner looks like. ``calibrate`` runs
its trials with it so a team sees what its gate does under load before trusting it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

# Runs in the neighbour process: standard library only, seeded, busy then idle.
_LOAD = """
import random, sys, time
rng = random.Random(int(sys.argv[1]))
busy_lo, busy_hi = [float(x) for x in sys.argv[2:4]]
idle_lo, idle_hi = [float(x) for x in sys.argv[4:6]]
while True:
    end = time.monotonic() + rng.uniform(busy_lo, busy_hi)
    x = 0
    while time.monotonic() < end:
        x += 1
    time.sleep(rng.uniform(idle_lo, idle_hi))
"""


@contextlib.contextmanager
def bursty_neighbour(
    seed: int = 0,
    busy_s: tuple[float, float] = (1.0, 5.0),
    idle_s: tuple[float, float] = (0.0, 4.0),
) -> Iterator[int]:
    """Runs the bursty one-core load for the duration of the block; yields its pid."""
    args = [str(seed), *map(str, busy_s), *map(str, idle_s)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOAD, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
