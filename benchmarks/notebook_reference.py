"""The original notebook's network, rebuilt for comparison: one sample at a time.

Same structure as the notebook: layers with ``forward_propagation`` and
``backward_propagation`` that update their own weights as the error flows
back, a list of layers looped over for every single sample. Used only by
``train_bench.py`` to time the vectorised library against it.
"""
import numpy as np


class FCLayer:
    def __init__(self, n_in, n_out, rng):
        self.weights = rng.random((n_in, n_out)) - 0.5
        self.bias = rng.random((1, n_out)) - 0.5

    def forward_propagation(self, x):
        self.input = x
        return x @ self.weights + self.bias

    def backward_propagation(self, output_error, learning_rate):
        input_error = output_error @ self.weights.T
        self.weights -= learning_rate * (self.input.T @ output_error)
        self.bias -= learning_rate * output_error
        return input_error


class TanhLayer:
    def forward_propagation(self, x):
        self.input = x
        return np.tanh(x)

    def backward_propagation(self, output_error, learning_rate):
        return (1 - np.tanh(self.input) ** 2) * output_error


def mse_prime(y_true, y_pred):
    return 2 * (y_pred - y_true) / y_true.size


class NotebookNetwork:
    def __init__(self, sizes, rng):
        self.layers = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            self.layers += [FCLayer(n_in, n_out, rng), TanhLayer()]

    def fit(self, x_train, y_train, epochs, learning_rate):
        for _ in range(epochs):
            for x, y in zip(x_train, y_train):
                output = x.reshape(1, -1)
                for layer in self.layers:
                    output = layer.forward_propagation(output)
                error = mse_prime(y.reshape(1, -1), output)
                for layer in reversed(self.layers):
                    error = layer.backward_propagation(error, learning_rate)
