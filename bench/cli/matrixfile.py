"""Matrix files: a recurring comparison saved as TOML, with the ``run`` options as keys.

    # nightly.toml
    modes = ["eager", "function", "xla"]
    precisions = ["float32", "mixed_bfloat16"]
    devices = ["cpu"]
    batch_sizes = [32, 64, 128]
    dataset = "fashion_mnist"
    repeats = 3
    epochs = 1
    steps_per_epoch = 200

Keys are the long option names of ``tapebench run`` (dashes or underscores). Each value
goes through the same converter as on the command line, so a file cannot express
anything the command line would reject; options given on the command line win.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any


class MatrixFileError(ValueError):
    """A matrix file is unreadable or holds an unknown key or a bad value."""


def _takes_list(action: argparse.Action) -> bool:
    """Whether the option takes a comma-separated list (its metavar says so: LIST, or
    HOST:PORT,...)."""
    metavar = str(action.metavar or "")
    return "LIST" in metavar or "," in metavar


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError("true/false is only valid for switches")
    if not isinstance(value, str | int | float):  # tables, dates and times
        kind = "table" if isinstance(value, dict) else type(value).__name__
        raise TypeError(f"a TOML {kind} is not a value of this option")
    return str(value)


def _toml(value: Any) -> str:
    """``value`` written as in the file (near enough: TOML arrays and strings are JSON's)."""
    return json.dumps(value, default=str)


def _as_text(value: Any, takes_list: bool) -> str:
    """The command-line text of ``value``: a list becomes comma-separated items, once."""
    if not isinstance(value, list):
        return _scalar_text(value)
    if not takes_list:
        raise TypeError("expected one value, not a list")
    if not value:
        raise TypeError("an empty list (leave the key out to get the default)")
    if any(isinstance(v, list) for v in value):
        raise TypeError("expected a flat list of values, not lists in a list")
    return ",".join(_scalar_text(v) for v in value)


def load_matrix_file(
    path: Path, parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ("matrix", "resume")
) -> dict[str, Any]:
    """Parses ``path`` into defaults for ``parser`` (keyed by argparse ``dest``).

    Raises:
      MatrixFileError: naming the file and key.
    """
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MatrixFileError(f"{path}: not valid TOML ({exc})") from None
    actions = {
        option.lstrip("-").replace("-", "_"): action
        for action in parser._actions
        if action.dest not in (*exclude, "help")
        for option in action.option_strings
        if option.startswith("--")
    }
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        action = actions.get(key.replace("-", "_"))
        if action is None:
            raise MatrixFileError(
                f"{path}: unknown key {key!r} (known: {', '.join(sorted(actions))})"
            )
        dest = action.dest
        try:
            if isinstance(action, argparse._StoreTrueAction):
                if not isinstance(value, bool):
                    raise TypeError("expected true or false")
                defaults[dest] = value
                continue
            text = _as_text(value, _takes_list(action))
            if action.choices is not None and text not in action.choices:
                raise TypeError(f"expected one of {', '.join(map(str, action.choices))}")
            defaults[dest] = action.type(text) if callable(action.type) else text
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise MatrixFileError(f"{path}: {key} = {_toml(value)}: {exc}") from None
    return defaults
