"""Reading Keras-style dataset archives (``mnist.npz``): the four arrays ``x_train``,
``y_train``, ``x_test`` and ``y_test``, or only their shapes and dtypes. NumPy only."""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from trainloop.idx import DataFileError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@contextlib.contextmanager
def _npz_errors(path: str) -> Iterator[None]:
    """Turns whatever reading a broken archive raises into a DataFileError naming it."""
    try:
        yield
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path}: not a readable .npz file ({exc})") from None


def _check_keys(path: str, names: list[str]) -> None:
    missing = [k for k in NPZ_KEYS if k not in names]
    if missing:
        raise DataFileError(f"{path}: missing arrays {', '.join(missing)}")


def read_npz(path: str) -> list[np.ndarray]:
    """The four arrays, in :data:`NPZ_KEYS` order.

    Raises:
      DataFileError: the archive is unreadable or lacks one of them; naming it.
    """
    with _npz_errors(path), np.load(path, allow_pickle=False) as npz:
        _check_keys(path, list(npz.files))
        return [npz[k] for k in NPZ_KEYS]


def read_npz_headers(path: str) -> list[tuple[tuple[int, ...], np.dtype[Any]]]:
    """The shape and dtype of each of the four arrays, from their ``.npy`` headers alone.

    Raises:
      DataFileError: the archive is unreadable or lacks one of them; naming it.
    """
    headers = []
    with _npz_errors(path), zipfile.ZipFile(path) as archive:
        _check_keys(path, [n.removesuffix(".npy") for n in archive.namelist()])
        for key in NPZ_KEYS:
            with archive.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(member)
                headers.append((tuple(shape), np.dtype(dtype)))
    return headers
