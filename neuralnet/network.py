"""The network: a list of layers, a loss, and a training loop over mini-batches."""
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuralnet import losses, optim
from neuralnet.layers import Dense


class Network:
    """Layers applied in order; ``add`` them, pick a loss with ``use``, then ``fit``.

    >>> net = Network()
    >>> net.add(Dense(784, 100)); net.add(Activation("tanh"))
    """

    def __init__(self) -> None:
        self.layers: list[Any] = []
        self.loss: Any = None

    def add(self, layer: Any) -> "Network":
        self.layers.append(layer)
        return self

    def use(self, loss: Any) -> "Network":
        """Set the loss, by name (``"mse"``) or as an object from :mod:`neuralnet.losses`."""
        self.loss = losses.get(loss) if isinstance(loss, str) else loss
        return self

    # -- inference -------------------------------------------------------------
    def forward(self, x: NDArray, training: bool = False) -> NDArray:
        """Run ``x: (n, d_in)`` through every layer; returns the output ``(n, d_out)``."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def predict_proba(self, x: NDArray, batch_size: int = 500) -> NDArray:
        """Class scores for ``x: (n, 784)`` float32, in batches to bound memory: ``(n, 10)``.

        A convolution copies each pixel k*k times (im2col), so batches stay small.
        """
        return self._in_batches(x, batch_size, self.layers)

    def logits(self, x: NDArray, batch_size: int = 500) -> NDArray:
        """What :meth:`predict_proba` gives before a final softmax (its outputs if there is none):
        ``(n, 10)``, for calibrating and judging confidence."""
        last = self.layers[-1]
        return self._in_batches(x, batch_size, self.layers[:-1] if getattr(last, "name", None) == "softmax"
                                else self.layers)

    def _in_batches(self, x: NDArray, batch_size: int, layers: list[Any]) -> NDArray:
        x = np.asarray(x, dtype=self.dtype)
        parts = []
        for i in range(0, max(len(x), 1), batch_size):
            out = x[i:i + batch_size]
            for layer in layers:
                out = layer.forward(out, False)
            parts.append(out)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict(self, x: NDArray) -> NDArray[np.intp]:
        """Predicted class per row of ``x``: ``(n,)`` int."""
        return self.predict_proba(x).argmax(axis=1)

    @property
    def dtype(self) -> np.dtype:
        # the first layer with parameters decides; read on every prediction, so no list of them all
        for layer in self.layers:
            for param, _ in layer.parameters():
                return param.dtype
        return np.dtype(np.float32)

    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def parameters(self) -> list[tuple[NDArray, NDArray]]:
        return [pair for layer in self.layers for pair in layer.parameters()]

    # -- training --------------------------------------------------------------
    def backward(self, out: NDArray, y: NDArray) -> NDArray | None:
        """Backpropagate the loss gradient for one batch; fills every layer's grads."""
        layers = self.layers
        if self.loss.fuses and getattr(layers[-1], "name", None) == self.loss.fuses:
            layers = layers[:-1]  # the loss's delta is already dL/dz of the fused layer
        delta = self.loss.delta(out, y)
        for layer in reversed(layers):
            delta = layer.backward(delta)
            if delta is None:  # the first layer with parameters: nothing before it learns
                break
        return delta

    def train_step(self, x: NDArray, y: NDArray, optimizer: Any, lr: float) -> tuple[float, int]:
        """One mini-batch: forward, backward, update. Returns ``(loss, n_correct)``."""
        out = self.forward(x, training=True)
        self.backward(out, y)
        optimizer.step(lr)
        return self.loss.value(out, y), int((out.argmax(1) == y.argmax(1)).sum())

    def fit(self, x: NDArray, y: NDArray, epochs: int = 1, batch_size: int = 32, lr: float = 0.1,
            optimizer: Any = "sgd", schedule: str = "constant", weight_decay: float = 0.0, warmup: int = 0,
            rng: np.random.Generator | None = None, augment: Callable | None = None,
            validation: tuple[NDArray, NDArray] | None = None, callback: Callable | None = None,
            epoch_size: int | None = None) -> list[dict[str, Any]]:
        """Train with mini-batch gradient descent.

        x: (n, d) float inputs; y: (n, k) one-hot targets. Each epoch visits
        ``epoch_size`` samples (default all ``n``) in a fresh random order drawn
        from ``rng``. ``augment(xb, rng) -> xb`` transforms each batch;
        ``validation=(xv, yv)`` is scored after every epoch. ``callback(stats)``
        gets a dict per epoch and may return ``False`` to stop early.
        Returns the list of per-epoch stats dicts.
        """
        if self.loss is None:
            raise ValueError("call use(loss) before fit")
        rng = rng if rng is not None else np.random.default_rng()
        learning = [layer for layer in self.layers if layer.parameters()]
        if learning:
            learning[0].needs_input_grad = False  # nobody consumes dL/dx of the data
        opt = optimizer if not isinstance(optimizer, str) else optim.get(
            optimizer, self.parameters(), lr, weight_decay)
        lr_at = optim.SCHEDULES[schedule]
        n_per_epoch = epoch_size or len(x)
        steps_per_epoch = -(-n_per_epoch // batch_size)
        total, step, history, start = epochs * steps_per_epoch, 0, [], time.perf_counter()
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(x))[:n_per_epoch]
            loss_sum, correct = 0.0, 0
            for i in range(0, n_per_epoch, batch_size):
                idx = order[i:i + batch_size]
                xb = x[idx] if augment is None else augment(x[idx], rng)
                loss, ok = self.train_step(xb, y[idx], opt, lr_at(lr, step, total, warmup))
                loss_sum += loss * len(idx)
                correct += ok
                step += 1
            stats = {"epoch": epoch, "epochs": epochs, "loss": loss_sum / n_per_epoch,
                     "train_accuracy": correct / n_per_epoch,
                     "elapsed": time.perf_counter() - start, "samples": epoch * n_per_epoch}
            if validation is not None:
                stats["val_accuracy"] = self.accuracy(*validation)
            history.append(stats)
            if callback is not None and callback(stats) is False:
                break
        return history

    def accuracy(self, x: NDArray, y: NDArray) -> float:
        """Fraction of rows whose predicted class matches ``y`` (labels or one-hot)."""
        labels = y.argmax(1) if y.ndim == 2 else y
        return float((self.predict(x) == labels).mean())
