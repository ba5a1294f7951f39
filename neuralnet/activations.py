"""Element-wise activations, looked up by name.

Each entry pairs ``f(z)`` with the derivative written in terms of the output
``a = f(z)``, which is all a layer needs to keep for its backward pass.
Functions never modify their argument.
"""
import numpy as np


def _sigmoid(z):
    # Split by sign so exp never overflows: 1/(1+e^-z) for z>=0, e^z/(1+e^z) otherwise.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def softmax(z):
    """Row-wise softmax of ``z: (n, k)``; max-subtracted so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _softmax_grad(a):
    raise TypeError("softmax has no element-wise derivative; pair it with softmax_cross_entropy")


ACTIVATIONS = {
    # name: (f(z), f'(z) expressed through a = f(z))
    "relu": (lambda z: np.maximum(z, 0), lambda a: a > 0),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "sigmoid": (_sigmoid, lambda a: a * (1 - a)),
    "identity": (lambda z: z, lambda a: np.ones_like(a)),
    "softmax": (softmax, _softmax_grad),
}


def get(name):
    """Return ``(f, df)`` for an activation name, with a helpful error for typos."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None
