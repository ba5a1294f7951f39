"""Small helpers shared by the tests and the benchmarks: models on disk, images, forms, error checks.

Fixtures live in tests/conftest.py; bigger families of helpers have their own
modules (tests/hostile.py, tests/browser.py, tests/live_server.py, ...).
"""
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from urllib3.filepost import encode_multipart_formdata
from werkzeug.http import dump_options_header

from neuralnet import Activation, BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, Network, Reshape
from neuralnet.model_io import save_version

REPO = Path(__file__).resolve().parents[1]
COMMITTED_MODEL = REPO / "models" / "mnist" / "6"  # the CNN the service ships, trained with non-digits
COMMITTED_DIGITS_ONLY = REPO / "models" / "mnist" / "2"  # the same CNN trained on digits alone
COMMITTED_MLP = REPO / "models" / "mnist" / "1"  # the MLP before it, still served when pinned


# -- models on disk ----------------------------------------------------------------
def tiny_network(seed=0):
    """784-16-10 with random weights: a valid model that loads in a millisecond."""
    rng = np.random.default_rng(seed)
    net = Network().add(Dense(784, 16, rng=rng)).add(Activation("relu"))
    return net.add(Dense(16, 10, rng=rng)).add(Activation("softmax"))


def tiny_cnn(seed=0):
    """conv3x3-4 -> pool -> batch norm -> relu -> 4x4 pool -> dense 10, random weights and
    batch statistics: every kind of layer the format knows, loading in milliseconds."""
    rng = np.random.default_rng(seed)
    net = Network().add(Reshape((28, 28, 1))).add(Conv2D(1, 4, kernel=3, padding=1, rng=rng)).add(MaxPool2D(2))
    norm = BatchNorm(4)
    norm.running_mean[:] = rng.normal(size=4)
    norm.running_var[:] = rng.uniform(0.5, 2, size=4)
    net.add(norm).add(Activation("relu")).add(MaxPool2D(4)).add(Flatten())
    return net.add(Dense(36, 10, rng=rng)).add(Activation("softmax"))


def write_version(models_dir, network=None, name="mnist", **card):
    """Write ``network`` (default: a tiny random one) as the next version; return its path."""
    card = {"loss": "softmax_cross_entropy", "metrics": {"test_accuracy": 0.5}, **card}
    return save_version(network or tiny_network(), card, models_dir, name)


def edit_card(path, change):
    card = json.loads((path / "model.json").read_text())
    change(card)
    (path / "model.json").write_text(json.dumps(card))


def rehash(path):
    """Make the card's checksum match model.npz again, so only the file's content is wrong."""
    from neuralnet.model_io import sha256_file

    edit_card(path, lambda c: c["files"]["model.npz"].update(sha256=sha256_file(path / "model.npz"),
                                                           bytes=(path / "model.npz").stat().st_size))


def truncate_and_rehash(path):
    data = (path / "model.npz").read_bytes()
    (path / "model.npz").write_bytes(data[: len(data) - 200])
    rehash(path)


def rewrite_npz(path, **arrays):
    """Replace (or with None, drop) arrays in model.npz, keeping the card's checksum right."""
    with np.load(path / "model.npz", allow_pickle=False) as npz:
        data = {**{k: npz[k] for k in npz.files}, **arrays}
    np.savez(path / "model.npz", **{k: v for k, v in data.items() if v is not None})
    rehash(path)


# -- images --------------------------------------------------------------------------
def png(pixels, mode=None, fmt="PNG", **save):
    """Encode an array (or PIL image) as image bytes."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    if mode:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


GOOD = png(np.zeros((28, 28), np.uint8))  # blank, but a valid image: predicts without error (no_digit)


def _stroke():
    x = np.zeros((28, 28), np.uint8)
    x[4:24, 13:15] = 255
    return png(x)


STROKE = _stroke()  # one stroke of ink, so a prediction that counts a digit


def bomb_png(width=100_000, height=100_000):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]


def encoded(fmt):
    img = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    return png(img, mode="RGB", fmt=fmt)


ENCODED = {fmt: encoded(fmt) for fmt in FORMATS}


# -- forms ---------------------------------------------------------------------------
def form(fields, boundary="b"):
    """The body requests would send for ``fields`` (urllib3's encoder)."""
    return encode_multipart_formdata(fields, boundary=boundary)[0]


def content_type(boundary):
    return dump_options_header("multipart/form-data", {"boundary": boundary})  # quoted when it must be


# -- answers -------------------------------------------------------------------------
def assert_error(r, status, code):
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.is_json
    body = r.get_json()
    assert set(body) >= {"error", "code"} and body["code"] == code
    assert "Traceback" not in body["error"] and len(body["error"]) < 200


# -- gradient checks --------------------------------------------------------------
EPS = 1e-6


def numeric_grad(f, x):
    """Central differences of the scalar ``f()`` with respect to every entry of ``x`` (in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + EPS
        up = f()
        x[i] = old - EPS
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * EPS)
    return grad


def rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
