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

    Costs about three times :func:`shift`; worth it when training for uploads
    whose handwriting is more slanted than MNIST's.
    """
    n = len(x)
    theta = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    scale = rng.uniform(1 - max_scale, 1 + max_scale, n)
    t = rng.uniform(-max_shift, max_shift, (2, n))
    # inverse map: output pixel -> source coordinate, about the image centre
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    g = np.arange(SIDE, dtype=np.float32) - (SIDE - 1) / 2
    gy, gx = g[None, :, None], g[None, None, :]
    sy = cos[:, None, None] * (gy - t[0, :, None, None]) - sin[:, None, None] * (gx - t[1, :, None, None])
    sx = sin[:, None, None] * (gy - t[0, :, None, None]) + cos[:, None, None] * (gx - t[1, :, None, None])
    return _bilinear(x.reshape(n, SIDE, SIDE), sy + (SIDE - 1) / 2, sx + (SIDE - 1) / 2)


def _bilinear(img, sy, sx):
    """Sample ``img: (n, 28, 28)`` at float coords ``(n, 28, 28)``; zero outside."""
    n = len(img)
    padded = np.zeros((n, SIDE + 2, SIDE + 2), dtype=img.dtype)
    padded[:, 1:-1, 1:-1] = img
    sy = np.clip(sy + 1, 0, SIDE)  # +1 for the padding; clipping lands on the zero border
    sx = np.clip(sx + 1, 0, SIDE)
    y0, x0 = np.floor(sy).astype(np.intp), np.floor(sx).astype(np.intp)
    wy, wx = (sy - y0).astype(img.dtype), (sx - x0).astype(img.dtype)
    flat = padded.reshape(n, -1)
    base = np.arange(n)[:, None, None] * flat.shape[1] + y0 * (SIDE + 2) + x0
    f = flat.ravel()
    top = f[base] * (1 - wx) + f[base + 1] * wx
    bottom = f[base + SIDE + 2] * (1 - wx) + f[base + SIDE + 3] * wx
    return (top * (1 - wy) + bottom * wy).reshape(n, SIDE * SIDE)


AUGMENTERS = {"none": None, "shift": shift, "affine": affine}
