"""Reading and writing IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is two zero bytes, a dtype code, the number of dimensions, one big-endian uint32
per dimension, then the raw big-endian data. Files may be gzip-compressed. NumPy only.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder(">"): code for code, dtype in _DTYPES.items()}


class DataFileError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file."""


_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path, limit: int = -1) -> tuple[bytes, bool]:
    """The file's bytes (decompressed if gzipped): all of them, or the first ``limit``;
    and whether it was gzipped."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=f) as gz:
                    return gz.read(limit), True
            if path.suffix == ".gz":
                raise DataFileError(
                    f"{path}: not gzip data (it is named .gz but starts with 0x{head.hex()}, "
                    f"not 0x{_GZIP_MAGIC.hex()})"
                )
            return f.read(limit), False
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFileError(f"{path}: damaged gzip data ({exc})") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse_header(path: Path, raw: bytes) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """The dtype, shape and header length of the IDX data starting ``raw``."""
    if len(raw) < 4:
        raise DataFileError(f"{path}: truncated: {len(raw)} bytes, too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _DTYPES or ndim == 0:
        raise DataFileError(
            f"{path}: bad magic number 0x{raw[:4].hex()} (not an IDX file; expected 0x0000 "
            "followed by a dtype code and the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated inside the IDX header")
    return _DTYPES[code], struct.unpack(f">{ndim}I", raw[4:header]), header


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype[Any], found: int) -> None:
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if found < expected:
        raise DataFileError(
            f"{path}: truncated: shape {shape} needs {expected} data bytes, found {found}"
        )
    if found > expected:
        raise DataFileError(
            f"{path}: {found - expected} bytes of trailing data after shape {shape}"
        )


def read_idx_header(path: str | os.PathLike[str]) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """The dtype and shape an IDX file (raw or gzipped) declares, read from its header
    only; a raw file's size is checked against them too (a gzipped one's only when read).

    Raises:
      DataFileError: the file is unreadable, not gzip data though named ``.gz``, has a
        bad magic number, or (raw) is truncated or too long.
    """
    path = Path(path)
    head, gzipped = _read_bytes(path, 4 + 4 * 255)  # the longest header there can be
    dtype, shape, header = _parse_header(path, head)
    if not gzipped:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise DataFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
        _check_size(path, shape, dtype, size - header)
    return dtype, shape


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (raw or gzipped) into an array in native byte order.

    Raises:
      DataFileError: the file is unreadable, has a bad magic number or is truncated.
    """
    path = Path(path)
    raw, _ = _read_bytes(path)
    dtype, shape, header = _parse_header(path, raw)
    _check_size(path, shape, dtype, len(raw) - header)
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Writes ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    big = np.asarray(array)
    big = big.astype(big.dtype.newbyteorder(">"), copy=False)
    code = _CODES.get(big.dtype)
    if code is None:
        raise ValueError(
            f"dtype {array.dtype} has no IDX code; use uint8, int8, int16, "
            "int32, float32 or float64"
        )
    payload = struct.pack(f">HBB{big.ndim}I", 0, code, big.ndim, *big.shape) + big.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
