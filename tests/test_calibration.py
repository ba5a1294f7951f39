"""Temperature scaling and the expected calibration error (neuralnet/calibration.py)."""
import numpy as np
import pytest

from neuralnet.calibration import ece, fit_temperature, nll, softmax


def sampled(temperature, n=20_000, seed=0):
    """Logits and labels drawn from ``softmax(z / temperature)``: calibrated exactly at that temperature."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 10))
    p = softmax(z, temperature)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_at(temperature):
    z, labels = sampled(temperature)
    assert fit_temperature(z, labels) == pytest.approx(temperature, rel=0.05)


def test_the_fitted_temperature_minimises_the_nll():
    z, labels = sampled(1.7, n=5000, seed=1)
    t = fit_temperature(z, labels)
    assert nll(z, labels, t) <= min(nll(z, labels, t * 0.9), nll(z, labels, t * 1.1))


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    z, labels = sampled(1.0, n=50_000, seed=2)
    assert ece(softmax(z), labels) < 0.01
    assert ece(softmax(z, 0.3), labels) > 0.1  # a sharper softmax claims more than it knows


def test_ece_by_hand():
    # two bins: confidence 0.6 right once of twice (gap 0.1), confidence 0.95 right once (gap 0.05)
    p = np.array([[0.6, 0.4], [0.6, 0.4], [0.95, 0.05]])
    labels = np.array([0, 1, 0])
    assert ece(p, labels, bins=10) == pytest.approx(2 / 3 * 0.1 + 1 / 3 * 0.05)


def test_softmax_rows_sum_to_one_and_keep_the_argmax():
    z = np.random.default_rng(3).normal(0, 50, (100, 10)).astype(np.float32)
    for t in (0.1, 1.0, 10.0):
        p = softmax(z, t)
        assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1, atol=1e-5)
        assert (p.argmax(axis=1) == z.argmax(axis=1)).all()
