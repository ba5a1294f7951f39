"""The original notebook's network, rebuilt for comparison: one sample at a time.

Same structure and arithmetic as the notebook: a ``Layer`` base class, a
fully connected layer and an activation layer that each update themselves as
the error flows back, MSE, and a ``Network`` whose ``fit`` loops over the
samples one by one (``x: (1, d)`` row vectors, float64 as NumPy defaults to).
It also adds up the loss of every sample, as the notebook did to print it.
Used only by ``train_bench.py`` to time the vectorised library against it.
"""
import numpy as np


class Layer:
    def forward_propagation(self, input_data):
        raise NotImplementedError

    def backward_propagation(self, output_error, learning_rate):
        """Take dE/d(output) ``(1, d_out)``; update own weights; return dE/d(input) ``(1, d_in)``."""
        raise NotImplementedError


class FCLayer(Layer):
    """``output = input @ W + b`` with ``W: (d_in, d_out)``, ``b: (1, d_out)`` drawn from U(-0.5, 0.5)."""

    def __init__(self, input_size, output_size, rng):
        self.weights = rng.random((input_size, output_size)) - 0.5
        self.bias = rng.random((1, output_size)) - 0.5

    def forward_propagation(self, input_data):
        self.input = input_data
        return self.input @ self.weights + self.bias

    def backward_propagation(self, output_error, learning_rate):
        input_error = output_error @ self.weights.T
        weights_error = self.input.T @ output_error
        self.weights -= learning_rate * weights_error
        self.bias -= learning_rate * output_error
        return input_error


class ActivationLayer(Layer):
    def __init__(self, activation, activation_prime):
        self.activation = activation
        self.activation_prime = activation_prime

    def forward_propagation(self, input_data):
        self.input = input_data
        return self.activation(self.input)

    def backward_propagation(self, output_error, learning_rate):
        return self.activation_prime(self.input) * output_error


def tanh(x):
    return np.tanh(x)


def tanh_prime(x):
    return 1 - np.tanh(x) ** 2


def mse(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2)


def mse_prime(y_true, y_pred):
    return 2 * (y_pred - y_true) / y_true.size


class Network:
    def __init__(self):
        self.layers = []
        self.loss = self.loss_prime = None

    def add(self, layer):
        self.layers.append(layer)

    def use(self, loss, loss_prime):
        self.loss, self.loss_prime = loss, loss_prime

    def predict(self, input_data):
        """Network output for each row of ``input_data: (n, d)``, one sample at a time: ``(n, 1, k)``."""
        result = []
        for x in input_data.reshape(len(input_data), 1, -1):
            output = x
            for layer in self.layers:
                output = layer.forward_propagation(output)
            result.append(output)
        return np.array(result)

    def fit(self, x_train, y_train, epochs, learning_rate):
        """SGD one sample at a time over ``x_train: (n, d)``, ``y_train: (n, k)``; returns the mean loss per epoch."""
        samples = len(x_train)
        x_train, y_train = x_train.reshape(samples, 1, -1), y_train.reshape(samples, 1, -1)
        errors = []
        for _ in range(epochs):
            err = 0
            for j in range(samples):
                output = x_train[j]
                for layer in self.layers:
                    output = layer.forward_propagation(output)
                err += self.loss(y_train[j], output)
                error = self.loss_prime(y_train[j], output)
                for layer in reversed(self.layers):
                    error = layer.backward_propagation(error, learning_rate)
            errors.append(err / samples)
        return errors


def notebook_network(sizes, rng):
    """The notebook's tanh MLP with MSE, e.g. ``sizes=(784, 100, 50, 10)``."""
    net = Network()
    for d_in, d_out in zip(sizes, sizes[1:]):
        net.add(FCLayer(d_in, d_out, rng))
        net.add(ActivationLayer(tanh, tanh_prime))
    net.use(mse, mse_prime)
    return net
