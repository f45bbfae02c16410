"""Converters for command-line values (argparse ``type=`` functions).

Each raises ``argparse.ArgumentTypeError`` with the offending text and what was expected;
matrix files run their values through the same converters.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from bench.matrix.cells import VariantChoice
from reports.shards import Shard

N = TypeVar("N", int, float)
Parser = Callable[[str], N]


def _items(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_choices(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A converter for comma-separated values drawn from ``choices``."""

    def parse(text: str) -> list[str]:
        items = _items(text)
        if not items or any(t not in choices for t in items):
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a comma-separated list of {', '.join(choices)}"
            )
        return items

    return parse


VARIANT_GRAMMAR = "MODE[:STEPS_PER_CALL][/PRECISION][+INPUT][@DEVICE][*STRATEGY[:N]]"


def parse_variants(text: str) -> list[VariantChoice]:
    """Comma-separated variants in :data:`VARIANT_GRAMMAR`, e.g. ``eager,xla/mixed_bfloat16``."""
    items = _items(text)
    if not items:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected {VARIANT_GRAMMAR} items, e.g. eager,xla/mixed_bfloat16"
        )
    try:
        return [VariantChoice.parse(item) for item in items]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_variant(text: str) -> VariantChoice:
    """Exactly one variant in :data:`VARIANT_GRAMMAR`."""
    choices = parse_variants(text)
    if len(choices) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one {VARIANT_GRAMMAR}")
    return choices[0]


def _number(convert: Callable[[str], N], accept: Callable[[N], bool], expected: str) -> Parser[N]:
    """A converter: ``convert(text)`` if that works and ``accept`` holds for the value."""

    def parse(text: str) -> N:
        try:
            value: N | None = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value

    parse.__doc__ = f"A number: {expected}."
    return parse


# Infinities and NaN are no numbers of anything here: refused, never run with.
parse_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
parse_count = _number(int, lambda v: v >= 0, "an integer >= 0")
parse_positive_float = _number(
    float, lambda v: math.isfinite(v) and v > 0, "a finite positive number"
)
parse_nonnegative_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
parse_fraction = _number(float, lambda v: 0 <= v <= 1, "a fraction between 0 and 1")
_count_or_all = _number(int, lambda v: v >= 0, "an integer >= 0 or 'all'")
_positive_or_all = _number(int, lambda v: v >= 1, "an integer >= 1 or 'all'")
_seconds = _number(
    float, lambda v: math.isfinite(v) and v > 0, "a positive number of seconds or 'none'"
)


def parse_positive_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1."""
    items = _items(text)
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 1, e.g. 32,64")
    return [parse_positive_int(t) for t in items]


def parse_positive_floats(text: str) -> list[float]:
    """Comma-separated numbers > 0."""
    items = _items(text)
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers > 0, e.g. 0.1,0.2")
    return [parse_positive_float(t) for t in items]


def parse_count_or_all(text: str) -> int | None:
    """An integer >= 0, or ``all`` (None)."""
    return None if text == "all" else _count_or_all(text)


def parse_positive_or_all(text: str) -> int | None:
    """An integer >= 1, or ``all`` (None)."""
    return None if text == "all" else _positive_or_all(text)


def parse_seconds_or_none(text: str) -> float | None:
    """A positive number of seconds, or ``none`` (no limit)."""
    return None if text == "none" else _seconds(text)


def parse_window(text: str) -> tuple[int, int]:
    """``FIRST:LAST``, a half-open range of steps with 0 <= FIRST < LAST."""
    first, sep, last = text.partition(":")
    try:
        window = (int(first), int(last))
    except ValueError:
        window = (-1, -1)
    if not sep or not 0 <= window[0] < window[1]:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIRST:LAST steps with 0 <= FIRST < LAST, e.g. 20:25"
        )
    return window


def _address_problem(address: str) -> str | None:
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        return "expected HOST:PORT"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not a TCP port (1-65535)"
    return None


def parse_addresses(text: str) -> list[str]:
    """Comma-separated ``HOST:PORT`` addresses (a multi-worker cluster): two or more, each
    a host and a port 1-65535, each once."""
    addresses = [a.strip() for a in text.split(",")]
    if len(addresses) < 2:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected at least two HOST:PORT addresses, one per worker"
        )
    for address in addresses:
        problem = _address_problem(address)
        if problem:
            raise argparse.ArgumentTypeError(f"{text!r}: {address!r}: {problem}")
    repeated = sorted({a for a in addresses if addresses.count(a) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {', '.join(repeated)} is listed twice (one address per worker)"
        )
    return addresses


def parse_ids(text: str) -> list[str]:
    """Comma-separated identifiers (e.g. invocation ids), none empty."""
    ids = [t.strip() for t in text.split(",")]
    if not all(ids):
        raise argparse.ArgumentTypeError(f"{text!r}: expected ID[,ID...] without empty items")
    return ids


def parse_shard(text: str) -> Shard:
    """``K/N``: the K-th of N slices of a matrix, 1 <= K <= N."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_open_fraction = _number(float, lambda v: 0 < v < 1, "a fraction between 0 and 1, or 'none'")


def parse_fraction_or_none(text: str) -> float | None:
    """A fraction strictly between 0 and 1, or ``none``."""
    return None if text == "none" else _open_fraction(text)
