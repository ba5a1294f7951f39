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
    sy, sx = _affine_coords(len(x), rng, max_degrees, max_scale, max_shift, max_shear=0.0)
    return _bilinear(x.reshape(len(x), SIDE, SIDE), sy, sx)


def handwriting(x, rng, max_degrees=12.0, max_scale=0.15, max_shift=2.0, max_shear=0.3, elastic=1.5,
                thickness=0.5):
    """Everything that makes one writer's digit differ from another's, per image:
    rotation, scale, shift and shear (a slant of up to ``max_shear``), an
    elastic warp of up to about ``elastic`` pixels (Simard et al., 2003), and
    thinner or bolder strokes. One bilinear resampling does the geometry.
    """
    n = len(x)
    sy, sx = _affine_coords(n, rng, max_degrees, max_scale, max_shift, max_shear)
    dy, dx = _smooth_field(n, rng, elastic)
    out = _bilinear(x.reshape(n, SIDE, SIDE), sy + dy, sx + dx)
    return stroke_width(out, rng.uniform(-thickness, thickness, n).astype(np.float32))


def _affine_coords(n, rng, max_degrees, max_scale, max_shift, max_shear):
    """Source coordinates ``(sy, sx)``, each ``(n, 28, 28)``, of a random inverse affine map
    about the image centre: output pixel -> where to read it from."""
    theta = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)).astype(np.float32)
    scale = rng.uniform(1 - max_scale, 1 + max_scale, n).astype(np.float32)
    shear = rng.uniform(-max_shear, max_shear, n).astype(np.float32)[:, None, None]
    ty, tx = rng.uniform(-max_shift, max_shift, (2, n, 1, 1)).astype(np.float32)
    cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
    c = (SIDE - 1) / 2
    g = np.arange(SIDE, dtype=np.float32) - c
    gy, gx = g[None, :, None] - ty, g[None, None, :] - tx
    gx = gx + shear * gy  # a slant: rows further down move sideways
    return cos * gy - sin * gx + c, sin * gy + cos * gx + c


def _smooth_field(n, rng, amplitude, grid=4):
    """A random smooth displacement ``(dy, dx)``, each ``(n, 28, 28)``: uniform noise on a
    ``grid x grid`` lattice, bilinearly interpolated up to the image (cheaper than
    blurring per-pixel noise, and as smooth at this size)."""
    coarse = rng.uniform(-amplitude, amplitude, (2 * n, grid, grid)).astype(np.float32)
    t = np.linspace(0, grid - 1, SIDE, dtype=np.float32)
    i = np.minimum(t.astype(np.int32), grid - 2)
    w = t - i.astype(np.float32)  # float32 minus int32 would be float64, and so would the network's input
    rows = coarse[:, i, :] * (1 - w)[None, :, None] + coarse[:, i + 1, :] * w[None, :, None]
    field = rows[:, :, i] * (1 - w) + rows[:, :, i + 1] * w
    return field[:n], field[n:]


def stroke_width(x, amount):
    """Bolder strokes where ``amount > 0``, thinner where ``< 0`` (per image, in [-1, 1]):
    a blend towards the 3x3-cross dilation or erosion of ``x: (n, 784)``."""
    n = len(x)
    img = x.reshape(n, SIDE, SIDE)
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    shifted = [padded[:, 1 + dy:SIDE + 1 + dy, 1 + dx:SIDE + 1 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    grown, shrunk = img.copy(), img.copy()
    for s in shifted:
        np.maximum(grown, s, out=grown)
        np.minimum(shrunk, s, out=shrunk)
    a = amount[:, None, None]
    target = np.where(a > 0, grown, shrunk)
    return (img + np.abs(a) * (target - img)).reshape(n, SIDE * SIDE)


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


AUGMENTERS = {"none": None, "shift": shift, "affine": affine, "handwriting": handwriting}
