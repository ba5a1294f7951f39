"""Batch normalisation (Ioffe & Szegedy, 2015), for dense and convolutional layers.

Each feature (the last axis: a dense unit, or an image channel) is
standardised over every other axis of the batch, then scaled and shifted by
learned ``gamma`` and ``beta``. Training uses the batch's own mean and
variance and keeps running averages of them; inference uses the running
averages, so a prediction does not depend on what else is in the batch.
"""
import numpy as np

from neuralnet.layers import Layer, column_sums


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
        x2 = x.reshape(-1, x.shape[-1])  # (m, c): one row per sample (or per pixel of an image)
        m = len(x2)
        mean = column_sums(x2) / m
        xc = x2 - mean
        sq = np.square(xc)
        var = column_sums(sq) / m
        keep = self.momentum
        self.running_mean *= keep
        self.running_mean += (1 - keep) * mean
        self.running_var *= keep
        self.running_var += (1 - keep) * m / max(1, m - 1) * var  # the unbiased estimate, for inference
        self.inv_std = 1 / np.sqrt(var + self.eps)
        # xhat and y take over xc's and sq's memory: no pass over the data allocates twice
        self.xhat = np.multiply(xc, self.inv_std, out=xc)
        y = np.multiply(self.xhat, self.gamma, out=sq)
        y += self.beta
        return y.reshape(x.shape)

    def backward(self, delta):
        d2 = delta.reshape(-1, delta.shape[-1])  # (m, c), as in forward
        m = len(d2)
        tmp = d2 * self.xhat
        self.dgamma[:] = column_sums(tmp)
        self.dbeta[:] = column_sums(d2)
        if not self.needs_input_grad:
            return None
        # dL/dx = gamma / sigma * (delta - mean(delta) - xhat * mean(delta * xhat)), with the
        # per-feature factors multiplied out first so each term is one pass, written over delta
        # (each backward hands on a fresh array, which the receiving layer may overwrite)
        scale = self.gamma * self.inv_std
        np.multiply(self.xhat, scale * (self.dgamma / m), out=tmp)
        dx = np.multiply(d2, scale, out=d2)
        dx -= tmp
        dx -= scale * (self.dbeta / m)
        return dx.reshape(delta.shape)

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
