"""One optimiser step worked by hand, weight decay, flushing, and the schedules."""
import math

import numpy as np
import pytest

from neuralnet import optim


def pair(w, g):
    return np.array(w, np.float64), np.array(g, np.float64)


def test_sgd_step_by_hand():
    w, g = pair([[1.0, -2.0]], [[0.5, 0.25]])
    optim.SGD([(w, g)], lr=0.1).step(0.1)
    # w - lr * g = [1 - 0.05, -2 - 0.025]
    np.testing.assert_allclose(w, [[0.95, -2.025]])


def test_momentum_two_steps_by_hand():
    w, g = pair([[1.0]], [[1.0]])
    opt = optim.Momentum([(w, g)], lr=0.1, mu=0.9)
    opt.step(0.1)  # v = 1,           w = 1 - 0.1 * 1 = 0.9
    g[:] = 1.0     # a fresh backward pass (the step may use the gradient buffer as scratch)
    opt.step(0.1)  # v = 0.9 + 1 = 1.9, w = 0.9 - 0.19 = 0.71
    np.testing.assert_allclose(w, [[0.71]])


def test_adam_two_steps_by_hand():
    w, g = pair([[0.5, -0.5], [1.0, 2.0]], [[0.1, -0.2], [0.0, 0.3]])
    opt = optim.Adam([(w, g)], lr=0.01)
    opt.step(0.01)
    # step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2 -> w -= lr * g / (|g| + eps)
    expected = np.array([[0.5 - 0.01, -0.5 + 0.01], [1.0, 2.0 - 0.01]])
    np.testing.assert_allclose(w, expected, atol=1e-7)
    g[:] = [[0.2, -0.4], [0.0, 0.6]]  # step 2: a fresh backward writes gradient 2g
    opt.step(0.01)
    m = 0.9 * 0.1 * np.array([[0.1, -0.2], [0, 0.3]]) + 0.1 * 2 * np.array([[0.1, -0.2], [0, 0.3]])
    v = 0.999 * 0.001 * np.array([[0.1, -0.2], [0, 0.3]]) ** 2 + 0.001 * (2 * np.array([[0.1, -0.2], [0, 0.3]])) ** 2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    expected -= 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(w, expected, atol=1e-7)


def test_weight_decay_shrinks_matrices_not_biases():
    W, dW = pair([[1.0, 1.0]], [[0.0, 0.0]])
    b, db = pair([1.0], [0.0])
    optim.SGD([(W, dW), (b, db)], lr=0.1, weight_decay=0.5).step(0.1)
    np.testing.assert_allclose(W, [[0.95, 0.95]])  # 1 - lr * wd * 1
    np.testing.assert_allclose(b, [1.0])
    W2, dW2 = pair([[2.0]], [[0.0]])
    optim.Adam([(W2, dW2)], lr=0.1, weight_decay=0.5).step(0.1)
    np.testing.assert_allclose(W2, [[2.0 * (1 - 0.1 * 0.5)]])  # decoupled: no gradient, still decays


def test_adam_flushes_moments_before_they_turn_subnormal():
    w, g = np.ones((3, 3), np.float32), np.zeros((3, 3), np.float32)
    opt = optim.Adam([(w, g)], lr=1e-3)
    opt.m[0][:] = 1e-29
    opt.v[0][:] = 1e-31
    for _ in range(50):
        opt.step(1e-3)
    tiny = np.finfo(np.float32).tiny
    for state in (opt.m[0], opt.v[0]):
        assert not ((np.abs(state) < tiny) & (state != 0)).any()
    assert (opt.v[0] == 0).all()


def test_schedules():
    assert optim.constant(0.1, 5, 100) == 0.1
    assert optim.cosine(0.1, 0, 100) == pytest.approx(0.1)
    assert optim.cosine(0.1, 50, 100) == pytest.approx(0.05)
    assert optim.cosine(0.1, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert optim.cosine(0.1, 4, 100, warmup=10) == pytest.approx(0.1 * 5 / 10)  # linear warm-up
    assert optim.cosine(0.1, 10, 100, warmup=10) == pytest.approx(0.1)
    assert [optim.step_decay(1.0, s, 100) for s in (0, 49, 50, 75, 99)] == pytest.approx([1, 1, 0.1, 0.01, 0.01])
    assert math.isclose(optim.constant(0.2, 0, 10, warmup=4), 0.05)


def test_unknown_optimiser_is_helpful():
    with pytest.raises(ValueError, match="choose from"):
        optim.get("rmsprop", [], 0.1)
