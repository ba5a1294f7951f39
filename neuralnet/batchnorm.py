"""Batch normalisation (Ioffe & Szegedy, 2015), for dense and convolutional layers.

Each feature (the last axis: a dense unit, or an image channel) is
standardised over every other axis of the batch, then scaled and shifted by
learned ``gamma`` and ``beta``. Training uses the batch's own mean and
variance and keeps running averages of them; inference uses the running
averages, so a prediction does not depend on what else is in the batch.
"""
import numpy as np

from neuralnet.layers import Layer


class BatchNorm(Layer):
    """``y = gamma (x - mean) / sqrt(var + eps) + beta`` per feature of ``x: (..., c)``.

    ``momentum`` is the weight the running averages keep at each step.
    """

    def __init__(self, features, momentum=0.9, eps=1e-5, dtype=np.float32):
        self._setup(np.ones(features, dtype), np.zeros(features, dtype),
                    np.zeros(features, dtype), np.ones(features, dtype), momentum, eps)

    @classmethod
    def from_arrays(cls, gamma, beta, mean, var, eps=1e-5):
        layer = cls.__new__(cls)
        layer._setup(*(np.ascontiguousarray(a) for a in (gamma, beta, mean, var)), 0.9, eps)
        return layer

    def _setup(self, gamma, beta, mean, var, momentum, eps):
        self.gamma, self.beta, self.running_mean, self.running_var = gamma, beta, mean, var
        self.dgamma, self.dbeta = np.zeros_like(gamma), np.zeros_like(beta)
        self.momentum, self.eps = momentum, eps

    def forward(self, x, training=False):
        if not training:
            # fold the running statistics into one scale and shift
            scale = self.gamma / np.sqrt(self.running_var + self.eps)
            return x * scale + (self.beta - self.running_mean * scale)
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        count, keep = x.size // x.shape[-1], self.momentum
        self.running_mean *= keep
        self.running_mean += (1 - keep) * mean
        self.running_var *= keep
        self.running_var += (1 - keep) * count / max(1, count - 1) * var  # the unbiased estimate, for inference
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.xhat = (x - mean) * self.inv_std
        return self.xhat * self.gamma + self.beta

    def backward(self, delta):
        axes = tuple(range(delta.ndim - 1))
        m = delta.size // delta.shape[-1]  # samples per feature
        np.sum(delta * self.xhat, axis=axes, out=self.dgamma)
        np.sum(delta, axis=axes, out=self.dbeta)
        if not self.needs_input_grad:
            return None
        # dL/dx = gamma / sigma * (delta - mean(delta) - xhat * mean(delta * xhat))
        return (self.gamma * self.inv_std) * (delta - self.dbeta / m - self.xhat * (self.dgamma / m))

    def parameters(self):
        return [(self.gamma, self.dgamma), (self.beta, self.dbeta)]

    def state(self):
        return {"gamma": self.gamma, "beta": self.beta, "mean": self.running_mean, "var": self.running_var}

    def output_shape(self, shape):
        if shape[-1] != len(self.gamma):
            raise ValueError(f"batch norm over {len(self.gamma)} features cannot take samples of shape {shape}")
        return shape

    def describe(self):
        return {"type": "batchnorm", "features": len(self.gamma), "eps": self.eps}
