"""For tests of trace servers: the run list a server shows, and the TCP addresses a process
tree listens on (read from /proc, Linux only)."""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def fetch_runs(base_url: str, timeout_s: float, alive: Callable[[], bool]) -> Any:
    """The profile plugin's run list, asked for until it answers; None if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            url = base_url.rstrip("/") + "/data/plugin/profile/runs"
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
            return json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
        except OSError:
            time.sleep(0.5)
    return None


def _descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree = {pid}
    while grown := {p for p, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> str:
    # /proc/net/tcp{,6} print each 32-bit word of the address in host (little-endian) order.
    raw = bytes.fromhex(hex_address)
    return str(ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))))


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket a process or its descendants listen on."""
    inodes = set().union(*(_socket_inodes(p) for p in _descendants(pid)))
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.split(":")
                found.append((_address(host), int(port, 16)))
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1 (also as an IPv4-mapped IPv6 address)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
