"""Accuracy and preprocessing time per kind of upload, on a fixed mixed set.

    python benchmarks/upload_accuracy.py [--model-dir models/mnist/1] [--n 2000] [--seed 2024]

Builds ``--n`` uploads from the MNIST test set (``--data-dir`` or MNIST_DIR)
and installed fonts with ``tests/uploads.py`` -- canvas exports, phone photos
of paper, transparent PNGs, coloured ink, GIF/BMP/WebP/TIFF/16-bit PNG ... --
then decodes and preprocesses each one as the service does and runs the model.
Prints per kind: samples, accuracy, and milliseconds per image for decoding
and for ``to_mnist``; then the overall accuracy, and the accuracy on all
10,000 MNIST test digits sent as plain PNGs. ``--errors DIR`` saves the
misclassified uploads there with their 28x28 inputs, to look at.
"""
import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/uploads.py is not part of the installed package

from neuralnet.model_io import list_versions, load_version  # noqa: E402
from service.decode import decode_image  # noqa: E402
from service.preprocess import to_mnist  # noqa: E402
from tests.uploads import KINDS, encode, find_fonts, mnist_test_digits, upload_set  # noqa: E402

MAX_PIXELS = 40_000_000


def latest_model_dir(models_dir, name="mnist"):
    versions = list_versions(Path(models_dir) / name)
    if not versions:
        sys.exit(f"no model versions under {Path(models_dir) / name}; pass --model-dir")
    return Path(models_dir) / name / str(max(versions))


def run(samples, network):
    """Decode, preprocess and predict every sample.

    Returns rows per kind, each ``[correct, decode s, to_mnist s]``, the inputs
    (n, 784) and the predicted digits (n,).
    """
    timings, inputs = [], []
    for _, data, _ in samples:
        t0 = time.perf_counter()
        img = decode_image(data, max_pixels=MAX_PIXELS)
        t1 = time.perf_counter()
        inputs.append(to_mnist(img))
        timings.append((t1 - t0, time.perf_counter() - t1))
    inputs = np.stack(inputs)
    predicted = network.predict(inputs)
    rows = defaultdict(list)
    for (kind, _, label), guess, (decode, prep) in zip(samples, predicted, timings):
        rows[kind].append([float(guess == label), decode, prep])
    return rows, inputs, predicted


def report(rows):
    print(f"{'kind':<18} {'n':>5} {'accuracy':>9} {'decode ms':>10} {'to_mnist ms':>12}")
    table = {kind: np.array(rows[kind]) for kind in KINDS if kind in rows}
    table["overall"] = np.concatenate(list(table.values()))
    for kind, r in table.items():
        print(f"{kind:<18} {len(r):>5} {r[:, 0].mean():>9.2%} {1e3 * r[:, 1].mean():>10.3f} "
              f"{1e3 * r[:, 2].mean():>12.3f}")
    uploads = np.concatenate([r for k, r in table.items() if k not in ("overall", "mnist_png")])
    print(f"mixed uploads other than plain MNIST PNG: {uploads[:, 0].mean():.2%} of {len(uploads)}")


def plain_mnist(network, images, labels):
    """Accuracy on every MNIST test digit sent as a 28x28 PNG, and ms per image for decode + to_mnist."""
    data = [encode(Image.fromarray(d), "PNG") for d in images]
    t0 = time.perf_counter()
    x = np.stack([to_mnist(decode_image(d, max_pixels=MAX_PIXELS)) for d in data])
    seconds = time.perf_counter() - t0
    return (network.predict(x) == labels).mean(), 1e3 * seconds / len(data)


def save_errors(out, samples, inputs, predicted):
    out.mkdir(parents=True, exist_ok=True)
    for i, ((kind, data, label), x, guess) in enumerate(zip(samples, inputs, predicted)):
        if guess != label:
            (out / f"{i:04d}_{kind}_true{label}_pred{guess}.bin").write_bytes(data)
            Image.fromarray(np.round(x.reshape(28, 28) * 255).astype(np.uint8)).resize((112, 112)).save(
                out / f"{i:04d}_{kind}_true{label}_pred{guess}_input.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="a version directory (default: latest of models/mnist)")
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", ROOT.parent / "shared/data/mnist"))
    parser.add_argument("--n", type=int, default=2000, help="uploads to build (default 2000)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--errors", type=Path, help="save misclassified uploads here")
    args = parser.parse_args(argv)
    model_dir = args.model_dir or latest_model_dir(ROOT / "models")
    network, card = load_version(model_dir)
    images, labels = mnist_test_digits(args.data_dir)
    samples = upload_set(images, labels, args.n, np.random.default_rng(args.seed))
    print(f"model {model_dir} (test accuracy {card.get('metrics', {}).get('test_accuracy')}); "
          f"{len(samples)} uploads, seed {args.seed}")
    print("fonts:", ", ".join(Path(f).name for f in find_fonts()) or "none installed (kind 'font' skipped)")
    rows, inputs, predicted = run(samples, network)
    report(rows)
    accuracy, ms = plain_mnist(network, images, labels)
    print(f"all {len(labels)} MNIST test digits as 28x28 PNGs: {accuracy:.2%} "
          f"({ms:.3f} ms per image to decode and preprocess)")
    if args.errors:
        save_errors(args.errors, samples, inputs, predicted)


if __name__ == "__main__":
    main()
