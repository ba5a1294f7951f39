"""Rebuild the sample uploads in examples/ from the MNIST test set.

    MNIST_DIR=path/to/mnist python examples/make_samples.py           # write them
    MNIST_DIR=path/to/mnist python examples/make_samples.py --check   # compare with the files here

The photo and the drawing come from the upload generators in tests/uploads.py
with fixed seeds, so the same NumPy and Pillow (and its libjpeg and zlib)
rebuild the same bytes.
"""
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repo root: tests.uploads and trainer

from tests.uploads import canvas_alpha_png, paper_photo_jpeg, strokes  # noqa: E402
from trainer.data import read_idx  # noqa: E402


def v2_request(digit):
    """A V2 inference request for one 28x28 uint8 digit, one image row per line."""
    rows = ",\n    ".join(json.dumps(row) for row in digit.tolist())
    return ('{"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 28, 28], "data": [[\n    '
            + rows + '\n]]}]}\n').encode()


def number_png(digits):
    """Black brush strokes of the 28x28 ``digits`` side by side on a white canvas, as a PNG."""
    canvas = np.zeros((140, 100 * len(digits) + 40), np.float32)
    for i, digit in enumerate(digits):
        canvas[20:120, 20 + 100 * i:120 + 100 * i] = strokes(digit, 100, pen=0.35)
    buf = io.BytesIO()
    Image.fromarray(np.round(255 * (1 - canvas)).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def samples(mnist_dir):
    """File name -> bytes. Test images 0, 1 and 4 are a 7, a 2 and a 4."""
    images = read_idx(Path(mnist_dir) / "t10k-images-idx3-ubyte.gz")
    png = io.BytesIO()
    Image.fromarray(images[0]).save(png, "PNG")
    return {
        "digit.png": png.getvalue(),
        "digit-v2.json": v2_request(images[0]),
        "photo.jpg": paper_photo_jpeg(images[1], 2, np.random.default_rng(5)),
        "drawing.png": canvas_alpha_png(images[4], 4, np.random.default_rng(1)),
        "number.png": number_png(images[:3]),
    }


def main(argv):
    made = samples(os.environ.get("MNIST_DIR", "data/mnist"))
    if "--check" in argv:
        differ = [name for name, data in made.items() if (HERE / name).read_bytes() != data]
        print("differ: " + " ".join(differ) if differ else "all samples match")
        return 1 if differ else 0
    for name, data in made.items():
        (HERE / name).write_bytes(data)
        print(f"examples/{name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
