"""Data augmentation on batches of flattened 28x28 images, looked up by name.

Each augmenter is ``f(x, rng) -> x'`` with ``x: (n, 784)`` float in [0, 1].
Uploads reach the model after the service's MNIST-style normalisation, so what
is left to learn is small misplacements, slants and stroke-size changes.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SIDE = 28


def shift(x, rng, max_shift=2):
    """Translate each image by an independent integer offset in [-max_shift, max_shift]."""
    n, k = len(x), 2 * max_shift + 1
    padded = np.zeros((n, SIDE + 2 * max_shift, SIDE + 2 * max_shift), dtype=x.dtype)
    padded[:, max_shift:-max_shift, max_shift:-max_shift] = x.reshape(n, SIDE, SIDE)
    windows = sliding_window_view(padded, (SIDE, SIDE), axis=(1, 2))  # (n, k, k, 28, 28), a view
    dy, dx = rng.integers(0, k, size=(2, n))
    return windows[np.arange(n), dy, dx].reshape(n, SIDE * SIDE)


def affine(x, rng, max_degrees=12.0, max_scale=0.12, max_shift=2.0):
    """Random rotation, scale and sub-pixel shift per image, bilinear resampling.

    Costs a few times :func:`shift`; worth it when training for uploads whose
    handwriting is more slanted than MNIST's.
    """
    n = len(x)
    theta = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)).astype(np.float32)
    scale = rng.uniform(1 - max_scale, 1 + max_scale, n).astype(np.float32)
    ty, tx = rng.uniform(-max_shift, max_shift, (2, n, 1, 1)).astype(np.float32)
    cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
    # inverse map: output pixel -> source coordinate, rotating about the image centre
    c = (SIDE - 1) / 2
    g = np.arange(SIDE, dtype=np.float32) - c
    gy, gx = g[None, :, None] - ty, g[None, None, :] - tx
    return _bilinear(x.reshape(n, SIDE, SIDE), cos * gy - sin * gx + c, sin * gy + cos * gx + c)


def _bilinear(img, sy, sx):
    """Sample ``img: (n, 28, 28)`` at float coords ``(n, 28, 28)``; zero outside."""
    n, side = len(img), SIDE + 3  # one zero row/column before the image, two after
    padded = np.zeros((n, side, side), dtype=img.dtype)
    padded[:, 1:SIDE + 1, 1:SIDE + 1] = img
    # shift by the padding; anything outside the image lands on the zero border
    sy = np.clip(sy + 1, 0, SIDE + 1, out=sy)
    sx = np.clip(sx + 1, 0, SIDE + 1, out=sx)
    fy, fx = np.floor(sy), np.floor(sx)
    wy, wx = sy - fy, sx - fx
    y0, x0 = fy.astype(np.int32), fx.astype(np.int32)
    index = np.arange(n, dtype=np.int32)[:, None, None] * (side * side) + y0 * side + x0
    f = padded.ravel()
    top = f[index] + wx * (f[index + 1] - f[index])
    bottom = f[index + side] + wx * (f[index + side + 1] - f[index + side])
    return (top + wy * (bottom - top)).reshape(n, SIDE * SIDE)


AUGMENTERS = {"none": None, "shift": shift, "affine": affine}
