"""Shared fixtures: small learnable datasets written as real files, and run helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from trainloop.datasets import ArrayData, DataSource
from trainloop.idx import write_idx

ROOT = Path(__file__).resolve().parent.parent

# Never reach for the network from tests, whatever the machine.
os.environ["TAPEBENCH_OFFLINE"] = "1"


def learnable_arrays(n_train: int = 512, n_test: int = 256, seed: int = 0) -> ArrayData:
    """Ten random 28x28 prototypes plus noise: a task a tiny CNN learns in a few steps."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (10, 28, 28))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        noise = rng.integers(0, 256, (n, 28, 28))
        images = (0.75 * prototypes[labels] + 0.25 * noise).astype(np.uint8)
        return images, labels

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return ArrayData(x_train, y_train, x_test, y_test, DataSource("mnist", "npz", "test"))


def write_idx_set(directory: Path, data: ArrayData, gz: bool = True) -> list[Path]:
    """Writes ``data`` as the four MNIST IDX files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": data.x_train,
        "train-labels-idx1-ubyte": data.y_train.astype(np.uint8),
        "t10k-images-idx3-ubyte": data.x_test,
        "t10k-labels-idx1-ubyte": data.y_test.astype(np.uint8),
    }
    paths = []
    for stem, array in arrays.items():
        path = directory / (stem + suffix)
        write_idx(path, array)
        paths.append(path)
    return paths


def write_npz(path: Path, data: ArrayData) -> Path:
    """Writes ``data`` as a Keras-style ``mnist.npz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        x_train=data.x_train,
        y_train=data.y_train.astype(np.uint8),
        x_test=data.x_test,
        y_test=data.y_test.astype(np.uint8),
    )
    return path


@pytest.fixture
def learnable() -> ArrayData:
    """A small learnable dataset in memory."""
    return learnable_arrays()


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A directory holding a small learnable dataset as gzipped MNIST IDX files."""
    write_idx_set(tmp_path / "mnist", learnable_arrays())
    return tmp_path / "mnist"


def tapebench_cmd(*args: str) -> list[str]:
    """The command line that runs ``tapebench`` from this checkout."""
    return [sys.executable, "-m", "bench", *args]


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a tapebench subprocess: offline, an empty Keras cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["KERAS_HOME"] = str(tmp_path / "keras-home")
    env["TAPEBENCH_OFFLINE"] = "1"
    return env
