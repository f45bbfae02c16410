import gzip

import numpy as np
import pytest

from trainloop.idx import DataFileError, read_idx, read_idx_header, write_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_reads_the_published_header_layout(tmp_path):
    # magic 0x00000801 (uint8, 1 dim), count 3, then the bytes: the MNIST label format.
    (tmp_path / "labels").write_bytes(bytes.fromhex("00000801 00000003 070201"))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [7, 2, 1])


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataFileError, match=r"not-idx: bad magic number 0x504b0304"):
        read_idx(path)


def test_unknown_dtype_code_is_a_bad_magic(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes.fromhex("00000F01 00000001 00"))
    with pytest.raises(DataFileError, match="bad magic"):
        read_idx(path)


def test_truncated_data_names_the_file_and_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        DataFileError,
        match=r"train-images-idx3-ubyte: truncated: shape "
        r"\(10, 28, 28\) needs 7840 data bytes, found 7740",
    ):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes.fromhex("00000803 0000"))
    with pytest.raises(DataFileError, match="truncated inside the IDX header"):
        read_idx(path)
    path.write_bytes(b"\x00")
    with pytest.raises(DataFileError, match="too short"):
        read_idx(path)


def test_trailing_bytes_are_rejected(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.zeros(4, np.uint8))
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(DataFileError, match="4 bytes of trailing data"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataFileError, match=r"x\.gz: damaged gzip data"):
        read_idx(path)


def test_gzip_of_garbage_is_a_bad_magic(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"hello world, not an idx file"))
    with pytest.raises(DataFileError, match="bad magic"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        read_idx(tmp_path / "absent")


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="no IDX code"):
        write_idx(tmp_path / "x", np.zeros(3, np.complex64))


def test_a_dot_gz_file_that_is_not_gzip_says_so(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "raw", np.zeros(4, np.uint8))
    path.write_bytes((tmp_path / "raw").read_bytes())  # raw IDX bytes under a .gz name
    with pytest.raises(DataFileError, match=r"ubyte\.gz: not gzip data .* starts with 0x0000"):
        read_idx(path)
    with pytest.raises(DataFileError, match="not gzip data"):
        read_idx_header(path)


@pytest.mark.parametrize("name", ["x", "x.gz"])
def test_the_header_alone_gives_dtype_and_shape(tmp_path, name):
    write_idx(tmp_path / name, np.zeros((5, 28, 28), np.uint8))
    assert read_idx_header(tmp_path / name) == (np.dtype(np.uint8), (5, 28, 28))


def test_a_raw_file_short_of_its_header_shape_is_caught_from_its_size(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=r"x: truncated: shape \(10, 28, 28\) needs 7840"):
        read_idx_header(path)
