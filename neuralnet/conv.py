"""Convolution and pooling over images stored channels-last.

Image batches are ``(n, height, width, channels)`` (NHWC): the 784 pixels of a
digit become ``(n, 28, 28, 1)`` through :class:`~neuralnet.layers.Reshape`.
Channels-last lets a convolution be one matrix product whose result is
already in that layout: each output pixel's ``k x k x c_in`` window is copied
into a row (im2col), and the rows times the kernel ``(k*k*c_in, c_out)`` give
``(n*h_out*w_out, c_out)``, which *is* ``(n, h_out, w_out, c_out)`` in memory.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neuralnet.init import INITIALISERS
from neuralnet.layers import Layer, column_sums


def output_size(size, kernel, stride, padding):
    """Output height (or width) of a window sliding over ``size`` pixels."""
    return (size + 2 * padding - kernel) // stride + 1


def pad(x, padding):
    """``x: (n, h, w, c)`` with ``padding`` rows and columns of zeros around each image."""
    if not padding:
        return x
    n, h, w, c = x.shape
    out = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    out[:, padding:padding + h, padding:padding + w] = x
    return out


def im2col(x, k, stride, padding):
    """Every ``k x k`` window of ``x: (n, h, w, c)`` as a row: ``(n*h_out*w_out, k*k*c)``.

    A row holds its window's pixels in ``(k, k, c)`` order, the order of the
    kernel's rows. ``sliding_window_view`` makes the windows without copying,
    as ``(n, h_out, w_out, c, k, k)``, and one copy reorders them. For one
    channel, that copy would move runs of only ``k`` pixels; instead each of
    the ``k*k`` offsets copies whole shifted images into a row of the
    transpose, and the result is that transpose's (Fortran-ordered) view,
    which matrix products take as they are.
    """
    xp = pad(x, padding)
    n, _, _, c = x.shape
    h_out, w_out = (output_size(size, k, stride, padding) for size in x.shape[1:3])
    if c == 1:
        cols = np.empty((k, k, n, h_out, w_out), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                cols[i, j] = xp[:, i:i + stride * h_out:stride, j:j + stride * w_out:stride, 0]
        return cols.reshape(k * k, -1).T
    windows = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(-1, k * k * c)


def input_grad(delta, W, shape, stride, padding):
    """dL/dx, ``(n, h, w, c_in)``, of a convolution by ``W``, given ``delta: (n, h_out, w_out, c_out)``.

    The adjoint of im2col times ``W: (k, k, c_in, c_out)``, one kernel
    offset at a time: offset (i, j) of every window read the padded pixels
    ``[i::stride, j::stride]`` and met ``W[i, j]``, so they get
    ``delta @ W[i, j].T`` back. Overlapping windows sum, as the chain rule
    says. Each product is a contiguous ``(n, h_out, w_out, c_in)``; one
    product for all offsets would leave each offset's gradient in runs of
    ``c_in`` values to gather.
    """
    n, h, w, c_in = shape
    _, h_out, w_out, c_out = delta.shape
    k = W.shape[0]
    d2 = delta.reshape(-1, c_out)
    dx = np.zeros((n, h + 2 * padding, w + 2 * padding, c_in), dtype=delta.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + stride * h_out:stride, j:j + stride * w_out:stride] += (d2 @ W[i, j].T).reshape(
                n, h_out, w_out, c_in)
    return dx[:, padding:padding + h, padding:padding + w, :] if padding else dx


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as every framework computes it).

    ``W: (k, k, c_in, c_out)`` (height, width, in, out, as in TensorFlow),
    ``b: (c_out,)``; ``x: (n, h, w, c_in)`` -> ``(n, h_out, w_out, c_out)``
    with ``h_out = (h + 2 padding - k) // stride + 1``. Zero padding.
    """

    def __init__(self, c_in, c_out, kernel=3, stride=1, padding=0, init="he", rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng()
        fan_in = kernel * kernel * c_in  # what a unit sums over, as d_in is for a dense layer
        W = INITIALISERS[init](rng, fan_in, c_out).reshape(kernel, kernel, c_in, c_out)
        self._setup(W.astype(dtype), np.zeros(c_out, dtype=dtype), stride, padding)

    @classmethod
    def from_arrays(cls, W, b, stride=1, padding=0):
        layer = cls.__new__(cls)
        layer._setup(np.ascontiguousarray(W), np.ascontiguousarray(b), stride, padding)
        return layer

    def _setup(self, W, b, stride, padding):
        if stride < 1 or padding < 0 or padding >= W.shape[0]:
            raise ValueError(f"need stride >= 1 and 0 <= padding < kernel, got {stride} and {padding}")
        self.W, self.b, self.stride, self.padding = W, b, stride, padding
        self.dW, self.db = np.zeros_like(W), np.zeros_like(b)
        self.needs_input_grad = True

    def forward(self, x, training=False):
        k, _, _, c_out = self.W.shape
        cols = im2col(x, k, self.stride, self.padding)  # (n*h_out*w_out, k*k*c_in)
        z = cols @ self.W.reshape(-1, c_out)
        z += self.b
        if training:
            self.x_shape, self.cols = x.shape, cols
        return z.reshape(len(x), *self.output_shape(x.shape[1:]))

    def backward(self, delta):
        c_out = self.W.shape[3]
        d2 = delta.reshape(-1, c_out)
        np.matmul(self.cols.T, d2, out=self.dW.reshape(-1, c_out))
        self.db[:] = column_sums(d2)
        if not self.needs_input_grad:
            return None
        return input_grad(delta, self.W, self.x_shape, self.stride, self.padding)

    def parameters(self):
        return [(self.W, self.dW), (self.b, self.db)]

    def state(self):
        return {"weights": self.W, "bias": self.b}

    def output_shape(self, shape):
        h, w, _ = shape
        k, _, _, c_out = self.W.shape
        return (output_size(h, k, self.stride, self.padding), output_size(w, k, self.stride, self.padding), c_out)

    def describe(self):
        k, _, c_in, c_out = self.W.shape
        return {"type": "conv2d", "filters": c_out, "kernel": k, "stride": self.stride, "padding": self.padding}


def first_true(hit):
    """``hit: (m, ...)`` bool, keeping only the first True along axis 0 (in place); returns ``hit``."""
    taken = hit[0].copy()
    for k in range(1, len(hit)):
        np.greater(hit[k], taken, out=hit[k])  # for booleans, a > b is "a and not b"
        taken |= hit[k]
    return hit


class MaxPool2D(Layer):
    """Non-overlapping ``size x size`` max pooling: ``(n, h, w, c) -> (n, h // size, w // size, c)``.

    Rows and columns that do not fill a window are dropped, as in the usual
    "valid" pooling. The gradient goes to the first maximum of each window,
    in row-major order (ReLU outputs and blank pixels tie all the time; each
    window passes on one gradient).
    """

    def __init__(self, size=2):
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.size = size

    def _windows(self, a, h2, w2):
        """``a: (n, h, w, c)`` viewed as ``(size, size, n, h2, w2, c)``: pixel (i, j) of every window."""
        n, c, s = a.shape[0], a.shape[-1], self.size
        return a[:, :h2 * s, :w2 * s].reshape(n, h2, s, w2, s, c).transpose(2, 4, 0, 1, 3, 5)

    def forward(self, x, training=False):
        n, h, w, c = x.shape
        s, h2, w2 = self.size, h // self.size, w // self.size
        # One strided copy puts the window offsets first, (s*s, n, h2, w2, c): every step after it
        # runs over contiguous memory, not over the runs of c values that NHWC windows are made of.
        v = np.ascontiguousarray(self._windows(x, h2, w2)).reshape(s * s, n, h2, w2, c)
        out = v.max(axis=0)
        if training:
            self.x_shape, self.mask = x.shape, first_true(v == out)
        return out

    def backward(self, delta):
        _, h2, w2, _ = delta.shape
        s = self.size
        exact = self.x_shape[1:3] == (h2 * s, w2 * s)
        dx = np.empty(self.x_shape, delta.dtype) if exact else np.zeros(self.x_shape, delta.dtype)
        # each window's gradient to its first maximum, 0 to the rest, written in place through the view
        np.multiply(self.mask.reshape(s, s, *delta.shape), delta, out=self._windows(dx, h2, w2))
        return dx

    def output_shape(self, shape):
        h, w, c = shape
        return (h // self.size, w // self.size, c)

    def describe(self):
        return {"type": "maxpool2d", "size": self.size}
