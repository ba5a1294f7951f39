"""to_batch's vectorised path for plain 28x28 digits must equal to_mnist image by image."""
import numpy as np
from PIL import Image

from service import preprocess


def test_batch_path_matches_the_per_image_path(mnist_test):
    images, _ = mnist_test
    rng = np.random.default_rng(0)
    arrays = [*images[:300],                                   # plain MNIST: the fast path
              *(255 - images[300:360]),                          # dark on light
              *(np.roll(a, 7, axis=1) for a in images[360:400]),  # off-centre: falls back
              np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8),
              *rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)]   # noise: falls back
    pictures = [Image.fromarray(a) for a in arrays] + [Image.fromarray(images[0]).convert("RGB"),
                                                       Image.fromarray(images[1]).resize((56, 56))]
    expected = np.stack([preprocess.to_mnist(p) for p in pictures])
    got = preprocess.to_batch(pictures)
    assert got.shape == (len(pictures), 784) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # the same pixels as arrays, as plain greyscale PNGs arrive from libspng
    np.testing.assert_array_equal(preprocess.to_batch(arrays), expected[:len(arrays)])


def test_empty_batch():
    assert preprocess.to_batch([]).shape == (0, 784)
