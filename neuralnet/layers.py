"""Layers: the one small interface every part of the network shares.

A layer maps a batch forward, maps the loss gradient backward, and exposes its
parameters with their gradients. Arrays are batches with samples first:
``x: (n, d_in)`` for dense layers, ``(n, h, w, c)`` for images (see
:mod:`neuralnet.conv`).
"""
import math

import numpy as np

from neuralnet import activations
from neuralnet.init import INITIALISERS


def column_sums(a):
    """``a: (m, d)`` summed over its rows, ``(d,)``.

    As a matrix-vector product (a row of ones times ``a``), which BLAS runs on
    every core; NumPy's ``sum(axis=0)`` runs on one.
    """
    return np.ones(len(a), dtype=a.dtype) @ a


class Layer:
    """Base class. ``forward(x, training=True)`` keeps what ``backward`` needs for
    that batch; with ``training=False`` it stores nothing, so one network can
    serve concurrent inference threads."""

    needs_input_grad = True  # the network turns this off for the first layer with parameters

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, delta):
        """Take dL/d(output) of shape (n, d_out); return dL/d(input) (n, d_in)."""
        raise NotImplementedError

    def parameters(self):
        """Return ``[(param, grad), ...]``; grads are filled in by ``backward``."""
        return []

    def state(self):
        """The arrays a saved model needs, by role (``{"weights": W, ...}``); {} if none."""
        return {}

    def output_shape(self, shape):
        """The shape of one sample's output, given one sample's input shape (no batch axis)."""
        return shape

    def describe(self):
        """A JSON-able description for the model card."""
        raise NotImplementedError


class Dense(Layer):
    """Fully connected layer: ``z = x @ W + b`` with ``W: (d_in, d_out)``, ``b: (d_out,)``."""

    def __init__(self, d_in, d_out, init="he", rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng()
        self.W = INITIALISERS[init](rng, d_in, d_out).astype(dtype)
        self.b = np.zeros(d_out, dtype=dtype)
        if init == "uniform":  # the notebook drew biases from the same range
            self.b = INITIALISERS[init](rng, 1, d_out)[0].astype(dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    @classmethod
    def from_arrays(cls, W, b):
        """A layer holding the given (already validated) weights, e.g. read from disk."""
        layer = cls.__new__(cls)
        layer.W, layer.b = np.ascontiguousarray(W), np.ascontiguousarray(b)
        layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
        return layer

    def forward(self, x, training=False):
        if training:
            self.x = x
        z = x @ self.W
        z += self.b
        return z

    def backward(self, delta):
        np.matmul(self.x.T, delta, out=self.dW)
        self.db[:] = column_sums(delta)
        return delta @ self.W.T if self.needs_input_grad else None

    def parameters(self):
        return [(self.W, self.dW), (self.b, self.db)]

    def state(self):
        return {"weights": self.W, "bias": self.b}

    def output_shape(self, shape):
        if shape != (self.W.shape[0],):
            raise ValueError(f"a dense layer of {self.W.shape[0]} inputs cannot take samples of shape {shape}")
        return (self.W.shape[1],)

    def describe(self):
        return {"type": "dense", "in": self.W.shape[0], "out": self.W.shape[1]}


class Activation(Layer):
    """Applies an activation from :mod:`neuralnet.activations` element-wise."""

    def __init__(self, name):
        self.name = name
        self.f, self.df = activations.get(name)

    def forward(self, x, training=False):
        a = self.f(x)
        if training:
            self.a = a
        return a

    def backward(self, delta):
        # delta is a fresh array made for this layer alone, so scale it in place
        return np.multiply(delta, self.df(self.a), out=delta)

    def describe(self):
        return {"type": "activation", "name": self.name}


class Dropout(Layer):
    """Inverted dropout: zero a fraction ``rate`` of units while training, scale the rest.

    At inference it is the identity, so a saved model needs no rescaling.
    """

    def __init__(self, rate, rng=None):
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask = None

    def forward(self, x, training=False):
        if not training:
            return x
        if self.rate == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self.mask = keep.astype(x.dtype) / (1 - self.rate)
        return x * self.mask

    def backward(self, delta):
        return delta if self.mask is None else delta * self.mask

    def describe(self):
        return {"type": "dropout", "rate": self.rate}


class Reshape(Layer):
    """Give each sample a new shape, e.g. 784 pixels -> ``(28, 28, 1)`` for convolutions."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x, training=False):
        if training:
            self.x_shape = x.shape
        return x.reshape(len(x), *self.shape)

    def backward(self, delta):
        return delta.reshape(self.x_shape)

    def output_shape(self, shape):
        if math.prod(shape) != math.prod(self.shape):  # Python ints: NumPy's int64 product can wrap
            raise ValueError(f"cannot reshape samples of shape {shape} to {self.shape}")
        return self.shape

    def describe(self):
        return {"type": "reshape", "shape": list(self.shape)}


class Flatten(Reshape):
    """``(n, h, w, c) -> (n, h*w*c)``: from feature maps to a dense layer's input."""

    def __init__(self):
        super().__init__((-1,))

    def output_shape(self, shape):
        return (math.prod(shape),)

    def describe(self):
        return {"type": "flatten"}
