"""Confidence that means what it says: temperature scaling and its measure.

A network trained with cross-entropy tends to be over-confident: of the
answers it gives with probability 0.99, fewer than 99% are right. Temperature
scaling (Guo et al., 2017) divides the logits ``z`` by one number ``T`` fitted
on held-out data, which leaves every argmax as it was and only sharpens
(``T < 1``) or softens (``T > 1``) the probabilities. The expected calibration
error (ECE) measures the gap: bin predictions by confidence, and average
``|accuracy - confidence|`` over the bins, weighted by their share.
"""
import numpy as np
from numpy.typing import NDArray

from neuralnet import activations

ECE_BINS = 15
T_RANGE = (0.05, 20.0)


def softmax(z: NDArray[np.floating], temperature: float = 1.0) -> NDArray[np.floating]:
    """Row-wise softmax of ``z / temperature``: ``(n, k)`` -> ``(n, k)`` rows summing to 1."""
    return activations.softmax(z / np.asarray(temperature, dtype=z.dtype))


def top2(p: NDArray[np.floating]) -> NDArray[np.floating]:
    """The digit score: the two largest probabilities of each row of ``p: (n, k)``, summed. High for
    a digit, even one the network hesitates over between two classes; low where it spreads its
    belief over all of them."""
    return np.sort(p, axis=1)[:, -2:].sum(axis=1)


def nll(z: NDArray[np.floating], labels: NDArray[np.integer], temperature: float) -> float:
    """Mean negative log-likelihood of ``labels: (n,)`` under ``softmax(z / temperature)``."""
    s = z.astype(np.float64) / temperature
    m = s.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - s[np.arange(len(s)), labels]))


def fit_temperature(z: NDArray[np.floating], labels: NDArray[np.integer]) -> float:
    """The ``T`` minimising :func:`nll` on held-out logits ``z: (n, k)``.

    The NLL is convex in ``1/T``, so a golden-section search over ``log T``
    finds its minimum; 60 steps narrow ``T_RANGE`` far below any rounding.
    """
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(z, labels, np.exp(a)), nll(z, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(z, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(z, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def ece(p: NDArray[np.floating], labels: NDArray[np.integer], bins: int = ECE_BINS) -> float:
    """Expected calibration error of probabilities ``p: (n, k)`` against ``labels: (n,)``,
    with ``bins`` equal-width confidence bins over (0, 1]."""
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)
