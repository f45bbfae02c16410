"""Finding and loading the image datasets: MNIST, Fashion-MNIST and seeded synthetic data.

NumPy only, so the orchestrating parent can locate (and if need be download) a dataset once,
before any worker starts, and fail with one clear line when it is missing. There is no silent
fallback from one dataset to another: the dataset is part of what is measured.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainloop.idx import DataFileError, read_idx, read_idx_header
from trainloop.npz import read_npz, read_npz_headers

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
OFFLINE_ENV = "TAPEBENCH_OFFLINE"  # set to 1 to never download

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_NPZ_NAMES = {"mnist": ("mnist.npz",), "fashion_mnist": ("fashion_mnist.npz", "fashion-mnist.npz")}
_KERAS_CACHE = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}
SYNTHETIC_SIZES = (60_000, 10_000)


class DatasetNotFoundError(DataFileError):
    """The requested dataset is not available from any source."""


@dataclass(frozen=True)
class DataSource:
    """Where a dataset's arrays come from; stored with every run.

    Attributes:
      name: ``mnist``, ``fashion_mnist`` or ``synthetic``.
      kind: ``npz``, ``idx`` or ``synthetic``.
      origin: ``data-dir``, ``keras-cache``, ``debian``, ``download`` or ``generated``.
      paths: the files read (npz: one; idx: train images, train labels, test images,
        test labels).
    """

    name: str
    kind: str
    origin: str
    paths: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {**asdict(self), "paths": list(self.paths)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DataSource:
        """The inverse of :meth:`to_dict`."""
        paths = data.get("paths") or ()
        if not isinstance(paths, list | tuple):
            raise ValueError(f"data source paths must be a list, not {paths!r}")
        return cls(
            str(data["name"]), str(data["kind"]), str(data["origin"]), tuple(str(p) for p in paths)
        )


@dataclass(frozen=True)
class ArrayData:
    """A dataset in memory: uint8 images ``[N, 28, 28]`` and integer labels ``[N]``.

    ``labels_meaningful`` is False for synthetic data, whose accuracy means nothing.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: DataSource
    num_classes: int = NUM_CLASSES
    labels_meaningful: bool = True


