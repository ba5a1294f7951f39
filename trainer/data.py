"""MNIST from its four IDX files, gzip-compressed or raw, validated before use.

An IDX file is a 4-byte magic number (two zero bytes, an element-type byte --
0x08 = unsigned byte for MNIST -- and the number of dimensions), then each
dimension as a big-endian uint32, then the elements in row-major order. MNIST
uses 0x00000803 for images (n, 28, 28) and 0x00000801 for labels (n,).
"""
import gzip
import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of the decompressed IDX bytes. Mirrors gzip them with different
# headers, so the content is the only thing every good copy has in common.
SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
GZIP_MAGIC, UBYTE, NDIMS = b"\x1f\x8b", 0x08, (1, 3)


class DataError(Exception):
    """A missing, unreadable, corrupt or inconsistent MNIST file. The message is one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).splitlines()))  # callers print it as a single log line


# eq=False: field-wise == on arrays is ambiguous, and a frozen eq dataclass would hash them.
@dataclass(frozen=True, eq=False)
class MNIST:
    """x_train: (60000, 28, 28) uint8 in 0..255; y_train: (60000,) uint8 in 0..9;
    x_test: (10000, 28, 28) uint8; y_test: (10000,) uint8; sha256: IDX base name ->
    SHA-256 hex digest of its decompressed bytes (recorded in model cards)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: dict


def read_bytes(path):
    """The IDX bytes in ``path``, gunzipped when the file starts with the gzip magic, whatever its name."""
    try:
        data = Path(path).read_bytes()
        return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (the download or copy was cut short)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip stream ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_idx(data, path):
    """The uint8 array of shape ``dims`` held in IDX bytes ``data``; ``path`` only names it in errors."""
    if not data:
        raise DataError(f"{path}: empty file")
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DataError(f"{path}: not an IDX file: starts with 0x{data[:4].hex()}, "
                        "expected magic 0x00000801 (labels) or 0x00000803 (images)")
    if data[2] != UBYTE:
        raise DataError(f"{path}: unsupported IDX element type 0x{data[2]:02x} (MNIST uses 0x08 = unsigned byte)")
    if data[3] not in NDIMS:
        raise DataError(f"{path}: bad magic number 0x{data[:4].hex()}: "
                        "expected 0x00000801 (labels) or 0x00000803 (images)")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{path}: truncated header: {len(data)} bytes, a {ndim}-d IDX header has {start}")
    dims = struct.unpack(f">{ndim}I", data[4:start])
    need, have = math.prod(dims), len(data) - start
    declared = f"header says {'x'.join(map(str, dims))} = {need} bytes"
    if have < need:
        raise DataError(f"{path}: truncated: {declared}, file has {have} after the {start}-byte header")
    if have > need:
        raise DataError(f"{path}: {have - need} trailing bytes: {declared}, "
                        f"file has {have} after the {start}-byte header")
    return np.frombuffer(data, np.uint8, offset=start).reshape(dims).copy()  # copy: writable


def read_idx(path):
    """One IDX file, gzip or raw, as a uint8 array; any problem raises a one-line :class:`DataError`."""
    return parse_idx(read_bytes(path), path)


def locate(data_dir, name):
    """``data_dir/NAME.gz`` or else ``data_dir/NAME`` if either is a file; None when neither is."""
    for candidate in (Path(data_dir) / f"{name}.gz", Path(data_dir) / name):
        if candidate.is_file():
            return candidate
    return None


def missing_files(data_dir):
    """Base names of the MNIST files found in ``data_dir`` neither gzipped nor raw."""
    return [name for name in FILES if locate(data_dir, name) is None]


def where_to_put(data_dir, names):
    """The instruction every 'files missing' message ends with."""
    listed = ", ".join(f"{name}.gz" for name in names)
    return f"put {listed} (gzip or raw IDX) in {Path(data_dir).resolve()}"


def check_pair(images, labels, image_path, label_path):
    """Images ``(n, 28, 28)`` and labels ``(n,)`` in 0..9 that belong together, or DataError."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{image_path}: expected images of shape Nx28x28, got {'x'.join(map(str, images.shape))}")
    if labels.ndim != 1:
        raise DataError(f"{label_path}: expected a 1-d label file, got shape {'x'.join(map(str, labels.shape))}")
    if len(images) != len(labels):
        raise DataError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{label_path}: no records")
    if labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise DataError(f"{label_path}: label values must be 0-9, found {labels[i]} at index {i}")
    return images, labels


def load_mnist(data_dir):
    """The four MNIST arrays from ``data_dir`` (:func:`trainer.download.fetch_mnist` downloads them first)."""
    missing = missing_files(data_dir)
    if missing:
        raise DataError(f"MNIST files missing from {Path(data_dir).resolve()}: {where_to_put(data_dir, missing)}")
    arrays, paths, sha256 = {}, {}, {}
    for name in FILES:
        paths[name] = locate(data_dir, name)
        data = read_bytes(paths[name])
        sha256[name] = hashlib.sha256(data).hexdigest()
        arrays[name] = parse_idx(data, paths[name])

    def pair(images, labels):
        return check_pair(arrays[images], arrays[labels], paths[images], paths[labels])

    return MNIST(*pair(TRAIN_IMAGES, TRAIN_LABELS), *pair(TEST_IMAGES, TEST_LABELS), sha256)
