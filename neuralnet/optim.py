"""Optimisers and learning-rate schedules, looked up by name.

An optimiser updates ``(param, grad)`` pairs in place, once per backward pass:
``step`` may use the gradient buffers as scratch space. Updates reuse scratch
buffers and in-place ufuncs: at 1.3M parameters an update that allocates costs
as much as a layer's matrix product. Weight decay is L2 for SGD and momentum
(added to the gradient) and decoupled for Adam (AdamW, Loshchilov & Hutter).
"""
import math

import numpy as np


class SGD:
    def __init__(self, params, lr=0.1, weight_decay=0.0):
        self.params = list(params)
        self.lr = lr
        self.weight_decay = weight_decay

    def _decayed(self, p, g):
        # decay weights (matrices), not biases: shrinking biases only hurts the fit
        if self.weight_decay and p.ndim > 1:
            g += self.weight_decay * p
        return g

    def step(self, lr):
        for p, g in self.params:
            g = self._decayed(p, g)
            g *= lr  # g is the layer's gradient buffer, rewritten by the next backward
            p -= g


class Momentum(SGD):
    """Heavy-ball momentum: ``v = mu v + g``, ``p -= lr v``."""

    def __init__(self, params, lr=0.1, weight_decay=0.0, mu=0.9):
        super().__init__(params, lr, weight_decay)
        self.mu = mu
        self.v = [np.zeros_like(p) for p, _ in self.params]

    def step(self, lr):
        for (p, g), v in zip(self.params, self.v):
            v *= self.mu
            v += self._decayed(p, g)
            np.multiply(v, lr, out=g)  # g is free again: the next backward rewrites it
            p -= g


class Adam(SGD):
    """Kingma & Ba (2015), with every constant folded into the step size.

    The moments are kept without their (1 - beta) factors, ``m = b1 m + g`` and
    ``v = b2 v + g^2``; bias correction and those factors become one scalar
    step and one scalar eps per update. That is ten passes over the arrays
    instead of fourteen.
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m = [np.zeros_like(p) for p, _ in self.params]
        self.v = [np.zeros_like(p) for p, _ in self.params]
        self.scratch = [np.empty_like(p) for p, _ in self.params]

    def step(self, lr):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # m_hat = (1-b1) m / (1-b1^t), v_hat = (1-b2) v / (1-b2^t); with c = sqrt((1-b2)/(1-b2^t)),
        # lr m_hat / (sqrt(v_hat) + eps) = [lr (1-b1) / ((1-b1^t) c)] m / (sqrt(v) + eps / c)
        c = math.sqrt((1 - b2) / (1 - b2**self.t))
        step = lr * (1 - b1) / ((1 - b1**self.t) * c)
        eps = self.eps / c
        decay = 1 - lr * self.weight_decay
        for (p, g), m, v, tmp in zip(self.params, self.m, self.v, self.scratch):
            if p.ndim > 1 and decay != 1:  # decoupled decay of weights, not biases
                p *= decay
            m *= b1
            m += g                        # m = b1 m + g
            np.multiply(g, g, out=g)      # the gradient buffer is scratch once m has it
            v *= b2
            v += g                        # v = b2 v + g^2
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp
        if self.t % _FLUSH_EVERY == 0:
            _flush_tiny(self.m + self.v)


# Moments of weights whose gradient is zero for long stretches (MNIST's blank
# border pixels) decay geometrically into subnormal floats, which are slow on
# many CPUs. Values under 1e-30 cannot move a weight, so they are zeroed every
# 50 steps, before m (decaying by 0.9 a step) can get from 1e-30 to 1e-38.
_FLUSH_EVERY, _TINY = 50, np.float32(1e-30)


def _flush_tiny(arrays):
    for a in arrays:
        a[np.abs(a) < _TINY] = 0


OPTIMISERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def get(name, params, lr, weight_decay=0.0):
    try:
        cls = OPTIMISERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMISERS)}") from None
    return cls(params, lr=lr, weight_decay=weight_decay)


def constant(lr, step, total, warmup=0):
    return lr * min(1.0, (step + 1) / warmup) if warmup else lr


def cosine(lr, step, total, warmup=0):
    """Linear warm-up, then half a cosine from ``lr`` down to 0 at ``total`` steps."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, progress)))


def step_decay(lr, step, total, warmup=0):
    """Divide by 10 at 50% and again at 75% of training."""
    return constant(lr, step, total, warmup) * (0.1 ** ((step >= total // 2) + (step >= 3 * total // 4)))


SCHEDULES = {"constant": constant, "cosine": cosine, "step": step_decay}
