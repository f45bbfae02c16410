"""Strict type checks of values read from JSON files, each error naming the field.

A value is checked against a type hint -- the annotations of the record dataclasses, so
the dataclass stays the one definition of each field -- and a mismatch is reported as
``steps.seconds[3] is "abc", expected a number``: the path to the field in the file, the
value as the file spells it (JSON), and what was expected. Standard library only.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

_NAMES: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
}


class FieldError(ValueError):
    """A field holds a value of the wrong type or range; the message names the field."""


def shown(value: Any) -> str:
    """``value`` as JSON spells it (``null``, ``true``, ``"abc"``), cut short if long."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fail(where: str, value: Any, expected: str) -> FieldError:
    """The error for ``where`` holding ``value`` instead of ``expected``."""
    return FieldError(f"{where} is {shown(value)}, expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is float:  # JSON writes 2.0 as 2 when it likes; NaN and infinities are no data
        return _is_number(value) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, get_origin(hint) or hint)


def describe(hint: Any) -> str:
    """What ``hint`` asks for, in words: ``a number or null``, ``a list of integers``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) if a is not type(None) else "null" for a in args)
    if origin is tuple or origin is list:
        inner = describe(args[0]).removeprefix("a ").removeprefix("an ")
        return f"a list of {inner.replace('number', 'numbers').replace('integer', 'integers')}"
    return _NAMES.get(origin or hint, getattr(hint, "__name__", str(hint)))


def check_value(value: Any, hint: Any, where: str) -> None:
    """Checks ``value`` against ``hint``: str, int, float (finite), bool, dict, Any,
    ``X | None`` and ``tuple[X, ...]`` (a JSON list, each item checked as ``where[i]``).

    Raises:
      FieldError: naming ``where``, the value and what was expected.
    """
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return
        (inner,) = (a for a in args if a is not type(None))
        if get_origin(inner) is None and not _matches(value, inner):
            raise fail(where, value, describe(hint))
        check_value(value, inner, where)
        return
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise fail(where, value, describe(hint))
        for i, item in enumerate(value):
            check_value(item, args[0], f"{where}[{i}]")
        return
    if not _matches(value, hint):
        raise fail(where, value, describe(hint))


def check_fields(data: Mapping[str, Any], hints: Mapping[str, Any], where: str) -> None:
    """Checks every field of ``data`` that ``hints`` names (others are left alone)."""
    for name, value in data.items():
        if name in hints:
            check_value(value, hints[name], f"{where}.{name}" if where else name)


def required(data: Mapping[str, Any], name: str, where: str) -> Any:
    """``data[name]``.

    Raises:
      FieldError: ``where.name`` is missing.
    """
    if name not in data:
        raise FieldError(f"{where}.{name} is missing" if where else f"{name} is missing")
    return data[name]


def expect_object(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object.

    Raises:
      FieldError: it is missing (None) or something else.
    """
    if not isinstance(value, dict):
        raise fail(where, value, "an object")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    """``value`` if it is a JSON list.

    Raises:
      FieldError: it is something else.
    """
    if not isinstance(value, list):
        raise fail(where, value, "a list")
    return value
