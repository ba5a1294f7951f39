"""The Network as a whole: the notebook's XOR, reproducibility, augmentation."""
import numpy as np

from neuralnet import Activation, Dense, Network
from trainer import augment

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
XOR_Y = np.array([[0], [1], [1], [0]], np.float64)


def xor_network(seed):
    """The notebook's XOR net: 2-3-1 tanh, U(-0.5, 0.5) init, MSE, per-sample SGD at lr 0.1, 1000 epochs."""
    rng = np.random.default_rng(seed)
    net = Network()
    net.add(Dense(2, 3, init="uniform", rng=rng, dtype=np.float64)).add(Activation("tanh"))
    net.add(Dense(3, 1, init="uniform", rng=rng, dtype=np.float64)).add(Activation("tanh"))
    net.use("mse").fit(XOR_X, XOR_Y, epochs=1000, batch_size=1, lr=0.1, rng=rng)
    return net


def test_the_notebooks_xor_network_learns_xor():
    out = xor_network(seed=2).predict_proba(XOR_X)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out.ravel(), [0, 1, 1, 0], atol=0.05)


def test_xor_learns_from_most_initialisations():
    # Three tanh units are barely enough for XOR: some draws of U(-0.5, 0.5)
    # collapse to the flat minimum (output 0.5 everywhere), 4 of 20 here.
    learned = sum(((xor_network(seed).predict_proba(XOR_X) > 0.5) == XOR_Y.astype(bool)).all() for seed in range(20))
    assert learned >= 14


def small(seed):
    rng = np.random.default_rng(seed)
    net = Network().add(Dense(784, 16, rng=rng)).add(Activation("relu"))
    return net.add(Dense(16, 10, rng=rng)).add(Activation("softmax")).use("softmax_cross_entropy")


def data(n=64):
    rng = np.random.default_rng(42)
    return rng.random((n, 784), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def train(seed, **kw):
    net = small(0)
    x, y = data()
    history = net.fit(x, y, epochs=2, batch_size=16, lr=1e-3, optimizer="adam", rng=np.random.default_rng(seed),
                      augment=augment.shift, **kw)
    return net, history


def test_same_seed_same_weights_other_seed_other_weights():
    a, _ = train(1)
    b, _ = train(1)
    c, _ = train(2)
    assert all((p == q).all() for (p, _), (q, _) in zip(a.parameters(), b.parameters()))
    assert not all((p == q).all() for (p, _), (q, _) in zip(a.parameters(), c.parameters()))


def test_fit_reports_each_epoch_and_the_callback_can_stop_it():
    net, history = train(1, validation=data(16))
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"loss", "train_accuracy", "val_accuracy", "elapsed", "samples"} <= set(history[0])
    net, history = train(1, callback=lambda stats: False)
    assert len(history) == 1


def test_predict_shapes_and_batching():
    net = small(0)
    x, _ = data(10)
    p = net.predict_proba(x, batch_size=3)
    assert p.shape == (10, 10) and p.dtype == np.float32 and np.allclose(p.sum(1), 1, atol=1e-5)
    assert (net.predict(x) == p.argmax(1)).all()


def test_shift_moves_the_image_by_at_most_two_pixels():
    img = np.zeros((28, 28), np.float32)
    img[10:14, 10:14] = 1
    x = np.repeat(img.reshape(1, 784), 200, axis=0)
    out = augment.shift(x, np.random.default_rng(0)).reshape(-1, 28, 28)
    assert out.shape == (200, 28, 28) and out.dtype == np.float32
    assert (out.sum(axis=(1, 2)) == 16).all()  # nothing falls off: the square is far from the edge
    rows = np.array([np.flatnonzero(o.any(1))[0] for o in out]) - 10
    cols = np.array([np.flatnonzero(o.any(0))[0] for o in out]) - 10
    assert set(rows) == set(cols) == {-2, -1, 0, 1, 2}


def test_affine_keeps_shape_range_and_is_identity_without_transform():
    x = np.random.default_rng(1).random((8, 784), dtype=np.float32)
    assert np.array_equal(augment.affine(x, np.random.default_rng(0), 0, 0, 0), x)
    out = augment.affine(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
