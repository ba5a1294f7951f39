"""Convolution, pooling, batch norm and reshaping: finite-difference gradient checks
(float64), forward shapes against a direct loop, and inference modes."""
import numpy as np
import pytest

from neuralnet import Activation, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network, Reshape
from neuralnet.conv import im2col, input_grad, output_size
from tests.helpers import numeric_grad, rel_error


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def conv_by_loops(x, W, b, stride, padding):
    """The textbook definition, one output pixel at a time: the reference for Conv2D."""
    k, _, _, c_out = W.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, w, _ = xp.shape
    h_out, w_out = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, h_out, w_out, c_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = np.tensordot(window, W, axes=([1, 2, 3], [0, 1, 2])) + b
    return out


def check_layer_gradients(layer, x, rng, tol=1e-6):
    """dL/dx and dL/dparam of ``L = sum(layer(x) * upstream)`` against central differences."""
    out = layer.forward(x, training=True)
    upstream = rng.normal(size=out.shape)

    def loss():
        return float(np.sum(layer.forward(x, training=True) * upstream))

    layer.forward(x, training=True)
    dx = layer.backward(upstream.copy())
    analytic = [g.copy() for _, g in layer.parameters()]
    for (p, _), g in zip(layer.parameters(), analytic):
        assert rel_error(g, numeric_grad(loss, p)) < tol
    assert rel_error(dx, numeric_grad(loss, x)) < tol


# kernel, stride, padding, input side: odd and even sides, windows that do not tile the input,
# padding as wide as the kernel allows, strides that skip pixels
CONV_CASES = [(3, 1, 0, 5), (3, 1, 1, 5), (3, 2, 1, 6), (2, 2, 0, 5), (5, 1, 2, 6), (1, 1, 0, 4), (3, 3, 2, 7)]


@pytest.mark.parametrize("k,stride,padding,side", CONV_CASES)
def test_conv2d_matches_the_definition_and_its_gradients_check(rng, k, stride, padding, side):
    layer = Conv2D(2, 3, kernel=k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.b[:] = rng.normal(size=3)
    x = rng.normal(size=(2, side, side, 2))
    out = layer.forward(x)
    assert out.shape == (2, *layer.output_shape((side, side, 2)))
    np.testing.assert_allclose(out, conv_by_loops(x, layer.W, layer.b, stride, padding), atol=1e-12)
    check_layer_gradients(layer, x, rng)


@pytest.mark.parametrize("channels", [1, 3])  # one channel has a path of its own
@pytest.mark.parametrize("k,stride,padding,side", CONV_CASES)
def test_im2col_rows_are_the_windows(rng, k, stride, padding, side, channels):
    x = rng.normal(size=(2, side, side + 1, channels))
    cols = im2col(x, k, stride, padding)
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    h_out, w_out = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    assert cols.shape == (2 * h_out * w_out, k * k * channels)
    rows = cols.reshape(2, h_out, w_out, -1)
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            np.testing.assert_array_equal(rows[:, i, j], window.reshape(2, -1))


@pytest.mark.parametrize("k,stride,padding,side", CONV_CASES)
def test_input_grad_is_the_adjoint_of_the_convolution(rng, k, stride, padding, side):
    # <conv(x), d> == <x, input_grad(d)> for every x and d: the definition of the transpose
    x = rng.normal(size=(2, side, side + 1, 3))
    W = rng.normal(size=(k, k, 3, 4))
    z = im2col(x, k, stride, padding) @ W.reshape(-1, 4)  # (2 * h_out * w_out, 4)
    d = rng.normal(size=(2, output_size(side, k, stride, padding), output_size(side + 1, k, stride, padding), 4))
    dx = input_grad(d, W, x.shape, stride, padding)
    assert dx.shape == x.shape
    assert np.isclose(np.sum(z * d.reshape(z.shape)), np.sum(x * dx))


def test_first_conv_layer_skips_the_input_gradient(rng):
    layer = Conv2D(1, 2, rng=rng)
    layer.needs_input_grad = False
    layer.forward(rng.normal(size=(2, 5, 5, 1)).astype(np.float32), training=True)
    assert layer.backward(np.ones((2, 3, 3, 2), np.float32)) is None
    assert np.all(layer.db == 18)  # the weight gradients are still filled in


@pytest.mark.parametrize("size,side", [(2, 4), (2, 5), (3, 7)])
def test_maxpool_forward_and_gradient(rng, size, side):
    layer = MaxPool2D(size)
    x = rng.normal(size=(2, side, side, 3))
    out = layer.forward(x, training=True)
    h = side // size
    expected = x[:, :h * size, :h * size].reshape(2, h, size, h, size, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(layer.forward(x), expected)  # inference takes the short path
    check_layer_gradients(layer, x, rng)


def test_maxpool_sends_a_tied_window_gradient_to_its_first_maximum():
    layer = MaxPool2D(2)
    layer.forward(np.zeros((1, 2, 2, 1)), training=True)  # blank pixels tie all the time
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0], [[1, 0], [0, 0]])
    layer.forward(np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1), training=True)
    np.testing.assert_array_equal(layer.backward(np.full((1, 1, 1, 1), 5.0))[0, :, :, 0], [[0, 5], [0, 0]])


