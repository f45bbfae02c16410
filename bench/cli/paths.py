"""Checks of the files and directories a command will write, made before it writes
anything (or prints a table that an error would then contradict).

A path is writable when it can be created: it is absent or of the right kind, and its
nearest existing ancestor is a directory this process may write into. The errors name
the option and the path as the user gave them.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.cli.errors import UsageError


def _existing_ancestor(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")  # pragma: no cover - the root always exists


def _check_creatable(path: Path, option: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable directory."""
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create it ({ancestor} is not writable)")


def check_output_dir(path: Path, option: str) -> None:
    """``path`` is a directory, or can be made one.

    Raises:
      UsageError: it is a file, lies below a file, or cannot be created or written.
    """
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{option} {path}: is a file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: the directory is not writable")
        return
    _check_creatable(path, option)


def check_output_file(path: Path, option: str) -> None:
    """``path`` is a file that can be (over)written, or can be created.

    Raises:
      UsageError: it is a directory, lies below a file, or cannot be written.
    """
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path}: the file is not writable")
        return
    _check_creatable(path, option)


def check_input_dir(path: Path, option: str = "") -> None:
    """``path`` (given as ``option``, or as an argument) is an existing directory.

    Raises:
      UsageError: it is missing, or a file.
    """
    named = f"{option} {path}" if option else str(path)
    if not path.exists():
        raise UsageError(f"{named}: no such directory")
    if not path.is_dir():
        raise UsageError(f"{named}: is a file, not a directory")
