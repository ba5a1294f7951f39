"""Losses, looked up by name.

``value(a, y)`` is the mean loss over the batch and ``delta(a, y)`` its gradient.
``a: (n, k)`` is the network's output, ``y: (n, k)`` one-hot targets.

Softmax cross-entropy is fused with the softmax layer before it: its ``delta``
is dL/dz with respect to the softmax *input*, ``(a - y) / n``, which is both
cheaper and more stable than chaining the softmax Jacobian. ``fuses`` names the
output activation a loss takes over that way.
"""
import numpy as np

_EPS = 1e-7  # clip probabilities so log never sees 0


class MeanSquaredError:
    """The notebook's loss: mean of squared errors over every output unit."""

    name = "mse"
    fuses = None

    def value(self, a, y):
        return float(np.mean((a - y) ** 2))

    def delta(self, a, y):
        return 2.0 * (a - y) / a.size


class SoftmaxCrossEntropy:
    """Negative log-likelihood of the true class under a softmax output."""

    name = "softmax_cross_entropy"
    fuses = "softmax"

    def value(self, a, y):
        p = np.clip(a, _EPS, 1.0)
        return float(-np.sum(y * np.log(p)) / a.shape[0])

    def delta(self, a, y):
        return (a - y) / a.shape[0]


LOSSES = {
    "mse": MeanSquaredError,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
}


def get(name):
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}") from None