def keras_home() -> Path:
    """The Keras cache root: ``$KERAS_HOME`` or ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser().resolve()


def _find_idx(directory: Path) -> tuple[str, ...] | None:
    found = []
    for stem in IDX_STEMS:
        dotted = stem.replace("-idx", ".idx")
        names = (stem, stem + ".gz", dotted, dotted + ".gz")
        match = next((directory / n for n in names if (directory / n).is_file()), None)
        if match is None:
            return None
        found.append(str(match))
    return tuple(found)


def _find_in_dir(name: str, directory: Path, origin: str) -> DataSource | None:
    for npz in _NPZ_NAMES[name]:
        if (directory / npz).is_file():
            return DataSource(name, "npz", origin, (str(directory / npz),))
    idx = _find_idx(directory)
    return DataSource(name, "idx", origin, idx) if idx else None


def _download(name: str, cache: Path) -> DataSource:
    """Fetches ``name`` into the Keras cache, the way ``keras.datasets`` would."""
    files: dict[str, str | None]
    if name == "mnist":
        files, target_dir = {"mnist.npz": MNIST_SHA256}, cache.parent
    else:
        files, target_dir = {stem + ".gz": None for stem in IDX_STEMS}, cache
    target_dir.mkdir(parents=True, exist_ok=True)
    for fname, sha256 in files.items():
        target = target_dir / fname
        if target.is_file():
            continue
        with urllib.request.urlopen(KERAS_ORIGIN + fname, timeout=30) as response:
            payload = response.read()
        if sha256 and hashlib.sha256(payload).hexdigest() != sha256:
            raise DataFileError(f"{KERAS_ORIGIN + fname}: download has the wrong SHA-256")
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        tmp.write_bytes(payload)
        os.replace(tmp, target)
    found = _find_in_dir(name, target_dir, "download")
    if found is None:  # pragma: no cover - the files were just written
        raise DataFileError(f"{target_dir}: download finished but the files are not there")
    return found


def locate_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    system_dirs: Sequence[Path] | None = None,
    download: bool | None = None,
) -> DataSource:
    """Finds ``name``: in ``data_dir`` if given, else the Keras cache, Debian's package
    (Fashion-MNIST), or a download into the Keras cache.

    Args:
      name: ``mnist``, ``fashion_mnist`` or ``synthetic``.
      data_dir: a directory holding the ``.npz`` or the four IDX files (raw or gzipped).
        When given, no other place is searched.
      system_dirs: system-wide directories to search (default: Debian's Fashion-MNIST path).
      download: whether to download; default True unless ``$TAPEBENCH_OFFLINE`` is set.

    Raises:
      DatasetNotFoundError: nowhere to be found; the message names the alternatives.
    """
    if name == "synthetic":
        return DataSource("synthetic", "synthetic", "generated")
    if name not in _NPZ_NAMES:
        raise ValueError(f"dataset={name!r} is not one of mnist, fashion_mnist, synthetic")
    files = f"{_NPZ_NAMES[name][0]} or the four IDX files ({', '.join(IDX_STEMS)}, raw or .gz)"
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        if given.exists() and not given.is_dir():
            raise DatasetNotFoundError(
                f"--data-dir {given}: is a file, not a directory (give the directory "
                f"holding {files})"
            )
        if not given.is_dir():
            raise DatasetNotFoundError(f"--data-dir {given}: no such directory")
        found = _find_in_dir(name, given.resolve(), "data-dir")  # workers may run elsewhere
        if found is None:
            raise DatasetNotFoundError(f"--data-dir {given}: holds neither {files}")
        return found
    cache = keras_home() / "datasets" / _KERAS_CACHE[name]
    cached = (
        DataSource(name, "npz", "keras-cache", (str(cache),))
        if cache.is_file()
        else _find_in_dir(name, cache, "keras-cache")
        if cache.is_dir()
        else None
    )
    if cached:
        return cached
    if system_dirs is None:
        system_dirs = [DEBIAN_FASHION_MNIST] if name == "fashion_mnist" else []
    for directory in system_dirs:
        found = _find_in_dir(name, directory, "debian") if directory.is_dir() else None
        if found:
            return found
    if download is None:
        download = os.environ.get(OFFLINE_ENV, "") in ("", "0")
    why = "downloads are off ($TAPEBENCH_OFFLINE)"
    if download:
        try:
            return _download(name, cache)
        except (urllib.error.URLError, OSError) as exc:
            why = f"download failed: {getattr(exc, 'reason', exc)}"
    others = ", ".join(
        f"--dataset {d}" for d in ("mnist", "fashion_mnist", "synthetic") if d != name
    )
    debian = " or `apt-get install dataset-fashion-mnist`" if name == "fashion_mnist" else ""
    raise DatasetNotFoundError(
        f"dataset {name} not found: not in the Keras cache ({cache}){debian} and {why}; "
        f"pass --data-dir DIR holding {_NPZ_NAMES[name][0]} or the four IDX files, "
        f"or use {others}"
    )


def _check_shapes(
    images: tuple[tuple[int, ...], np.dtype[Any]],
    labels: tuple[tuple[int, ...], np.dtype[Any]],
    images_path: str,
    labels_path: str,
) -> int:
    """Checks the shapes and dtypes of a pair of image and label arrays (read from the
    arrays, or from the files' headers alone); returns the number of examples."""
    (shape, dtype), (label_shape, label_dtype) = images, labels
    if len(shape) != 3 or shape[1:] != IMAGE_SHAPE:
        raise DataFileError(
            f"{images_path}: images have shape {shape}, "
            f"expected (N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]})"
        )
    if dtype != np.uint8:
        raise DataFileError(f"{images_path}: images are {dtype}, expected uint8")
    if len(label_shape) != 1 or not np.issubdtype(label_dtype, np.integer):
        raise DataFileError(
            f"{labels_path}: labels have shape {label_shape} and dtype "
            f"{label_dtype}, expected a 1-D integer array"
        )
    if shape[0] != label_shape[0]:
        raise DataFileError(
            f"{images_path} holds {shape[0]} images but {labels_path} holds {label_shape[0]} labels"
        )
    return int(shape[0])


def _check_labels(labels: np.ndarray, labels_path: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFileError(
            f"{labels_path}: labels range {labels.min()}..{labels.max()}, "
            f"expected 0..{NUM_CLASSES - 1}"
        )


@dataclass(frozen=True)
class DatasetSize:
    """How many training and test examples a dataset holds."""

    train_examples: int
    test_examples: int


def dataset_size(source: DataSource) -> DatasetSize:
    """The sizes of the dataset ``source`` points at, read from the files' headers only
    (cheap: the orchestrating parent checks a workload against them before any run).

    Raises:
      DataFileError: a file is unreadable, or its header is malformed or does not match
        its partner's (images and labels); the message names it.
    """
    if source.kind == "synthetic":
        return DatasetSize(*SYNTHETIC_SIZES)
    paths: tuple[str, ...] = source.paths
    if source.kind == "npz":
        headers = read_npz_headers(source.paths[0])
        paths = (source.paths[0],) * 4
    elif source.kind == "idx":
        headers = [(shape, dtype) for dtype, shape in map(read_idx_header, source.paths)]
    else:
        raise ValueError(f"unknown data source kind {source.kind!r}")
    return DatasetSize(
        _check_shapes(headers[0], headers[1], paths[0], paths[1]),
        _check_shapes(headers[2], headers[3], paths[2], paths[3]),
    )


def synthetic_arrays(seed: int, sizes: tuple[int, int] = SYNTHETIC_SIZES) -> ArrayData:
    """Seeded uniform-random images and labels of the reference shapes (pure timing)."""
    rng = np.random.default_rng(seed)
    n_train, n_test = sizes
    return ArrayData(
        x_train=rng.integers(0, 256, (n_train, *IMAGE_SHAPE), dtype=np.uint8),
        y_train=rng.integers(0, NUM_CLASSES, n_train).astype(np.int64),
        x_test=rng.integers(0, 256, (n_test, *IMAGE_SHAPE), dtype=np.uint8),
        y_test=rng.integers(0, NUM_CLASSES, n_test).astype(np.int64),
        source=DataSource("synthetic", "synthetic", "generated"),
        labels_meaningful=False,
    )


def load_arrays(source: DataSource, seed: int = 0) -> ArrayData:
    """Reads (and checks) the arrays ``source`` points at.

    Raises:
      DataFileError: a file is unreadable or malformed; the message names it.
    """
    if source.kind == "synthetic":
        return synthetic_arrays(seed)
    if source.kind == "npz":
        path = source.paths[0]
        x_train, y_train, x_test, y_test = read_npz(path)
        pairs: list[tuple[str, ...]] = [(path, path), (path, path)]
    elif source.kind == "idx":
        x_train, y_train, x_test, y_test = (read_idx(p) for p in source.paths)
        pairs = [source.paths[0:2], source.paths[2:4]]
    else:
        raise ValueError(f"unknown data source kind {source.kind!r}")
    for (images, labels), (images_path, labels_path) in zip(
        ((x_train, y_train), (x_test, y_test)), pairs, strict=True
    ):
        _check_shapes(
            (images.shape, images.dtype), (labels.shape, labels.dtype), images_path, labels_path
        )
        _check_labels(labels, labels_path)
    return ArrayData(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), source)
