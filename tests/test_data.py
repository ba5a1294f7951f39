"""IDX parsing and MNIST loading: the real files, and every way a file can be wrong."""
import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

from trainer import data
from trainer.data import FILES, SHA256, DataError, load_mnist, read_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def idx(array, dtype=0x08):
    """IDX bytes for a uint8 ``array`` (written independently of trainer.data)."""
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, dtype, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_dataset(directory, n_train=6, n_test=4, **override):
    """A tiny, well-formed MNIST lookalike in ``directory``; ``override`` maps base name -> bytes."""
    rng = np.random.default_rng(0)
    content = {
        data.TRAIN_IMAGES: idx(rng.integers(0, 256, (n_train, 28, 28))),
        data.TRAIN_LABELS: idx(np.arange(n_train) % 10),
        data.TEST_IMAGES: idx(rng.integers(0, 256, (n_test, 28, 28))),
        data.TEST_LABELS: idx(np.arange(n_test)[::-1] % 10),
    } | override
    directory.mkdir(parents=True, exist_ok=True)
    for name, raw in content.items():
        (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
    return content


def test_real_files_gzip(mnist_dir):
    x_train, y_train = read_idx(mnist_dir / f"{data.TRAIN_IMAGES}.gz"), read_idx(mnist_dir / f"{data.TRAIN_LABELS}.gz")
    x_test, y_test = read_idx(mnist_dir / f"{data.TEST_IMAGES}.gz"), read_idx(mnist_dir / f"{data.TEST_LABELS}.gz")
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[0] == 5 and y_test[0] == 7
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0


@pytest.mark.parametrize("stored_as", ["NAME", "NAME.gz"])
def test_raw_copy_reads_like_the_gzip(mnist_dir, tmp_path, stored_as):
    """Gzip is recognised by its magic bytes: raw bytes under a .gz name read fine too."""
    source = mnist_dir / f"{data.TEST_IMAGES}.gz"
    raw = tmp_path / stored_as.replace("NAME", data.TEST_IMAGES)
    raw.write_bytes(gzip.decompress(source.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(source))


def test_load_mnist_real_records_checksums(mnist_dir, tmp_path):
    """Mixed gzip/raw directory; the checksums are of the decompressed bytes, as published."""
    for name in FILES:
        shutil.copy(mnist_dir / f"{name}.gz", tmp_path)
    raw_labels = gzip.decompress((mnist_dir / f"{data.TRAIN_LABELS}.gz").read_bytes())
    (tmp_path / f"{data.TRAIN_LABELS}.gz").unlink()
    (tmp_path / data.TRAIN_LABELS).write_bytes(raw_labels)
    mnist = load_mnist(tmp_path)
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.y_test.shape == (10000,)
    assert mnist.sha256 == SHA256
    assert mnist.sha256[data.TRAIN_LABELS] == hashlib.sha256(raw_labels).hexdigest()
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS


def test_load_mnist_small_dataset_round_trips(tmp_path):
    content = write_dataset(tmp_path)
    mnist = load_mnist(tmp_path)
    assert mnist.x_train.shape == (6, 28, 28) and mnist.x_test.shape == (4, 28, 28)
    assert mnist.y_train.tolist() == [0, 1, 2, 3, 4, 5] and mnist.y_test.tolist() == [3, 2, 1, 0]
    assert mnist.x_train.tobytes() == content[data.TRAIN_IMAGES][16:]
    assert mnist.sha256 == {name: hashlib.sha256(raw).hexdigest() for name, raw in content.items()}
    with pytest.raises(AttributeError):
        mnist.x_train = None  # frozen


LABELS = idx(np.arange(10))
IMAGES = idx(np.zeros((3, 28, 28)))
BAD_FILES = {
    "wrong magic": (b"\0\0\x08\x02" + struct.pack(">2I", 2, 5) + bytes(10), ["bad magic number 0x00000802"]),
    "wrong dtype byte": (idx(np.arange(10), dtype=0x0D), ["element type 0x0d", "0x08"]),
    "truncated labels": (LABELS[:-3], ["truncated: header says 10 = 10 bytes, file has 7 after the 8-byte header"]),
    "truncated images": (IMAGES[:2000], ["truncated: header says 3x28x28 = 2352 bytes, file has 1984"]),
    "truncated header": (IMAGES[:10], ["truncated header: 10 bytes", "has 16"]),
    "trailing bytes": (LABELS + b"extra", ["5 trailing bytes", "header says 10 = 10 bytes, file has 15"]),
    "truncated gzip stream": (gzip.compress(IMAGES)[:-30], ["truncated gzip stream"]),
    "corrupt gzip stream": (gzip.compress(IMAGES)[:10] + bytes(40), ["corrupt gzip stream"]),
    "gzip CRC mismatch": (gzip.compress(LABELS)[:-8] + bytes(8), ["corrupt gzip stream", "CRC"]),
    "random bytes": (b"\x89PNG" + np.random.default_rng(1).bytes(500), ["not an IDX file: starts with 0x89504e47"]),
    "empty file": (b"", ["empty file"]),
}


@pytest.mark.parametrize("content, expected", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_gives_one_line_naming_file_and_problem(tmp_path, content, expected):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_idx(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in expected:
        assert fragment in message
    # no gzip/zlib/OS traceback chained onto it
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p.mkdir() or p], ids=["missing", "directory"])
def test_unreadable_path_is_a_data_error(tmp_path, make):
    path = make(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: cannot read: (No such file|Is a directory)"):
        read_idx(path)


BAD_SETS = {
    "label value 10": ({data.TRAIN_LABELS: idx([0, 1, 2, 10, 4, 5])},
                       data.TRAIN_LABELS, "label values must be 0-9, found 10 at index 3"),
    "count mismatch": ({data.TEST_LABELS: idx([1, 2, 3])},
                       data.TEST_IMAGES, "has 4 images but"),
    "images not 28x28": ({data.TRAIN_IMAGES: idx(np.zeros((6, 28, 27)))},
                         data.TRAIN_IMAGES, "expected images of shape Nx28x28, got 6x28x27"),
    "labels in the images slot": ({data.TEST_IMAGES: idx(np.arange(4))},
                                  data.TEST_IMAGES, "got 4"),
    "images in the labels slot": ({data.TEST_LABELS: idx(np.zeros((4, 28, 28)))},
                                  data.TEST_LABELS, "expected a 1-d label file, got shape 4x28x28"),
    "no records": ({data.TEST_IMAGES: idx(np.zeros((0, 28, 28))), data.TEST_LABELS: idx(np.zeros(0))},
                   data.TEST_LABELS, "no records"),
}


@pytest.mark.parametrize("override, named, expected", BAD_SETS.values(), ids=BAD_SETS.keys())
def test_inconsistent_dataset_is_rejected(tmp_path, override, named, expected):
    write_dataset(tmp_path, **override)
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    message = str(err.value)
    assert f"{tmp_path / named}.gz" in message and expected in message and "\n" not in message


def test_count_mismatch_names_both_files(tmp_path):
    write_dataset(tmp_path, **{data.TEST_LABELS: idx([1, 2, 3])})
    with pytest.raises(DataError,
                       match=r"t10k-images-idx3-ubyte\.gz has 4 images but .*t10k-labels-idx1-ubyte\.gz has 3 labels"):
        load_mnist(tmp_path)


def test_missing_files_say_what_to_put_where(tmp_path):
    write_dataset(tmp_path / "mnist")
    (tmp_path / "mnist" / f"{data.TRAIN_IMAGES}.gz").unlink()
    (tmp_path / "mnist" / f"{data.TEST_LABELS}.gz").unlink()
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path / "mnist")
    message = str(err.value)
    assert "\n" not in message
    where = (tmp_path / "mnist").resolve()
    assert f"put {data.TRAIN_IMAGES}.gz, {data.TEST_LABELS}.gz (gzip or raw IDX) in {where}" in message
    assert data.TRAIN_LABELS not in message and data.TEST_IMAGES not in message
