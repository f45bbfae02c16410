from pathlib import Path

import numpy as np
import pytest

from tests.conftest import learnable_arrays, write_idx_set, write_npz
from trainloop.datasets import (
    SYNTHETIC_SIZES,
    DatasetNotFoundError,
    DatasetSize,
    DataSource,
    dataset_size,
    load_arrays,
    locate_dataset,
    synthetic_arrays,
)
from trainloop.idx import DataFileError, write_idx


@pytest.fixture(autouse=True)
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_in_data_dir(tmp_path, gz):
    data = learnable_arrays(64, 32)
    write_idx_set(tmp_path / "d", data, gz=gz)
    source = locate_dataset("mnist", tmp_path / "d")
    assert (source.kind, source.origin) == ("idx", "data-dir")
    loaded = load_arrays(source)
    np.testing.assert_array_equal(loaded.x_train, data.x_train)
    np.testing.assert_array_equal(loaded.y_test, data.y_test)
    assert loaded.labels_meaningful


def test_npz_in_data_dir(tmp_path):
    data = learnable_arrays(64, 32)
    write_npz(tmp_path / "d" / "mnist.npz", data)
    source = locate_dataset("mnist", tmp_path / "d")
    assert source.kind == "npz"
    np.testing.assert_array_equal(load_arrays(source).x_test, data.x_test)


def test_dotted_idx_names_are_found(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    for p in paths:
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    assert locate_dataset("fashion_mnist", tmp_path / "d").kind == "idx"


def test_keras_cache(tmp_path):
    write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", learnable_arrays(64, 32))
    write_idx_set(tmp_path / "keras-home" / "datasets" / "fashion-mnist", learnable_arrays(64, 32))
    assert locate_dataset("mnist", download=False).origin == "keras-cache"
    assert locate_dataset("fashion_mnist", download=False).origin == "keras-cache"


def test_system_dir_for_fashion_mnist(tmp_path):
    write_idx_set(tmp_path / "debian", learnable_arrays(64, 32))
    source = locate_dataset("fashion_mnist", system_dirs=[tmp_path / "debian"], download=False)
    assert source.origin == "debian"
    assert source.paths[0].startswith(str(tmp_path / "debian"))


def test_not_found_offline_names_the_alternatives(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        locate_dataset("mnist", system_dirs=[], download=False)
    message = str(info.value)
    for hint in ("--data-dir", "--dataset fashion_mnist", "--dataset synthetic"):
        assert hint in message
    assert "\n" not in message


def test_failed_download_is_reported(monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotFoundError, match="download failed: Name or service"):
        locate_dataset("fashion_mnist", system_dirs=[], download=True)


def test_data_dir_without_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"empty: holds neither mnist\.npz"):
        locate_dataset("mnist", tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="no such directory"):
        locate_dataset("mnist", tmp_path / "absent")
    (tmp_path / "mnist.npz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match=r"mnist\.npz: is a file, not a directory"):
        locate_dataset("mnist", tmp_path / "mnist.npz")


def test_incomplete_idx_set_is_not_found(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    paths[3].unlink()
    with pytest.raises(DatasetNotFoundError):
        locate_dataset("mnist", tmp_path / "d")


def _idx_source(paths: list[Path]) -> DataSource:
    return DataSource("mnist", "idx", "data-dir", tuple(map(str, paths)))


def test_count_mismatch_names_both_files(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    write_idx(paths[1], np.zeros(63, np.uint8))
    with pytest.raises(DataFileError, match=r"holds 64 images but .*train-labels.* holds 63"):
        load_arrays(_idx_source(paths))


def test_wrong_image_shape(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    write_idx(paths[2], np.zeros((32, 32, 32), np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-images.*shape \(32, 32, 32\)"):
        load_arrays(_idx_source(paths))


def test_labels_out_of_range(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    write_idx(paths[3], np.full(32, 10, np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-labels.*range 10\.\.10"):
        load_arrays(_idx_source(paths))


def test_corrupt_file_in_set_is_named(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    paths[0].write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte\.gz"):
        load_arrays(_idx_source(paths))


@pytest.mark.parametrize("read", [load_arrays, dataset_size])  # all of it, or its headers
def test_npz_missing_arrays_and_corrupt(tmp_path, read):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    source = DataSource("mnist", "npz", "data-dir", (str(tmp_path / "mnist.npz"),))
    with pytest.raises(DataFileError, match="missing arrays y_train, x_test, y_test"):
        read(source)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(DataFileError, match=r"mnist\.npz: not a readable \.npz"):
        read(source)


def test_synthetic_is_seeded_and_unlabelled():
    a, b, c = (
        synthetic_arrays(1, (100, 10)),
        synthetic_arrays(1, (100, 10)),
        synthetic_arrays(2, (100, 10)),
    )
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape == (100, 28, 28) and a.x_train.dtype == np.uint8
    assert not a.labels_meaningful
    assert locate_dataset("synthetic").kind == "synthetic"


def test_source_round_trips_through_dict():
    source = DataSource("mnist", "idx", "debian", ("a", "b", "c", "d"))
    assert DataSource.from_dict(source.to_dict()) == source


def test_the_stream_yields_the_arrays_the_model_takes(learnable):
    """Batches scaled and one-hot encoded in the pipeline equal :func:`to_model_arrays`."""
    import tensorflow as tf

    from trainloop.inputs import create_train_dataset, to_model_arrays

    x, y = to_model_arrays(learnable.x_train, learnable.y_train, learnable.num_classes)
    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=3).batch(32, drop_remainder=True)
    images, labels = next(iter(create_train_dataset(learnable, 32, 3, drop_remainder=True)))
    index = next(iter(order)).numpy()
    assert images.dtype == tf.float32 and images.shape == (32, 28, 28, 1)
    np.testing.assert_array_equal(images.numpy(), x[index])
    np.testing.assert_array_equal(labels.numpy(), y[index])


@pytest.mark.parametrize("kind", ["idx", "idx.gz", "npz"])
def test_sizes_come_from_the_headers(tmp_path, kind):
    data = learnable_arrays(70, 30)
    if kind == "npz":
        write_npz(tmp_path / "d" / "mnist.npz", data)
    else:
        write_idx_set(tmp_path / "d", data, gz=kind.endswith("gz"))
    assert dataset_size(locate_dataset("mnist", tmp_path / "d")) == DatasetSize(70, 30)
    assert dataset_size(locate_dataset("synthetic")) == DatasetSize(*SYNTHETIC_SIZES)


def test_headers_that_disagree_are_caught_without_loading(tmp_path):
    paths = write_idx_set(tmp_path / "d", learnable_arrays(64, 32))
    write_idx(paths[1], np.zeros(63, np.uint8))
    with pytest.raises(DataFileError, match=r"holds 64 images but .*train-labels.* holds 63"):
        dataset_size(_idx_source(paths))
    write_idx(paths[1], np.zeros(64, np.uint8))
    write_idx(paths[2], np.zeros((32, 32, 32), np.uint8))
    with pytest.raises(DataFileError, match=r"t10k-images.*shape \(32, 32, 32\)"):
        dataset_size(_idx_source(paths))
