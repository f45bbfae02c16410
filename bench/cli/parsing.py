"""Converters for command-line values (argparse ``type=`` functions).

Each raises ``argparse.ArgumentTypeError`` with the offending text and what was expected;
matrix files run their values through the same converters.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from trainloop.config import Variant


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


def parse_variants(text: str) -> list[str]:
    """Comma-separated ``MODE[/PRECISION]`` items, checked by parsing them."""
    items = _items(text)
    if not items or any("@" in t for t in items):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected MODE[/PRECISION] items, e.g. eager,xla/mixed_bfloat16 "
            "(choose devices with --devices)"
        )
    try:
        for item in items:
            Variant.parse(item)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return items


def parse_positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def parse_positive_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1."""
    items = _items(text)
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 1, e.g. 32,64")
    return [parse_positive_int(t) for t in items]


def parse_count_or_all(text: str) -> int | None:
    """An integer >= 0, or ``all`` (None)."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0 or 'all'")
    return value


def parse_count(text: str) -> int:
    """An integer >= 0."""
    value = parse_count_or_all(text) if text != "all" else -1
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return value


def parse_positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def parse_seconds_or_none(text: str) -> float | None:
    """A positive number of seconds, or ``none``."""
    return None if text == "none" else parse_positive_float(text)


def parse_variants_one(text: str) -> str:
    """Exactly one ``MODE[/PRECISION]``."""
    items = parse_variants(text)
    if len(items) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one MODE[/PRECISION]")
    return items[0]


def parse_fraction(text: str) -> float:
    """A number between 0 and 1 inclusive."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def parse_nonnegative_float(text: str) -> float:
    """A number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


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


def parse_addresses(text: str) -> list[str]:
    """Comma-separated ``HOST:PORT`` addresses (a multi-worker cluster)."""
    addresses = _items(text)
    if not addresses or any(not a.rpartition(":")[2].isdigit() for a in addresses):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT,HOST:PORT,...")
    return addresses