def maxpool_by_loops(x, size, delta):
    """The definition, one window at a time: the max, and ``delta`` to the window's first maximum."""
    n, h, w, c = x.shape
    out, dx = np.zeros((n, h // size, w // size, c), x.dtype), np.zeros_like(x)
    for b in range(n):
        for i in range(h // size):
            for j in range(w // size):
                for ch in range(c):
                    window = x[b, i * size:(i + 1) * size, j * size:(j + 1) * size, ch]
                    out[b, i, j, ch] = window.max()
                    r, s = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
                    dx[b, i * size + r, j * size + s, ch] = delta[b, i, j, ch]
    return out, dx


@pytest.mark.parametrize("size,h,w", [(2, 6, 6), (2, 5, 7), (3, 7, 9), (3, 6, 6), (1, 3, 4), (4, 9, 8)])
def test_maxpool_matches_a_loop_with_ties_and_odd_sizes(rng, size, h, w):
    # few distinct values and float32, as a training step has: many windows tie, some several ways
    x = rng.integers(0, 3, size=(3, h, w, 5)).astype(np.float32)
    x[0] = 0  # a blank image: every window ties everywhere
    delta = rng.normal(size=(3, h // size, w // size, 5)).astype(np.float32)
    layer = MaxPool2D(size)
    out = layer.forward(x, training=True)
    expected_out, expected_dx = maxpool_by_loops(x, size, delta)
    np.testing.assert_array_equal(out, expected_out)
    dx = layer.backward(delta.copy())
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2)])
def test_batchnorm_gradients_dense_and_convolutional(rng, shape):
    layer = BatchNorm(shape[-1], dtype=np.float64)
    layer.gamma[:] = rng.normal(size=shape[-1])
    layer.beta[:] = rng.normal(size=shape[-1])
    check_layer_gradients(layer, rng.normal(size=shape) * 3 + 1, rng, tol=1e-5)  # sums of many terms: more rounding


def test_batchnorm_training_standardises_and_inference_uses_running_statistics(rng):
    layer = BatchNorm(3, momentum=0.0, dtype=np.float64)  # momentum 0: running stats = last batch's
    x = rng.normal(loc=[1, -2, 5], scale=[0.5, 2, 3], size=(400, 3))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(layer.running_mean, x.mean(axis=0))
    np.testing.assert_allclose(layer.running_var, x.var(axis=0, ddof=1))
    # inference: one sample alone is normalised by the stored statistics, not by itself
    one = layer.forward(x[:1])
    np.testing.assert_allclose(one, (x[:1] - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + layer.eps))


def test_batchnorm_running_averages_move_by_momentum(rng):
    layer = BatchNorm(2, momentum=0.9, dtype=np.float64)
    x = rng.normal(size=(50, 2)) + 4
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(0))
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(0, ddof=1))  # from the initial 1
    before = layer.running_mean.copy()
    layer.forward(x)  # inference leaves the statistics alone
    np.testing.assert_array_equal(layer.running_mean, before)


def test_dropout_is_the_identity_at_inference(rng):
    layer = Dropout(0.5, rng=rng)
    x = rng.normal(size=(4, 10))
    assert layer.forward(x) is x
    assert np.count_nonzero(layer.forward(x, training=True) == 0) > 0


def test_reshape_and_flatten_round_trip(rng):
    x = rng.normal(size=(3, 784))
    image = Reshape((28, 28, 1))
    y = image.forward(x, training=True)
    assert y.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(y[1, 0, :, 0], x[1, :28])  # rows of the image are rows of pixels
    flat = Flatten()
    z = flat.forward(y, training=True)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(image.backward(flat.backward(z)), x)
    assert flat.output_shape((7, 7, 4)) == (196,)
    with pytest.raises(ValueError):
        image.output_shape((100,))


def small_cnn(rng, dtype=np.float64):
    return (Network().add(Reshape((6, 6, 1)))
            .add(Conv2D(1, 2, kernel=3, padding=1, rng=rng, dtype=dtype)).add(BatchNorm(2, dtype=dtype))
            .add(Activation("relu")).add(MaxPool2D(2)).add(Flatten())
            .add(Dense(18, 3, rng=rng, dtype=dtype)).add(Activation("softmax")).use("softmax_cross_entropy"))


def test_whole_cnn_gradient_through_every_layer(rng):
    net = small_cnn(rng)
    x, y = rng.normal(size=(5, 36)), np.eye(3)[rng.integers(0, 3, 5)]

    def loss():
        return net.loss.value(net.forward(x, training=True), y)

    net.backward(net.forward(x, training=True), y)
    for p, g in net.parameters():
        # the conv bias feeds a batch norm, which subtracts it again: its gradient is 0 up to rounding
        np.testing.assert_allclose(g.copy(), numeric_grad(loss, p), rtol=1e-5, atol=1e-9)


def test_cnn_output_shapes(rng):
    net = small_cnn(rng, np.float32)
    shape = (36,)
    for layer in net.layers:
        shape = layer.output_shape(shape)
    assert shape == (3,)
    assert net.predict_proba(rng.random((7, 36))).shape == (7, 3)
    assert net.dtype == np.float32


def test_a_cnn_training_step_stays_float32_end_to_end(rng):
    """One float64 array anywhere on the path doubles the cost of every layer after it."""
    from trainer.presets import preset
    from trainer.train import build_network

    net = build_network(preset("cnn", hidden=(16,)), rng)
    x, y = rng.random((4, 784), dtype=np.float32), np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    out = x
    for layer in net.layers:
        out = layer.forward(out, training=True)
        assert out.dtype == np.float32, layer.describe()
    delta = net.loss.delta(out, y)
    for layer in reversed(net.layers[:-1]):  # the softmax's delta is fused into the loss's
        delta = layer.backward(delta)
        assert delta.dtype == np.float32, layer.describe()
    assert all(g.dtype == np.float32 for _, g in net.parameters())
