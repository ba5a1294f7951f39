"""Finite-difference gradient checks for every layer, activation and loss (float64)."""
import numpy as np
import pytest

from neuralnet import Activation, Dense, Dropout, Network, activations, losses
from tests.helpers import numeric_grad, rel_error


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def network(rng, hidden="tanh", loss="mse", dropout=0.0):
    net = Network().add(Dense(5, 4, init="xavier", rng=rng, dtype=np.float64)).add(Activation(hidden))
    if dropout:
        net.add(Dropout(dropout, rng=np.random.default_rng(3)))
    out = "softmax" if loss == "softmax_cross_entropy" else "sigmoid"
    return net.add(Dense(4, 3, init="xavier", rng=rng, dtype=np.float64)).add(Activation(out)).use(loss)


def targets(rng, n=6, k=3):
    return np.eye(k)[rng.integers(0, k, n)]


@pytest.mark.parametrize("name", sorted(set(activations.ACTIVATIONS) - {"softmax"}))
def test_activation_derivative(rng, name):
    layer = Activation(name)
    x = rng.normal(size=(4, 3)) + 0.05  # keep relu's inputs away from its kink at 0
    upstream = rng.normal(size=(4, 3))
    layer.forward(x, training=True)
    analytic = layer.backward(upstream.copy())
    numeric = numeric_grad(lambda: float(np.sum(layer.forward(x) * upstream)), x)
    assert rel_error(analytic, numeric) < 1e-6


def test_dense_gradients_for_weights_bias_and_input(rng):
    layer = Dense(4, 3, rng=rng, dtype=np.float64)
    x, upstream = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))

    def loss():
        return float(np.sum(layer.forward(x) * upstream))

    layer.forward(x, training=True)
    dx = layer.backward(upstream)
    assert rel_error(layer.dW, numeric_grad(loss, layer.W)) < 1e-6
    assert rel_error(layer.db, numeric_grad(loss, layer.b)) < 1e-6
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6


def test_dropout_gradient_uses_the_same_mask(rng):
    layer = Dropout(0.5, rng=np.random.default_rng(1))
    x, upstream = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    y = layer.forward(x, training=True)
    mask = layer.mask
    assert set(np.unique(mask)) <= {0.0, 2.0} and (y == x * mask).all()
    assert (layer.backward(upstream) == upstream * mask).all()
    assert layer.forward(x, training=False) is x  # identity at inference


@pytest.mark.parametrize("name", ["mse", "softmax_cross_entropy"])
def test_loss_delta_matches_its_value(rng, name):
    loss = losses.get(name)
    y = targets(rng)
    a = activations.softmax(rng.normal(size=(6, 3))) if name != "mse" else rng.random((6, 3))
    if name == "mse":
        numeric = numeric_grad(lambda: loss.value(a, y), a)
        assert rel_error(loss.delta(a, y), numeric) < 1e-6
    else:  # the fused delta is with respect to the softmax input z
        z = rng.normal(size=(6, 3))
        numeric = numeric_grad(lambda: loss.value(activations.softmax(z), y), z)
        assert rel_error(loss.delta(activations.softmax(z), y), numeric) < 1e-6


@pytest.mark.parametrize("hidden,loss,dropout", [("tanh", "mse", 0), ("relu", "softmax_cross_entropy", 0),
                                                 ("sigmoid", "softmax_cross_entropy", 0.3), ("identity", "mse", 0)])
def test_whole_network_backprop(rng, hidden, loss, dropout):
    net = network(rng, hidden, loss, dropout)
    x, y = rng.normal(size=(6, 5)) + 0.05, targets(rng)
    for layer in net.layers:
        if isinstance(layer, Dropout):
            layer.forward(x[:, :4], training=True)  # draw one mask ...
            mask = layer.mask
            layer.forward = lambda inp, training=False, m=mask: inp * m  # ... and keep it for the check
            layer.backward = lambda delta, m=mask: delta * m
    net.backward(net.forward(x, training=True), y)
    for param, grad in net.parameters():
        numeric = numeric_grad(lambda: net.loss.value(net.forward(x), y), param)
        assert rel_error(grad, numeric) < 1e-6


def test_softmax_is_stable_for_huge_logits():
    p = activations.softmax(np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 0.0]]))
    assert np.isfinite(p).all() and np.allclose(p.sum(1), 1)
    assert p[0, 0] == 1.0 and np.allclose(p[1], [0.5, 0.5, 0.0])


def test_cross_entropy_never_takes_log_of_zero():
    loss = losses.get("softmax_cross_entropy")
    assert np.isfinite(loss.value(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])))


def test_unknown_names_are_helpful():
    with pytest.raises(ValueError, match="choose from"):
        Activation("swish")
    with pytest.raises(ValueError, match="choose from"):
        losses.get("hinge")
