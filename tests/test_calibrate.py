"""The trainer's answers block: fitted on the validation split only, and non-digits in training."""
import json

import numpy as np
import pytest

from neuralnet.calibration import fit_temperature, softmax, top2
from neuralnet.model_io import load_version
from tests.helpers import edit_card
from trainer import calibrate, nondigits
from trainer.data import load_mnist
from trainer.presets import preset
from trainer.train import run, split, with_outliers


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """A one-epoch fast model trained with 300 non-digits: its card, network, and the data splits."""
    cfg = preset("fast", epochs=1, outliers=300, seed=3)
    mnist = load_mnist(mnist_dir)
    path = run(cfg, mnist, tmp_path_factory.mktemp("models"), "mnist")
    net, card = load_version(path)
    _, (x_val, y_val), (x_test, y_test) = split(mnist, cfg, np.random.default_rng(cfg.seed))
    return card, net, (x_val, y_val.argmax(1)), (x_test, y_test), path, mnist


def test_the_temperature_is_fitted_on_the_validation_split_and_not_on_the_test_set(trained):
    card, net, (x_val, y_val), (x_test, y_test) = trained[:4]
    block = card["answers"]
    assert block["temperature"] == pytest.approx(fit_temperature(net.logits(x_val), y_val), rel=1e-4)
    assert block["temperature"] != pytest.approx(fit_temperature(net.logits(x_test), y_test), rel=1e-3)
    assert "validation" in block["fitted_on"]


def test_the_thresholds_flag_the_stated_share_of_validation_digits(trained):
    card, net, (x_val, _), _ = trained[:4]
    block = card["answers"]
    p = softmax(net.logits(x_val), block["temperature"])
    score = top2(p)
    assert np.mean(score < block["digit_score_threshold"]) == pytest.approx(calibrate.NOT_A_DIGIT_RATE, abs=0.001)
    passing = score >= block["digit_score_threshold"]
    assert np.mean(p.max(1)[passing] < block["confidence_threshold"]) == pytest.approx(
        calibrate.UNCERTAIN_RATE, abs=0.001)
    assert block["read_digit_score_threshold"] <= block["digit_score_threshold"]
    assert block["rates"] == {"not_a_digit": calibrate.NOT_A_DIGIT_RATE,
                              "read_not_a_digit": calibrate.READ_NOT_A_DIGIT_RATE,
                              "uncertain": calibrate.UNCERTAIN_RATE}
    assert block["test_ece"]["bins"] == 15 and block["test_ece"]["after"] < block["test_ece"]["before"]


def test_a_version_without_the_block_gets_it_refitted_in_place(trained):
    card, path, mnist = trained[0], trained[4], trained[5]
    edit_card(path, lambda c: c.pop("answers"))
    assert calibrate.refit(path, mnist) == card["answers"]
    assert load_version(path)[1]["answers"] == card["answers"]  # and the version still loads, checks and all


def test_the_card_records_the_non_digits_it_was_trained_on(trained):
    card = trained[0]
    assert card["training"]["outliers"] == 300
    json.dumps(card)  # plain data


def test_non_digits_get_the_uniform_target_and_leave_the_digits_alone(mnist_dir):
    x, y = np.zeros((5, 784), np.float32), np.eye(10, dtype=np.float32)[[1, 2, 3, 4, 5]]
    x2, y2 = with_outliers(x, y, preset("fast", outliers=4, seed=0))
    assert x2.shape == (9, 784) and (x2[:5] == x).all() and (y2[:5] == y).all()
    np.testing.assert_allclose(y2[5:], 0.1)
    assert (x2[5:].reshape(4, -1).max(1) > 0).all()  # each has ink


def test_generated_non_digits_skip_characters_a_font_lacks():
    font = nondigits._font(nondigits.PILLOW_FONT, 60)
    drawn = nondigits._drawn(font)
    assert "A" in drawn and "π" not in drawn  # Pillow's bundled font has Latin letters, no Greek
    x = nondigits.generate(12, np.random.default_rng(0), [nondigits.PILLOW_FONT])
    assert x.shape == (12, 784) and x.dtype == np.float32 and (x.max(1) > 0.5).all()
    assert not set(nondigits.CHARACTERS) & nondigits.LOOK_ALIKES
